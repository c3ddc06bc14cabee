"""A sink that keeps every event in memory: for tests and for previews."""

from __future__ import annotations

import threading

from notifykit.sinks.base import DeliveryEvent, Status

__all__ = ["MemorySink"]


class MemorySink:
    """Keeps every :class:`~notifykit.sinks.DeliveryEvent` it receives, in order.

    It is the delivery-log counterpart of :class:`~notifykit.MemoryTransport`:
    a test sends through a :class:`~notifykit.Notifier` and then asserts on
    what was logged::

        sink = MemorySink()
        ...
        assert ["queued", "sent"] == sink.statuses(message.id)

    ``record()`` is safe to call from many threads. :attr:`events` hands back a
    snapshot (a new list), so a test can iterate over it while other threads
    keep sending. Nothing is ever dropped, so do not leave one attached to a
    long-running production Notifier.
    """

    def __init__(self) -> None:
        self._events: list[DeliveryEvent] = []
        self._lock = threading.Lock()

    def record(self, event: DeliveryEvent) -> None:
        """Keep ``event``."""
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[DeliveryEvent]:
        """Every event recorded so far, oldest first (a copy)."""
        with self._lock:
            return list(self._events)

    def for_message(self, message_id: str) -> list[DeliveryEvent]:
        """The events of one message, oldest first."""
        with self._lock:
            return [e for e in self._events if e.message_id == message_id]

    def with_status(self, status: Status) -> list[DeliveryEvent]:
        """The events with ``status`` (``"sent"``, ``"failed"``...), oldest first."""
        with self._lock:
            return [e for e in self._events if e.status == status]

    def statuses(self, message_id: str | None = None) -> list[str]:
        """The status of each event (of one message, when ``message_id`` is given).

        The shortest way to assert on a whole delivery:
        ``["queued", "attempt_failed", "sent"] == sink.statuses(message.id)``.
        """
        with self._lock:
            return [
                e.status for e in self._events if message_id is None or e.message_id == message_id
            ]

    def clear(self) -> None:
        """Forget every event recorded so far."""
        with self._lock:
            self._events.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __repr__(self) -> str:
        return f"MemorySink(<{len(self)} events>)"
