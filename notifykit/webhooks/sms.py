"""SMS delivery reports: :class:`MSG91Receiver` and :class:`Fast2SMSReceiver`.

Neither provider signs its webhooks, so both receivers require a shared
secret: a token in the URL (``?token=...``, or a path segment the framework
glue passes on) or a basic-auth password, compared in constant time. Anyone
who learns the URL can forge a report: treat SMS delivery reports as
telemetry, never as proof.

Each report becomes one :class:`~notifykit.sinks.base.DeliveryEvent` whose
``provider_message_id`` is the provider's request id (the one the MSG91 and
Fast2SMS transports record at send time). Replays are dropped on
``(request id, number, status)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from notifykit.errors import ConfigurationError
from notifykit.sinks.base import DeliveryEvent
from notifykit.webhooks._base import (
    Receiver,
    WebhookError,
    check_secret,
    decode_form,
    decode_json,
    utc,
)

__all__ = ["Fast2SMSReceiver", "MSG91Receiver", "sms_status"]

# status -> (event status, bounce kind); None: not final, no event
_WORDS: dict[str, tuple[str, str | None] | None] = {
    "delivered": ("delivered", None),
    "delivrd": ("delivered", None),
    "success": ("delivered", None),
    "failed": ("bounced", "soft"),
    "undelivered": ("bounced", "soft"),
    "undeliv": ("bounced", "soft"),
    "expired": ("bounced", "soft"),
    "auto failed": ("bounced", "soft"),
    "blocked": ("bounced", "hard"),
    "blocked number": ("bounced", "hard"),
    "opt-out": ("bounced", "hard"),
    "rejected": ("rejected_by_provider", None),
    "ndnc": ("rejected_by_provider", None),
    "dnd": ("rejected_by_provider", None),
    "sent": None,
    "submitted": None,
    "pending": None,
}
# MSG91's numeric webhook codes
_CODES: dict[str, tuple[str, str | None]] = {
    "1": ("delivered", None),
    "2": ("bounced", "soft"),
    "9": ("rejected_by_provider", None),
    "16": ("rejected_by_provider", None),
    "17": ("bounced", "hard"),
    "25": ("rejected_by_provider", None),
}


def sms_status(raw: object) -> tuple[str, str | None] | None:
    """A provider's status (code or word) as ``(event status, bounce kind)``; None if not final."""
    text = str(raw or "").strip().lower()
    if text in _CODES:
        return _CODES[text]
    return _WORDS.get(text)


def _number(raw: object, national_prefix: str | None = None) -> str:
    digits = "".join(ch for ch in str(raw or "") if ch.isdigit())
    if national_prefix and len(digits) == 10:
        digits = national_prefix + digits
    return f"+{digits}" if digits else ""


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


class _SMSReceiver(Receiver):
    """Shared: the secret, the body decoding, one event per report."""

    national_prefix: str | None = None

    def __init__(self, *, secret: str, **options: Any) -> None:
        super().__init__(**options)
        if not secret or len(secret) < 16:
            raise ConfigurationError(
                f"{type(self).__name__} needs a shared secret of at least 16 characters "
                "(e.g. secrets.token_urlsafe(32)), put in the webhook URL"
            )
        self._secret = secret.encode()

    def __repr__(self) -> str:  # never the secret
        return f"{type(self).__name__}(secret='***', sinks={len(self.sinks)})"

    def _body(self, body: bytes, headers: Mapping[str, str]) -> Any:
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            return decode_form(body, self.provider)
        return decode_json(body, self.provider)

    def _event(
        self,
        request_id: object,
        number: object,
        raw_status: object,
        reason: object,
        at: object,
        meta: Mapping[str, Any],
    ) -> tuple[str, DeliveryEvent] | None:
        if not isinstance(request_id, str | int) or not str(request_id).strip():
            raise WebhookError(f"{self.provider}: a report without a request id")
        mapped = sms_status(raw_status)
        if mapped is None:
            return None  # submitted/pending/unknown: not final
        status, bounce = mapped
        rid = str(request_id).strip()
        to = _number(number, self.national_prefix)
        event = DeliveryEvent(
            message_id=f"{self.provider}:{rid}",
            status=status,  # type: ignore[arg-type]
            channel="sms",
            recipients=(to,) if to else (),
            provider_message_id=rid,
            error=_text(reason) or _text(raw_status),
            error_kind=bounce,
            at=utc(at) or datetime.now(timezone.utc),
            metadata={"provider": self.provider, "status": str(raw_status), **meta},
        )
        return f"{self.provider}:{rid}:{to}:{status}", event


class MSG91Receiver(_SMSReceiver):
    """MSG91 delivery reports: old webhook v2 (form field ``data``) and v3, and Webhook (New).

    For Webhook (New), use this JSON body template::

        {"requestId": "{{requestId}}", "telNum": "{{telNum}}", "status": "{{status}}",
         "deliveryTime": "{{deliveryTime}}", "failureReason": "{{failureReason}}",
         "CRQID": "{{CRQID}}"}

    Webhook v4 (CleverTap shape) carries no request id or number and is
    refused with a 400.

    Args:
        secret: the shared secret in the webhook URL (at least 16 characters).
        **options: :class:`~notifykit.webhooks.Receiver` options.
    """

    provider = "msg91"

    def parse(
        self, body: bytes, headers: Mapping[str, str], token: str | None
    ) -> tuple[list[str], list[tuple[str, DeliveryEvent]]]:
        """Check the secret; the reports in a v2, v3 or Webhook (New) body."""
        check_secret(self._secret, headers, token, "notifykit-msg91")
        data = self._body(body, headers)
        if isinstance(data, dict) and "data" in data and "requestId" not in data:
            raw = data["data"]
            data = (
                decode_json(raw.encode("utf-8", "surrogateescape"), "msg91")
                if isinstance(raw, str)
                else raw
            )
        items = data if isinstance(data, list) else [data]
        out: list[tuple[str, DeliveryEvent]] = []
        for item in items:
            if not isinstance(item, dict):
                raise WebhookError("msg91: a report is not a JSON object")
            if "event" in item and "requestId" not in item:
                raise WebhookError("msg91: webhook v4 (CleverTap) cannot be matched; use v2 or New")
            reports = item.get("report")
            if reports is None:  # v3 or Webhook (New): one flat report
                reports = [item]
            if not isinstance(reports, list):
                raise WebhookError("msg91: 'report' is not a list")
            for r in reports:
                if not isinstance(r, dict):
                    raise WebhookError("msg91: a report is not a JSON object")
                pair = self._event(
                    item.get("requestId", r.get("requestId")),
                    r.get("number", r.get("telNum")),
                    r.get("status"),
                    r.get("failedReason") or r.get("failureReason") or r.get("desc"),
                    r.get("date") or r.get("deliveryTime"),
                    {k: r[k] for k in ("CRQID", "desc") if isinstance(r.get(k), str)},
                )
                if pair is not None:
                    out.append(pair)
        if not out and not items:
            raise WebhookError("msg91: no reports in the body")
        return [], out


class Fast2SMSReceiver(_SMSReceiver):
    """Fast2SMS delivery reports ("Standard" webhook, JSON or form; CleverTap shape too).

    Configure the Standard SMS webhook with a body such as::

        {"request_id": "{request_id}", "mobile": "{mobile}", "status": "{status}",
         "status_description": "{status_description}", "delivery_time": "{delivery_time}"}

    (the variable names are the ones public integrations use: check them on
    your dashboard). Ten-digit numbers are taken as Indian (``+91``).

    Args:
        secret: the shared secret in the webhook URL (at least 16 characters).
        **options: :class:`~notifykit.webhooks.Receiver` options.
    """

    provider = "fast2sms"
    national_prefix = "91"

    def parse(
        self, body: bytes, headers: Mapping[str, str], token: str | None
    ) -> tuple[list[str], list[tuple[str, DeliveryEvent]]]:
        """Check the secret; the reports in a Standard or CleverTap body."""
        check_secret(self._secret, headers, token, "notifykit-fast2sms")
        data = self._body(body, headers)
        if not isinstance(data, dict):
            raise WebhookError("fast2sms: the body is not a JSON object or a form")
        out: list[tuple[str, DeliveryEvent]] = []
        if isinstance(data.get("statuses"), list):  # CleverTap shape
            for s in data["statuses"]:
                if not isinstance(s, dict):
                    raise WebhookError("fast2sms: a status is not a JSON object")
                ts = s.get("timestamp")
                at = (
                    datetime.fromtimestamp(int(ts), timezone.utc).isoformat()
                    if isinstance(ts, str | int) and str(ts).isdigit()
                    else None
                )
                pair = self._event(
                    s.get("msgId"), None, s.get("status"), s.get("description"), at, {}
                )
                if pair is not None:
                    out.append(pair)
            return [], out
        pair = self._event(
            data.get("request_id"),
            data.get("mobile"),
            data.get("status"),
            data.get("failure_reason") or data.get("status_description"),
            data.get("delivery_time") or data.get("delivery_timestamp"),
            {k: data[k] for k in ("udf1", "udf2", "udf3", "post_attempt") if k in data},
        )
        if pair is not None:
            out.append(pair)
        return [], out
