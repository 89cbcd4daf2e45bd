"""Approve one comment the way a moderator's action does: status + refresh_thread, one transaction.

    python -m bench.approve --database-url URL --comment-id N

Used by bench/scaleout.sh to show that an approval is visible through every instance
at once (the moderation queue API lives on its own branch; this is its database effect).
"""

from __future__ import annotations

import argparse
import asyncio

from comments import db
from comments.config import Settings
from comments.models import Comment, CommentStatus
from comments.threads import refresh_thread


async def approve(url: str, comment_id: int) -> None:
    """Set the comment approved and bump its thread's version and count."""
    engine = db.create_engine(Settings(database_url=url, secret_key="bench"))
    try:
        async with db.session_maker(engine)() as session:
            await db.begin_write(session)
            comment = await session.get(Comment, comment_id)
            if comment is None:
                raise SystemExit(f"no comment {comment_id}")
            comment.status = CommentStatus.approved
            session.add(comment)
            await session.flush()
            await refresh_thread(session, comment.thread_id)
            await session.commit()
    finally:
        await engine.dispose()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--comment-id", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(approve(args.database_url, args.comment_id))


if __name__ == "__main__":
    main()
