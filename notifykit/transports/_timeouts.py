"""Connect time-outs, and the shorter one a composer's probe asks for.

A transport has two time-outs: ``connect_timeout`` bounds setting up a
session (TCP connect, TLS handshake, and for SMTP the greeting, EHLO, STARTTLS
and AUTH); ``timeout`` bounds waiting for each answer once the session is up.
A :class:`~notifykit.FailoverTransport` probing a transport that failed earlier
wants to know quickly whether it is back, so it caps the connect time-out of
that one attempt with :func:`capped_connect_timeout`; transports read the cap
through :func:`connect_timeout` when they open a connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "capped_connect_timeout", "connect_timeout"]

#: Seconds to set up a session by default: a TLS SMTP session (greeting, EHLO,
#: STARTTLS, AUTH) is about six round trips, ~1.5 s across continents.
DEFAULT_CONNECT_TIMEOUT = 5.0

_cap: ContextVar[float | None] = ContextVar("notifykit_connect_cap", default=None)


def connect_timeout(configured: float) -> float:
    """The connect time-out to use now: ``configured``, or less inside a probe."""
    cap = _cap.get()
    return configured if cap is None else min(configured, cap)


@contextmanager
def capped_connect_timeout(seconds: float | None) -> Iterator[None]:
    """Within the block, connections opened by this thread take at most ``seconds``."""
    if seconds is None:
        yield
        return
    token = _cap.set(seconds)
    try:
        yield
    finally:
        _cap.reset(token)
