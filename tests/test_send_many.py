"""Notifier.send_many: concurrent bulk sends with failures mixed in, against a real SMTP server."""

from __future__ import annotations

import threading

import pytest

import notifykit as nk
from notifykit.sinks.memory import MemorySink
from notifykit.testing import ScriptedTransport

pytest.importorskip("aiosmtpd")

from tests.servers.timed import TimedSMTPServer

TEMPLATES = {
    "hello.html": (
        "{% block subject %}Hello {{ name }}{% endblock %}"
        "{% block html %}<p>Hi {{ name }}, order {{ order }}.</p>{% endblock %}"
        "{% block sms %}Hi {{ name }}{% endblock %}"
    )
}


def renderer() -> nk.TemplateRenderer:
    return nk.TemplateRenderer.from_dict(TEMPLATES, inliner=None)


def test_send_many_delivers_all_and_reports_each_failure_in_order() -> None:
    """Good rows arrive; a template error and a bad address fail alone, are logged, and come back in order."""
    sink = MemorySink()
    progress: list[tuple[int, str]] = []
    rows: list[tuple[object, dict[str, object] | None]] = []
    for i in range(12):
        rows.append((f"user{i}@example.com", {"name": f"U{i}", "order": i}))
    rows[3] = ("user3@example.com", {"name": "no order"})  # template error: 'order' undefined
    rows[7] = ("not an address", {"name": "X", "order": 7})  # invalid address
    with TimedSMTPServer(delay=0.002) as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none")
        notifier = nk.Notifier(
            email=smtp, templates=renderer(), sinks=[sink], sender="shop@example.com"
        )
        with notifier:
            results = notifier.send_many(
                "hello.html",
                rows,
                concurrency=4,
                on_progress=lambda i, r: progress.append((i, type(r).__name__)),
                tags=["bulk"],
            )
    assert 12 == len(results)
    assert isinstance(results[3], nk.TemplateError)
    assert isinstance(results[7], nk.InvalidMessage)
    ok = [i for i, r in enumerate(results) if isinstance(r, nk.Receipt)]
    assert [i for i in range(12) if i not in (3, 7)] == ok
    assert 10 == len(server.arrivals)
    assert sorted(i for i, _ in progress) == list(range(12))
    failed = [e for e in sink.events if e.status == "failed"]
    assert 2 == len(failed)
    assert {("user3@example.com",), ("not an address",)} == {e.recipients for e in failed}
    assert all(e.template == "hello.html" for e in failed)
    sent = [e for e in sink.events if e.status == "sent"]
    assert 10 == len(sent)
    assert all(e.tags == ("bulk",) for e in sent)


def test_send_many_runs_concurrently() -> None:
    """concurrency=4 has four messages at the server at once."""
    with TimedSMTPServer(gather=4) as server:
        notifier = nk.Notifier(
            email=nk.SMTPTransport("127.0.0.1", server.port, security="none"),
            templates=renderer(),
            sender="shop@example.com",
        )
        with notifier:
            rows = [(f"u{i}@example.com", {"name": "A", "order": i}) for i in range(4)]
            results = notifier.send_many("hello.html", rows, concurrency=4)
    assert all(isinstance(r, nk.Receipt) for r in results)
    assert 4 == server.max_in_flight


def test_delivery_failures_do_not_stop_the_rest() -> None:
    """A transport failing every other message: each failure is a result, the rest are delivered."""
    flaky = ScriptedTransport(
        ["ok", nk.RejectedError("550 no such user"), "ok", nk.ProviderError("535 auth"), "ok"]
    )
    sink = MemorySink()
    notifier = nk.Notifier(
        email=flaky, templates=renderer(), sinks=[sink], sender="shop@example.com"
    )
    rows = [(f"u{i}@example.com", {"name": "A", "order": i}) for i in range(5)]
    results = notifier.send_many("hello.html", rows, concurrency=1)
    assert ["Receipt", "RejectedError", "Receipt", "ProviderError", "Receipt"] == [
        type(r).__name__ for r in results
    ]
    assert 2 == len([e for e in sink.events if e.status == "failed"])


def test_send_many_sms_and_rate_limit_shared_by_threads() -> None:
    """channel="sms" renders the sms block; the transport's rate holds across the workers."""
    memory = nk.MemoryTransport()
    memory.rate_limit = nk.RateLimit(20, 1.0)
    notifier = nk.Notifier(sms=memory, templates=renderer(), default_region="IN")
    rows = [(f"+9198765432{i:02d}", {"name": f"N{i}", "order": i}) for i in range(5)]
    results = notifier.send_many("hello.html", rows, channel="sms", concurrency=3)
    assert all(isinstance(r, nk.Receipt) for r in results)
    assert sorted(m.body for m in memory.outbox) == sorted(f"Hi N{i}" for i in range(5))


def test_send_many_checks_its_setup_before_sending() -> None:
    notifier = nk.Notifier(templates=renderer())
    with pytest.raises(nk.ConfigurationError, match="no email transport"):
        notifier.send_many("hello.html", [("a@example.com", {})])
    notifier = nk.Notifier(email=nk.MemoryTransport())
    with pytest.raises(nk.ConfigurationError, match="no templates"):
        notifier.send_many("hello.html", [("a@example.com", {})])
    notifier = nk.Notifier(email=nk.MemoryTransport(), templates=renderer())
    with pytest.raises(nk.ConfigurationError, match="concurrency"):
        notifier.send_many("hello.html", [("a@example.com", {})], concurrency=0)
    with pytest.raises(nk.InvalidMessage, match="pairs"):
        notifier.send_many("hello.html", ["a@example.com"])  # type: ignore[list-item]
    assert [] == notifier.send_many("hello.html", [])


def test_a_failing_progress_callback_does_not_stop_the_send() -> None:
    memory = nk.MemoryTransport()
    notifier = nk.Notifier(email=memory, templates=renderer(), sender="shop@example.com")
    calls = threading.Semaphore(0)

    def progress(index: int, result: object) -> None:
        calls.release()
        raise RuntimeError("bug in the caller's callback")

    rows = [(f"u{i}@example.com", {"name": "A", "order": i}) for i in range(3)]
    results = notifier.send_many("hello.html", rows, on_progress=progress)
    assert 3 == len(memory.outbox) == len(results)
