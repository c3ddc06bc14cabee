"""The Django outbox: transactional enqueue, a worker on the model, the admin."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from notifykit import Email, Notifier
from notifykit.contrib.django.outbox import DjangoOutbox, OutboxAttempt, OutboxMessage
from notifykit.notifier import DUPLICATE
from notifykit.outbox import Backoff, Worker
from notifykit.transports.smtp import SMTPTransport
from tests.servers.smtp import SMTPServer


class Boom(Exception):
    pass


@pytest.fixture
def notifier(smtp_server: SMTPServer) -> Any:
    transport = SMTPTransport("127.0.0.1", smtp_server.port, security="none", timeout=5)
    n = Notifier(email=transport, sender="shop@example.com", outbox=DjangoOutbox())
    yield n
    n.close()


def email(subject: str = "Welcome", **fields: Any) -> Email:
    return Email(to="asha@example.com", subject=subject, text="Thanks for signing up", **fields)


@pytest.mark.django_db(transaction=True)
def test_rolled_back_enqueue_is_never_sent(notifier: Notifier, smtp_server: SMTPServer) -> None:
    def signup() -> None:
        with transaction.atomic():
            User.objects.create(username="asha")
            notifier.enqueue(email())
            raise Boom  # e.g. the payment failed after the message was enqueued

    with pytest.raises(Boom):
        signup()
    assert not User.objects.exists()
    assert not OutboxMessage.objects.exists()
    worker = Worker(notifier.outbox, notifier)  # type: ignore[arg-type]
    assert worker.run_once() == 0
    assert smtp_server.messages == []


@pytest.mark.django_db(transaction=True)
def test_committed_enqueue_is_sent_once(notifier: Notifier, smtp_server: SMTPServer) -> None:
    with transaction.atomic():
        User.objects.create(username="asha")
        message_id = notifier.enqueue(email(), idempotency_key="signup-asha")
        # Same key again, in the same transaction: the first message's id, no new row.
        assert notifier.enqueue(email("again"), idempotency_key="signup-asha") == message_id
    worker = Worker(notifier.outbox, notifier)  # type: ignore[arg-type]
    assert worker.run_once() == 1
    assert [str(m.message["Subject"]) for m in smtp_server.messages] == ["Welcome"]
    row = OutboxMessage.objects.get(message_id=message_id)
    assert row.state == "sent"
    assert row.idempotency_key == "signup-asha"
    assert row.provider_message_id
    # A direct send with the key is a duplicate now, and sends nothing.
    assert notifier.send(email("direct", idempotency_key="signup-asha")).transport == DUPLICATE
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_scheduling_priority_and_dead_letters(notifier: Notifier, smtp_server: SMTPServer) -> None:
    from datetime import datetime, timedelta, timezone

    smtp_server.fail("RCPT", "550 5.1.1 No such user", match="nobody@example.com", times=None)
    notifier.enqueue(email("later"), send_at=datetime.now(timezone.utc) + timedelta(hours=1))
    notifier.enqueue(email("low"))
    notifier.enqueue(email("high"), priority=9)
    dead = notifier.enqueue(Email(to="nobody@example.com", subject="x", text="y"), priority=5)
    worker = Worker(notifier.outbox, notifier, batch=1)  # type: ignore[arg-type]
    while worker.run_once():
        pass
    assert [str(m.message["Subject"]) for m in smtp_server.messages] == ["high", "low"]
    row = OutboxMessage.objects.get(message_id=dead)
    assert row.state == "dead"
    assert "550" in row.last_error
    assert OutboxMessage.objects.filter(state="queued").count() == 1  # "later"


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_lease_expires(notifier: Notifier, smtp_server: SMTPServer) -> None:
    outbox = DjangoOutbox()
    message_id = notifier.enqueue(email())
    [claim] = outbox.claim("a", limit=1, lease=0.2)
    assert outbox.begin_attempt("a", claim.id) == 1
    b = Worker(outbox, notifier, name="b", backoff=Backoff(initial=0.01))
    assert b.run_once() == 0
    time.sleep(0.25)
    assert b.run_once() == 1
    attempts = list(OutboxAttempt.objects.filter(message__message_id=message_id))
    assert [(a.outcome, a.maybe_delivered, a.worker) for a in attempts] == [
        ("interrupted", True, "a"),
        ("sent", False, "b"),
    ]
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_admin_lists_and_requeues_dead_messages(admin_client: Any, smtp_server: SMTPServer) -> None:
    outbox = DjangoOutbox()
    message_id = outbox.add(email("dead one"))
    OutboxMessage.objects.filter(message_id=message_id).update(
        state="dead", last_error="RejectedError: 550 No such user"
    )
    response = admin_client.get("/admin/notifykit/outboxmessage/", {"state__exact": "dead"})
    assert response.status_code == 200
    assert b"550 No such user" in response.content
    pk = OutboxMessage.objects.get(message_id=message_id).pk
    response = admin_client.get(f"/admin/notifykit/outboxmessage/{pk}/change/")
    assert response.status_code == 200
    response = admin_client.post(
        "/admin/notifykit/outboxmessage/",
        {"action": "queue_again", "_selected_action": [pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"1 dead message(s) queued again" in response.content
    assert OutboxMessage.objects.get(pk=pk).state == "queued"
    assert admin_client.get("/admin/notifykit/outboxmessage/add/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_management_command_delivers(notifykit_settings: SMTPServer) -> None:
    from io import StringIO

    from django.core.management import call_command

    DjangoOutbox().add(email("from the command", sender="shop@example.com"))
    out = StringIO()
    call_command("notifykit_outbox_worker", "--once", stdout=out)
    assert out.getvalue().strip() == "1 sent, 0 to retry, 0 dead-lettered"
    assert [str(m.message["Subject"]) for m in notifykit_settings.messages] == ["from the command"]
    # Bad options are a CommandError, not a traceback.
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="lease"):
        call_command("notifykit_outbox_worker", "--once", "--lease", "0")
