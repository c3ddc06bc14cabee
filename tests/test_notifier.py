"""The Notifier: defaults, channels, templates, and the events it reports to sinks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

import notifykit as nk
from notifykit.notifier import Notifier, redact_recipient
from notifykit.sinks.base import DeliveryEvent
from notifykit.testing import ScriptedTransport
from notifykit.transports.failover import FailoverTransport


class ListSink:
    """The smallest sink: a list of events."""

    def __init__(self) -> None:
        self.events: list[DeliveryEvent] = []
        self.closed = False

    def record(self, event: DeliveryEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True

    def statuses(self) -> list[tuple[str, str | None]]:
        return [(e.status, e.transport) for e in self.events]


class RaisingSink:
    def record(self, event: DeliveryEvent) -> None:
        raise RuntimeError("disk full")


@attrs.frozen
class FakeRendered:
    subject: str
    html: str
    text: str
    sms: str | None


class DictRenderer:
    """Renders `{name}` placeholders; enough to test the Notifier without Jinja."""

    def __init__(self, templates: Mapping[str, FakeRendered]) -> None:
        self.templates = templates

    def render(self, name: str, context: Mapping[str, Any] | None = None) -> FakeRendered:
        if name not in self.templates:
            raise nk.TemplateError(f"unknown template {name!r}")
        t = self.templates[name]
        ctx = context or {}
        return FakeRendered(
            t.subject.format(**ctx),
            t.html.format(**ctx),
            t.text.format(**ctx),
            None if t.sms is None else t.sms.format(**ctx),
        )


RENDERER = DictRenderer(
    {
        "shipped": FakeRendered(
            "Order {n} shipped", "<p>Order {n}</p>", "Order {n}", "Order {n} shipped"
        ),
        "welcome": FakeRendered("Welcome", "<p>Hi</p>", "Hi", None),
    }
)


def email() -> nk.Email:
    return nk.Email(to="asha@example.com", subject="Hi", text="t")


def test_send_success_events_and_sender_default() -> None:
    """A successful send fills the default sender and records queued then sent with the provider id."""
    sink = ListSink()
    memory = nk.MemoryTransport()
    notifier = Notifier(email=memory, sinks=[sink], sender="Shop <noreply@shop.example>")
    receipt = notifier.send(email())
    assert "Shop <noreply@shop.example>" == memory.outbox[0].sender  # type: ignore[union-attr]
    assert [("queued", None), ("sent", "memory")] == sink.statuses()
    sent = sink.events[-1]
    assert receipt.provider_message_id == sent.provider_message_id
    assert ("asha@example.com",) == sent.recipients
    assert "Hi" == sent.subject
    assert 1 == sent.attempt


def test_failover_success_logs_failed_attempt_then_sent() -> None:
    """A failover that succeeds on the backup logs attempt_failed for the primary, then sent."""
    sink = ListSink()
    primary = ScriptedTransport([nk.ProviderError("535 auth failed")], name="primary")
    notifier = Notifier(email=FailoverTransport([primary, nk.MemoryTransport()]), sinks=[sink])
    notifier.send(email().replace(sender="shop@example.com"))
    assert [("queued", None), ("attempt_failed", "primary"), ("sent", "memory")] == sink.statuses()
    failed = sink.events[1]
    assert "provider" == failed.error_kind
    assert "535 auth failed" in (failed.error or "")
    assert 2 == sink.events[-1].attempt


def test_total_failure_logs_failed_and_raises() -> None:
    """When every transport fails the error is raised and the log has each attempt and a final failed."""
    sink = ListSink()
    a = ScriptedTransport(then=nk.ProviderError("down"), name="a")
    b = ScriptedTransport(then=nk.ProviderError("quota"), name="b")
    notifier = Notifier(email=FailoverTransport([a, b]), sinks=[sink], sender="shop@example.com")
    with pytest.raises(nk.AllTransportsFailed):
        notifier.send(email())
    assert ["queued", "attempt_failed", "attempt_failed", "failed"] == [
        e.status for e in sink.events
    ]
    assert "failed" == sink.events[-1].error_kind


def test_rejection_logged_as_failed_rejected() -> None:
    """A rejection is logged as failed with error_kind rejected and the refused recipients."""
    sink = ListSink()
    t = ScriptedTransport(
        [nk.RejectedError("550 no such user", rejected={"asha@example.com": "550"})]
    )
    notifier = Notifier(email=t, sinks=[sink], sender="shop@example.com")
    with pytest.raises(nk.RejectedError):
        notifier.send(email())
    last = sink.events[-1]
    assert ("failed", "rejected") == (last.status, last.error_kind)
    assert {"asha@example.com": "550"} == dict(last.rejected)


def test_raising_sink_does_not_block_delivery(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that raises is logged and counted; the message is still delivered and other sinks still record."""
    good = ListSink()
    memory = nk.MemoryTransport()
    notifier = Notifier(email=memory, sinks=[RaisingSink(), good], sender="shop@example.com")
    with caplog.at_level(logging.ERROR, logger="notifykit"):
        notifier.send(email())
    assert 1 == len(memory.outbox)
    assert 2 == notifier.sink_failures
    assert ["queued", "sent"] == [e.status for e in good.events]
    assert "disk full" in caplog.text


def test_strict_sinks_raise() -> None:
    """With strict_sinks=True a failing sink raises, for tests that must see it."""
    notifier = Notifier(email=nk.MemoryTransport(), sinks=[RaisingSink()], strict_sinks=True)
    with pytest.raises(RuntimeError):
        notifier.send(email().replace(sender="shop@example.com"))


def test_redacted_recipients() -> None:
    """With redact_recipients=True the log holds masked addresses and numbers only."""
    sink = ListSink()
    notifier = Notifier(
        email=nk.MemoryTransport(),
        sms=nk.MemoryTransport(),
        sinks=[sink],
        redact_recipients=True,
        sender="shop@example.com",
    )
    notifier.send(email())
    notifier.send(nk.SMS("+919876543210", "hi"))
    assert ("a***@example.com",) == sink.events[0].recipients
    assert ("+91******3210",) == sink.events[-1].recipients
    assert "+91******3210" == redact_recipient("+919876543210")


def test_send_email_from_template_with_overrides() -> None:
    """send_email renders the template, applies overrides and records the template name."""
    sink = ListSink()
    memory = nk.MemoryTransport()
    notifier = Notifier(email=memory, templates=RENDERER, sinks=[sink], sender="shop@example.com")
    notifier.send_email(
        "shipped", to="asha@example.com", context={"n": 7}, tags=["orders"], cc="b@example.com"
    )
    sent = memory.outbox[0]
    assert isinstance(sent, nk.Email)
    assert ("Order 7 shipped", "<p>Order 7</p>", "Order 7") == (sent.subject, sent.html, sent.text)
    assert ("b@example.com",) == sent.cc
    assert {"shipped"} == {e.template for e in sink.events}
    assert {("orders",)} == {e.tags for e in sink.events}


def test_send_sms_uses_region_and_sender() -> None:
    """send_sms renders the sms block, parses a national number with default_region and sets the sender."""
    memory = nk.MemoryTransport()
    notifier = Notifier(sms=memory, templates=RENDERER, sms_sender="SHOPIN", default_region="IN")
    notifier.send_sms(
        "shipped", to="98765 43210", context={"n": 7}, template_id="1107", variables={"n": 7}
    )
    sms = memory.outbox[0]
    assert isinstance(sms, nk.SMS)
    assert ("+919876543210", "Order 7 shipped", "SHOPIN", "1107") == (
        sms.to,
        sms.body,
        sms.sender,
        sms.template_id,
    )


def test_send_sms_without_block_is_template_error() -> None:
    """A template with no sms block cannot be sent as an SMS: TemplateError, nothing sent."""
    memory = nk.MemoryTransport()
    notifier = Notifier(sms=memory, templates=RENDERER)
    with pytest.raises(nk.TemplateError):
        notifier.send_sms("welcome", to="+919876543210")
    assert [] == memory.outbox


def test_notify_every_channel_and_isolates_failures() -> None:
    """notify() sends on every channel the template and recipient share; a failing channel doesn't stop the other."""
    memory = nk.MemoryTransport()
    failing_sms = ScriptedTransport(then=nk.ProviderError("no balance"), channels=["sms"])
    notifier = Notifier(
        email=memory, sms=failing_sms, templates=RENDERER, sender="shop@example.com"
    )
    results = notifier.notify(
        "shipped",
        to=nk.Recipient(email="asha@example.com", phone="+919876543210"),
        context={"n": 1},
    )
    assert {"email", "sms"} == set(results)
    assert isinstance(results["email"], nk.Receipt)
    assert isinstance(results["sms"], nk.ProviderError)
    only_email = notifier.notify(
        "welcome", to=nk.Recipient(email="a@example.com", phone="+919876543210")
    )
    assert {"email"} == set(only_email)


def test_notify_unreachable_is_an_error() -> None:
    """notify() with no channel in common is a ConfigurationError, never a silent no-op."""
    notifier = Notifier(email=nk.MemoryTransport(), templates=RENDERER, sender="shop@example.com")
    with pytest.raises(nk.ConfigurationError):
        notifier.notify("welcome", to=nk.Recipient(phone="+919876543210"))


def test_missing_transport_and_bad_overrides() -> None:
    """No transport for a channel is a ConfigurationError; an unknown field is InvalidMessage."""
    notifier = Notifier(email=nk.MemoryTransport(), templates=RENDERER, sender="shop@example.com")
    with pytest.raises(nk.ConfigurationError):
        notifier.send(nk.SMS("+919876543210", "hi"))
    with pytest.raises(nk.InvalidMessage):
        notifier.send_email("welcome", to="a@example.com", colour="red")
    with pytest.raises(nk.InvalidMessage):
        Notifier(sender="not an address")


def test_context_manager_closes_transports_and_sinks() -> None:
    """Leaving `with Notifier(...)` closes each transport once and closes the sinks."""
    closes: list[str] = []

    class Tracking(nk.MemoryTransport):
        def close(self) -> None:
            closes.append(self.name)

    sink = ListSink()
    shared = Tracking()
    with Notifier(email=shared, sms=shared, sinks=[sink]):
        pass
    assert ["memory"] == closes
    assert sink.closed


def test_threads_share_one_notifier() -> None:
    """Many threads sending through one Notifier: every message is sent and logged exactly once."""
    sink = ListSink()
    memory = nk.MemoryTransport()
    notifier = Notifier(email=memory, sinks=[sink], sender="shop@example.com")
    threads = [
        threading.Thread(target=lambda: [notifier.send(email()) for _ in range(100)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 800 == len(memory.outbox)
    assert 800 == sum(1 for e in sink.events if e.status == "sent")
