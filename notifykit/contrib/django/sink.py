"""``DjangoModelSink``: the delivery log in the project's database.

Transactions are the hard part. A message is often sent from inside a
request's transaction (``ATOMIC_REQUESTS``, or an explicit ``atomic()``),
and that transaction may roll back *after* the message left: the e-mail is
gone, so its log rows must stay. And a failing log write must never poison
the request's transaction. The sink therefore works like this:

- **No transaction of the caller is open** (autocommit, a Celery worker, a
  management command): each event is written in its own short transaction,
  committed at once.
- **Inside the caller's transaction**: the event is written in a savepoint
  (so the rows are visible to the code that sent the message, and a failed
  write rolls back to the savepoint without breaking the transaction) *and*
  kept in a per-thread list. When the transaction commits, an ``on_commit``
  hook forgets it. If it rolls back, the list still holds it, and it is
  written again as soon as no caller transaction is open: at the end of the
  request (``request_finished``), on the next event, or on :meth:`flush` /
  :meth:`close`.

A separate database connection would avoid the replay, but SQLite allows one
writer at a time: a second connection waits for the request's own
transaction, which waits for the log -- a deadlock until the lock times out.
Writes are idempotent (each attempt row carries a digest of its event, and
a status only moves forward in time), so writing an event twice is harmless.

The atomic blocks Django's ``TestCase`` opens around each test are not
treated as the caller's transaction: in tests the rows are written at once
and rolled back with the test, as test isolation wants.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.signals import request_finished
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from notifykit.sinks.base import DELIVERY_STATUSES, DeliveryEvent

__all__ = ["DjangoModelSink", "event_key"]

logger = logging.getLogger("notifykit.contrib.django")


def event_key(event: DeliveryEvent) -> str:
    """A digest that identifies ``event`` (the same event always gives the same key)."""
    parts = (
        event.message_id,
        event.status,
        str(event.attempt),
        event.at.isoformat(),
        event.transport or "",
        event.error or "",
    )
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _in_caller_transaction(conn: Any) -> bool:
    """True when code other than Django's TestCase holds an atomic block open."""
    blocks = getattr(conn, "atomic_blocks", None)
    if blocks is None:  # pragma: no cover - Django < 4.1
        return bool(conn.in_atomic_block)
    return any(not getattr(block, "_from_testcase", False) for block in blocks)


class _Pending:
    """One event written inside a caller's transaction, not known to be committed."""

    __slots__ = ("event",)

    def __init__(self, event: DeliveryEvent) -> None:
        self.event = event


class DjangoModelSink:
    """Writes delivery events into :class:`~notifykit.contrib.django.models.Delivery` rows.

    Args:
        using: the database alias; by default the one the database routers
            pick for writing ``Delivery``.
        max_pending: at most this many events per thread are kept for a
            replay after a rollback; older ones are dropped (and logged).

    See the module docstring for how it behaves inside transactions. Needs
    ``"notifykit.contrib.django"`` in ``INSTALLED_APPS`` and its migrations.
    """

    def __init__(self, using: str | None = None, *, max_pending: int = 10_000) -> None:
        self.using = using
        self.max_pending = max_pending
        self._local = threading.local()
        self.dropped = 0
        # Weakly connected: a sink that is garbage collected disconnects itself.
        request_finished.connect(self._on_request_finished)

    def __repr__(self) -> str:
        return f"<DjangoModelSink using={self._db()!r}>"

    # -- the LogSink protocol

    async def arecord(self, event: DeliveryEvent) -> None:
        """:meth:`record` from async code (``Notifier.asend``): Django's ORM is sync-only,
        so the write runs through ``sync_to_async`` and never blocks the event loop."""
        from asgiref.sync import sync_to_async

        await sync_to_async(self.record, thread_sensitive=True)(event)

    def record(self, event: DeliveryEvent) -> None:
        """Project ``event`` onto the Delivery tables (see the module docstring)."""
        db = self._db()
        if not _in_caller_transaction(connections[db]):
            self._replay(db)
            with transaction.atomic(using=db):
                _apply(event, db)
            return
        pending = self._pending()
        entry = _Pending(event)
        pending.append(entry)
        if len(pending) > self.max_pending:
            del pending[0]
            self.dropped += 1
            logger.error("notifykit: too many unconfirmed log events; dropped the oldest")
        try:
            with transaction.atomic(using=db):  # a savepoint: a failure stays in here
                _apply(event, db)
        except DatabaseError:
            logger.warning(
                "notifykit: could not log a %s event for message %s inside the current "
                "transaction; it will be written after the transaction ends",
                event.status,
                event.message_id,
                exc_info=True,
            )
            return
        transaction.on_commit(partial(_forget, pending, entry), using=db)

    def flush(self) -> None:
        """Write the events of this thread whose transaction did not commit.

        Does nothing while a caller's transaction is still open (its outcome
        is not known yet).
        """
        db = self._db()
        if not _in_caller_transaction(connections[db]):
            self._replay(db)

    def close(self) -> None:
        """Flush, and stop listening to ``request_finished``."""
        try:
            if self._pending():
                self.flush()
        finally:
            request_finished.disconnect(self._on_request_finished)

    # -- internals

    def _db(self) -> str:
        if self.using is not None:
            return self.using
        from notifykit.contrib.django.models import Delivery

        alias: str = router.db_for_write(Delivery) or "default"
        return alias

    def _pending(self) -> list[_Pending]:
        pending: list[_Pending] | None = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        return pending

    def _replay(self, db: str) -> None:
        pending = self._pending()
        while pending:  # bounded: each pass removes one entry or stops
            entry = pending[0]
            try:
                with transaction.atomic(using=db):
                    _apply(entry.event, db)
            except DatabaseError:
                logger.warning(
                    "notifykit: could not write %d delivery log event(s) kept after a "
                    "rollback; will try again later",
                    len(pending),
                    exc_info=True,
                )
                return
            pending.pop(0)

    def _on_request_finished(self, sender: Any, **kwargs: Any) -> None:
        if not self._pending():
            return
        try:
            self.flush()
        except Exception:  # a signal handler must not break the response
            logger.exception("notifykit: flushing the delivery log failed")


def _forget(pending: list[_Pending], entry: _Pending) -> None:
    """``on_commit`` hook: the transaction holding ``entry`` committed."""
    for i, item in enumerate(pending):
        if item is entry:
            del pending[i]
            return


def _db_time(at: datetime) -> datetime:
    if settings.USE_TZ:
        return at
    naive: datetime = timezone.make_naive(at)
    return naive


def _apply(event: DeliveryEvent, db: str) -> None:
    """Project one event; applying the same event twice changes nothing."""
    from notifykit.contrib.django.models import Delivery, DeliveryAttempt

    if event.status in DELIVERY_STATUSES:  # a provider's report (notifykit.webhooks)
        from notifykit.contrib.django.webhooks import apply_report

        apply_report(event, db, _db_time(event.at))
        return
    at = _db_time(event.at)
    delivery, _ = Delivery.objects.using(db).get_or_create(
        message_id=event.message_id,
        defaults={
            "channel": event.channel,
            "recipients": ", ".join(event.recipients),
            "subject": event.subject or "",
            "template": event.template or "",
            "tags": list(event.tags),
            "metadata": _json_safe(event.metadata),
            "created_at": at,
            "status_changed_at": at,
        },
    )
    if at < delivery.created_at:
        delivery.created_at = at
    if event.template and not delivery.template:
        delivery.template = event.template

    if event.status in ("attempt_failed", "sent"):
        _, made = DeliveryAttempt.objects.using(db).get_or_create(
            event_key=event_key(event),
            defaults={
                "delivery": delivery,
                "outcome": event.status,
                "transport": event.transport or "",
                "error": event.error or "",
                "error_kind": event.error_kind or "",
                "provider_message_id": event.provider_message_id or "",
                "duration": event.duration,
                "maybe_delivered": event.maybe_delivered,
                "at": at,
            },
        )
        if made:
            delivery.attempts = DeliveryAttempt.objects.using(db).filter(delivery=delivery).count()

    if event.status in ("attempt_failed", "failed") and event.error:
        delivery.last_error = event.error
        delivery.error_kind = event.error_kind or ""
        delivery.maybe_delivered = delivery.maybe_delivered or event.maybe_delivered

    # Once sent, only the provider's reports (apply_report) move the status on.
    if delivery.status in (Delivery.Status.QUEUED, Delivery.Status.FAILED):
        if event.status == "sent":
            delivery.status = Delivery.Status.SENT
            delivery.status_changed_at = at
            delivery.sent_at = at
            delivery.transport = event.transport or delivery.transport
            delivery.provider_message_id = event.provider_message_id or ""
        elif event.status in ("queued", "failed") and at >= delivery.status_changed_at:
            delivery.status = event.status
            delivery.status_changed_at = at
            if event.status == "failed" and event.transport:
                delivery.transport = event.transport
    delivery.save(using=db)


def _json_safe(metadata: Any) -> dict[str, Any]:
    """``metadata`` with values JSON cannot hold turned into strings."""
    import json

    out: dict[str, Any] = {}
    for key, value in dict(metadata).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        out[str(key)] = value
    return out
