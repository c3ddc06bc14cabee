"""Delivery-report webhooks through Django's test client, the suppression list in the models."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.test import Client

import notifykit as nk
from notifykit.contrib.django import DjangoModelSink
from notifykit.contrib.django.models import Delivery, Suppression
from notifykit.contrib.django.webhooks import DjangoSuppressionList
from notifykit.suppression import SuppressionStore
from tests.contrib.django_tests import webhook_urls as urls
from tests.webhooks import sns

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.contrib.django_tests.webhook_urls")]


def post_sns(client: Client, envelope: dict[str, object]) -> object:
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sns.headers(envelope).items()}
    return client.post(
        "/hooks/ses/", data=sns.body(envelope), content_type="text/plain; charset=UTF-8", **headers
    )


def test_ses_bounce_through_the_django_view() -> None:
    """A signed hard bounce: 200, the log row bounced, the Suppression row created."""
    notifier = nk.Notifier(
        email=nk.MemoryTransport(),
        sinks=[urls.LOG],
        sender="s@x.example",
        suppression=urls.SUPPRESSION,
    )
    receipt = notifier.send(nk.Email(to="gone@example.net", subject="Hi", text="t"))
    envelope = sns.notification(
        sns.bounce(receipt.provider_message_id, "gone@example.net", feedback=str(uuid.uuid4()))
    )
    client = Client(enforce_csrf_checks=True)
    response = post_sns(client, envelope)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert json.loads(response.content) == {"events": 1}  # type: ignore[attr-defined]
    row = urls.LOG.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "bounced"
    assert Suppression.objects.get(recipient="gone@example.net").source == "bounce"
    with pytest.raises(nk.Suppressed):
        notifier.send(nk.Email(to="Gone@Example.net", subject="Hi", text="t"))
    # a replay: 200, nothing new
    assert json.loads(post_sns(client, envelope).content) == {"events": 0}  # type: ignore[attr-defined]


def test_refusals_through_the_django_view() -> None:
    """Tampered: 403; unknown topic: 403; garbage: 400; GET: 405; nothing stored."""
    client = Client()
    good = sns.notification(sns.bounce(feedback=str(uuid.uuid4())))
    tampered = {**good, "Message": json.dumps(sns.bounce(to="victim@example.com"))}
    assert post_sns(client, tampered).status_code == 403  # type: ignore[attr-defined]
    other = sns.notification(sns.bounce(), topic=sns.OTHER_TOPIC)
    assert post_sns(client, other).status_code == 403  # type: ignore[attr-defined]
    assert client.post("/hooks/ses/", data=b"{", content_type="text/plain").status_code == 400
    assert client.get("/hooks/ses/").status_code == 405
    assert Suppression.objects.count() == 0


def test_msg91_token_in_the_path() -> None:
    """/hooks/msg91/<token>/ authenticates; a wrong token is a 401."""
    client = Client()
    report = {
        "requestId": uuid.uuid4().hex[:24],
        "number": "919876543210",
        "status": "17",
        "desc": "Blocked number",
    }
    wrong = client.post("/hooks/msg91/nope/", data=report, content_type="application/json")
    assert wrong.status_code == 401
    ok = client.post(f"/hooks/msg91/{urls.SECRET}/", data=report, content_type="application/json")
    assert ok.status_code == 200
    assert Suppression.objects.get(recipient="919876543210").reason == "Blocked number"


def test_django_store_protocol() -> None:
    """DjangoSuppressionList: same behaviour as the SQLite store."""
    store = DjangoSuppressionList()
    assert isinstance(store, SuppressionStore)
    assert store.add("Ann <Ann@Example.com>", "complaint", source="complaint")
    assert not store.add("ann@example.com", "again")
    assert store.check(["ANN@example.com", "b@example.com"]) == {"ANN@example.com": "complaint"}
    assert [e.recipient for e in store.entries()] == ["ann@example.com"]
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert store.note_soft_bounce("c@example.com", t0, timedelta(days=7)) == 1
    assert store.note_soft_bounce("c@example.com", t0 + timedelta(days=1), timedelta(days=7)) == 2
    assert store.note_soft_bounce("c@example.com", t0 + timedelta(days=9), timedelta(days=7)) == 1
    assert store.remove("ann@example.com")
    assert not store.remove("ann@example.com")
    with pytest.raises(nk.ConfigurationError):
        store.add("91", "x")


def test_reports_on_the_delivery_model() -> None:
    """DjangoModelSink: status moves sent → delivered → bounced, never back; unknown ids no row."""
    notifier = nk.Notifier(
        email=nk.MemoryTransport(), sinks=[DjangoModelSink()], sender="s@x.example"
    )
    receipt = notifier.send(nk.Email(to="ann@example.com", subject="Hi", text="t"))
    pid = receipt.provider_message_id
    client = Client()

    def post(payload: dict[str, object]) -> None:
        envelope = sns.notification(payload)
        headers = {
            f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sns.headers(envelope).items()
        }
        response = client.post(
            "/hooks/ses-models/", data=sns.body(envelope), content_type="text/plain", **headers
        )
        assert response.status_code == 200

    row = Delivery.objects.get(message_id=receipt.message_id)
    assert (row.status, row.report) == ("sent", "")
    post(sns.delay(pid, "ann@example.com"))
    row.refresh_from_db()
    assert (row.status, row.report) == ("deferred", "deferred")
    post(sns.delivery(pid, "ann@example.com"))
    row.refresh_from_db()
    assert (row.status, row.report) == ("delivered", "delivered")
    post(sns.bounce(pid, "ann@example.com", feedback=str(uuid.uuid4())))
    post(sns.delay(pid, "ann@example.com"))  # late: never moves a bounce back
    post(sns.delivery(pid, "ann@example.com"))
    row.refresh_from_db()
    assert (row.status, row.report, row.report_kind) == ("bounced", "bounced", "hard")
    assert "550 5.1.1" in row.report_reason
    assert row.sent_at is not None
    assert row.report_at is not None
    # a replayed "sent" event (a rolled-back transaction) does not undo the report
    DjangoModelSink().record(
        nk.DeliveryEvent(
            message_id=receipt.message_id,
            status="sent",
            channel="email",
            recipients=("ann@example.com",),
            provider_message_id=pid,
            at=datetime.now(timezone.utc),
        )
    )
    row.refresh_from_db()
    assert row.status == "bounced"
    count = Delivery.objects.count()
    post(sns.delivery("not-ours", "x@example.com"))
    assert Delivery.objects.count() == count


def test_sms_delivered_is_final_on_the_delivery_model() -> None:
    """An SMS the provider reported delivered stays delivered; an e-mail may bounce after."""
    sink = DjangoModelSink()
    now = datetime.now(timezone.utc)
    for channel, pid in (("sms", "sms-pid-1"), ("email", "mail-pid-1")):
        for status in ("queued", "sent", "delivered", "bounced"):
            sink.record(
                nk.DeliveryEvent(
                    message_id=f"m-{channel}",
                    status=status,
                    channel=channel,
                    recipients=("919876543210" if channel == "sms" else "a@example.com",),
                    provider_message_id=pid if status != "queued" else None,
                    transport="t",
                    error="gone" if status == "bounced" else None,
                    at=now,
                )
            )
    assert Delivery.objects.get(message_id="m-sms").status == "delivered"
    assert Delivery.objects.get(message_id="m-email").status == "bounced"


def test_stats_count_the_reports() -> None:
    """notifykit_stats: reported statuses count as sent; delivery and bounce rates."""
    from notifykit.contrib.django.management.commands.notifykit_stats import stats

    test_sms_delivered_is_final_on_the_delivery_model()
    totals = stats(Delivery.objects.all())["totals"]
    assert (totals["sent"], totals["delivered"], totals["bounced"]) == (2, 1, 1)
    assert (totals["delivery_rate"], totals["bounce_rate"], totals["success_rate"]) == (
        0.5,
        0.5,
        1.0,
    )
