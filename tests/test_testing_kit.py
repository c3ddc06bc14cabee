"""The public testing kit: ScriptedTransport, capture_sent, no_backoff and the pytest fixture."""

from __future__ import annotations

import pytest

import notifykit as nk
from notifykit.testing import MemoryTransport, ScriptedTransport, capture_sent
from notifykit.transports.failover import FailoverTransport


def email(subject: str = "Hi") -> nk.Email:
    return nk.Email(to="asha@example.com", subject=subject, text="t", sender="shop@example.com")


def test_scripted_transport_follows_its_script() -> None:
    """Each send takes the next step; after the script, `then` repeats; calls and sent are recorded."""
    t = ScriptedTransport([nk.TransientError("busy", retry_after=3.0), nk.ProviderError], then="ok")
    with pytest.raises(nk.TransientError) as first:
        t.send(email())
    assert 3.0 == first.value.retry_after
    with pytest.raises(nk.ProviderError):
        t.send(email())
    receipt = t.send(email())
    assert "sent" == receipt.attempts[-1].outcome
    assert 3 == len(t.calls)
    assert 1 == len(t.sent)


def test_scripted_errors_are_fresh_each_time() -> None:
    """A repeated scripted error is raised as a fresh copy, so attempts never pile up on one instance."""
    t = ScriptedTransport(then=nk.TransientError("busy"), name="s")
    errors = []
    for _ in range(3):
        with pytest.raises(nk.TransientError) as info:
            t.send(email())
        errors.append(info.value)
    assert [1, 1, 1] == [len(e.attempts) for e in errors]
    assert 3 == len({id(e) for e in errors})


def test_scripted_transport_refuses_bad_steps() -> None:
    """A script step that is not 'ok' or a DeliveryError is a ConfigurationError."""
    with pytest.raises(nk.ConfigurationError):
        ScriptedTransport(["fine"])


def test_capture_sent_intercepts_by_default() -> None:
    """Inside capture_sent() messages are recorded and not delivered; outside, delivery resumes."""
    memory = MemoryTransport()
    with capture_sent() as outbox:
        receipt = memory.send(email("captured"))
    assert ["captured"] == [m.subject for m in outbox]  # type: ignore[union-attr]
    assert [] == memory.outbox
    assert "sent" == receipt.attempts[-1].outcome
    memory.send(email("delivered"))
    assert ["delivered"] == [m.subject for m in memory.outbox]  # type: ignore[union-attr]
    assert 1 == len(outbox)


def test_capture_sent_with_delivery_records_composers_once() -> None:
    """With deliver=True a failover send is delivered and recorded once, not once per inner transport."""
    memory = MemoryTransport()
    composer = FailoverTransport([ScriptedTransport([nk.ProviderError("down")]), memory])
    with capture_sent(deliver=True) as outbox:
        composer.send(email())
    assert 1 == len(outbox)
    assert 1 == len(memory.outbox)


def test_notifykit_outbox_fixture(notifykit_outbox: list[nk.Email | nk.SMS]) -> None:
    """The pytest plugin's notifykit_outbox fixture captures what the test sends, undelivered."""
    memory = MemoryTransport()
    memory.send(email("from the fixture"))
    assert ["from the fixture"] == [m.subject for m in notifykit_outbox]  # type: ignore[union-attr]
    assert [] == memory.outbox


def test_memory_transport_outbox_and_clear() -> None:
    """MemoryTransport keeps messages in order and clear() empties it."""
    memory = nk.MemoryTransport()
    memory.send(email("a"))
    memory.send(nk.SMS("+919876543210", "b"))
    assert 2 == len(memory)
    memory.clear()
    assert [] == memory.outbox


def test_console_transport_prints_everything(capsys: pytest.CaptureFixture[str]) -> None:
    """ConsoleTransport writes headers, both bodies, attachments and SMS details to stderr."""
    console = nk.ConsoleTransport()
    console.send(
        nk.Email(
            to="asha@example.com",
            subject="Order",
            text="plain body",
            html="<p>html body</p>",
            sender="shop@example.com",
            attachments=[nk.Attachment("invoice.pdf", b"%PDF-1.4")],
        )
    )
    console.send(nk.SMS("+919876543210", "Order shipped", sender="SHOPIN"))
    err = capsys.readouterr().err
    for expected in (
        "Subject: Order",
        "plain body",
        "<p>html body</p>",
        "invoice.pdf application/pdf 8 bytes",
        "SMS to +919876543210",
        "Sender: SHOPIN",
        "Order shipped",
    ):
        assert expected in err
