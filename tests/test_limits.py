"""Limits of a real `comments serve` against oversized, slow and idle clients, over raw sockets.

Body size (413 before the body is read), slow bodies (408, the app's read timeout), slow or
endless request heads and oversized heads (408/431, comments/server.py), idle keep-alive
connections (closed after 5 s), and the serve command's uvicorn settings themselves.
Timeouts are lowered to 1 s through the environment so the test stays quick.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from comments import cli
from comments.app import MAX_BODY_BYTES
from comments.server import MAX_HEAD_BYTES
from tests.servers import Server, start_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh SQLite server with 1 s head and body timeouts (the defaults are 10 s and 30 s)."""
    directory = tmp_path_factory.mktemp("limits")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTS_")}
    env.update(
        COMMENTS_DATA_DIR=str(directory / "var"),
        COMMENTS_HEAD_TIMEOUT_SECONDS="1",
        COMMENTS_BODY_TIMEOUT_SECONDS="1",
    )
    server = start_server(env, Path(directory), name="limits")
    yield server
    server.stop()


def exchange(server: Server, data: bytes, *, wait: float = 5.0) -> tuple[bytes, float, float | None]:
    """Send raw bytes; return what came back, after how long it began (or the connection closed), and when it
    closed (None: still open after `wait` seconds)."""
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(wait)
        started = time.monotonic()
        if data:
            sock.sendall(data)
        received, answered, closed = b"", None, None
        try:
            while chunk := sock.recv(65536):
                received += chunk
                answered = answered or time.monotonic() - started
            closed = time.monotonic() - started
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = time.monotonic() - started
        return received, answered or closed or wait, closed


def status_of(received: bytes) -> int:
    return int(received.split(b" ", 2)[1])


def test_a_body_over_the_limit_is_refused_before_it_is_sent(served: Server) -> None:
    head = (
        "POST /api/comments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    received, elapsed, _ = exchange(served, head.encode() + b"{", wait=1.5)
    assert status_of(received) == 413
    assert b'"code":"too_large"' in received
    assert elapsed < 1  # answered on the Content-Length alone, without waiting for 10 MB


def test_a_body_trickling_in_gets_408(served: Server) -> None:
    head = b"POST /api/comments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    received, elapsed, _ = exchange(served, head + b'{"site":', wait=2)
    assert status_of(received) == 408
    assert b'"code":"timeout"' in received
    assert elapsed < 3.5


def test_a_head_trickling_in_gets_408_and_is_closed(served: Server) -> None:
    received, elapsed, closed = exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait=5)
    assert status_of(received) == 408
    assert closed is not None
    assert elapsed < 4


def test_a_connection_that_sends_nothing_is_closed(served: Server) -> None:
    received, _, closed = exchange(served, b"", wait=5)
    assert received == b""
    assert closed is not None
    assert closed < 4


def test_an_oversized_head_gets_431(served: Server) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES * 2) + b"\r\n\r\n"
    received, _, closed = exchange(served, big, wait=5)
    assert status_of(received) == 431
    assert closed is not None


def test_an_idle_keep_alive_connection_is_closed_after_5_seconds(served: Server) -> None:
    received, _, closed = exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=9)
    assert status_of(received) == 200
    assert closed is not None
    assert 4.5 < closed < 8


def test_a_normal_request_still_works_with_a_large_legitimate_body(served: Server) -> None:
    """A comment near the 64 KB limit, sent in one write, is not mistaken for an oversized head."""
    body = (
        '{"site":"demo","thread":"/demo","name":"Ada","email":"ada@example.org","content":"' + "a" * 60_000 + '"}'
    ).encode()
    head = f"POST /api/comments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    received, _, _ = exchange(served, head.encode() + b"\r\n\r\n" + body, wait=1.5)
    assert status_of(received) == 201


def test_serve_passes_the_documented_limits_to_uvicorn() -> None:
    assert MAX_BODY_BYTES == 256 * 1024
    assert cli.SERVER_LIMITS == {
        "http": "comments.server:GuardedHttpToolsProtocol",
        "timeout_keep_alive": 5,
        "limit_concurrency": 512,
        "h11_max_incomplete_event_size": 16 * 1024,
        "timeout_graceful_shutdown": 10,
    }
