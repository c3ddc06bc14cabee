"""DjangoModelSink: the projection of events onto rows, and its behaviour in transactions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client

from notifykit.contrib.django import DjangoModelSink
from notifykit.contrib.django.models import Delivery, DeliveryAttempt
from notifykit.message import Email
from notifykit.notifier import Notifier
from notifykit.sinks.base import DeliveryEvent
from notifykit.transports.memory import MemoryTransport
from tests.servers.smtp import SMTPServer

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


def event(status: str, seconds: int = 0, **fields: Any) -> DeliveryEvent:
    base: dict[str, Any] = {
        "message_id": "m-1",
        "channel": "email",
        "recipients": ("asha@example.com",),
        "subject": "Order shipped",
        "template": "order_shipped",
        "at": T0 + timedelta(seconds=seconds),
    }
    base.update(fields)
    return DeliveryEvent(status=status, **base)  # type: ignore[arg-type]


@pytest.fixture
def sink() -> Any:
    sink = DjangoModelSink()
    yield sink
    sink.close()


@pytest.mark.django_db
def test_events_are_projected_onto_one_row(sink: DjangoModelSink) -> None:
    """queued, attempt_failed and sent make one SENT row with two attempts."""
    sink.record(event("queued"))
    sink.record(
        event(
            "attempt_failed",
            1,
            transport="smtp:a:25",
            error="421 busy",
            error_kind="transient",
            attempt=1,
        )
    )
    sink.record(event("sent", 2, transport="smtp:b:25", provider_message_id="<x@b>", attempt=2))

    row = Delivery.objects.get()
    assert Delivery.Status.SENT == row.status
    assert 2 == row.attempts
    assert "smtp:b:25" == row.transport
    assert "<x@b>" == row.provider_message_id
    assert "421 busy" == row.last_error
    assert T0 == row.created_at
    assert T0 + timedelta(seconds=2) == row.sent_at
    assert "order_shipped" == row.template
    assert ["attempt_failed", "sent"] == [a.outcome for a in row.attempt_log.all()]


@pytest.mark.django_db
def test_recording_an_event_twice_changes_nothing(sink: DjangoModelSink) -> None:
    """Writes are idempotent: a replayed event adds no attempt and moves nothing."""
    for _ in range(2):
        sink.record(event("queued"))
        sink.record(event("sent", 1, transport="memory", attempt=1))

    assert 1 == Delivery.objects.count()
    assert 1 == DeliveryAttempt.objects.count()
    assert 1 == Delivery.objects.get().attempts


@pytest.mark.django_db
def test_sent_is_final(sink: DjangoModelSink) -> None:
    """A late queued or failed event never turns a sent message back."""
    sink.record(event("sent", 5, transport="memory", attempt=1))
    sink.record(event("queued", 0))
    sink.record(event("failed", 9, error="late", error_kind="failed"))

    row = Delivery.objects.get()
    assert Delivery.Status.SENT == row.status
    assert T0 == row.created_at


@pytest.mark.django_db
def test_a_retried_message_goes_back_to_queued_then_sent(sink: DjangoModelSink) -> None:
    """A task retry (same message id) moves failed back to queued, then to sent."""
    sink.record(event("queued", 0))
    sink.record(event("attempt_failed", 1, transport="smtp", error="451", attempt=1))
    sink.record(event("failed", 1, error="451", error_kind="transient"))
    assert Delivery.Status.FAILED == Delivery.objects.get().status

    sink.record(event("queued", 60))
    assert Delivery.Status.QUEUED == Delivery.objects.get().status
    sink.record(event("sent", 61, transport="smtp", attempt=1))

    row = Delivery.objects.get()
    assert Delivery.Status.SENT == row.status
    assert 2 == row.attempts


@pytest.mark.django_db
def test_rows_are_visible_inside_a_test_transaction(sink: DjangoModelSink) -> None:
    """Inside Django's TestCase transaction the rows are written at once, nothing kept back."""
    with Notifier(email=MemoryTransport(), sinks=[sink]) as notifier:
        notifier.send(Email(to="a@example.com", subject="Hi", text="x", sender="s@shop.example"))

    assert Delivery.Status.SENT == Delivery.objects.get().status
    assert [] == sink._pending()


@pytest.mark.django_db
def test_naive_datetimes_without_use_tz(sink: DjangoModelSink, settings: Any) -> None:
    """With USE_TZ = False the times are stored as naive local times."""
    settings.USE_TZ = False
    sink.record(event("queued"))

    settings.USE_TZ = True
    assert T0 == Delivery.objects.get().created_at


@pytest.mark.django_db(transaction=True)
def test_rolled_back_request_keeps_the_log(notifykit_settings: SMTPServer) -> None:
    """A request that sent mail and then failed rolls back its data, not the delivery log."""
    client = Client(raise_request_exception=False)

    response = client.get("/signup-crash/", {"email": "asha@example.com"})

    assert 500 == response.status_code
    assert 0 == User.objects.count()  # the request's own write was rolled back
    assert 1 == len(notifykit_settings.messages)  # the mail went out
    row = Delivery.objects.get()  # and the log says so
    assert Delivery.Status.SENT == row.status
    assert "asha@example.com" == row.recipients
    assert 1 == row.attempts


@pytest.mark.django_db(transaction=True)
def test_committed_request_leaves_nothing_to_replay(notifykit_settings: SMTPServer) -> None:
    """After a request that commits, the on_commit hook forgets the kept events."""
    from notifykit.contrib.django import get_notifier

    response = Client().get("/signup/", {"email": "asha@example.com"})

    assert 200 == response.status_code
    assert 1 == User.objects.count()
    assert Delivery.Status.SENT == Delivery.objects.get().status
    [sink] = get_notifier().sinks
    assert isinstance(sink, DjangoModelSink)
    assert [] == sink._pending()


@pytest.mark.django_db(transaction=True)
def test_rollback_outside_a_request_is_replayed_on_flush(sink: DjangoModelSink) -> None:
    """Events written in a transaction that rolls back are written again by flush()."""
    notifier = Notifier(email=MemoryTransport(), sinks=[sink])
    seen_inside = []

    def send_then_fail() -> None:
        with transaction.atomic():
            notifier.send(
                Email(to="a@example.com", subject="Hi", text="x", sender="s@shop.example")
            )
            seen_inside.append(Delivery.objects.count())
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        send_then_fail()
    assert [1] == seen_inside  # visible inside the transaction
    assert 0 == Delivery.objects.count()

    sink.flush()

    assert Delivery.Status.SENT == Delivery.objects.get().status
    assert [] == sink._pending()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_events_are_replayed_by_the_next_write(sink: DjangoModelSink) -> None:
    """A worker that never calls flush(): its next logged message writes the lost events first."""
    notifier = Notifier(email=MemoryTransport(), sinks=[sink])

    def send_then_fail() -> None:
        with transaction.atomic():
            notifier.send(
                Email(to="a@example.com", subject="Lost", text="x", sender="s@shop.example")
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        send_then_fail()
    assert 0 == Delivery.objects.count()

    notifier.send(Email(to="b@example.com", subject="Next", text="x", sender="s@shop.example"))

    assert {"Lost": "sent", "Next": "sent"} == dict(
        Delivery.objects.values_list("subject", "status")
    )
    assert [] == sink._pending()


@pytest.mark.django_db(transaction=True)
def test_failing_log_write_does_not_break_the_transaction(sink: DjangoModelSink) -> None:
    """A log write that fails inside a transaction rolls back to its savepoint only.

    A real SQLite trigger makes the insert fail; the caller's transaction goes
    on and commits, and the event is written once the trigger is gone.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER nk_refuse BEFORE INSERT ON notifykit_delivery "
            "BEGIN SELECT RAISE(ABORT, 'log table refuses writes'); END"
        )
    notifier = Notifier(email=MemoryTransport(), sinks=[sink], strict_sinks=True)
    with transaction.atomic():
        User.objects.create(username="asha")
        notifier.send(Email(to="a@example.com", subject="Hi", text="x", sender="s@shop.example"))
        assert 1 == User.objects.count()  # the transaction is still usable
    assert 1 == User.objects.count()
    assert 0 == Delivery.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER nk_refuse")

    sink.flush()

    assert Delivery.Status.SENT == Delivery.objects.get().status
