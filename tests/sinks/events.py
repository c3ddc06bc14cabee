"""Delivery events as the Notifier emits them for one message, for the sink tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from notifykit.sinks.base import DeliveryEvent

Outcome = Literal["sent", "failover", "failed", "rejected", "queued"]

PRIMARY = "smtp:mail.example.com:587"
BACKUP = "smtp:backup.example.com:587"


def delivery(
    message_id: str,
    outcome: Outcome = "sent",
    *,
    template: str | None = "welcome",
    channel: Literal["email", "sms"] = "email",
    at: datetime | None = None,
    **fields: Any,
) -> list[DeliveryEvent]:
    """The events of one message, in order.

    ``sent``: queued, sent by the primary. ``failover``: queued, the primary
    fails (transient), the backup sends. ``failed``: queued, the primary fails,
    failed. ``rejected``: queued, the primary refuses the recipient, failed.
    ``queued``: only queued (still in flight).
    """
    at = at or datetime.now(timezone.utc)
    recipients = ("asha@example.com",) if channel == "email" else ("+919876543210",)
    common: dict[str, Any] = {
        "message_id": message_id,
        "channel": channel,
        "recipients": recipients,
        "subject": "Welcome" if channel == "email" else None,
        "template": template,
        "at": at,
        "tags": ("onboarding",),
        "metadata": {"user": 42},
        **fields,
    }
    events = [DeliveryEvent(status="queued", **common)]
    if outcome == "sent":
        events.append(
            DeliveryEvent(
                status="sent",
                transport=PRIMARY,
                attempt=1,
                provider_message_id=f"<{message_id}@mail.example.com>",
                duration=0.05,
                **common,
            )
        )
    elif outcome == "failover":
        events.append(
            DeliveryEvent(
                status="attempt_failed",
                transport=PRIMARY,
                attempt=1,
                error="connection refused",
                error_kind="transient",
                duration=0.01,
                **common,
            )
        )
        events.append(
            DeliveryEvent(
                status="sent",
                transport=BACKUP,
                attempt=2,
                provider_message_id=f"<{message_id}@backup.example.com>",
                duration=0.2,
                **common,
            )
        )
    elif outcome == "failed":
        events.append(
            DeliveryEvent(
                status="attempt_failed",
                transport=PRIMARY,
                attempt=1,
                error="authentication failed",
                error_kind="provider",
                duration=0.01,
                **common,
            )
        )
        events.append(
            DeliveryEvent(
                status="failed",
                attempt=1,
                error="all transports failed (ProviderError: authentication failed)",
                error_kind="failed",
                duration=0.02,
                **common,
            )
        )
    elif outcome == "rejected":
        refused = {recipients[0]: "550 no such user"}
        events.append(
            DeliveryEvent(
                status="attempt_failed",
                transport=PRIMARY,
                attempt=1,
                error="550 no such user",
                error_kind="rejected",
                duration=0.01,
                rejected=refused,
                **common,
            )
        )
        events.append(
            DeliveryEvent(
                status="failed",
                transport=PRIMARY,
                attempt=1,
                error="550 no such user",
                error_kind="rejected",
                duration=0.02,
                rejected=refused,
                **common,
            )
        )
    return events
