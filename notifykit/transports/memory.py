"""An in-memory transport: messages land in ``.outbox``. For tests and previews."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from notifykit.receipt import Receipt
from notifykit.transports.base import BaseTransport

if TYPE_CHECKING:
    from notifykit.message import Message

__all__ = ["MemoryTransport"]


class MemoryTransport(BaseTransport):
    """Keeps every message it is given in :attr:`outbox`, in order.

    It carries e-mail and SMS, never fails, and is safe to share between
    threads. ``clear()`` empties the outbox.
    """

    scheme: ClassVar[str] = "memory"
    simulated: ClassVar[bool] = True  # delivers to no one

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.outbox: list[Message] = []
        self._lock = threading.Lock()

    def _send(self, message: Message) -> Receipt:
        with self._lock:
            self.outbox.append(message)
        return Receipt(
            message_id=message.id,
            transport=self.name,
            provider_message_id=f"memory-{message.id}",
            accepted=message.recipients,
        )

    def clear(self) -> None:
        """Forget every message sent so far."""
        with self._lock:
            self.outbox.clear()

    def __len__(self) -> int:
        return len(self.outbox)
