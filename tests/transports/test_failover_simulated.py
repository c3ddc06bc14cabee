"""Failover and what the caller is told: maybe-delivered errors, simulated transports."""

from __future__ import annotations

import logging

import pytest

import notifykit as nk
from notifykit.retry import Retry
from notifykit.sinks.memory import MemorySink
from notifykit.testing import ScriptedTransport, no_backoff


def email(n: int = 0) -> nk.Email:
    return nk.Email(
        to="asha@example.com", subject=f"Order {n}", text="shipped", sender="shop@example.com"
    )


def test_all_failed_is_maybe_delivered_if_any_attempt_was() -> None:
    """An early maybe-delivered attempt makes AllTransportsFailed.maybe_delivered True, and the log says so."""
    primary = ScriptedTransport(
        [nk.TransientError("connection lost after DATA", maybe_delivered=True)],
        then=nk.TransientError("451 busy"),
        name="primary",
    )
    backup = ScriptedTransport(then=nk.ProviderError("535 auth"), name="backup")
    sink = MemorySink()
    notifier = nk.Notifier(
        email=nk.FailoverTransport([primary, backup], retry=Retry(attempts=2)), sinks=[sink]
    )
    with no_backoff(), pytest.raises(nk.AllTransportsFailed) as info:
        notifier.send(email())
    assert not any(e.maybe_delivered for e in info.value.errors)  # each transport's LAST error
    assert info.value.maybe_delivered
    failed = [e for e in sink.events if e.status == "failed"]
    assert [True] == [e.maybe_delivered for e in failed]


def test_receipts_of_simulated_transports_say_so() -> None:
    assert nk.MemoryTransport().send(email()).simulated
    assert nk.MemoryTransport.simulated
    assert nk.ConsoleTransport.simulated
    assert nk.FileTransport.simulated
    assert not ScriptedTransport().send(email()).simulated
    assert not nk.SMTPTransport.simulated


def test_failover_ending_on_a_simulated_transport_warns(caplog: pytest.LogCaptureFixture) -> None:
    """A real transport failed and only the memory transport took the message: a WARNING, a flag."""
    real = ScriptedTransport(then=nk.ProviderError("STARTTLS not offered"), name="smtp:real")
    composer = nk.FailoverTransport([real, nk.MemoryTransport()])
    with caplog.at_level(logging.WARNING, logger="notifykit"):
        receipt = composer.send(email())
    assert receipt.simulated
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 == len(warnings)
    assert "NOT delivered" in warnings[0].getMessage()
    assert "smtp:real" in warnings[0].getMessage()
    # The next message skips the resting real transport: still a warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="notifykit"):
        assert composer.send(email(1)).simulated
    assert 1 == len([r for r in caplog.records if r.levelno == logging.WARNING])


def test_round_robin_ending_on_simulated_warns(caplog: pytest.LogCaptureFixture) -> None:
    real = ScriptedTransport(then=nk.TransientError("refused"), name="smtp:real")
    composer = nk.RoundRobinTransport([real, nk.MemoryTransport()])
    with caplog.at_level(logging.WARNING, logger="notifykit"):
        assert composer.send(email()).simulated
    assert any("NOT delivered" in r.getMessage() for r in caplog.records)


def test_no_warning_when_the_real_transport_delivers_or_only_simulated_ones_exist(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="notifykit"):
        receipt = nk.FailoverTransport([ScriptedTransport(), nk.MemoryTransport()]).send(email())
        assert not receipt.simulated
        assert nk.FailoverTransport([nk.MemoryTransport()]).send(email()).simulated
    assert [] == [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_starttls_error_suggests_security_none() -> None:
    """A local test server without STARTTLS: the error names ?security=none."""
    pytest.importorskip("aiosmtpd")
    from tests.servers.smtp import SMTPServer

    with SMTPServer() as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port)  # starttls by default
        with pytest.raises(nk.ProviderError, match=r"\?security=none"):
            smtp.send(email())
