"""The Celery hand-off: outbox rows dispatched to the ``notifykit.send`` task, with a real
worker (in-memory broker) delivering to a real aiosmtpd server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("celery")
pytest.importorskip("aiosmtpd")

from celery import Celery
from celery.contrib.testing.worker import start_worker

from notifykit import Email, Notifier
from notifykit.contrib.celery import OutboxHandOff, make_send_task
from notifykit.outbox import Backoff, SQLiteOutbox, Worker
from notifykit.retry import Retry
from notifykit.transports.smtp import SMTPTransport
from tests.servers.smtp import SMTPServer


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery(f"test-{uuid.uuid4().hex}", set_as_current=False)
    app.conf.update(
        broker_url="memory://",
        result_backend="cache+memory://",
        task_default_queue=f"notifykit-{uuid.uuid4().hex}",
        broker_transport_options={"polling_interval": 0.01},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    yield app
    app.close()


def test_rows_are_handed_to_the_send_task(
    app: Celery, outbox: SQLiteOutbox, smtp_server: SMTPServer
) -> None:
    def build() -> Notifier:
        transport = SMTPTransport("127.0.0.1", smtp_server.port, security="none", timeout=5)
        return Notifier(email=transport)

    send = make_send_task(app, build, name="notifykit.send", retry=Retry(attempts=1))
    producer = Notifier(outbox=outbox, sender="shop@example.com")
    ids = [
        producer.enqueue(Email(to="asha@example.com", subject=f"m{i}", text="x")) for i in range(3)
    ]
    with start_worker(app, pool="solo", perform_ping_check=False):
        worker = Worker(outbox, OutboxHandOff(send))
        assert worker.run_once() == 3
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) == 3, timeout=20)
    send.close_notifier()
    assert sorted(str(m.message["Subject"]) for m in smtp_server.messages) == ["m0", "m1", "m2"]
    for message_id in ids:
        entry = outbox.get(message_id)
        assert entry is not None
        assert entry.state == "sent"
        assert entry.transport == "celery:notifykit.send"
        assert entry.provider_message_id  # the Celery task id


def test_an_unreachable_broker_is_retried_later(outbox: SQLiteOutbox) -> None:
    app = Celery(f"test-{uuid.uuid4().hex}", set_as_current=False)
    app.conf.update(
        broker_url="redis://:fake-broker-password@127.0.0.1:1/0",
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_transport_options={"max_retries": 0},
    )
    send = make_send_task(app, Notifier, name="notifykit.send")
    message_id = Notifier(outbox=outbox, sender="shop@example.com").enqueue(
        Email(to="asha@example.com", subject="x", text="y")
    )
    Worker(outbox, OutboxHandOff(send), backoff=Backoff(initial=60)).run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "queued"
    assert entry.last_error is not None
    assert "could not hand the message to the broker" in entry.last_error
    assert "fake-broker-password" not in entry.last_error
    app.close()
