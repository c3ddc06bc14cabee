"""FailoverTransport and RoundRobinTransport semantics, with scripted transports and a fake clock."""

from __future__ import annotations

import random
import threading

import pytest

import notifykit as nk
from notifykit.retry import Retry
from notifykit.testing import ScriptedTransport, no_backoff
from notifykit.transports.failover import FailoverTransport, RoundRobinTransport

from .contract import TransportContract


class FakeClock:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def email(n: int = 0) -> nk.Email:
    return nk.Email(
        to="asha@example.com", subject=f"Order {n}", text="shipped", sender="shop@example.com"
    )


def failover(clock: FakeClock, *transports: ScriptedTransport, **kw: object) -> FailoverTransport:
    kw.setdefault("retry", Retry(attempts=3, initial=1.0, multiplier=2.0, jitter=0.0))
    return FailoverTransport(transports, sleep=clock.sleep, clock=clock, **kw)  # type: ignore[arg-type]


def outcomes(attempts: tuple[nk.Attempt, ...]) -> list[tuple[str, str]]:
    return [(a.transport, a.outcome) for a in attempts]


class TestFailoverContract(TransportContract):
    """The failover composer passes the shared transport contract."""

    @pytest.fixture
    def transport(self) -> FailoverTransport:
        return FailoverTransport([ScriptedTransport(name="a"), nk.MemoryTransport()])


def test_transient_moves_on_at_once_without_waiting(clock: FakeClock) -> None:
    """A transient error moves to the next transport at once: no wait while another may work."""
    primary = ScriptedTransport([nk.TransientError("451 busy")], name="primary")
    backup = ScriptedTransport(name="backup")
    receipt = failover(clock, primary, backup).send(email())
    assert [("primary", "transient"), ("backup", "sent")] == outcomes(receipt.attempts)
    assert [] == clock.sleeps
    assert "backup" == receipt.transport


def test_dead_first_transport_is_skipped_within_one_attempt(clock: FakeClock) -> None:
    """A dead first transport costs one attempt, with the default Retry(): then the backup, no sleep."""
    primary = ScriptedTransport(then=nk.TransientError("connection refused"), name="primary")
    backup = ScriptedTransport(name="backup")
    composer = FailoverTransport([primary, backup], sleep=clock.sleep, clock=clock)
    receipt = composer.send(email())
    assert [("primary", "transient"), ("backup", "sent")] == outcomes(receipt.attempts)
    assert 1 == len(primary.calls)
    assert [] == clock.sleeps
    assert composer.is_resting(primary)


def test_backoff_only_after_a_full_round(clock: FakeClock) -> None:
    """Waits come only after every transport failed the message in a round; rounds are bounded."""
    primary = ScriptedTransport([nk.TransientError("451 busy")] * 2, name="primary")
    backup = ScriptedTransport([nk.TransientError("451 busy")] * 2, name="backup")
    composer = failover(clock, primary, backup)
    receipt = composer.send(email())
    assert [
        ("primary", "transient"),
        ("backup", "transient"),
        ("primary", "transient"),
        ("backup", "transient"),
        ("primary", "sent"),
    ] == outcomes(receipt.attempts)
    assert [1.0, 2.0] == clock.sleeps  # after round 1, after round 2


def test_rounds_end_after_retry_attempts(clock: FakeClock) -> None:
    """With Retry(attempts=3) each transport is tried at most three times, then AllTransportsFailed."""
    primary = ScriptedTransport(then=nk.TransientError("421 closing"), name="primary")
    backup = ScriptedTransport(then=nk.TransientError("421 closing"), name="backup")
    with pytest.raises(nk.AllTransportsFailed) as info:
        failover(clock, primary, backup).send(email())
    assert [("primary", "transient"), ("backup", "transient")] * 3 == outcomes(info.value.attempts)
    assert [1.0, 2.0] == clock.sleeps


def test_single_transport_keeps_its_backoff(clock: FakeClock) -> None:
    """With one transport a round is one attempt: retried with 1 s then 2 s waits, as before."""
    only = ScriptedTransport([nk.TransientError("451 busy")] * 2, name="only")
    receipt = failover(clock, only).send(email())
    assert [("only", "transient")] * 2 + [("only", "sent")] == outcomes(receipt.attempts)
    assert [1.0, 2.0] == clock.sleeps


def test_probe_is_a_single_attempt(clock: FakeClock) -> None:
    """After the cooldown the probe of a failed transport is one attempt, not a retry sequence."""
    primary = ScriptedTransport(then=nk.TransientError("connection refused"), name="primary")
    backup = ScriptedTransport(name="backup")
    composer = failover(clock, primary, backup, cooldown=60)
    composer.send(email(0))
    clock.now += 61
    receipt = composer.send(email(1))
    assert [("primary", "transient"), ("backup", "sent")] == outcomes(receipt.attempts)
    assert 2 == len(primary.calls)
    assert [] == clock.sleeps
    assert composer.is_resting(primary)


def test_probe_caps_the_connect_timeout(clock: FakeClock) -> None:
    """A probe runs with the composer's probe_timeout as the connect time-out cap; others do not."""
    from notifykit.transports._timeouts import connect_timeout

    seen: list[float] = []

    class Recording(ScriptedTransport):
        def _send(self, message: nk.Message) -> nk.Receipt:
            seen.append(connect_timeout(10.0))
            return super()._send(message)

    primary = Recording(then=nk.TransientError("refused"), name="primary")
    composer = failover(clock, primary, ScriptedTransport(name="b"), probe_timeout=1.5)
    composer.send(email(0))
    clock.now += 61
    composer.send(email(1))
    assert [10.0, 1.5] == seen


def test_provider_error_moves_on_without_retry(clock: FakeClock) -> None:
    """A ProviderError is not retried: the next transport is tried at once, with no wait."""
    primary = ScriptedTransport([nk.ProviderError("535 bad credentials")], name="primary")
    backup = ScriptedTransport(name="backup")
    receipt = failover(clock, primary, backup).send(email())
    assert [("primary", "provider"), ("backup", "sent")] == outcomes(receipt.attempts)
    assert [] == clock.sleeps


def test_rejection_never_reaches_backup(clock: FakeClock) -> None:
    """A RejectedError is raised at once and the backup never sees the message."""
    primary = ScriptedTransport([nk.RejectedError("550 no such user")], name="primary")
    backup = ScriptedTransport(name="backup")
    with pytest.raises(nk.RejectedError) as info:
        failover(clock, primary, backup).send(email())
    assert [] == backup.calls
    assert [("primary", "rejected")] == outcomes(info.value.attempts)


def test_invalid_message_and_configuration_propagate(clock: FakeClock) -> None:
    """An SMS for a failover of e-mail-only transports is a ConfigurationError before any send."""
    primary = ScriptedTransport(name="primary", channels=["email"])
    with pytest.raises(nk.ConfigurationError):
        failover(clock, primary).send(nk.SMS("+919876543210", "hi"))
    assert [] == primary.calls


def test_transports_of_other_channel_are_passed_over(clock: FakeClock) -> None:
    """An SMS goes to the SMS-capable transport of a mixed chain; the e-mail-only one is not tried."""
    smtp = ScriptedTransport(name="smtp", channels=["email"])
    sms = ScriptedTransport(name="sms", channels=["sms"])
    receipt = failover(clock, smtp, sms).send(nk.SMS("+919876543210", "hi"))
    assert "sms" == receipt.transport
    assert [] == smtp.calls


def test_all_fail_lists_every_cause(clock: FakeClock) -> None:
    """When every transport fails, AllTransportsFailed lists each one's cause and every attempt."""
    primary = ScriptedTransport(then=nk.ProviderError("535 bad credentials"), name="primary")
    backup = ScriptedTransport(then=nk.TransientError("connection refused"), name="backup")
    with pytest.raises(nk.AllTransportsFailed) as info:
        failover(clock, primary, backup).send(email())
    err = info.value
    assert "535 bad credentials" in str(err)
    assert "connection refused" in str(err)
    assert [("primary", "provider")] + [("backup", "transient")] * 3 == outcomes(err.attempts)
    assert ["primary", "backup"] == [e.transport for e in err.errors]


def test_dead_primary_skipped_for_next_1000_messages(clock: FakeClock) -> None:
    """A failed primary rests: the next 1,000 messages skip it at no cost and go to the backup."""
    primary = ScriptedTransport(then=nk.TransientError("connection refused"), name="primary")
    backup = ScriptedTransport(name="backup")
    composer = failover(clock, primary, backup, cooldown=60.0)
    composer.send(email())
    calls_after_first = len(primary.calls)
    sleeps_after_first = len(clock.sleeps)
    for n in range(1000):
        receipt = composer.send(email(n))
        assert [("primary", "skipped"), ("backup", "sent")] == outcomes(receipt.attempts)
    assert calls_after_first == len(primary.calls)
    assert sleeps_after_first == len(clock.sleeps)
    assert 1001 == len(backup.sent)


def test_half_open_probe_readmits_recovered_primary(clock: FakeClock) -> None:
    """After the cooldown one message probes the primary; its success puts it back in service."""
    primary = ScriptedTransport([nk.ProviderError("down")], name="primary")
    backup = ScriptedTransport(name="backup")
    composer = failover(clock, primary, backup, cooldown=60.0)
    assert "backup" == composer.send(email()).transport
    clock.now += 30
    assert "backup" == composer.send(email()).transport
    assert composer.is_resting(primary)
    clock.now += 31
    probe = composer.send(email())
    assert "primary" == probe.transport
    assert not composer.is_resting(primary)
    assert "primary" == composer.send(email()).transport


def test_failed_probe_rests_again(clock: FakeClock) -> None:
    """A probe that fails sends the transport back to rest for another cooldown."""
    primary = ScriptedTransport(then=nk.ProviderError("down"), name="primary")
    backup = ScriptedTransport(name="backup")
    composer = failover(clock, primary, backup, cooldown=10.0)
    composer.send(email())
    clock.now += 11
    receipt = composer.send(email())
    assert [("primary", "provider"), ("backup", "sent")] == outcomes(receipt.attempts)
    receipt = composer.send(email())
    assert [("primary", "skipped"), ("backup", "sent")] == outcomes(receipt.attempts)


def test_only_one_message_probes_at_a_time(clock: FakeClock) -> None:
    """While a probe is in flight, other messages keep skipping the resting transport."""
    in_probe, release = threading.Event(), threading.Event()

    class SlowPrimary(ScriptedTransport):
        def _send(self, message: nk.Message) -> nk.Receipt:
            if len(self.calls) >= 1:  # the second call is the probe: hold it
                in_probe.set()
                assert release.wait(10)
            return super()._send(message)

    primary = SlowPrimary([nk.ProviderError("down")], name="primary")
    backup = ScriptedTransport(name="backup")
    composer = failover(clock, primary, backup, cooldown=10.0)
    composer.send(email())  # the primary fails and rests
    clock.now += 11
    results: list[nk.Receipt] = []
    prober = threading.Thread(target=lambda: results.append(composer.send(email(1))))
    prober.start()
    try:
        assert in_probe.wait(10)
        during = composer.send(email(2))
        assert [("primary", "skipped"), ("backup", "sent")] == outcomes(during.attempts)
    finally:
        release.set()
        prober.join(10)
    assert "primary" == results[0].transport
    assert "primary" == composer.send(email(3)).transport


def test_all_resting_are_still_tried(clock: FakeClock) -> None:
    """When every transport is resting, they are still tried in order: notifykit never refuses to try."""
    primary = ScriptedTransport([nk.ProviderError("down")], name="primary")
    backup = ScriptedTransport([nk.ProviderError("down")], name="backup")
    composer = failover(clock, primary, backup)
    with pytest.raises(nk.AllTransportsFailed):
        composer.send(email())
    receipt = composer.send(email())
    assert [("primary", "skipped"), ("backup", "skipped"), ("primary", "sent")] == outcomes(
        receipt.attempts
    )


def test_resting_transport_is_last_resort(clock: FakeClock) -> None:
    """A resting primary is tried once more, without retries, when the live backup fails too."""
    primary = ScriptedTransport([nk.ProviderError("down")], name="primary")
    backup = ScriptedTransport(["ok", nk.ProviderError("quota")], name="backup")
    composer = failover(clock, primary, backup)
    assert "backup" == composer.send(email()).transport  # the primary fails and rests
    receipt = composer.send(email())
    assert [("primary", "skipped"), ("backup", "provider"), ("primary", "sent")] == outcomes(
        receipt.attempts
    )


def test_deadline_bounds_blocking(clock: FakeClock) -> None:
    """With a 2.5 s deadline no send sleeps past it: the wait that would cross it is not taken."""
    primary = ScriptedTransport(then=nk.TransientError("busy"), name="primary")
    backup = ScriptedTransport(then=nk.TransientError("busy"), name="backup")
    composer = failover(
        clock, primary, backup, retry=Retry(attempts=5, initial=1.0, jitter=0.0, deadline=2.5)
    )
    start = clock.now
    with pytest.raises(nk.AllTransportsFailed) as info:
        composer.send(email())
    assert clock.now - start <= 2.5
    # round 1, wait 1 s, round 2; the next 2 s wait would cross the deadline.
    assert [1.0] == clock.sleeps
    assert 4 == len(info.value.attempts)


def test_retry_after_is_honoured_within_maximum(clock: FakeClock) -> None:
    """A provider's retry_after lengthens the wait, but never beyond Retry.maximum."""
    primary = ScriptedTransport(
        [nk.TransientError("429", retry_after=5.0), nk.TransientError("429", retry_after=99.0)],
        name="primary",
    )
    composer = failover(
        clock, primary, retry=Retry(attempts=3, initial=1.0, maximum=10.0, jitter=0)
    )
    composer.send(email())
    assert [5.0, 10.0] == clock.sleeps


def test_maybe_delivered_resent_by_default(clock: FakeClock) -> None:
    """A maybe-delivered failure is resent (at least once) and the attempt records the uncertainty."""
    primary = ScriptedTransport(
        [nk.TransientError("timeout after DATA", maybe_delivered=True)], name="p"
    )
    receipt = failover(clock, primary).send(email())
    assert [True, False] == [a.maybe_delivered for a in receipt.attempts]
    assert 2 == len(primary.calls)


def test_maybe_delivered_not_resent_when_at_most_once(clock: FakeClock) -> None:
    """With resend_uncertain=False a maybe-delivered failure is raised at once, not resent."""
    primary = ScriptedTransport(
        [nk.TransientError("timeout after DATA", maybe_delivered=True)], name="p"
    )
    backup = ScriptedTransport(name="backup")
    with pytest.raises(nk.TransientError) as info:
        failover(clock, primary, backup, resend_uncertain=False).send(email())
    assert info.value.maybe_delivered
    assert 1 == len(primary.calls)
    assert [] == backup.calls


def test_str_reads_like_a_dsn() -> None:
    """str() of a composer lists its transports like a DSN, secrets masked."""
    composer = FailoverTransport([nk.ConsoleTransport(), nk.MemoryTransport()])
    assert "failover(console:// memory://)" == str(composer)
    nested = RoundRobinTransport([composer, nk.ConsoleTransport()])
    assert "roundrobin(failover(console:// memory://) console://)" == str(nested)


def test_nested_composers_flatten_attempts(clock: FakeClock) -> None:
    """A composer inside a composer reports every inner attempt in the outer receipt."""
    inner = failover(
        clock, ScriptedTransport([nk.ProviderError("x")], name="a"), ScriptedTransport(name="b")
    )
    outer = failover(clock, inner)
    receipt = outer.send(email())
    assert [("a", "provider"), ("b", "sent")] == outcomes(receipt.attempts)


def test_configuration_errors() -> None:
    """An empty list, a non-transport or a negative cooldown is a ConfigurationError."""
    with pytest.raises(nk.ConfigurationError):
        FailoverTransport([])
    with pytest.raises(nk.ConfigurationError):
        FailoverTransport([object()])  # type: ignore[list-item]
    with pytest.raises(nk.ConfigurationError):
        FailoverTransport([nk.MemoryTransport()], cooldown=-1)


def test_round_robin_spreads_messages(clock: FakeClock) -> None:
    """RoundRobinTransport starts each message with the next transport in turn."""
    a, b, c = (ScriptedTransport(name=n) for n in "abc")
    rr = RoundRobinTransport([a, b, c], sleep=clock.sleep, clock=clock)
    used = [rr.send(email(n)).transport for n in range(6)]
    assert ["a", "b", "c", "a", "b", "c"] == used


def test_round_robin_fails_over(clock: FakeClock) -> None:
    """RoundRobinTransport moves past a failing transport and then skips it while it rests."""
    a = ScriptedTransport(then=nk.ProviderError("down"), name="a")
    b = ScriptedTransport(name="b")
    rr = RoundRobinTransport([a, b], sleep=clock.sleep, clock=clock)
    assert ["b", "b", "b", "b"] == [rr.send(email(n)).transport for n in range(4)]
    assert 1 == len(a.calls)


def test_thread_safety_shared_circuit(clock: FakeClock) -> None:
    """Many threads sharing one failover: every message is delivered once and the dead primary is tried once."""
    lock = threading.Lock()
    primary = ScriptedTransport(then=nk.ProviderError("down"), name="primary")
    backup = ScriptedTransport(name="backup")
    composer = FailoverTransport([primary, backup], cooldown=3600)
    composer.send(email())  # the primary fails once and rests

    def worker(k: int) -> None:
        for n in range(200):
            receipt = composer.send(email(k * 1000 + n))
            with lock:
                assert "backup" == receipt.transport

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 == len(primary.calls)
    assert 1 + 8 * 200 == len(backup.sent)
    assert len({m.id for m in backup.sent}) == len(backup.sent)


def test_no_backoff_makes_waits_zero() -> None:
    """Inside no_backoff() retries still happen, but nothing sleeps."""
    sleeps: list[float] = []
    primary = ScriptedTransport([nk.TransientError("busy"), nk.TransientError("busy")], name="p")
    composer = FailoverTransport([primary], sleep=sleeps.append)
    with no_backoff():
        composer.send(email())
    assert 3 == len(primary.calls)
    assert [] == sleeps


def test_retry_policy_values() -> None:
    """Retry's waits grow by the multiplier, are capped, spread by jitter, and bad values are refused."""
    retry = Retry(attempts=5, initial=1.0, multiplier=3.0, maximum=5.0, jitter=0.0)
    assert [1.0, 3.0, 5.0, 5.0] == retry.delays()
    jittered = Retry(initial=10.0, jitter=0.1, maximum=100.0)
    rng = random.Random(1)
    waits = [jittered.wait(1, rng=rng) for _ in range(100)]
    assert all(9.0 <= w <= 11.0 for w in waits)
    assert len(set(waits)) > 50
    for bad in (
        {"attempts": 0},
        {"initial": -1},
        {"jitter": 2},
        {"deadline": 0},
        {"multiplier": 0.5},
    ):
        with pytest.raises(nk.ConfigurationError):
            Retry(**bad)  # type: ignore[arg-type]


def test_real_waits_end_to_end() -> None:
    """One end-to-end run with small real waits: the retry really sleeps and then delivers."""
    import time

    primary = ScriptedTransport([nk.TransientError("busy")], name="p")
    composer = FailoverTransport([primary], retry=Retry(attempts=2, initial=0.05, jitter=0.0))
    t0 = time.monotonic()
    receipt = composer.send(email())
    assert time.monotonic() - t0 >= 0.05
    assert "sent" == receipt.attempts[-1].outcome
