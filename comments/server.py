"""The HTTP protocol `comments serve` runs: uvicorn's httptools one, plus a deadline and a size cap on request heads.

uvicorn closes idle keep-alive connections, but it waits forever for the head of a request
(a connection that sends nothing, or one header byte every few seconds: "slowloris"), and
with httptools it buffers request heads of any size. Each such connection costs little,
but a few hundred of them hold every connection slot (`limit_concurrency`) or file
descriptor. Here a request head must arrive complete within `head_timeout_seconds` (10 s) and in at most
MAX_HEAD_BYTES, else the connection is answered 408 or 431 and closed. A reverse proxy's
own header timeout does the same job in front; this keeps a bare `comments serve` safe too.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from comments.config import Settings

if TYPE_CHECKING:
    import asyncio

MAX_HEAD_BYTES = 64 * 1024


@cache
def head_seconds() -> float:
    """COMMENTS_HEAD_TIMEOUT_SECONDS, read once per worker process."""
    return Settings().head_timeout_seconds


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a deadline and a size cap for each request head."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock: the first request head is due in time."""
        super().connection_made(transport)
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        """A new request starts (also the next one on a keep-alive connection): its head is due in time."""
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        """The head is in; from here the app's own body timeout applies."""
        self._disarm_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Count the bytes of an unfinished head (parsed first, so a chunk that completes one is not counted)."""
        super().data_received(data)
        if self._head_timer is None or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(b"431 Request Header Fields Too Large", "Request headers too large.")

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock with the connection."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(head_seconds(), self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:
            self._refuse(b"408 Request Timeout", "Request headers came too slowly.")
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def _refuse(self, status: bytes, message: str) -> None:
        self._disarm_head_timer()
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()
