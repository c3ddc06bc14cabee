"""A testing kit for applications that send notifications.

Everything here is public API, meant for the host application's own tests:

- :class:`MemoryTransport`: keeps messages in ``.outbox``;
- :class:`ScriptedTransport`: fails or succeeds as scripted, to test failover
  and error handling: ``ScriptedTransport([TransientError("busy"), "ok"])``;
- :func:`capture_sent`: records every message any notifykit transport sends in
  a block, and by default stops it from leaving the process;
- :func:`no_backoff`: retry waits become zero, so tests of retries are instant;
- a pytest plugin (registered automatically) with the ``notifykit_outbox``
  fixture: a list of the messages the test sent, none of them delivered.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

from notifykit.errors import ConfigurationError, DeliveryError
from notifykit.message import Message
from notifykit.receipt import Receipt
from notifykit.retry import _waits_disabled
from notifykit.transports import base as _base
from notifykit.transports.memory import MemoryTransport

__all__ = ["MemoryTransport", "ScriptedTransport", "Step", "capture_sent", "no_backoff"]

#: One step of a :class:`ScriptedTransport`: ``"ok"``, an error instance, or an error class.
Step = str | DeliveryError | type[DeliveryError]


class ScriptedTransport(_base.BaseTransport):
    """A transport that answers each send with the next step of its script.

    A step is ``"ok"`` (deliver: the message lands in :attr:`sent`), a
    :class:`~notifykit.errors.DeliveryError` instance (raised, a fresh copy
    each time), or an error class (raised with a generic message). When the
    script runs out, every further send repeats ``then`` (``"ok"`` by default).

    :attr:`calls` lists every message it was asked to send, :attr:`sent` the
    ones it "delivered".
    """

    scheme: ClassVar[str] = "scripted"

    def __init__(
        self,
        script: Iterable[Step] = (),
        *,
        then: Step = "ok",
        name: str = "scripted",
        channels: Sequence[str] = ("email", "sms"),
    ) -> None:
        self.script: list[Step] = [self._check(step) for step in script]
        self.then = self._check(then)
        self.name = name
        self.channels = frozenset(channels)
        self.calls: list[Message] = []
        self.sent: list[Message] = []
        self._lock = threading.Lock()

    @staticmethod
    def _check(step: Step) -> Step:
        if step == "ok" or isinstance(step, DeliveryError):
            return step
        if isinstance(step, type) and issubclass(step, DeliveryError):
            return step
        raise ConfigurationError(
            f"a script step is 'ok', a DeliveryError or its class, not {step!r}"
        )

    def _send(self, message: Message) -> Receipt:
        with self._lock:
            self.calls.append(message)
            step = self.script.pop(0) if self.script else self.then
            if step == "ok":
                self.sent.append(message)
        if isinstance(step, type):
            raise step(f"scripted {step.__name__}")
        if isinstance(step, DeliveryError):
            raise copy.copy(step)
        return Receipt(
            message_id=message.id,
            transport=self.name,
            provider_message_id=f"{self.name}-{len(self.calls)}",
            accepted=message.recipients,
        )

    def __str__(self) -> str:
        return f"scripted://{self.name}"


@contextmanager
def capture_sent(*, deliver: bool = False) -> Iterator[list[Message]]:
    """Record every message sent through any notifykit transport inside the block.

    Yields the list the messages are appended to. With ``deliver=False`` (the
    default) nothing leaves the process: each send returns a receipt at once,
    as if the transport had accepted the message. With ``deliver=True`` the
    messages are recorded and also delivered. A composer's message is
    recorded once, however many transports it tries.
    """
    capture = _base._Capture(deliver)
    with _base._captures_lock:
        _base._captures.append(capture)
    try:
        yield capture.messages
    finally:
        with _base._captures_lock:
            _base._captures.remove(capture)


@contextmanager
def no_backoff() -> Iterator[None]:
    """Make every retry wait zero seconds inside the block (retries still happen)."""
    with _waits_disabled():
        yield
