"""An SMTP server that records when each message arrived and can take its time.

:class:`TimedSMTPServer` is aiosmtpd on 127.0.0.1 in a background thread. Its
DATA handler records the server's own monotonic time of arrival, tracks how
many messages are being handled at once, and can sleep ``delay`` seconds per
message (a server with latency) or wait until ``gather`` messages are in
flight together (to prove that a client really sends in parallel)::

    with TimedSMTPServer(delay=0.005) as server:
        ...send to ("127.0.0.1", server.port)...
        server.arrivals      # monotonic times, one per message, in arrival order
        server.max_in_flight # the most messages handled at once
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from tests.servers import HOST

__all__ = ["TimedSMTPServer"]


class _Handler:
    def __init__(self, owner: TimedSMTPServer) -> None:
        self.owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        owner = self.owner
        with owner._lock:
            owner.arrivals.append(time.monotonic())
            owner.peers.add(session.peer)
            owner._in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner._in_flight)
        try:
            if owner.gather:
                deadline = time.monotonic() + owner.gather_timeout
                while owner._in_flight < owner.gather and time.monotonic() < deadline:
                    await asyncio.sleep(0.002)
            if owner.delay:
                await asyncio.sleep(owner.delay)
        finally:
            with owner._lock:
                owner._in_flight -= 1
        return "250 2.0.0 OK"


class _FreePortController(Controller):
    """aiosmtpd's Controller on a port the kernel picks (port 0)."""

    def _trigger_server(self) -> None:
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class TimedSMTPServer:
    """aiosmtpd on a free port of 127.0.0.1 that timestamps every message it accepts."""

    def __init__(self, delay: float = 0.0, gather: int = 0, gather_timeout: float = 3.0) -> None:
        self.delay = delay
        self.gather = gather
        self.gather_timeout = gather_timeout
        self.arrivals: list[float] = []
        self.peers: set[Any] = set()
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._controller = _FreePortController(_Handler(self), hostname=HOST, port=0)

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    def __enter__(self) -> TimedSMTPServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()
