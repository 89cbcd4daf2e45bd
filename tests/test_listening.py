"""Each worker listens on a socket of its own, so new connections are spread over the workers."""

from __future__ import annotations

import pickle
import socket
from multiprocessing.reduction import ForkingPickler

import pytest

from comments import listening
from tests.conftest import free_port


def _worker_socket(supervisor: socket.socket) -> socket.socket:
    """What a worker process gets: the supervisor's socket, pickled the way multiprocessing sends it."""
    return pickle.loads(ForkingPickler.dumps(supervisor))  # noqa: S301 - our own bytes, just made


def test_connections_are_spread_over_the_workers_sockets() -> None:
    supervisor = listening.reuse_port_socket("127.0.0.1", free_port())
    workers = [_worker_socket(supervisor) for _ in range(2)]
    clients: list[socket.socket] = []
    try:
        assert all(w.fileno() != supervisor.fileno() for w in workers)
        for worker in workers:
            worker.listen(128)
            worker.setblocking(False)
        for _ in range(64):
            clients.append(socket.create_connection(supervisor.getsockname(), timeout=5))
        accepted = [0, 0]
        for n, worker in enumerate(workers):
            while True:
                try:
                    conn, _ = worker.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted[n] += 1
        # The kernel picks a socket by a hash of each connection's addresses: both get some.
        assert sum(accepted) == 64
        assert min(accepted) > 0
    finally:
        for sock in [*clients, *workers, supervisor]:
            sock.close()


def test_a_port_something_listens_on_is_refused_not_shared() -> None:
    port = free_port()
    other = socket.create_server(("127.0.0.1", port))
    try:
        with pytest.raises(listening.AddressInUse, match=f"127.0.0.1:{port} is already in use"):
            listening.reuse_port_socket("127.0.0.1", port)
    finally:
        other.close()
