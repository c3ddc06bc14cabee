"""An aiosmtpd server in a separate process, shared by the benchmarks.

Running the server in its own process keeps it off the benchmark's GIL, so the
numbers measure the client. ``with SMTPServerProcess() as server:`` gives
``server.port``; ``server.stop()`` (or leaving the block) stops it and returns
how many messages it accepted.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any


def serve(conn: Connection, delay: float = 0.0) -> None:
    """Run an aiosmtpd server on 127.0.0.1 until told to stop; report port and count.

    ``delay`` seconds are spent (asynchronously) on each message before the
    reply, like a server that scans or relays it.
    """
    from aiosmtpd.smtp import SMTP

    received = 0

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            nonlocal received
            received += 1
            if delay:
                await asyncio.sleep(delay)
            return "250 2.0.0 OK"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler()
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="bench.local", loop=loop), "127.0.0.1", 0)
    )
    conn.send(server.sockets[0].getsockname()[1])

    def wait_for_stop() -> None:
        conn.recv()
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=wait_for_stop, daemon=True).start()
    loop.run_forever()
    server.close()
    for task in asyncio.all_tasks(loop):
        task.cancel()
    conn.send(received)


class SMTPServerProcess:
    """An aiosmtpd server in a child process (``spawn``), on a free port of 127.0.0.1.

    ``delay``: seconds the server takes per message (0: answer at once).
    """

    def __init__(self, delay: float = 0.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child, delay), daemon=True)
        self._proc.start()
        if not self._parent.poll(30):
            self._proc.kill()
            raise SystemExit("the SMTP server process did not start")
        self.port: int = self._parent.recv()
        self.received: int | None = None

    def stop(self) -> int:
        """Stop the server (its connections drop) and return how many messages it accepted."""
        if self.received is None:
            self._parent.send("stop")
            self.received = self._parent.recv() if self._parent.poll(10) else -1
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
        return self.received

    def __enter__(self) -> SMTPServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
