"""Real servers on 127.0.0.1 that tests talk to instead of mocking client libraries.

This module holds the protocol-free pieces (no third-party imports):
:class:`SilentServer` and :func:`closed_port`. ``tests.servers.smtp`` has the
aiosmtpd-based SMTP servers.
"""

from __future__ import annotations

import socket

__all__ = ["HOST", "SilentServer", "closed_port"]

#: Every test server listens here, never on a public interface.
HOST = "127.0.0.1"


class SilentServer:
    """A TCP port that accepts connections and never answers (no SMTP greeting).

    The kernel completes the handshake from the listen backlog; nothing ever
    reads or writes, so a client waits until its own time-out fires.
    """

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._sock: socket.socket | None = None

    def start(self) -> SilentServer:
        """Start listening on a free port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(16)
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop listening; pending connections are reset. Idempotent."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connecting is refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port
