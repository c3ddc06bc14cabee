"""The Celery task with a real worker (in-memory broker) and a real aiosmtpd server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("celery")

from celery import Celery
from celery.contrib.testing.worker import start_worker

from notifykit.contrib.celery import (
    SendTask,
    make_send_task,
    notify_later,
    send_later,
)
from notifykit.errors import ConfigurationError, TransientError
from notifykit.message import Email, Recipient
from notifykit.notifier import Notifier
from notifykit.retry import Retry
from notifykit.sinks.memory import MemorySink
from notifykit.testing import ScriptedTransport, no_backoff
from notifykit.transports.failover import FailoverTransport
from notifykit.transports.memory import MemoryTransport
from notifykit.transports.smtp import SMTPTransport
from tests.servers.smtp import SMTPServer

#: Task-level backoff for tests: runs follow each other at once.
FAST = Retry(attempts=3, initial=0.0, jitter=0.0)
TIMEOUT = 10
SENDER = "noreply@shop.example"


def email(**fields: Any) -> Email:
    base: dict[str, Any] = {"to": "asha@example.com", "subject": "Hi", "text": "Hello"}
    base.update(fields)
    return Email(**base)


def smtp(server: SMTPServer) -> SMTPTransport:
    return SMTPTransport(
        "127.0.0.1", server.port, security="none", timeout=5, local_hostname="client.test"
    )


class Workbench:
    """One Celery app and one real worker thread for the whole module.

    Starting and stopping a worker costs seconds (its loop polls the broker
    for up to 2 s before it notices a shutdown), so the module shares one.
    Its tasks are registered before the worker starts, as in production;
    each test chooses the Notifier they build with :meth:`use`.
    """

    def __init__(self) -> None:
        self.app = Celery(f"test-{uuid.uuid4().hex}", set_as_current=False)
        self.app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_default_queue=f"notifykit-{uuid.uuid4().hex}",
            broker_transport_options={"polling_interval": 0.01},
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
        )
        self.factory: Callable[[], Notifier] | None = None
        build = self._build
        #: FAST backoff, three runs at most.
        self.send = make_send_task(self.app, build, name="test.send", retry=FAST)
        #: Two runs at most.
        self.send_twice = make_send_task(
            self.app,
            build,
            name="test.send_twice",
            retry=Retry(attempts=2, initial=0.0, jitter=0.0),
        )
        #: At most once: an uncertain failure is not re-enqueued.
        self.send_once = make_send_task(
            self.app, build, name="test.send_once", retry=FAST, resend_uncertain=False
        )
        self.tasks = (self.send, self.send_twice, self.send_once)

    def _build(self) -> Notifier:
        assert self.factory is not None, "call workbench.use(factory) first"
        return self.factory()

    def use(self, factory: Callable[[], Notifier]) -> None:
        """The tasks' notifiers are built by ``factory`` from now on."""
        self.reset()
        self.factory = factory

    def reset(self) -> None:
        """Close the notifiers the worker built (their connections end)."""
        for task in self.tasks:
            task.close_notifier()
        self.factory = None


@pytest.fixture(scope="module")
def workbench() -> Iterator[Workbench]:
    bench = Workbench()
    with start_worker(bench.app, pool="solo", perform_ping_check=False):
        yield bench
    bench.app.close()


@pytest.fixture
def bench(workbench: Workbench) -> Iterator[Workbench]:
    """The shared app and worker; the test's notifiers are closed after it."""
    yield workbench
    workbench.reset()


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    """A Celery app without a worker, for tests that only register tasks."""
    app = Celery(f"test-{uuid.uuid4().hex}", set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


def statuses(sink: MemorySink, message_id: str) -> list[str]:
    assert {message_id} == {e.message_id for e in sink.events}
    return [e.status for e in sink.events]


def test_worker_delivers_a_queued_email(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """send_later() enqueues the message; the worker sends it to the SMTP server."""
    bench.use(lambda: Notifier(email=smtp(smtp_server), sinks=[sink]))
    message = email(sender="Shop <noreply@shop.example>")

    receipt = send_later(bench.send, message).get(timeout=TIMEOUT, interval=0.01)

    assert message.id == receipt["message_id"]
    [received] = smtp_server.messages
    assert f"<{message.id}@shop.example>" == received.message["Message-ID"]
    assert ["queued", "sent"] == statuses(sink, message.id)


def test_notifier_send_later_fills_defaults(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """Notifier.send_later() fills in the Notifier's sender before the worker sends the message."""
    bench.use(lambda: Notifier(email=smtp(smtp_server), sinks=[sink]))
    caller = Notifier(email=smtp(smtp_server), sender="Shop <noreply@shop.example>")
    message = email()

    caller.send_later(message, task=bench.send).get(timeout=TIMEOUT, interval=0.01)

    [received] = smtp_server.messages
    assert "Shop <noreply@shop.example>" == received.message["From"]
    assert ["queued", "sent"] == statuses(sink, message.id)


def test_transient_failure_is_retried_by_the_worker(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """A 451 on the first run re-enqueues the task; the second run delivers, same message id."""
    smtp_server.fail("MAIL", "451 4.3.0 Try again later", times=1)
    bench.use(lambda: Notifier(email=smtp(smtp_server), sinks=[sink], sender=SENDER))
    message = email()

    send_later(bench.send, message, template="welcome").get(timeout=TIMEOUT, interval=0.01)

    assert 1 == len(smtp_server.messages)
    assert ["queued", "attempt_failed", "failed", "queued", "sent"] == statuses(sink, message.id)
    assert {"welcome"} == {e.template for e in sink.events}
    assert "transient" == sink.events[1].error_kind


def test_failover_retries_inside_one_run(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """A failover composer fails over within the run: no task retry is needed."""
    down = ScriptedTransport([TransientError("busy")], name="primary")

    def factory() -> Notifier:
        failover = FailoverTransport([down, smtp(smtp_server)], retry=Retry(attempts=1))
        return Notifier(email=failover, sinks=[sink], sender=SENDER)

    bench.use(factory)
    message = email()

    send_later(bench.send, message).get(timeout=TIMEOUT, interval=0.01)

    assert ["queued", "attempt_failed", "sent"] == statuses(sink, message.id)
    assert 1 == len(smtp_server.messages)


def test_rejected_message_is_not_retried(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """A refused recipient fails the task at once: one run, nothing delivered."""
    smtp_server.fail("RCPT", "550 5.1.1 No such user", times=None)
    bench.use(lambda: Notifier(email=smtp(smtp_server), sinks=[sink], sender=SENDER))
    message = email()

    result = send_later(bench.send, message)
    result.get(timeout=TIMEOUT, interval=0.01, propagate=False)

    assert "FAILURE" == result.state
    assert ["queued", "attempt_failed", "failed"] == statuses(sink, message.id)
    assert [] == smtp_server.messages


def test_invalid_message_is_not_retried(bench: Workbench, sink: MemorySink) -> None:
    """A dict that is not a valid message fails the task once, before anything is sent."""
    calls: list[int] = []

    def factory() -> Notifier:
        calls.append(1)
        return Notifier(email=MemoryTransport(), sinks=[sink])

    bench.use(factory)

    result = bench.send.apply_async(
        args=({"type": "email", "to": ["not an address"], "text": "x"},)
    )
    result.get(timeout=TIMEOUT, interval=0.01, propagate=False)

    assert "FAILURE" == result.state
    assert [] == sink.events
    assert [] == calls  # refused before the notifier was even needed


def test_gives_up_after_the_last_run(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """A server that always answers 451 fails the task after retry.attempts runs."""
    smtp_server.fail("MAIL", "451 4.3.0 Try again later", times=None)
    bench.use(lambda: Notifier(email=smtp(smtp_server), sinks=[sink], sender=SENDER))
    message = email()

    result = send_later(bench.send_twice, message)
    result.get(timeout=TIMEOUT, interval=0.01, propagate=False)

    assert "FAILURE" == result.state
    assert 2 == statuses(sink, message.id).count("queued")


def test_maybe_delivered_is_not_resent_when_at_most_once(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """With resend_uncertain=False, a connection lost after DATA is not retried."""
    smtp_server.drop("DATA")
    bench.use(lambda: Notifier(email=smtp(smtp_server), sinks=[sink], sender=SENDER))
    message = email()

    result = send_later(bench.send_once, message)
    result.get(timeout=TIMEOUT, interval=0.01, propagate=False)

    assert "FAILURE" == result.state
    assert 1 == statuses(sink, message.id).count("queued")
    assert sink.events[-1].maybe_delivered
    assert 1 == len(smtp_server.messages)  # it did arrive: resending would duplicate it


def test_notify_later_enqueues_each_channel(
    bench: Workbench, smtp_server: SMTPServer, sink: MemorySink
) -> None:
    """notify_later() renders here and the worker sends the e-mail and the SMS separately."""

    class Renderer:
        def render(self, name: str, context: Any = None) -> Any:
            return SimpleNamespace(
                subject=f"Order {context['n']}",
                html="<p>Shipped</p>",
                text="Shipped",
                sms="Shipped",
            )

    texts = MemoryTransport()
    bench.use(lambda: Notifier(email=smtp(smtp_server), sms=texts, sinks=[sink]))
    here = Notifier(
        email=MemoryTransport(),
        sms=MemoryTransport(),
        templates=Renderer(),
        sender=SENDER,
        sms_sender="SHOPIN",
    )
    recipient = Recipient(email="asha@example.com", phone="+919876543210")

    results = notify_later(bench.send, here, "order_shipped", recipient, {"n": 7})
    for result in results.values():
        result.get(timeout=TIMEOUT, interval=0.01)  # type: ignore[union-attr]

    assert {"email", "sms"} == set(results)
    assert "Order 7" == smtp_server.messages[0].message["Subject"]
    assert "SHOPIN" == texts.outbox[0].sender  # type: ignore[union-attr]
    assert {"order_shipped"} == {e.template for e in sink.events}
    assert [] == here.email.outbox  # type: ignore[union-attr]  # nothing sent in the caller


def test_backoff_grows_and_honours_hints(celery_app: Celery) -> None:
    """Waits between runs follow the Retry policy, a provider's hint, and no_backoff()."""
    task = make_send_task(
        celery_app,
        Notifier,
        retry=Retry(attempts=5, initial=10.0, multiplier=3.0, maximum=60.0, jitter=0.0),
    )
    plain = TransientError("busy")
    hinted = TransientError("slow down", retry_after=45.0)

    assert [10.0, 30.0, 60.0] == [task.countdown(run, plain) for run in (1, 2, 3)]
    assert 45.0 == task.countdown(1, hinted)
    with no_backoff():
        assert 0.0 == task.countdown(3, plain)


def test_the_ready_task_uses_the_environment(celery_app: Celery) -> None:
    """Without a factory, the task is the ready notifykit.send configured by NOTIFYKIT_* variables."""
    task = make_send_task(celery_app)

    assert "notifykit.send" == task.name
    assert isinstance(task, SendTask)
    assert Notifier.from_env == task.notifykit_cache.factory


def test_celery_retry_options_are_refused(celery_app: Celery) -> None:
    """max_retries would fight the Retry policy: refused with the option to use."""
    with pytest.raises(ConfigurationError, match=r"retry=Retry"):
        make_send_task(celery_app, Notifier, max_retries=3)


def test_notify_later_in_a_language_picks_its_dlt_template(bench: Workbench) -> None:
    """locale= renders here and travels in the payload: the worker's MSG91 sends the Tamil flow."""
    from notifykit.templates import TemplateRenderer
    from notifykit.transports.msg91 import MSG91Transport
    from tests.servers.sms_fake import MSG91_KEY, SMSFakeServer

    templates = TemplateRenderer.from_dict(
        {
            "otp.txt": "{% block sms %}Your OTP is {{ code }}.{% endblock %}",
            "otp.ta.txt": "{% block sms %}உங்கள் OTP {{ code }}.{% endblock %}",
        }
    )
    with SMSFakeServer(hang_limit=5.0) as fake:
        fake.msg91_templates.update({"flow-en": ("code",), "flow-ta": ("code",)})
        bench.use(
            lambda: Notifier(
                sms=MSG91Transport(
                    authkey=MSG91_KEY,
                    base_url=fake.url,
                    templates={"otp": "flow-en", "otp.ta": "flow-ta"},
                    timeout=5,
                )
            )
        )
        here = Notifier(sms=MemoryTransport(), templates=templates, sms_sender="SHOPIN")
        results = here.notify_later(
            "otp.txt",
            Recipient(phone="+919876543210"),
            {"code": "4821"},
            task=bench.send,
            locale="ta",
            template_id="otp",
            variables={"code": "4821"},
        )
        results["sms"].get(timeout=TIMEOUT, interval=0.01)
        bench.reset()
    assert ["flow-ta"] == [r.json["template_id"] for r in fake.requests]
