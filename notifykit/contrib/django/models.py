"""The delivery log as Django models: one :class:`Delivery` per message, one
:class:`DeliveryAttempt` per try.

They are a projection of the :class:`~notifykit.sinks.base.DeliveryEvent`
stream written by :class:`~notifykit.contrib.django.sink.DjangoModelSink`:
a ``queued`` event creates the row, ``attempt_failed`` and ``sent`` add
attempts, ``sent`` and ``failed`` set the outcome. A message retried later
(by a Celery task, with the same message id) goes back to ``queued`` and
keeps its earlier attempts; once ``sent``, only the provider's reports move
it further: ``deferred`` → ``delivered`` → ``bounced`` /
``rejected_by_provider`` → ``complained`` (the order of
``notifykit.sinks.sqlite.STATUS_PROGRESS``; an SMS ``delivered`` is final).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Delivery", "DeliveryAttempt", "SoftBounce", "Suppression"]


class Delivery(models.Model):  # type: ignore[misc]
    """One message (an e-mail or an SMS) and what became of it."""

    class Status(models.TextChoices):  # type: ignore[misc]
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        # What the provider reported later (notifykit.webhooks), forward only.
        DEFERRED = "deferred", _("deferred")
        DELIVERED = "delivered", _("delivered")
        BOUNCED = "bounced", _("bounced")
        REJECTED_BY_PROVIDER = "rejected_by_provider", _("rejected by provider")
        COMPLAINED = "complained", _("complained")

    class Channel(models.TextChoices):  # type: ignore[misc]
        EMAIL = "email", _("e-mail")
        SMS = "sms", _("SMS")

    message_id = models.CharField(_("message id"), max_length=255, unique=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    recipients = models.TextField(
        _("recipients"), blank=True, help_text=_("Every recipient, comma-separated.")
    )
    subject = models.TextField(_("subject"), blank=True)
    template = models.CharField(_("template"), max_length=255, blank=True, db_index=True)
    status = models.CharField(
        _("status"), max_length=24, choices=Status.choices, default=Status.QUEUED
    )
    transport = models.CharField(_("transport"), max_length=255, blank=True)
    provider_message_id = models.CharField(
        _("provider message id"), max_length=255, blank=True, db_index=True
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    error_kind = models.CharField(_("error kind"), max_length=16, blank=True)
    maybe_delivered = models.BooleanField(
        _("maybe delivered"),
        default=False,
        help_text=_("The connection died after the hand-over: it may have arrived."),
    )
    tags = models.JSONField(_("tags"), default=list, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), db_index=True)
    status_changed_at = models.DateTimeField(_("status changed"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    #: What the provider reported after ``sent`` (notifykit.webhooks): it only
    #: moves forward, and ``status`` moves with it.
    report = models.CharField(
        _("provider report"),
        max_length=24,
        blank=True,
        db_index=True,
        help_text=_("delivered, bounced, complained, deferred or rejected_by_provider"),
    )
    report_reason = models.TextField(_("report reason"), blank=True)
    report_kind = models.CharField(
        _("bounce kind"), max_length=16, blank=True, help_text=_("hard, soft or undetermined")
    )
    report_at = models.DateTimeField(_("reported"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=("status", "created_at"), name="notifykit_status_created"),
            models.Index(fields=("transport", "created_at"), name="notifykit_transport_created"),
        )

    def __str__(self) -> str:
        what = self.subject or self.template or self.message_id
        return f"{self.get_channel_display()} to {self.recipients}: {what} ({self.status})"

    @property
    def recipient_list(self) -> list[str]:
        """:attr:`recipients` as a list."""
        return [r for r in self.recipients.split(", ") if r]


class DeliveryAttempt(models.Model):  # type: ignore[misc]
    """One try of one transport at one message: failed (``attempt_failed``) or ``sent``."""

    class Outcome(models.TextChoices):  # type: ignore[misc]
        FAILED = "attempt_failed", _("failed")
        SENT = "sent", _("sent")

    delivery = models.ForeignKey(
        Delivery,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        verbose_name=_("delivery"),
    )
    #: A digest of the event, so that writing the same event twice (a replay
    #: after a rolled-back transaction) never adds a second row.
    event_key = models.CharField(_("event key"), max_length=64, unique=True, editable=False)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    transport = models.CharField(_("transport"), max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    error_kind = models.CharField(_("error kind"), max_length=16, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    duration = models.FloatField(_("duration (s)"), null=True, blank=True)
    maybe_delivered = models.BooleanField(_("maybe delivered"), default=False)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ("at", "id")

    def __str__(self) -> str:
        when = f"{self.at:%Y-%m-%d %H:%M:%S}"
        return f"{self.get_outcome_display()} via {self.transport or '?'} at {when}"


class Suppression(models.Model):  # type: ignore[misc]
    """A recipient notifykit refuses to send to (see :mod:`notifykit.suppression`)."""

    recipient = models.CharField(
        _("recipient"),
        max_length=320,
        unique=True,
        help_text=_("Normalised: an address in lower case, or a number's digits."),
    )
    reason = models.TextField(_("reason"), blank=True)
    source = models.CharField(_("source"), max_length=16)
    created_at = models.DateTimeField(_("created"), db_index=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ("created_at", "recipient")

    def __str__(self) -> str:
        return f"{self.recipient} ({self.source})"


class SoftBounce(models.Model):  # type: ignore[misc]
    """One soft bounce, counted towards suppressing its recipient."""

    recipient = models.CharField(_("recipient"), max_length=320)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("soft bounce")
        verbose_name_plural = _("soft bounces")
        indexes = (models.Index(fields=("recipient", "at"), name="notifykit_softbounce_rcpt_at"),)


# The outbox tables live in their own module; importing them here registers them.
from notifykit.contrib.django.outbox import OutboxAttempt, OutboxKey, OutboxMessage  # noqa: E402

__all__ += ["OutboxAttempt", "OutboxKey", "OutboxMessage"]
