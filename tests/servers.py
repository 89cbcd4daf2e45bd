"""Real `comments serve` processes for the tests that need a server an operator would run.

Each server is started in its own process group (uvicorn's workers included), so a test can
stop it cleanly or kill the whole group with SIGKILL, as a crash or an OOM kill would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from comments.config import Settings
from tests.conftest import free_port

COMMENTS = [sys.executable, "-m", "comments"]


def server_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a server on the test database; flood and rate limits lifted unless overridden."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTS_")}
    env.update(
        COMMENTS_DATABASE_URL=settings.resolved_database_url,
        COMMENTS_DATA_DIR=str(settings.data_dir),
        COMMENTS_SECRET_KEY=settings.secret_key,
        COMMENTS_FLOOD_SECONDS="0",
        COMMENTS_RATE_LIMIT_PER_HOUR="0",
        COMMENTS_DB_POOL_SIZE="5",
    )
    env.update(overrides)
    return env


@dataclass
class Server:
    """One `comments serve` process group and where it listens."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to the group (graceful), SIGKILL if it has not exited within 15 s."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL to the whole group at once: no shutdown hook, no flush, no goodbye."""
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=15)
        self._reap_group()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def _reap_group(self) -> None:
        """Wait until no process of the group is left (workers outlive the parent by a moment)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        self._signal(signal.SIGKILL)


def start_server(env: dict[str, str], log_dir: Path, *, workers: int = 1, name: str = "server") -> Server:
    """Start `comments serve` on a free port and wait until /healthz answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = log_dir / f"{name}-{port}.log"
    handle: IO[bytes] = log.open("wb")
    proc = subprocess.Popen(
        [*COMMENTS, "serve", "--port", str(port), "--workers", str(workers)],
        env={"COMMENTS_BASE_URL": base, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    server = Server(proc, base, log)
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{server.base} did not become ready within {timeout}s:\n{server.output()}")


def reply(site: str, thread: str, content: str, email: str, **extra: Any) -> dict[str, Any]:
    """A valid JSON reply body."""
    return {"site": site, "thread": thread, "content": content, "name": "Load Tester", "email": email, **extra}


@dataclass(frozen=True)
class Sent:
    """One submission as the client saw it: its unique tag, where it went, and the answer (0: no answer)."""

    tag: str
    thread: str
    status: int
    comment_id: int | None
    idempotency_key: str | None = None


def post_reply(http: httpx.Client, base: str, site: str, thread: str, tag: str, key: str | None = None) -> Sent:
    """Post one reply whose content and email carry `tag`; a transport error is recorded as status 0."""
    headers = {"Idempotency-Key": key} if key else {}
    body = reply(site, thread, f"Load test comment {tag}.", f"{tag}@example.org")
    try:
        response = http.post(f"{base}/api/comments", json=body, headers=headers)
    except httpx.TransportError:
        return Sent(tag, thread, 0, None, key)
    comment_id = response.json()["comment"]["id"] if response.status_code == 201 else None
    return Sent(tag, thread, response.status_code, comment_id, key)
