"""Reply trees where replies can be older than their parents (imports) or lose them (deletion)."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.export import service
from comments.models import Comment
from comments.models import CommentStatus as S
from comments.threads import visible_ids
from tests.export.conftest import Populated

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("rows", "shown"),
    [
        ([(1, None, S.approved), (2, 1, S.approved), (3, 2, S.pending), (4, 3, S.approved)], {1, 2}),
        ([(5, 9, S.approved), (9, None, S.approved), (3, 5, S.approved)], {3, 5, 9}),  # child ids below parents
        ([(5, 9, S.approved), (9, None, S.spam), (3, 5, S.approved)], set()),
        ([(5, 6, S.approved), (6, 5, S.approved)], set()),  # a cycle shows nothing (and terminates)
        ([(5, 77, S.approved)], set()),  # parent outside the thread
    ],
)
def test_visible_ids_in_any_order(rows, shown) -> None:
    assert visible_ids(rows) == shown
    assert visible_ids(list(reversed(rows))) == shown


async def test_rebuild_tree_moves_replies_up_past_removed_comments(session: AsyncSession, populated: Populated) -> None:
    c = populated.comments
    thread_id = c[0].thread_id
    await service.rebuild_tree(session, thread_id, removed={c[0].id, c[1].id})  # type: ignore[arg-type]
    await session.commit()
    session.expire_all()
    rows = {x.id: x for x in (await session.exec(select(Comment).where(col(Comment.thread_id) == thread_id))).all()}
    assert (rows[c[2].id].parent_id, rows[c[2].id].depth, rows[c[2].id].root_id) == (None, 0, c[2].id)
    assert (rows[c[0].id].parent_id, rows[c[1].id].parent_id) == (None, c[0].id)  # removed ones are left alone
