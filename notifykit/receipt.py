"""What a transport hands back: a :class:`Receipt`, and one :class:`Attempt` per try."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

import attrs

__all__ = ["Attempt", "Outcome", "Receipt"]

#: What became of one attempt. ``"skipped"`` is a resting transport passed over
#: by a composer at no cost.
Outcome = Literal["sent", "transient", "provider", "rejected", "skipped"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _attempts(values: Iterable[Attempt]) -> tuple[Attempt, ...]:
    return tuple(values)


@attrs.frozen
class Attempt:
    """One try of one transport at one message.

    Attributes:
        transport: the transport's name (``"smtp:mail.example.com:587"``).
        outcome: ``"sent"``, ``"transient"``, ``"provider"``, ``"rejected"`` or
            ``"skipped"``.
        error: the error's message (secrets already masked), or ``None``.
        started_at: when the attempt started (UTC).
        duration: how long it took, in seconds.
        provider_code: the provider's code for the error, when there is one.
        maybe_delivered: the message may have been delivered although the
            attempt failed (the connection died after hand-over).
    """

    transport: str
    outcome: Outcome
    error: str | None = None
    started_at: datetime = attrs.field(factory=_utcnow)
    duration: float = 0.0
    provider_code: str | None = None
    maybe_delivered: bool = False

    @property
    def ok(self) -> bool:
        """True when this attempt delivered the message."""
        return self.outcome == "sent"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of this attempt."""
        return {
            "transport": self.transport,
            "outcome": self.outcome,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "duration": self.duration,
            "provider_code": self.provider_code,
            "maybe_delivered": self.maybe_delivered,
        }


def _amended(receipt: Receipt, attempts: tuple[Attempt, ...], simulated: bool) -> Receipt:
    """``attrs.evolve(receipt, attempts=attempts, simulated=simulated)``, cheaper.

    Called for every message a transport sends (:meth:`BaseTransport._deliver`);
    ``attrs.evolve`` introspects the class's fields on each call.
    """
    if type(receipt) is not Receipt:  # a subclass may have fields of its own
        return attrs.evolve(receipt, attempts=attempts, simulated=simulated)
    return Receipt(
        receipt.message_id,
        receipt.transport,
        receipt.provider_message_id,
        receipt.accepted,
        receipt.rejected,
        attempts,
        simulated,
    )


@attrs.frozen
class Receipt:
    """Proof that a transport accepted a message.

    Attributes:
        message_id: the notifykit id of the message (``Email.id`` / ``SMS.id``).
        transport: the name of the transport that delivered it.
        provider_message_id: the provider's id (SES ``MessageId``, MSG91 request
            id, the SMTP ``Message-ID``), when there is one.
        accepted: the recipients the provider accepted.
        rejected: recipients the provider refused, mapped to its reason (a
            partial SMTP refusal: the message went to the others).
        attempts: every attempt made for this message, in order, the last one
            being the successful one.
        simulated: the transport that accepted the message does not deliver to
            a person (console, file, memory): nothing was sent.
    """

    message_id: str
    transport: str
    provider_message_id: str | None = None
    accepted: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    rejected: Mapping[str, str] = attrs.field(factory=dict)
    attempts: tuple[Attempt, ...] = attrs.field(default=(), converter=_attempts)
    simulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of this receipt."""
        return {
            "message_id": self.message_id,
            "transport": self.transport,
            "provider_message_id": self.provider_message_id,
            "accepted": list(self.accepted),
            "rejected": dict(self.rejected),
            "attempts": [a.to_dict() for a in self.attempts],
            "simulated": self.simulated,
        }
