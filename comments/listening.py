"""One listening socket per worker (SO_REUSEPORT), so the kernel spreads connections evenly.

uvicorn's workers share one listening socket, and whichever worker wakes first accepts
whatever is queued: a burst of new keep-alive connections (a load test, or a reverse
proxy opening its upstream pool) can land 31 to 1 on one worker. Each worker runs
Python under its own GIL, so that one then serves nearly everything on one core while
the others idle: measured with 32 connections on 2 workers, 716 posts/s with every
connection on one worker against 1,180-1,300/s when they were split.

With SO_REUSEPORT every worker listens on a socket of its own bound to the same address,
and Linux hands each new connection to one of them by a hash of its addresses. The
supervisor passes each worker a `ReusePortSocket`; pickled into the worker process, it
becomes a new socket of that worker's own (see `__reduce__`), bound to the same address.
"""

from __future__ import annotations

import errno
import socket
from typing import Any


class AddressInUse(OSError):
    """Another server (another `comments serve`, most likely) already listens on the address."""


class ReusePortSocket(socket.socket):
    """A bound TCP socket that each worker process re-creates for itself (never shared)."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Unpickled in a worker, this is a new SO_REUSEPORT socket bound to the same address."""
        return (_bind, (self.family, self.getsockname()))


def reuse_port_socket(host: str, port: int) -> ReusePortSocket:
    """The supervisor's socket for `host:port`: bound, not listening (only the workers' sockets listen).

    SO_REUSEPORT would also let a second server on the same port in silently, taking half
    the connections, so the address is first bound without it: if anything listens there,
    that fails as it would without SO_REUSEPORT.

    Raises:
        AddressInUse: something already listens on the address.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"{host}:{port} is already in use") from exc
        raise
    finally:
        probe.close()
    return _bind(family, (host, port))


def _bind(family: int, address: Any) -> ReusePortSocket:
    sock = ReusePortSocket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock
