"""The SQLite outbox and its worker, against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("aiosmtpd")  # the tests talk to real SMTP servers

from notifykit import Email, Notifier
from notifykit.errors import ConfigurationError, InvalidMessage, TemplateError
from notifykit.notifier import DUPLICATE
from notifykit.outbox import Backoff, SQLiteOutbox, Worker
from notifykit.templates import TemplateRenderer
from notifykit.transports.smtp import SMTPTransport
from tests.outbox.conftest import _open, smtp_notifier
from tests.servers.smtp import SMTPServer

FAST = Backoff(initial=0.05, multiplier=1.0, maximum=0.05, jitter=0.0)


def email(subject: str = "Hello", **fields: object) -> Email:
    return Email(to="asha@example.com", subject=subject, text="body", **fields)  # type: ignore[arg-type]


def subjects(server: SMTPServer) -> list[str]:
    return [str(m.message["Subject"]) for m in server.messages]


def run_until(worker: Worker, condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.run_once()
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


# -- enqueue ---------------------------------------------------------------------


def test_enqueue_returns_the_id_of_a_committed_row(outbox: SQLiteOutbox, notifier: Notifier):
    message_id = notifier.enqueue(email())
    # Another connection (as another process would) sees the row at once.
    with sqlite3.connect(outbox.path) as other:
        row = other.execute("SELECT state, message FROM outbox WHERE id = ?", (message_id,))
        state, payload = row.fetchone()
    assert state == "queued"
    stored = json.loads(payload)
    assert stored["id"] == message_id
    assert stored["sender"] == "Shop <shop@example.com>"  # the Notifier's defaults are filled in


def test_enqueue_from_another_process_is_durable_before_it_returns(tmp_path: Path):
    # The child enqueues, prints the id, then dies by SIGKILL: no clean shutdown.
    path = tmp_path / "outbox.db"
    code = (
        "import os, signal\n"
        "from notifykit import Email, Notifier\n"
        "from notifykit.outbox import SQLiteOutbox\n"
        f"n = Notifier(email=None, outbox=SQLiteOutbox({str(path)!r}))\n"
        "print(n.enqueue(Email(to='a@example.com', sender='s@example.com', subject='x', "
        "text='y')), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9
    message_id = proc.stdout.strip()
    with SQLiteOutbox(path) as box:
        entry = box.get(message_id)
    assert entry is not None
    assert entry.state == "queued"


def test_enqueue_a_template(outbox: SQLiteOutbox, smtp_server: SMTPServer):
    renderer = TemplateRenderer.from_dict(
        {
            "order": "{% block subject %}Order {{ n }}{% endblock %}"
            "{% block html %}<p>Hi {{ name }}</p>{% endblock %}"
        }
    )
    notifier = smtp_notifier(smtp_server, outbox)
    notifier.templates = renderer
    message_id = notifier.enqueue("order", to="asha@example.com", context={"n": 7, "name": "Asha"})
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.template == "order"
    assert entry.subject == "Order 7"
    run_until(Worker(outbox, notifier), lambda: len(smtp_server.messages) == 1)
    assert subjects(smtp_server) == ["Order 7"]
    with pytest.raises(TemplateError):
        notifier.enqueue("order", to="+919876543210", channel="sms")


def test_enqueue_bad_input_is_a_clear_error(outbox: SQLiteOutbox, notifier: Notifier):
    with pytest.raises(InvalidMessage, match="timezone-aware"):
        notifier.enqueue(email(), send_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidMessage, match="priority"):
        notifier.enqueue(email(), priority="high")  # type: ignore[arg-type]
    with pytest.raises(InvalidMessage, match="takes no to"):
        notifier.enqueue(email(), to="b@example.com")
    with pytest.raises(ConfigurationError, match="no outbox"):
        Notifier().enqueue(email())
    with pytest.raises(ConfigurationError, match="durable"):
        SQLiteOutbox(":memory:")
    assert outbox.counts()["queued"] == 0


def test_the_same_message_is_stored_once(outbox: SQLiteOutbox, notifier: Notifier):
    message = email()
    assert notifier.enqueue(message) == notifier.enqueue(message) == message.id
    assert outbox.counts()["queued"] == 1


# -- scheduling and priority -----------------------------------------------------


def test_send_at_is_honoured_within_the_poll_interval(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    # A long poll interval: the worker must wake up for the scheduled row by itself
    # (it sleeps until the next due row), not find it at its next poll.
    poll = 30.0
    send_at = datetime.now(timezone.utc) + timedelta(seconds=0.8)
    notifier.enqueue(email("later"), send_at=send_at)
    notifier.enqueue(email("now"))
    with Worker(outbox, notifier, poll_interval=poll):
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) == 2, timeout=20)
        arrived = datetime.now(timezone.utc)
    assert subjects(smtp_server) == ["now", "later"]
    assert arrived >= send_at
    assert arrived - send_at < timedelta(seconds=poll / 2)  # long before the next poll


def test_a_row_enqueued_while_the_worker_sleeps_waits_at_most_a_poll(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    with Worker(outbox, notifier, poll_interval=0.3):
        time.sleep(0.5)  # the worker is idle, asleep
        enqueued = time.monotonic()
        notifier.enqueue(email())
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) == 1, timeout=20)
        waited = time.monotonic() - enqueued
    assert waited < 0.3 + 5  # one poll interval, plus generous room for a loaded machine


def test_higher_priority_goes_first(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    for i in range(4):
        notifier.enqueue(email(f"low{i}"))
    for i in range(3):
        notifier.enqueue(email(f"high{i}"), priority=10)
    notifier.enqueue(email("mid"), priority=5)
    run_until(Worker(outbox, notifier, batch=1), lambda: len(smtp_server.messages) == 8)
    assert subjects(smtp_server) == [
        "high0", "high1", "high2", "mid", "low0", "low1", "low2", "low3",
    ]  # fmt: skip


# -- idempotency keys ------------------------------------------------------------


def test_enqueue_then_send_with_the_same_key_delivers_once(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    first = notifier.enqueue(email("first"), idempotency_key="order-42")
    receipt = notifier.send(email("second", idempotency_key="order-42"))
    assert receipt.transport == DUPLICATE
    assert receipt.message_id == first
    again = notifier.enqueue(email("third"), idempotency_key="order-42")
    assert again == first
    run_until(Worker(outbox, notifier), lambda: outbox.counts()["sent"] == 1)
    assert subjects(smtp_server) == ["first"]
    entry = outbox.get(first)
    assert entry is not None
    assert entry.idempotency_key == "order-42"


def test_send_then_enqueue_with_the_same_key_delivers_once(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    sent = notifier.send(email("direct", idempotency_key="k1"))
    assert sent.transport != DUPLICATE
    assert notifier.enqueue(email("queued"), idempotency_key="k1") == sent.message_id
    assert outbox.counts() == {"queued": 0, "leased": 0, "sent": 0, "dead": 0}
    assert notifier.send(email("direct again", idempotency_key="k1")).transport == DUPLICATE
    assert subjects(smtp_server) == ["direct"]


def test_a_send_that_certainly_failed_frees_its_key(outbox: SQLiteOutbox, smtp_server: SMTPServer):
    notifier = smtp_notifier(smtp_server, outbox)
    smtp_server.fail("MAIL", "451 4.3.0 try again later")
    with pytest.raises(Exception, match="451"):
        notifier.send(email("one", idempotency_key="k2"))
    assert notifier.send(email("two", idempotency_key="k2")).transport != DUPLICATE
    assert subjects(smtp_server) == ["two"]


def test_a_send_that_maybe_delivered_keeps_its_key(outbox: SQLiteOutbox, smtp_server: SMTPServer):
    notifier = smtp_notifier(smtp_server, outbox)
    smtp_server.drop("DATA")  # received, but the reply is lost
    with pytest.raises(Exception) as info:
        notifier.send(email("one", idempotency_key="k3"))
    assert getattr(info.value, "maybe_delivered", False)
    assert notifier.send(email("two", idempotency_key="k3")).transport == DUPLICATE
    assert subjects(smtp_server) == ["one"]


def test_keys_expire_after_the_window(tmp_path: Path, smtp_server: SMTPServer):
    with SQLiteOutbox(tmp_path / "o.db", idempotency_window=0.3) as box:
        notifier = smtp_notifier(smtp_server, box)
        notifier.send(email("one", idempotency_key="k4"))
        assert notifier.send(email("two", idempotency_key="k4")).transport == DUPLICATE
        time.sleep(0.4)
        assert notifier.send(email("three", idempotency_key="k4")).transport != DUPLICATE
    assert subjects(smtp_server) == ["one", "three"]


# -- leases ----------------------------------------------------------------------


def test_a_dead_workers_lease_expires_and_another_takes_over(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    message_id = notifier.enqueue(email())
    # Worker "a" claims the row and records an attempt, then dies (never finishes).
    [claim] = outbox.claim("a", limit=5, lease=0.3)
    assert outbox.begin_attempt("a", claim.id) == 1
    b = Worker(outbox, notifier, name="b")
    assert b.run_once() == 0  # the lease still holds
    time.sleep(0.35)
    assert b.run_once() == 1
    assert subjects(smtp_server) == ["Hello"]
    attempts = outbox.attempts(message_id)
    assert [(a.outcome, a.maybe_delivered, a.worker) for a in attempts] == [
        ("interrupted", True, "a"),
        ("sent", False, "b"),
    ]
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "sent"
    assert entry.maybe_delivered
    # The dead worker's late answer cannot take the row back.
    assert outbox.begin_attempt("a", message_id) is None


def test_a_row_claimed_but_never_tried_is_not_maybe_delivered(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    message_id = notifier.enqueue(email())
    outbox.claim("a", limit=5, lease=0.1)
    time.sleep(0.15)
    Worker(outbox, notifier, name="b").run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "sent"
    assert not entry.maybe_delivered
    assert [a.outcome for a in outbox.attempts(message_id)] == ["sent"]


def test_the_lease_is_renewed_while_a_slow_send_runs(outbox: SQLiteOutbox, smtp_server: SMTPServer):
    slow = smtp_notifier(smtp_server, outbox, timeout=1.5)
    message_id = slow.enqueue(email())
    smtp_server.hang("DATA")  # no answer: the client times out after 1.5 s
    a = Worker(outbox, slow, lease=0.3, poll_interval=0.05, backoff=FAST, name="a")
    b = Worker(outbox, slow, lease=0.3, name="b")
    with a:
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) == 1, timeout=5)
        for _ in range(10):  # 1 s: more than three leases
            assert b.run_once() == 0
            time.sleep(0.1)
        assert smtp_server.wait_for(lambda: outbox.counts()["sent"] == 1, timeout=10)
    # The timed-out attempt is recorded as maybe delivered; the retry sent it again.
    assert len(smtp_server.messages) == 2
    attempts = outbox.attempts(message_id)
    assert [(x.outcome, x.maybe_delivered, x.worker) for x in attempts] == [
        ("transient", True, "a"),
        ("sent", False, "a"),
    ]


# -- retries and dead letters ----------------------------------------------------


def test_rejected_is_dead_lettered_at_once(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    smtp_server.fail("RCPT", "550 5.1.1 No such user", times=None)
    message_id = notifier.enqueue(email())
    worker = Worker(outbox, notifier, backoff=FAST)
    worker.run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "dead"
    assert entry.attempts == 1
    assert entry.last_error is not None
    assert "550" in entry.last_error
    assert "RejectedError" in entry.last_error
    assert worker.dead == 1
    assert smtp_server.messages == []


def test_transient_failures_back_off_then_dead_letter(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    smtp_server.fail("MAIL", "451 4.3.0 greylisted", times=None)
    message_id = notifier.enqueue(email())
    backoff = Backoff(initial=0.1, multiplier=2.0, maximum=10, jitter=0.0, max_attempts=3)
    worker = Worker(outbox, notifier, backoff=backoff)
    worker.run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "queued"
    assert entry.attempts == 1
    assert entry.due_at > datetime.now(timezone.utc)  # not due again yet
    assert worker.run_once() == 0
    run_until(worker, lambda: outbox.counts()["dead"] == 1)
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.attempts == 3
    assert entry.last_error is not None
    assert entry.last_error.startswith("gave up after 3 attempts")
    assert "451" in entry.last_error
    assert [a.outcome for a in outbox.attempts(message_id)] == ["transient"] * 3


def test_max_age_dead_letters(outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer):
    smtp_server.fail("MAIL", "421 4.3.2 down", times=None)
    message_id = notifier.enqueue(email())
    Worker(outbox, notifier, backoff=Backoff(initial=60, max_age=30)).run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "dead"
    assert "max_age=30s" in str(entry.last_error)


def test_a_maybe_delivered_attempt_is_the_only_duplicate(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    smtp_server.drop("DATA")  # the server keeps the message, the client sees no reply
    message_id = notifier.enqueue(email())
    run_until(Worker(outbox, notifier, backoff=FAST), lambda: outbox.counts()["sent"] == 1)
    assert subjects(smtp_server) == ["Hello", "Hello"]
    assert [(a.outcome, a.maybe_delivered) for a in outbox.attempts(message_id)] == [
        ("transient", True),
        ("sent", False),
    ]


def test_a_failure_before_the_hand_over_is_retried_without_duplicate(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    smtp_server.fail("RCPT", "452 4.2.2 mailbox full", times=2)
    message_id = notifier.enqueue(email())
    run_until(Worker(outbox, notifier, backoff=FAST), lambda: outbox.counts()["sent"] == 1)
    assert subjects(smtp_server) == ["Hello"]
    assert [(a.outcome, a.maybe_delivered) for a in outbox.attempts(message_id)] == [
        ("transient", False),
        ("transient", False),
        ("sent", False),
    ]


def test_backoff_grows_and_honours_retry_after():
    b = Backoff(initial=60, multiplier=2, maximum=3600, jitter=0)
    assert [b.delay(n) for n in (1, 2, 3, 7, 8)] == [60, 120, 240, 3600, 3600]
    assert b.delay(1, retry_after=300) == 300
    assert b.delay(1, retry_after=10**6) == 3600
    with pytest.raises(ConfigurationError):
        Backoff(multiplier=0.5)
    with pytest.raises(ConfigurationError):
        Backoff(max_attempts=0)
    with pytest.raises(ConfigurationError):
        Worker(SQLiteOutbox.__new__(SQLiteOutbox), Notifier(), lease=0)


# -- the in-process worker thread --------------------------------------------------


def test_outbox_start_runs_a_worker_thread(
    outbox: SQLiteOutbox, notifier: Notifier, smtp_server: SMTPServer
):
    worker = outbox.start(notifier, poll_interval=0.05)
    try:
        for i in range(20):
            notifier.enqueue(email(f"m{i}"))
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) == 20, timeout=20)
    finally:
        worker.stop()
    assert worker.sent == 20
    assert sorted(subjects(smtp_server)) == sorted(f"m{i}" for i in range(20))


def test_two_workers_share_the_work_without_duplicates(tmp_path: Path, smtp_server: SMTPServer):
    box1, box2 = SQLiteOutbox(tmp_path / "o.db"), SQLiteOutbox(tmp_path / "o.db")
    n1, n2 = smtp_notifier(smtp_server, box1), smtp_notifier(smtp_server, box2)
    for i in range(60):
        n1.enqueue(email(f"m{i}"))
    with (
        Worker(box1, n1, poll_interval=0.05, batch=3),
        Worker(box2, n2, poll_interval=0.05, batch=3),
    ):
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) >= 60, timeout=30)
        time.sleep(0.2)
    assert sorted(subjects(smtp_server)) == sorted(f"m{i}" for i in range(60))
    box1.close()
    box2.close()


def test_a_worker_survives_a_broken_transport(outbox: SQLiteOutbox, closed_port: int):
    notifier = Notifier(
        email=SMTPTransport("127.0.0.1", closed_port, security="none", timeout=2),
        sender="s@example.com",
        outbox=outbox,
    )
    _open.append(notifier)
    message_id = notifier.enqueue(email())
    worker = Worker(outbox, notifier, backoff=FAST)
    worker.run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "queued"
    assert not entry.maybe_delivered
    assert entry.last_error is not None
    assert "TransientError" in entry.last_error


def test_connections_of_finished_threads_are_closed(outbox: SQLiteOutbox, notifier: Notifier):
    import threading

    def enqueue() -> None:
        notifier.enqueue(email())

    for _ in range(20):  # a thread per request, as some servers do
        t = threading.Thread(target=enqueue)
        t.start()
        t.join()
    outbox.counts()  # this thread's connection: the finished threads' ones are closed
    assert len(outbox._all) <= 2
    assert outbox.counts()["queued"] == 20


def test_a_late_answer_from_a_worker_that_lost_its_lease(outbox: SQLiteOutbox, notifier: Notifier):
    from notifykit.receipt import Receipt

    message_id = notifier.enqueue(email())
    outbox.claim("a", limit=1, lease=-1)  # already expired: "a" was paused too long
    assert outbox.begin_attempt("a", message_id) == 1
    [claim] = outbox.claim("b", limit=1, lease=60)
    assert claim.maybe_delivered  # a's attempt is in flight: interrupted, maybe delivered
    assert outbox.begin_attempt("b", message_id) == 2
    # "a" wakes up and reports a failure: its attempt is recorded, b's lease is untouched.
    outbox.mark_failed(
        "a", message_id, 1, outcome="transient", error="late", maybe_delivered=False, retry_at=0
    )
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "leased"
    assert outbox.renew("b", [message_id], 60) == set()
    outbox.mark_sent("b", message_id, 2, Receipt(message_id=message_id, transport="smtp:x"))
    # A late success from "a" cannot undo "sent"; a late failure cannot either.
    outbox.mark_failed(
        "a", message_id, 1, outcome="transient", error="late", maybe_delivered=False, retry_at=None
    )
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "sent"
    assert entry.transport == "smtp:x"
    assert [(a.number, a.worker, a.maybe_delivered) for a in outbox.attempts(message_id)] == [
        (1, "a", True),
        (2, "b", False),
    ]
    assert outbox.renew("b", [message_id], 60) == {message_id}  # finished: nothing to renew


def test_an_unexpected_error_is_retried_as_maybe_delivered_and_masked(outbox: SQLiteOutbox):
    class Broken:
        def send(self, message: object, *, template: str | None = None) -> object:
            raise RuntimeError("cannot reach redis://:hunter2-secret@10.0.0.5:6379/0")

    message_id = outbox.add(email(sender="s@example.com"))
    worker = Worker(outbox, Broken(), backoff=FAST)  # type: ignore[arg-type]
    worker.run_once()
    entry = outbox.get(message_id)
    assert entry is not None
    assert entry.state == "queued"
    assert entry.maybe_delivered  # nobody knows how far it got
    assert entry.last_error is not None
    assert entry.last_error.startswith("RuntimeError: cannot reach")
    assert "hunter2-secret" not in entry.last_error


def test_a_suppressed_send_frees_its_key(
    outbox: SQLiteOutbox, smtp_server: SMTPServer, tmp_path: Path
):
    from notifykit.errors import RejectedError
    from notifykit.suppression import SQLiteSuppressionList

    suppression = SQLiteSuppressionList(tmp_path / "suppression.db")
    suppression.add("asha@example.com", "hard bounce")
    notifier = smtp_notifier(smtp_server, outbox)
    notifier.suppression = suppression
    with pytest.raises(RejectedError):
        notifier.send(email("refused", idempotency_key="k5"))
    suppression.remove("asha@example.com")
    assert notifier.send(email("later", idempotency_key="k5")).transport != DUPLICATE
    assert subjects(smtp_server) == ["later"]
    suppression.close()
