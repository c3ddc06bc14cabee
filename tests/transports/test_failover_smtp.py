"""FailoverTransport over real SMTP servers on 127.0.0.1, with scripted faults.

Waits are injected (a recording sleep), so no test sleeps for real.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import notifykit as nk
from notifykit.retry import Retry
from notifykit.transports.failover import FailoverTransport

pytest.importorskip("aiosmtpd")

from tests.servers import SilentServer, closed_port
from tests.servers.smtp import SMTPServer


def email(n: int = 0, to: str | list[str] = "asha@example.com") -> nk.Email:
    return nk.Email(to=to, subject=f"Order {n}", text="shipped", sender="shop@example.com")


_opened: list[nk.SMTPTransport] = []


def smtp(port: int, timeout: float = 2.0) -> nk.SMTPTransport:
    transport = nk.SMTPTransport("127.0.0.1", port, security="none", timeout=timeout)
    _opened.append(transport)
    return transport


@pytest.fixture(autouse=True)
def _close_transports() -> Iterator[None]:
    """Close every transport a test opened, so no socket outlives it."""
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
def backup() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def compose(*transports: nk.Transport, **kw: object) -> tuple[FailoverTransport, Sleeps]:
    sleeps = Sleeps()
    kw.setdefault("retry", Retry(attempts=3, initial=1.0, jitter=0.0))
    return FailoverTransport(transports, sleep=sleeps, **kw), sleeps  # type: ignore[arg-type]


def kinds(
    receipt_or_error: nk.Receipt | nk.DeliveryError, names: dict[str, str]
) -> list[tuple[str, str]]:
    return [(names[a.transport], a.outcome) for a in receipt_or_error.attempts]


def test_421_moves_on_then_primary_serves_again(
    smtp_server: SMTPServer, backup: SMTPServer
) -> None:
    """A 421 on the primary sends the message through the backup at once; nothing sleeps."""
    smtp_server.fail("MAIL", "421 4.3.2 Service not available, try later", times=1)
    primary, secondary = smtp(smtp_server.port), smtp(backup.port)
    composer, sleeps = compose(primary, secondary)
    receipt = composer.send(email())
    names = {primary.name: "primary", secondary.name: "backup"}
    assert [("primary", "transient"), ("backup", "sent")] == kinds(receipt, names)
    assert [] == sleeps
    assert 1 == len(backup.messages)


def test_both_busy_backoff_after_the_round(smtp_server: SMTPServer, backup: SMTPServer) -> None:
    """Both servers answer 421 once: one round, one wait, then the primary delivers."""
    smtp_server.fail("MAIL", "421 4.3.2 Service not available, try later", times=1)
    backup.fail("MAIL", "421 4.3.2 Service not available, try later", times=1)
    primary, secondary = smtp(smtp_server.port), smtp(backup.port)
    composer, sleeps = compose(primary, secondary)
    receipt = composer.send(email())
    names = {primary.name: "primary", secondary.name: "backup"}
    assert [("primary", "transient"), ("backup", "transient"), ("primary", "sent")] == kinds(
        receipt, names
    )
    assert [1.0] == sleeps


def test_auth_failure_fails_over_at_once(
    smtp_tls_server: SMTPServer, backup: SMTPServer, certificates: object
) -> None:
    """A 535 (wrong password) is a ProviderError: no retry, the backup delivers, no secret in the attempt."""
    wrong = "wrong-fake-password-1234"
    primary = nk.SMTPTransport(
        "127.0.0.1",
        smtp_tls_server.port,
        username="test-user",
        password=wrong,
        ssl_context=certificates.client_context(),
        timeout=2,  # type: ignore[attr-defined]
    )
    secondary = smtp(backup.port)
    composer, sleeps = compose(primary, secondary)
    receipt = composer.send(email())
    names = {primary.name: "primary", secondary.name: "backup"}
    assert [("primary", "provider"), ("backup", "sent")] == kinds(receipt, names)
    assert [] == sleeps
    assert all(wrong not in (a.error or "") for a in receipt.attempts)


def test_550_on_rcpt_never_reaches_backup(smtp_server: SMTPServer, backup: SMTPServer) -> None:
    """A 550 for the only recipient is a rejection: raised at once, the backup never sees the message."""
    smtp_server.fail("RCPT", "550 5.1.1 No such user", times=None)
    composer, _ = compose(smtp(smtp_server.port), smtp(backup.port))
    with pytest.raises(nk.RejectedError) as info:
        composer.send(email())
    assert [] == backup.messages
    assert ["rejected"] == [a.outcome for a in info.value.attempts]


def test_connection_refused_then_backup_and_skipped_for_1000(backup: SMTPServer) -> None:
    """A closed port costs one attempt, then the backup delivers; the next 1,000 messages skip it at no cost."""
    dead, secondary = smtp(closed_port()), smtp(backup.port)
    composer, sleeps = compose(dead, secondary, cooldown=3600, retry=Retry())
    first = composer.send(email())
    names = {dead.name: "dead", secondary.name: "backup"}
    assert [("dead", "transient"), ("backup", "sent")] == kinds(first, names)
    for n in range(1000):
        receipt = composer.send(email(n))
        assert [("dead", "skipped"), ("backup", "sent")] == kinds(receipt, names)
    assert [] == sleeps
    assert 1001 == len(backup.messages)
    assert 1 == backup.connections


def test_server_that_never_answers_times_out(
    silent_server: SilentServer, backup: SMTPServer
) -> None:
    """A server that accepts and never speaks costs one time-out per try, then the backup delivers."""
    silent, secondary = smtp(silent_server.port, timeout=0.3), smtp(backup.port)
    composer, _ = compose(silent, secondary, retry=Retry(attempts=1))
    receipt = composer.send(email())
    names = {silent.name: "silent", secondary.name: "backup"}
    assert [("silent", "transient"), ("backup", "sent")] == kinds(receipt, names)
    assert receipt.attempts[0].duration >= 0.3


def test_drop_after_data_is_maybe_delivered(smtp_server: SMTPServer, backup: SMTPServer) -> None:
    """A connection dropped after the DATA terminator is maybe-delivered: resent by default and said so."""
    smtp_server.drop("DATA")
    primary, secondary = smtp(smtp_server.port), smtp(backup.port)
    composer, _ = compose(primary, secondary)
    receipt = composer.send(email())
    assert receipt.attempts[0].maybe_delivered
    assert "sent" == receipt.attempts[-1].outcome
    # The server did get the first copy: at least once, possibly twice, and the receipt says so.
    assert 2 == len(smtp_server.messages) + len(backup.messages)


def test_drop_after_data_not_resent_when_at_most_once(
    smtp_server: SMTPServer, backup: SMTPServer
) -> None:
    """With resend_uncertain=False the maybe-delivered message is not sent again anywhere."""
    smtp_server.drop("DATA")
    composer, _ = compose(smtp(smtp_server.port), smtp(backup.port), resend_uncertain=False)
    with pytest.raises(nk.TransientError) as info:
        composer.send(email())
    assert info.value.maybe_delivered
    assert 1 == len(smtp_server.messages)
    assert [] == backup.messages


def test_recovered_primary_readmitted_by_probe(backup: SMTPServer) -> None:
    """After the cooldown a probe reaches the restarted primary, which takes the traffic back."""
    clock = [0.0]
    with SMTPServer() as primary_server:
        port = primary_server.port
    # The port is now closed: the primary is dead.
    primary, secondary = smtp(port), smtp(backup.port)
    composer = FailoverTransport(
        [primary, secondary], retry=Retry(attempts=1), cooldown=60, clock=lambda: clock[0]
    )
    assert secondary.name == composer.send(email()).transport
    with SMTPServer(port=port) as revived:
        clock[0] += 61
        assert primary.name == composer.send(email()).transport
        assert primary.name == composer.send(email()).transport
        assert 2 == len(revived.messages)


def test_end_to_end_small_real_waits(backup: SMTPServer) -> None:
    """One run with real (small) waits: a dead primary, a real backoff, delivery by the backup."""
    composer = FailoverTransport(
        [smtp(closed_port()), smtp(backup.port)], retry=Retry(attempts=2, initial=0.05, jitter=0)
    )
    receipt = composer.send(email())
    assert "sent" == receipt.attempts[-1].outcome
    assert 1 == len(backup.messages)
