"""Amazon SES events through an SNS HTTP(S) subscription: :class:`SESReceiver`.

Both SES formats are understood: identity notifications (``notificationType``:
Bounce, Complaint, Delivery) and configuration-set event publishing
(``eventType``: Bounce, Complaint, Delivery, Reject, DeliveryDelay, Open,
Click, Rendering Failure). Each affected recipient becomes one
:class:`~notifykit.sinks.base.DeliveryEvent` whose ``provider_message_id`` is
SES's ``mail.messageId`` (the ``MessageId`` the SES transport recorded at send
time).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from notifykit.errors import ConfigurationError
from notifykit.sinks.base import DeliveryEvent
from notifykit.webhooks._base import Receiver, WebhookError, check_secret, decode_json, utc
from notifykit.webhooks.sns import (
    CertificateFetcher,
    SNSVerifier,
    check_subscribe_url,
    topic_region,
)

__all__ = ["SESReceiver", "confirm_subscription", "ses_events"]

logger = logging.getLogger("notifykit.webhooks")

_IGNORED_TEXT = "Successfully validated SNS topic for Amazon SES event publishing."


def confirm_subscription(url: str, timeout: float = 5.0) -> None:
    """GET an SNS ``SubscribeURL`` (already checked to be SNS's) within ``timeout``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # https, SNS host: checked
        response.read(64 * 1024)


def _strings(items: object, key: str | None = None) -> list[str]:
    out: list[str] = []
    if not isinstance(items, list):
        return out
    for item in items:
        value = item.get(key) if key and isinstance(item, dict) else item
        if isinstance(value, str) and value:
            out.append(value)
    return out


def _bounce_kind(bounce_type: str, recipient: Mapping[str, Any]) -> str:
    if bounce_type == "Permanent":
        action = str(recipient.get("action") or "").lower()
        status = str(recipient.get("status") or "")
        # AWS's own example: a Permanent bounce listing a "delayed"/4.x.x recipient
        if action == "delayed" or status.startswith("4"):
            return "soft"
        return "hard"
    if bounce_type == "Transient":
        return "soft"
    return "undetermined"


def ses_events(
    payload: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None
) -> list[tuple[str, DeliveryEvent]]:
    """The events of one SES notification (the JSON inside the SNS ``Message``).

    Returns:
        ``(dedupe key, event)`` pairs; unknown or informational types give none.

    Raises:
        WebhookError: a known type without ``mail.messageId``.
    """
    kind = payload.get("eventType") or payload.get("notificationType")
    if not isinstance(kind, str):
        raise WebhookError("ses: neither eventType nor notificationType in the notification")
    mail = payload.get("mail")
    if kind in ("Send", "Subscription", "AmazonSnsSubscriptionSucceeded", "Received"):
        return []
    key = {"Rendering Failure": "failure", "DeliveryDelay": "deliveryDelay"}.get(
        kind, kind[:1].lower() + kind[1:]
    )
    detail = payload.get(key)
    if not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str):
        raise WebhookError(f"ses: {kind} notification without mail.messageId")
    if not isinstance(detail, dict):
        detail = {}
    provider_id: str = mail["messageId"]
    destination = _strings(mail.get("destination"))
    base_meta: dict[str, Any] = {"provider": "ses", "ses_event": kind, **(extra or {})}
    at = utc(detail.get("timestamp")) or utc(mail.get("timestamp")) or datetime.now(timezone.utc)
    out: list[tuple[str, DeliveryEvent]] = []

    def add(
        dedupe: str,
        status: str,
        to: str,
        reason: str | None,
        bounce: str | None = None,
        **meta: Any,
    ) -> None:
        event = DeliveryEvent(
            message_id=f"ses:{provider_id}",
            status=status,  # type: ignore[arg-type]
            channel="email",
            recipients=(to,),
            provider_message_id=provider_id,
            error=reason,
            error_kind=bounce,
            at=at,
            metadata={**base_meta, **{k: v for k, v in meta.items() if v is not None}},
        )
        out.append((f"ses:{dedupe}:{to.lower()}", event))

    if kind == "Bounce":
        bounce_type = str(detail.get("bounceType") or "Undetermined")
        sub_type = str(detail.get("bounceSubType") or "Undetermined")
        feedback = str(detail.get("feedbackId") or provider_id)
        for r in detail.get("bouncedRecipients") or []:
            if not isinstance(r, dict) or not isinstance(r.get("emailAddress"), str):
                continue
            reason = r.get("diagnosticCode") or f"{bounce_type}/{sub_type}"
            add(
                f"bounce:{feedback}",
                "bounced",
                r["emailAddress"],
                str(reason),
                _bounce_kind(bounce_type, r),
                bounce_type=bounce_type,
                bounce_subtype=sub_type,
                dsn_status=r.get("status"),
                feedback_id=detail.get("feedbackId"),
            )
    elif kind == "Complaint":
        feedback_type = detail.get("complaintFeedbackType")
        if feedback_type == "not-spam":
            return []
        feedback = str(detail.get("feedbackId") or provider_id)
        for to in _strings(detail.get("complainedRecipients"), "emailAddress"):
            add(
                f"complaint:{feedback}",
                "complained",
                to,
                str(feedback_type or "complaint"),
                feedback_id=detail.get("feedbackId"),
                complaint_subtype=detail.get("complaintSubType"),
            )
    elif kind == "Delivery":
        for to in _strings(detail.get("recipients")) or destination:
            add(f"delivery:{provider_id}", "delivered", to, detail.get("smtpResponse"))
    elif kind == "DeliveryDelay":
        for r in detail.get("delayedRecipients") or []:
            if not isinstance(r, dict) or not isinstance(r.get("emailAddress"), str):
                continue
            reason = r.get("diagnosticCode") or detail.get("delayType") or "delayed"
            add(
                f"delay:{provider_id}:{detail.get('timestamp')}",
                "deferred",
                r["emailAddress"],
                str(reason),
                delay_type=detail.get("delayType"),
                expires=detail.get("expirationTime"),
            )
    elif kind in ("Reject", "Rendering Failure"):
        reason = detail.get("reason") or detail.get("errorMessage") or kind
        for to in destination:
            add(f"reject:{provider_id}", "rejected_by_provider", to, str(reason))
    elif kind in ("Open", "Click"):
        status = "opened" if kind == "Open" else "clicked"
        for to in destination:
            add(
                f"{status}:{provider_id}:{detail.get('timestamp')}:{detail.get('link')}",
                status,
                to,
                detail.get("link") if kind == "Click" else None,
                user_agent=detail.get("userAgent"),
            )
    else:
        logger.info("ses: ignoring a %r notification", kind[:40])
    return out


class SESReceiver(Receiver):
    """Receives SES events from an SNS HTTP(S) subscription, signature checked.

    Args:
        topics: the SNS topic ARNs this endpoint accepts (required): anyone can
            point an SNS topic at a URL, and SNS signs their messages too.
        fetch_certificate: ``url -> PEM bytes`` for the signing certificate
            (default: HTTPS GET, 5 s timeout); ignored if ``verifier`` is given.
        verifier: an :class:`~notifykit.webhooks.sns.SNSVerifier` to share.
        confirm: ``url -> None``, called with the ``SubscribeURL`` of a
            SubscriptionConfirmation from an allowed topic, after its
            signature and URL are checked (default: an HTTPS GET with a 5 s
            timeout). ``None`` confirms nothing: the topic and token are
            logged for the operator.
        secret: also require this basic-auth password (put
            ``https://user:secret@host/path`` in the subscription).
        max_age: refuse envelopes whose ``Timestamp`` is older than this
            (SNS's retries stop after an hour); ``None`` (the default) to
            rely on the seen-id store only.
        **options: :class:`~notifykit.webhooks.Receiver` options (``sinks``,
            ``suppression``, ``seen``...).
    """

    provider = "ses"

    def __init__(
        self,
        *,
        topics: Iterable[str],
        fetch_certificate: CertificateFetcher | None = None,
        verifier: SNSVerifier | None = None,
        confirm: Callable[[str], None] | None = confirm_subscription,
        secret: str | None = None,
        max_age: timedelta | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.topics = frozenset(topics)
        if not self.topics:
            raise ConfigurationError("SESReceiver needs the SNS topic ARNs it accepts (topics=...)")
        for arn in self.topics:
            try:
                topic_region(arn)
            except WebhookError:
                raise ConfigurationError(f"{arn!r} is not an SNS topic ARN") from None
        if verifier is None:
            verifier = SNSVerifier(fetch_certificate) if fetch_certificate else SNSVerifier()
        self.verifier = verifier
        self.confirm = confirm
        self._secret = secret.encode() if secret else None
        self.max_age = max_age

    def parse(
        self, body: bytes, headers: Mapping[str, str], token: str | None
    ) -> tuple[list[str], list[tuple[str, DeliveryEvent]]]:
        """Check the request and the SNS signature; the SES events it carries."""
        check_secret(self._secret, headers, None, "notifykit-ses")
        if headers.get("x-amz-sns-rawdelivery", "").lower() == "true":
            raise WebhookError("ses: raw message delivery is on; turn it off so SNS signs messages")
        envelope = decode_json(body, "ses")
        if not isinstance(envelope, dict):
            raise WebhookError("ses: the body is not an SNS envelope (a JSON object)")
        kind = envelope.get("Type")
        if "x-amz-sns-message-type" in headers and headers["x-amz-sns-message-type"] != kind:
            raise WebhookError("ses: x-amz-sns-message-type does not match the body's Type")
        if "x-amz-sns-message-id" in headers and headers["x-amz-sns-message-id"] != envelope.get(
            "MessageId"
        ):
            raise WebhookError("ses: x-amz-sns-message-id does not match the body's MessageId")
        topic = envelope.get("TopicArn")
        if not isinstance(topic, str):
            raise WebhookError("ses: envelope without TopicArn")
        if topic not in self.topics:
            raise WebhookError(f"ses: topic {topic[:300]!r} is not one this endpoint accepts", 403)
        self.verifier.verify(envelope)
        if self.max_age is not None:
            sent = utc(envelope.get("Timestamp"))
            if sent is None or datetime.now(timezone.utc) - sent > self.max_age:
                raise WebhookError("ses: the envelope is too old (or has no Timestamp)", 403)
        if kind == "SubscriptionConfirmation":
            self._confirm(envelope)
            return [], []
        if kind == "UnsubscribeConfirmation":
            logger.warning("ses: the subscription to %s was deleted (not restored)", topic)
            return [], []
        message_id = envelope["MessageId"]
        text = envelope["Message"]
        if text.strip() == _IGNORED_TEXT:
            return [], []
        try:
            payload = json.loads(text)
        except ValueError:
            raise WebhookError("ses: the SNS Message is not SES JSON") from None
        if not isinstance(payload, dict):
            raise WebhookError("ses: the SNS Message is not a JSON object")
        events = ses_events(payload, extra={"sns_message_id": message_id})
        return [f"sns:{message_id}"], events

    def _confirm(self, envelope: Mapping[str, str]) -> None:
        url, topic = envelope["SubscribeURL"], envelope["TopicArn"]
        check_subscribe_url(url, topic)
        if self.confirm is None:
            logger.warning(
                "ses: SNS subscription to %s awaits confirmation (Token %s)",
                topic,
                envelope["Token"],
            )
            return
        try:
            self.confirm(url)
        except Exception as exc:
            raise WebhookError(
                f"ses: confirming the subscription failed ({type(exc).__name__})", status=502
            ) from None
        logger.info("ses: confirmed the SNS subscription to %s", topic)
