"""The delivery log's contract: :class:`LogSink` and :class:`DeliveryEvent`.

A sink receives plain events, append-only facts about a message:

=================  ==========================================================
``queued``         the message is about to be sent (before the first attempt)
``attempt_failed`` one attempt failed (its transport and kind of error)
``sent``           a transport accepted it (provider message id, recipients)
``failed``         it was not delivered, finally
=================  ==========================================================

After ``sent``, the provider may report what happened next (through
:mod:`notifykit.webhooks`); these events carry the ``provider_message_id``
recorded at send time, the affected recipients, and the provider's raw reason
in ``error``:

========================  ====================================================
``delivered``             the receiving server (or handset) accepted it
``bounced``               it bounced; ``error_kind`` is ``"hard"``, ``"soft"``
                          or ``"undetermined"``
``complained``            the recipient marked it as spam
``deferred``              delivery is delayed; the provider keeps trying
``rejected_by_provider``  the provider accepted the request, then refused to
                          deliver it (a virus, a blocked or DND number)
``opened``, ``clicked``   the recipient opened it, or followed a link
========================  ====================================================

Sinks may project them (a row whose status moves ``queued`` → ``sent``). A sink
that raises never stops a message from being sent: the
:class:`~notifykit.Notifier` logs the failure and counts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

__all__ = ["DELIVERY_STATUSES", "BounceKind", "Channel", "DeliveryEvent", "LogSink", "Status"]

Status = Literal[
    "queued",
    "attempt_failed",
    "sent",
    "failed",
    "delivered",
    "bounced",
    "complained",
    "deferred",
    "rejected_by_provider",
    "opened",
    "clicked",
]
BounceKind = Literal["hard", "soft", "undetermined"]

#: The statuses a provider reports after ``sent`` (see the module docstring).
DELIVERY_STATUSES: frozenset[str] = frozenset(
    {"delivered", "bounced", "complained", "deferred", "rejected_by_provider", "opened", "clicked"}
)
Channel = Literal["email", "sms"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class DeliveryEvent:
    """One fact about one message.

    Attributes:
        message_id: the notifykit id of the message.
        status: ``"queued"``, ``"attempt_failed"``, ``"sent"``, ``"failed"``,
            or one of the statuses a provider reports later (``"delivered"``,
            ``"bounced"``, ``"complained"``, ``"deferred"``,
            ``"rejected_by_provider"``, ``"opened"``, ``"clicked"``).
        channel: ``"email"`` or ``"sms"``.
        transport: the transport of the attempt (``None`` for ``queued``, and for
            a ``failed`` that no single transport owns).
        recipients: every recipient of the message (possibly redacted).
        subject: the e-mail subject (``None`` for SMS).
        template: the template name, when the message was rendered from one.
        attempt: the attempt number, 1-based (0 for ``queued``).
        error: the error message (secrets masked), for failures; the
            provider's raw reason (a DSN diagnostic, a complaint type, a DLR
            description) for the statuses a provider reports.
        error_kind: ``"transient"``, ``"provider"``, ``"rejected"``, ``"failed"``
            or ``"invalid"``, for failures; ``"hard"``, ``"soft"`` or
            ``"undetermined"`` for ``bounced``.
        provider_message_id: the provider's id, for ``sent`` and for every
            status a provider reports (the join key between the two).
        duration: seconds the attempt (or the whole send, for ``sent`` and
            ``failed``) took.
        at: when it happened (UTC).
        tags, metadata: copied from the message.
        maybe_delivered: the message may have been delivered despite the error.
        rejected: recipients the provider refused, with its reason (``sent``
            with a partial refusal, or ``failed`` by rejection).
    """

    message_id: str
    status: Status
    channel: Channel
    transport: str | None = None
    recipients: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    subject: str | None = None
    template: str | None = None
    attempt: int = 0
    error: str | None = None
    error_kind: str | None = None
    provider_message_id: str | None = None
    duration: float | None = None
    at: datetime = attrs.field(factory=_utcnow)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    metadata: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    maybe_delivered: bool = False
    rejected: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (``at`` as ISO 8601)."""
        return {
            "message_id": self.message_id,
            "status": self.status,
            "channel": self.channel,
            "transport": self.transport,
            "recipients": list(self.recipients),
            "subject": self.subject,
            "template": self.template,
            "attempt": self.attempt,
            "error": self.error,
            "error_kind": self.error_kind,
            "provider_message_id": self.provider_message_id,
            "duration": self.duration,
            "at": self.at.isoformat(),
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "maybe_delivered": self.maybe_delivered,
            "rejected": dict(self.rejected),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeliveryEvent:
        """Rebuild an event from :meth:`to_dict` output."""
        fields = dict(data)
        fields["at"] = datetime.fromisoformat(fields["at"])
        return cls(**fields)


@runtime_checkable
class LogSink(Protocol):
    """Where delivery events go. One method; ``close()`` is optional.

    A sink with a ``close()`` method has it called when the Notifier closes, so
    buffered events are flushed. A sink that writes in the background, after
    ``record()`` returned, should count the events it could not write in an
    integer ``dropped`` attribute: the Notifier adds it to its
    ``sink_failures``, next to the ``record()`` calls that raised.
    """

    def record(self, event: DeliveryEvent) -> None:
        """Store or forward one event. Must be safe to call from many threads."""
        ...
