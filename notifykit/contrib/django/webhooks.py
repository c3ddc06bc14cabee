"""Delivery-report webhooks and the suppression list, for Django.

In ``urls.py``::

    from django.urls import include, path
    from notifykit.contrib.django.webhooks import webhook_urls
    from notifykit.webhooks import SESReceiver

    urlpatterns = [
        path("hooks/", include(webhook_urls({"ses": SESReceiver(topics=[...], sinks=[...])}))),
    ]

gives ``POST /hooks/ses/`` (and ``/hooks/<name>/<token>/`` for receivers that
take a secret token in the path). The views are CSRF-exempt (the providers
authenticate with a signature or a secret) and read the raw body.

:class:`DjangoSuppressionList` keeps the suppression list in the
``Suppression`` and ``SoftBounce`` models (migration ``0002_suppression``);
pass it as ``suppression=`` to the receivers and the Notifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from notifykit.errors import ConfigurationError
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.sqlite import STATUS_PROGRESS
from notifykit.suppression import Suppression, normalize_recipient
from notifykit.webhooks import Receiver
from notifykit.webhooks.apps import respond

__all__ = ["DjangoSuppressionList", "apply_report", "webhook_urls", "webhook_view"]


def webhook_view(receiver: Receiver) -> Callable[..., HttpResponse]:
    """A CSRF-exempt Django view that feeds ``receiver`` (POST only)."""

    def view(request: HttpRequest, token: str | None = None) -> HttpResponse:
        if request.method != "POST":
            response = HttpResponse("POST only\n", status=405, content_type="text/plain")
            response["Allow"] = "POST"
            return response
        token = token or request.GET.get("token")
        status, headers, body = respond(receiver, request.body, request.headers.items(), token)
        response = HttpResponse(body, status=status)
        for name, value in headers:
            response[name] = value
        return response

    view.csrf_exempt = True  # type: ignore[attr-defined]  # what @csrf_exempt sets
    return view


def webhook_urls(receivers: Mapping[str, Receiver]) -> list[URLPattern]:
    """URL patterns ``<name>/`` and ``<name>/<token>/`` for each receiver, for ``include()``."""
    patterns: list[URLPattern] = []
    for name, receiver in receivers.items():
        view = webhook_view(receiver)
        patterns.append(path(f"{name}/", view, name=f"notifykit-webhook-{name}"))
        patterns.append(path(f"{name}/<str:token>/", view, name=f"notifykit-webhook-{name}-token"))
    return patterns


class DjangoSuppressionList:
    """A :class:`~notifykit.suppression.SuppressionStore` in the Django models."""

    def check(self, recipients: Iterable[str]) -> dict[str, str]:
        """The suppressed ones among ``recipients``, each (as given) with its reason."""
        from notifykit.contrib.django.models import Suppression as Row

        wanted = {normalize_recipient(r): r for r in recipients}
        wanted.pop("", None)
        rows = Row.objects.filter(recipient__in=list(wanted)).values_list("recipient", "reason")
        return {wanted[key]: reason for key, reason in rows}

    def add(self, recipient: str, reason: str, *, source: str = "manual") -> bool:
        """Suppress ``recipient``; False if it already was."""
        from notifykit.contrib.django.models import Suppression as Row

        key = normalize_recipient(recipient)
        local, at, domain = key.rpartition("@")
        if not (local and domain) if at else not 8 <= len(key) <= 15:
            raise ConfigurationError(f"{recipient[:100]!r} is not an e-mail address or a number")
        try:
            with transaction.atomic():
                _, created = Row.objects.get_or_create(
                    recipient=key,
                    defaults={
                        "reason": reason,
                        "source": source,
                        "created_at": datetime.now(timezone.utc),
                    },
                )
        except IntegrityError:  # created concurrently
            return False
        return bool(created)

    def remove(self, recipient: str) -> bool:
        """Lift the suppression (and forget its soft bounces)."""
        from notifykit.contrib.django.models import SoftBounce
        from notifykit.contrib.django.models import Suppression as Row

        key = normalize_recipient(recipient)
        SoftBounce.objects.filter(recipient=key).delete()
        deleted, _ = Row.objects.filter(recipient=key).delete()
        return bool(deleted)

    def entries(self) -> list[Suppression]:
        """Every suppressed recipient, oldest first."""
        from notifykit.contrib.django.models import Suppression as Row

        return [
            Suppression(r.recipient, r.reason, r.source, r.created_at)
            for r in Row.objects.order_by("created_at", "recipient")
        ]

    def note_soft_bounce(self, recipient: str, at: datetime, window: timedelta) -> int:
        """Record one soft bounce; how many ``recipient`` had within ``window`` up to ``at``."""
        from notifykit.contrib.django.models import SoftBounce

        key = normalize_recipient(recipient)
        with transaction.atomic():
            SoftBounce.objects.filter(recipient=key, at__lt=at - window).delete()
            SoftBounce.objects.create(recipient=key, at=at)
            count: int = SoftBounce.objects.filter(
                recipient=key, at__gte=at - window, at__lte=at
            ).count()
        return count

    def __repr__(self) -> str:
        return "DjangoSuppressionList()"


def apply_report(event: DeliveryEvent, db: str, at: datetime) -> None:
    """Project a provider's report onto the ``Delivery`` sent with its provider id.

    Called by :class:`~notifykit.contrib.django.DjangoModelSink`. ``status``
    moves forward with the reports, in the order of the SQLite log
    (:data:`notifykit.sinks.sqlite.STATUS_PROGRESS`): ``sent`` → ``deferred``
    → ``delivered`` → ``bounced`` / ``rejected_by_provider`` →
    ``complained``; a late or replayed report never moves it back, a
    ``failed`` row is never moved, and an SMS ``delivered`` is final.
    ``report``, ``report_reason``, ``report_kind`` and ``report_at`` keep
    the latest report that moved it. ``opened``/``clicked`` and reports for
    an unknown provider id change nothing.
    """
    from notifykit.contrib.django.models import Delivery

    rank = STATUS_PROGRESS.get(event.status)
    if rank is None or not event.provider_message_id:
        return
    rows = Delivery.objects.using(db).filter(provider_message_id=event.provider_message_id)
    for delivery in rows:
        current = STATUS_PROGRESS.get(delivery.status, len(STATUS_PROGRESS) + 1)
        if rank <= current or (delivery.channel == "sms" and delivery.status == "delivered"):
            continue
        delivery.status = event.status
        delivery.status_changed_at = max(at, delivery.status_changed_at)
        delivery.report = event.status
        delivery.report_reason = event.error or ""
        delivery.report_kind = event.error_kind or ""
        delivery.report_at = at
        delivery.save(
            using=db,
            update_fields=[
                "status",
                "status_changed_at",
                "report",
                "report_reason",
                "report_kind",
                "report_at",
            ],
        )
