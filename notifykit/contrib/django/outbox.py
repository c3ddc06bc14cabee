"""The outbox as Django models: enqueue in the same transaction as your business data.

::

    from django.db import transaction
    from notifykit.contrib.django.outbox import DjangoOutbox

    outbox = DjangoOutbox()
    notifier = Notifier(email=..., outbox=outbox)      # or get_notifier() + outbox
    with transaction.atomic():
        order = Order.objects.create(...)
        notifier.enqueue(Email(to=order.email, subject="Thanks", text="..."))
    # Rolled back: neither the order nor the message exists. Committed: both do.

:class:`OutboxMessage` rows are written on the caller's database connection,
inside whatever transaction is open: the row commits with the business data or
not at all (the transactional-outbox pattern), and a worker, on its own
connection, only ever sees committed rows. Workers use the same lease protocol
as :class:`~notifykit.outbox.SQLiteOutbox` (see :mod:`notifykit.outbox.base`),
with conditional ``UPDATE``\\ s, so several worker processes can share the
table on any database Django supports.

Run a worker with ``manage.py notifykit_outbox_worker`` or, in a process of
your own, ``DjangoOutbox().start(notifier)``. Re-drive dead-lettered rows from
the admin (the "Queue again" action).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from notifykit.errors import ConfigurationError, InvalidMessage
from notifykit.message import SMS, Email, Message, message_from_dict
from notifykit.outbox.base import AttemptOutcome, Claim
from notifykit.receipt import Receipt

if TYPE_CHECKING:
    from notifykit.outbox.base import Sender
    from notifykit.outbox.worker import Worker

__all__ = ["DjangoOutbox", "OutboxAttempt", "OutboxKey", "OutboxMessage"]

_INTERRUPTED = "the worker stopped (or lost its lease) before recording an outcome"


class OutboxMessage(models.Model):  # type: ignore[misc]
    """One message waiting in (or done with) the outbox."""

    class State(models.TextChoices):  # type: ignore[misc]
        QUEUED = "queued", _("queued")
        LEASED = "leased", _("being sent")
        SENT = "sent", _("sent")
        DEAD = "dead", _("dead-lettered")

    message_id = models.CharField(_("message id"), max_length=255, unique=True)
    channel = models.CharField(_("channel"), max_length=8)
    payload = models.JSONField(_("message"), help_text=_("The message's to_dict()."))
    template = models.CharField(_("template"), max_length=255, blank=True)
    recipients = models.TextField(_("recipients"), blank=True)
    subject = models.TextField(_("subject"), blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    priority = models.IntegerField(_("priority"), default=0)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default="queued")
    created_at = models.DateTimeField(_("enqueued"))
    due_at = models.DateTimeField(_("due"))
    age_base = models.DateTimeField(_("retries counted from"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    attempts_base = models.PositiveIntegerField(default=0, editable=False)
    lease_owner = models.CharField(_("worker"), max_length=255, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    maybe_delivered = models.BooleanField(
        _("maybe delivered"),
        default=False,
        help_text=_("An attempt may have reached the provider: it may have arrived twice."),
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    transport = models.CharField(_("transport"), max_length=255, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")
        ordering = ("-id",)
        indexes = (
            models.Index(fields=("state", "priority", "due_at"), name="notifykit_outbox_due"),
            models.Index(fields=("state", "lease_until"), name="notifykit_outbox_lease"),
        )

    def __str__(self) -> str:
        return f"{self.subject or self.template or self.message_id} to {self.recipients}"


class OutboxAttempt(models.Model):  # type: ignore[misc]
    """One recorded try of one outbox message (see :class:`~notifykit.outbox.AttemptRecord`)."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(_("attempt"))
    worker = models.CharField(_("worker"), max_length=255, blank=True)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16)
    error = models.TextField(_("error"), blank=True)
    maybe_delivered = models.BooleanField(_("maybe delivered"), default=False)
    maybe_tries = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("outbox attempt")
        verbose_name_plural = _("outbox attempts")
        ordering = ("number",)
        constraints = (
            models.UniqueConstraint(
                fields=("message", "number"), name="notifykit_outbox_attempt_unique"
            ),
        )

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class OutboxKey(models.Model):  # type: ignore[misc]
    """An idempotency key and the message that holds it."""

    key = models.CharField(_("key"), max_length=255, primary_key=True)
    message_id = models.CharField(_("message id"), max_length=255)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class DjangoOutbox:
    """An :class:`~notifykit.outbox.Outbox` in the Django database (alias ``using``).

    :meth:`add` joins the caller's transaction; everything else a worker does
    runs in short transactions of its own.
    """

    def __init__(self, using: str = "default", *, idempotency_window: float = 24 * 3600.0):
        if not isinstance(idempotency_window, (int, float)) or idempotency_window < 0:
            raise ConfigurationError("DjangoOutbox(idempotency_window=...) must be >= 0")
        self.using = using
        self.idempotency_window = float(idempotency_window)

    def __repr__(self) -> str:
        return f"DjangoOutbox(using={self.using!r})"

    def _rows(self) -> Any:
        return OutboxMessage.objects.using(self.using)

    # -- enqueue and keys

    def add(
        self,
        message: Message,
        *,
        send_at: datetime | None = None,
        priority: int = 0,
        template: str | None = None,
    ) -> str:
        """Store ``message`` in the current transaction (it commits with it); its id."""
        if not isinstance(message, (Email, SMS)):
            raise InvalidMessage(f"expected an Email or an SMS, got {type(message).__name__}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidMessage(f"priority: expected an integer, got {priority!r}")
        if send_at is not None and (not isinstance(send_at, datetime) or send_at.tzinfo is None):
            raise InvalidMessage("send_at: use a timezone-aware datetime (e.g. timezone.utc)")
        now = _now()
        key = message.idempotency_key
        with transaction.atomic(using=self.using):
            if key is not None:
                holder = self._holder(key, message.id, now)
                if holder != message.id:
                    return holder
                self._take(key, message.id, now)
            self._rows().get_or_create(
                message_id=message.id,
                defaults={
                    "channel": message.channel,
                    "payload": message.to_dict(),
                    "template": template or "",
                    "recipients": ",".join(message.recipients),
                    "subject": message.subject if isinstance(message, Email) else "",
                    "idempotency_key": key or "",
                    "priority": priority,
                    "created_at": now,
                    "due_at": send_at or now,
                    "age_base": now,
                },
            )
        return message.id

    def _holder(self, key: str, message_id: str, now: datetime) -> str:
        row = OutboxKey.objects.using(self.using).filter(key=key).first()
        if row is None or row.message_id == message_id:
            return message_id
        if row.created_at < now - timedelta(seconds=self.idempotency_window):
            return message_id
        return str(row.message_id)

    def _take(self, key: str, message_id: str, now: datetime) -> None:
        keys = OutboxKey.objects.using(self.using)
        if not keys.filter(key=key, message_id=message_id).exists():
            keys.update_or_create(key=key, defaults={"message_id": message_id, "created_at": now})

    def reserve_key(self, key: str, message_id: str) -> str:
        """Take ``key`` for ``message_id`` unless another message holds it; the holder's id."""
        now = _now()
        with transaction.atomic(using=self.using):
            holder = self._holder(key, message_id, now)
            if holder == message_id:
                self._take(key, message_id, now)
        return holder

    def release_key(self, key: str, message_id: str) -> None:
        """Free ``key`` unless ``message_id`` is a live row of this outbox."""
        if self._rows().filter(message_id=message_id).exclude(state="dead").exists():
            return
        OutboxKey.objects.using(self.using).filter(key=key, message_id=message_id).delete()

    # -- the worker's side

    def claim(self, worker: str, *, limit: int, lease: float) -> list[Claim]:
        """Lease up to ``limit`` due rows to ``worker``, best first (conditional updates)."""
        now = _now()
        until = now + timedelta(seconds=lease)
        due = Q(state="queued", due_at__lte=now) | Q(state="leased", lease_until__lt=now)
        candidates = list(
            self._rows()
            .filter(due)
            .order_by("-priority", "due_at", "id")
            .values_list("id", "state", "lease_owner", "lease_until")[: limit * 2]
        )
        taken: list[int] = []
        for pk, state, owner, lease_until in candidates:
            if len(taken) >= limit:
                break
            won = (
                self._rows()
                .filter(pk=pk, state=state, lease_owner=owner, lease_until=lease_until)
                .update(state="leased", lease_owner=worker, lease_until=until)
            )
            if won:
                taken.append(pk)
        if not taken:
            return []
        with transaction.atomic(using=self.using):
            attempts = OutboxAttempt.objects.using(self.using)
            crashed = set(
                attempts.filter(message_id__in=taken, outcome="in_flight").values_list(
                    "message_id", flat=True
                )
            )
            if crashed:
                attempts.filter(message_id__in=crashed, outcome="in_flight").update(
                    outcome="interrupted",
                    maybe_delivered=True,
                    maybe_tries=1,
                    finished_at=now,
                    error=_INTERRUPTED,
                )
                self._rows().filter(pk__in=crashed).update(
                    maybe_delivered=True, last_error=_INTERRUPTED
                )
        rows = self._rows().filter(pk__in=taken, lease_owner=worker)
        claims = [
            Claim(
                id=row.message_id,
                message=message_from_dict(row.payload),
                priority=row.priority,
                attempts=row.attempts - row.attempts_base,
                created_at=row.age_base.timestamp(),
                template=row.template or None,
                maybe_delivered=row.maybe_delivered,
            )
            for row in rows
        ]
        claims.sort(key=lambda c: -c.priority)
        return claims

    def renew(self, worker: str, ids: Sequence[str], lease: float) -> set[str]:
        """Extend ``worker``'s leases on ``ids``; the ids it lost."""
        if not ids:
            return set()
        held = self._rows().filter(message_id__in=ids, lease_owner=worker, state="leased")
        held.update(lease_until=_now() + timedelta(seconds=lease))
        kept = set(
            self._rows()
            .filter(message_id__in=ids, lease_owner=worker, state="leased")
            .values_list("message_id", flat=True)
        )
        return set(ids) - kept

    def release(self, worker: str, ids: Sequence[str]) -> None:
        """Give back untried rows: queued again, due now."""
        self._rows().filter(message_id__in=ids, lease_owner=worker, state="leased").update(
            state="queued", lease_owner="", lease_until=None
        )

    def begin_attempt(self, worker: str, id: str) -> int | None:
        """Record an attempt in flight (committed before the send); its number, or None."""
        with transaction.atomic(using=self.using):
            won = (
                self._rows()
                .filter(message_id=id, state="leased", lease_owner=worker)
                .update(attempts=F("attempts") + 1)
            )
            if not won:
                return None
            row = self._rows().get(message_id=id)
            OutboxAttempt.objects.using(self.using).create(
                message=row,
                number=row.attempts,
                worker=worker,
                started_at=_now(),
                outcome="in_flight",
            )
        return int(row.attempts)

    def mark_sent(self, worker: str, id: str, number: int, receipt: Receipt) -> None:
        """Record attempt ``number`` as delivered; the row is ``sent`` whoever holds it."""
        now = _now()
        tries = sum(1 for a in receipt.attempts if a.maybe_delivered)
        with transaction.atomic(using=self.using):
            attempts = OutboxAttempt.objects.using(self.using)
            attempts.filter(message__message_id=id, number=number).update(
                outcome="sent", finished_at=now, error="", maybe_tries=F("maybe_tries") + tries
            )
            if tries:
                attempts.filter(message__message_id=id, number=number).update(maybe_delivered=True)
            changes: dict[str, Any] = {
                "state": "sent",
                "finished_at": now,
                "transport": receipt.transport,
                "provider_message_id": receipt.provider_message_id or "",
                "lease_owner": "",
                "lease_until": None,
            }
            if tries:
                changes["maybe_delivered"] = True
            self._rows().filter(message_id=id).exclude(state="sent").update(**changes)

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
        """Record a failed attempt; queue the row again at ``retry_at``, or dead-letter it."""
        now = _now()
        tries = max(maybe_tries, int(maybe_delivered))
        with transaction.atomic(using=self.using):
            attempt = OutboxAttempt.objects.using(self.using).filter(
                message__message_id=id, number=number
            )
            attempt.update(
                outcome=outcome,
                finished_at=now,
                error=error,
                maybe_tries=F("maybe_tries") + tries,
            )
            if maybe_delivered:
                attempt.update(maybe_delivered=True)
            held = self._rows().filter(message_id=id, state="leased", lease_owner=worker)
            changes: dict[str, Any] = {"last_error": error, "lease_owner": "", "lease_until": None}
            if maybe_delivered:
                changes["maybe_delivered"] = True
            if retry_at is None:
                if held.update(state="dead", finished_at=now, **changes):
                    row = self._rows().get(message_id=id)
                    if not row.maybe_delivered:
                        OutboxKey.objects.using(self.using).filter(message_id=id).delete()
            else:
                held.update(state="queued", due_at=_at(retry_at), **changes)

    def next_due(self) -> float | None:
        """When the next queued row falls due, in epoch seconds (None: none queued)."""
        due = self._rows().filter(state="queued").aggregate(models.Min("due_at"))["due_at__min"]
        return None if due is None else float(due.timestamp())

    def close(self) -> None:
        """Nothing to close: Django owns the connections."""

    # -- re-driving (the admin)

    def retry(self, ids: Sequence[str] | None = None) -> int:
        """Queue dead rows again, due now, with a fresh age and attempt budget."""
        now = _now()
        rows = self._rows().filter(state="dead")
        if ids is not None:
            rows = rows.filter(message_id__in=ids)
        return int(
            rows.update(
                state="queued",
                due_at=now,
                age_base=now,
                attempts_base=F("attempts"),
                finished_at=None,
            )
        )

    # -- workers

    def run(self, notifier: Sender, stop: threading.Event | None = None, **options: Any) -> None:
        """Deliver due messages through ``notifier`` in this thread until ``stop`` is set."""
        from notifykit.outbox.worker import Worker

        Worker(self, notifier, **options).run(stop)

    def start(self, notifier: Sender, **options: Any) -> Worker:
        """Start a :class:`~notifykit.outbox.Worker` thread; call its ``stop()`` when done."""
        from notifykit.outbox.worker import Worker

        return Worker(self, notifier, **options).start()
