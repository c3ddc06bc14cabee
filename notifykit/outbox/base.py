"""The :class:`Outbox` protocol and the values its implementations share.

An outbox stores messages durably until a worker has delivered them (or
given up on them with a reason). The lifecycle of one row::

    queued ──claim──▶ leased ──begin_attempt──▶ (in flight) ──▶ sent
      ▲                  │                           │
      └──── reschedule ◀─┴───────────────────────────┤
                                                     └──▶ dead (with a reason)

Every state change is one database transaction. What makes duplicates
traceable is the order of two of them: a worker commits *"attempt N is in
flight"* before it opens the connection to the provider, and commits the
attempt's outcome after the provider answered. A worker that dies in between
leaves an in-flight attempt behind; whoever takes the row over next marks that
attempt ``interrupted`` with ``maybe_delivered=True`` before trying again. So a
message is sent again only after an attempt that is recorded as possibly
delivered; an attempt recorded as a plain failure never reached the provider's
acceptance step, and the retry that follows it is not a duplicate.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import attrs

from notifykit.errors import ConfigurationError
from notifykit.message import Message
from notifykit.receipt import Receipt

__all__ = [
    "AttemptRecord",
    "Backoff",
    "Claim",
    "EntryState",
    "Outbox",
    "OutboxEntry",
    "Sender",
]

#: Where a row of the outbox is: waiting, held by a worker, delivered or given up on.
EntryState = Literal["queued", "leased", "sent", "dead"]

#: The outcome of one recorded attempt. ``in_flight``: started, no outcome yet;
#: ``interrupted``: its worker died (or lost its lease) before recording one.
AttemptOutcome = Literal[
    "in_flight", "sent", "transient", "provider", "rejected", "invalid", "interrupted", "error"
]


def _number(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"Backoff({name}=...) must be a number >= 0, got {value!r}")


@attrs.frozen
class Backoff:
    """When the outbox tries a message again after a transient failure.

    The ``n``-th retry waits ``initial * multiplier ** (n - 1)`` seconds, capped
    at ``maximum`` and spread by ``jitter`` (a fraction); a provider's
    ``Retry-After`` is honoured up to ``maximum``. A message is dead-lettered
    when its next try would start more than ``max_age`` seconds after it was
    enqueued, or after ``max_attempts`` tries when that is set.

    The defaults retry after 1, 2, 4, … minutes, then hourly, for two days.
    """

    initial: float = 60.0
    multiplier: float = 2.0
    maximum: float = 3600.0
    jitter: float = 0.1
    max_age: float = 2 * 24 * 3600.0
    max_attempts: int | None = None

    def __attrs_post_init__(self) -> None:
        _number("initial", self.initial)
        _number("multiplier", self.multiplier)
        _number("maximum", self.maximum)
        _number("jitter", self.jitter)
        _number("max_age", self.max_age)
        if self.multiplier < 1:
            raise ConfigurationError("Backoff(multiplier=...) must be >= 1")
        if self.jitter > 1:
            raise ConfigurationError("Backoff(jitter=...) must be between 0 and 1")
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int)
            or isinstance(self.max_attempts, bool)
            or self.max_attempts < 1
        ):
            raise ConfigurationError("Backoff(max_attempts=...) must be an integer >= 1")

    def delay(
        self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after ``attempts`` failed tries (``attempts >= 1``)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempts - 1))
        if self.jitter:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        if retry_after is not None and retry_after > base:
            base = min(self.maximum, retry_after)
        return max(0.0, base)


@attrs.frozen
class AttemptRecord:
    """One recorded try of one outbox row (one ``Notifier.send`` call by a worker).

    ``maybe_tries`` counts the tries inside it that may have delivered the
    message (a transport that retries after a lost reply makes more than one):
    the most extra copies this attempt can have caused.
    """

    number: int
    outcome: AttemptOutcome
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    maybe_delivered: bool = False
    worker: str | None = None
    maybe_tries: int = 0


@attrs.frozen
class OutboxEntry:
    """One row of an outbox, as ``list()`` and ``get()`` show it.

    ``maybe_delivered`` is True when any attempt so far may have reached the
    provider; ``last_error`` is the reason of the latest failure (for a dead
    row, why it was dead-lettered).
    """

    id: str
    channel: str
    state: EntryState
    priority: int
    created_at: datetime
    due_at: datetime
    attempts: int
    recipients: tuple[str, ...] = ()
    subject: str | None = None
    template: str | None = None
    idempotency_key: str | None = None
    last_error: str | None = None
    maybe_delivered: bool = False
    sent_at: datetime | None = None
    transport: str | None = None
    provider_message_id: str | None = None


@attrs.frozen
class Claim:
    """A row a worker holds under a lease: the message and what is known of its past."""

    id: str
    message: Message
    priority: int
    attempts: int
    created_at: float
    template: str | None = None
    maybe_delivered: bool = False


class Sender(Protocol):
    """What a worker delivers through: a :class:`~notifykit.Notifier`, or a hand-off
    such as :class:`notifykit.contrib.celery.OutboxHandOff`."""

    def send(self, message: Message, *, template: str | None = None) -> Receipt:
        """Deliver ``message`` (or hand it on); raise a DeliveryError when it was not."""
        ...


@runtime_checkable
class Outbox(Protocol):
    """Durable storage of messages waiting to be sent; see :class:`SQLiteOutbox`.

    Workers (:class:`~notifykit.outbox.Worker`) call the lease methods; the
    :class:`~notifykit.Notifier` calls :meth:`add` (``enqueue``) and the key
    methods (``send`` with an ``idempotency_key``).
    """

    #: How long, in seconds, an idempotency key keeps a second message out.
    idempotency_window: float

    def add(
        self,
        message: Message,
        *,
        send_at: datetime | None = None,
        priority: int = 0,
        template: str | None = None,
    ) -> str:
        """Store ``message``; return its id once the row is durably committed.

        When the message's ``idempotency_key`` was used by another message
        within the window, nothing is stored and that message's id is returned.
        """
        ...

    def claim(self, worker: str, *, limit: int, lease: float) -> list[Claim]:
        """Lease up to ``limit`` due rows to ``worker`` for ``lease`` seconds, best first."""
        ...

    def renew(self, worker: str, ids: Sequence[str], lease: float) -> set[str]:
        """Extend ``worker``'s leases on ``ids``; return the ids it no longer holds."""
        ...

    def release(self, worker: str, ids: Sequence[str]) -> None:
        """Give back rows ``worker`` holds but has not tried (they are due again at once)."""
        ...

    def begin_attempt(self, worker: str, id: str) -> int | None:
        """Durably record that ``worker`` starts a try of ``id``; the attempt number.

        ``None`` when ``worker`` no longer holds the lease (do not send).
        """
        ...

    def mark_sent(self, worker: str, id: str, number: int, receipt: Receipt) -> None:
        """Record attempt ``number`` of ``id`` as delivered."""
        ...

    def mark_failed(
        self,
        worker: str,
        id: str,
        number: int,
        *,
        outcome: AttemptOutcome,
        error: str,
        maybe_delivered: bool,
        retry_at: float | None,
        maybe_tries: int = 0,
    ) -> None:
        """Record a failed attempt: due again at ``retry_at`` (epoch seconds), or dead if None."""
        ...

    def reserve_key(self, key: str, message_id: str) -> str:
        """Take idempotency ``key`` for ``message_id`` unless another message holds it.

        Returns the id of the message that holds the key (``message_id`` when
        it was free, expired or already ours).
        """
        ...

    def release_key(self, key: str, message_id: str) -> None:
        """Free ``key`` after a send that certainly did not deliver ``message_id``."""
        ...

    def next_due(self) -> float | None:
        """Epoch seconds when the next queued row falls due (``None``: nothing queued)."""
        ...

    def close(self) -> None:
        """Release the database connections."""
        ...
