"""Public reads answered again, byte for byte, while the database has not changed at all.

A story that goes viral is read thousands of times between two moderation actions, and
every one of those reads would otherwise pay for Litestar's parameter parsing, the thread
lookup and the ETag, only to produce the answer it produced a moment ago. This middleware
remembers the last answers to identical requests (same path, query string, Origin and
If-None-Match) together with a database stamp taken *before* each answer was built, and
replays one only while the stamp is unchanged.

The stamp is SQLite's `PRAGMA data_version`, which changes whenever any connection in any
process commits to the database file: an approval through another instance invalidates
every entry here at once, so nothing stale is ever served (a pending post also invalidates
them; the page cache behind the handler still makes those misses cheap). PostgreSQL has no
such stamp, so there the middleware is not installed and every read asks the database.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

MAX_ENTRIES = 1024
MAX_BYTES = 8 * 1024 * 1024  # bodies are mostly shared with the page cache; this bounds the worst case
REPLAYABLE = (200, 304)
# Request headers a public read's answer depends on (it says so in Vary); a token makes it private.
ORIGIN, IF_NONE_MATCH, PRIVATE = b"origin", b"if-none-match", b"x-comment-token"

Key = tuple[str, bytes, bytes | None, bytes | None]


@dataclass(frozen=True)
class Answer:
    stamp: int
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class ReplayUnchanged(ASGIMiddleware):
    """Replays the answers of public GET routes while `stamp()` returns what it returned when they were built."""

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        stamp: Callable[[], int],
        paths: Collection[str],
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._stamp = stamp
        self._paths = frozenset(paths)
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._answers: OrderedDict[Key, Answer] = OrderedDict()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        key = self._key(scope)
        if key is None:
            await next_app(scope, receive, send)
            return
        stamp = self._stamp()  # before the answer is built: a commit during it makes the entry stale, never wrong
        found = self._answers.get(key)
        if found is not None and found.stamp == stamp:
            self._answers.move_to_end(key)
            await send({"type": "http.response.start", "status": found.status, "headers": list(found.headers)})
            await send({"type": "http.response.body", "body": found.body, "more_body": False})
            return
        sent: list[Message] = []

        async def remember(message: Message) -> None:
            sent.append(message)
            await send(message)

        await next_app(scope, receive, remember)
        answer = _answer(stamp, sent)
        if answer is not None:
            self._put(key, answer)

    def _key(self, scope: Scope) -> Key | None:
        if scope.get("method") != "GET" or scope["path"] not in self._paths:
            return None
        origin = if_none_match = None
        for name, value in scope["headers"]:
            if name == ORIGIN:
                origin = value
            elif name == IF_NONE_MATCH:
                if_none_match = value
            elif name == PRIVATE:
                return None
        return scope["path"], scope["query_string"], origin, if_none_match

    def _put(self, key: Key, answer: Answer) -> None:
        replaced = self._answers.pop(key, None)
        if replaced is not None:
            self._bytes -= len(replaced.body)
        self._answers[key] = answer
        self._bytes += len(answer.body)
        while self._answers and (len(self._answers) > self._max_entries or self._bytes > self._max_bytes):
            self._bytes -= len(self._answers.popitem(last=False)[1].body)


def _answer(stamp: int, sent: list[Message]) -> Answer | None:
    """The answer as the handler sent it, if complete, public and successful (before_send hooks rerun on replay)."""
    if len(sent) != 2:
        return None
    start, body = cast("dict[str, Any]", sent[0]), cast("dict[str, Any]", sent[1])
    if start["type"] != "http.response.start" or body["type"] != "http.response.body" or body.get("more_body"):
        return None
    headers = tuple((bytes(name), bytes(value)) for name, value in start.get("headers", ()))
    if start["status"] not in REPLAYABLE or any(name == b"set-cookie" for name, _ in headers):
        return None
    return Answer(stamp=stamp, status=start["status"], headers=headers, body=bytes(body.get("body", b"")))
