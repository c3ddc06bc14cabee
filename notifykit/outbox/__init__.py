"""A durable outbox: enqueue now, deliver later, never lose a message.

::

    from notifykit.outbox import SQLiteOutbox

    outbox = SQLiteOutbox("outbox.db")
    notifier = Notifier(email=transport, outbox=outbox)
    message_id = notifier.enqueue(Email(to="asha@example.com", subject="Hi", text="..."))
    worker = outbox.start(notifier)      # or: the ``notifykit worker`` process
    ...
    worker.stop()

See ``docs/outbox.md`` for the guarantees.
"""

from notifykit.outbox.base import (
    AttemptRecord,
    Backoff,
    Claim,
    EntryState,
    Outbox,
    OutboxEntry,
    Sender,
)
from notifykit.outbox.sqlite import SQLiteOutbox
from notifykit.outbox.worker import Worker

__all__ = [
    "AttemptRecord",
    "Backoff",
    "Claim",
    "EntryState",
    "Outbox",
    "OutboxEntry",
    "SQLiteOutbox",
    "Sender",
    "Worker",
]
