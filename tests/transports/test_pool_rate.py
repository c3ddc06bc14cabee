"""The SMTP connection pool, connect/read time-outs, probes and rate limits, against real servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

import notifykit as nk
from notifykit.errors import ConfigurationError
from notifykit.ratelimit import RateLimit, parse_rate, split_rate

pytest.importorskip("aiosmtpd")

from tests.servers import SilentServer, closed_port
from tests.servers.timed import TimedSMTPServer


def email(n: int = 0) -> nk.Email:
    return nk.Email(
        to="asha@example.com", subject=f"Order {n}", text="shipped", sender="shop@example.com"
    )


def in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads at once; the exceptions they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait(5)
            work(i)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def most_in_window(times: list[float], window: float) -> int:
    """The most timestamps that fall in any half-open interval [t, t + window)."""
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


# -- the pool


def test_four_threads_send_on_four_connections_at_once() -> None:
    """With the default pool, four threads have four messages in the server at the same time."""
    with TimedSMTPServer(gather=4) as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none")
        assert 4 == smtp.max_connections
        errors = in_threads(4, lambda i: smtp.send(email(i)))
        smtp.close()
    assert [] == errors
    assert 4 == server.max_in_flight
    assert 4 == len(server.arrivals)


def test_pool_of_one_serialises_sends() -> None:
    """max_connections=1 keeps the old behaviour: one connection, one message at a time."""
    with TimedSMTPServer(gather=4, gather_timeout=0.05) as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none", max_connections=1)
        errors = in_threads(4, lambda i: smtp.send(email(i)))
        smtp.close()
    assert [] == errors
    assert 1 == server.max_in_flight
    assert 1 == len(server.peers)


def test_pool_is_thread_safe_and_bounded() -> None:
    """Eight threads x 25 messages: every message arrives once, on at most max_connections connections."""
    with TimedSMTPServer(delay=0.001) as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none", max_connections=3)
        subjects: list[str] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            for k in range(25):
                receipt = smtp.send(email(i * 100 + k))
                with lock:
                    subjects.append(receipt.message_id)

        errors = in_threads(8, work)
        smtp.close()
    assert [] == errors
    assert 200 == len(set(subjects)) == len(server.arrivals)
    assert server.max_in_flight <= 3
    assert len(server.peers) <= 3


def test_close_quits_idle_connections_and_a_later_send_reconnects() -> None:
    """close() ends every idle pooled connection; the transport still works afterwards."""
    from tests.servers.smtp import SMTPServer

    with SMTPServer() as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none")
        errors = in_threads(3, lambda i: smtp.send(email(i)))
        assert [] == errors
        smtp.close()
        assert server.wait_for(lambda: server.open_connections == 0)
        smtp.send(email(9))
        smtp.close()
    assert 4 == len(server.messages)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4", 10_000])
def test_max_connections_is_checked(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_connections"):
        nk.SMTPTransport("127.0.0.1", 25, security="none", max_connections=bad)  # type: ignore[arg-type]


# -- time-outs and probes


def test_connect_timeout_bounds_a_server_that_never_greets() -> None:
    """A server that accepts and never speaks costs connect_timeout, not the (longer) read timeout."""
    with SilentServer() as silent:
        smtp = nk.SMTPTransport(
            "127.0.0.1", silent.port, security="none", timeout=30, connect_timeout=0.3
        )
        t0 = time.monotonic()
        with pytest.raises(nk.TransientError, match=r"timed out after 0\.3 s while connecting"):
            smtp.send(email())
        assert time.monotonic() - t0 < 5


def test_default_timeouts() -> None:
    """Defaults: 10 s per reply, 5 s to set up a session; a short timeout also shortens connecting."""
    smtp = nk.SMTPTransport("127.0.0.1", 25, security="none")
    assert (10.0, 5.0) == (smtp.timeout, smtp.connect_timeout)
    assert 2.0 == nk.SMTPTransport("127.0.0.1", 25, security="none", timeout=2).connect_timeout


def test_reads_use_the_read_timeout_after_connecting() -> None:
    """Once the session is up, the socket waits `timeout` for replies, not connect_timeout."""
    with TimedSMTPServer(delay=0.6) as server:
        smtp = nk.SMTPTransport(
            "127.0.0.1", server.port, security="none", timeout=5, connect_timeout=0.3
        )
        smtp.send(email())  # the DATA reply takes 0.6 s > connect_timeout
        smtp.close()
    assert 1 == len(server.arrivals)


def test_hung_primary_costs_one_short_probe_per_cooldown() -> None:
    """A hung primary: one connect time-out at first, then one probe_timeout per cooldown."""
    now = [1000.0]
    with SilentServer() as silent, TimedSMTPServer() as backup_server:
        hung = nk.SMTPTransport("127.0.0.1", silent.port, security="none", connect_timeout=0.5)
        backup = nk.SMTPTransport("127.0.0.1", backup_server.port, security="none")
        composer = nk.FailoverTransport(
            [hung, backup], cooldown=60, probe_timeout=0.1, clock=lambda: now[0]
        )
        first = composer.send(email(0))
        assert ["transient", "sent"] == [a.outcome for a in first.attempts]
        assert 0.5 <= first.attempts[0].duration < 3
        for n in range(1, 20):  # within the cooldown: skipped at no cost
            assert "skipped" == composer.send(email(n)).attempts[0].outcome
        now[0] += 61
        probe = composer.send(email(99))
        assert ["transient", "sent"] == [a.outcome for a in probe.attempts]
        assert probe.attempts[0].duration < 0.45  # the probe's 0.1 s, not 0.5 s
        composer.close()


def test_refused_primary_first_message_costs_one_attempt() -> None:
    """With the default Retry(), a refused primary is left after one attempt and no sleep."""
    with TimedSMTPServer() as backup_server:
        dead = nk.SMTPTransport("127.0.0.1", closed_port(), security="none")
        backup = nk.SMTPTransport("127.0.0.1", backup_server.port, security="none")
        slept: list[float] = []
        composer = nk.FailoverTransport([dead, backup], sleep=slept.append)
        receipt = composer.send(email())
        composer.close()
    assert ["transient", "sent"] == [a.outcome for a in receipt.attempts]
    assert [] == slept


# -- rate limits


def test_eight_threads_never_exceed_the_rate_in_any_second() -> None:
    """rate="10/s", 8 threads, 25 messages: no 1 s window at the server holds more than 10."""
    with TimedSMTPServer() as server:
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none", rate="10/s")
        counter = iter(range(25))
        lock = threading.Lock()

        def work(i: int) -> None:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                smtp.send(email(n))

        t0 = time.monotonic()
        errors = in_threads(8, work)
        elapsed = time.monotonic() - t0
        smtp.close()
    assert [] == errors
    assert 25 == len(server.arrivals)
    assert most_in_window(server.arrivals, 1.0) <= 10
    assert elapsed >= 2.0  # 25 messages at 10/s: the third ten cannot start before 2 s


def test_rate_in_the_url_limits_a_composer() -> None:
    """?rate= works on any transport URL, composers included (their outermost query)."""
    composer = nk.from_dsn("failover(memory:// console://)?rate=3/s&cooldown=5")
    assert isinstance(composer, nk.FailoverTransport)
    assert "3/s" == str(composer.rate_limit)
    assert 5.0 == composer.cooldown
    t0 = time.monotonic()
    for n in range(4):
        composer.send(email(n))
    assert time.monotonic() - t0 >= 0.9  # the 4th waits for a slot of the first second
    smtp = nk.from_dsn("smtp://127.0.0.1:2525?security=none&rate=100/min")
    assert isinstance(smtp, nk.SMTPTransport)
    assert "100/min" == str(smtp.rate_limit)


@pytest.mark.parametrize(
    ("text", "count", "per"),
    [("14/s", 14, 1), ("100/min", 100, 60), ("5000/h", 5000, 3600), ("2.5/sec", 2.5, 1)],
)
def test_parse_rate(text: str, count: float, per: float) -> None:
    limit = parse_rate(text)
    assert (count, per) == (limit.count, limit.per)


@pytest.mark.parametrize("bad", ["fast", "14", "14/fortnight", "-1/s", "0/s", "/s", True, None])
def test_bad_rates_are_configuration_errors(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_rate(bad)  # type: ignore[arg-type]


def test_fractional_rate_spreads_the_window() -> None:
    """RateLimit(0.5) allows one send every two seconds."""
    limit = RateLimit(0.5)
    assert (1, 2.0) == (limit.slots, limit.window)


def test_split_rate_keeps_the_rest_of_the_url() -> None:
    assert ("smtp://h?security=none", None) == split_rate("smtp://h?security=none")
    url, limit = split_rate("smtp://h?rate=5/s&security=none")
    assert "smtp://h?security=none" == url
    assert limit is not None
    assert 5 == limit.count
    url, limit = split_rate("failover(smtp://a?rate=1/s smtp://b)")
    assert limit is None
    assert "rate=1/s" in url


class BlackHole:
    """A port whose accept queue is full: the kernel drops new SYNs, so connecting hangs."""

    def __enter__(self) -> BlackHole:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self.fill: list[socket.socket] = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fill.append(c)
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.fill:
            c.close()
        self.sock.close()


def test_http_connect_timeout_and_probe_cap() -> None:
    """An HTTP transport whose server never completes the TCP handshake: a probe gives up fast."""
    pytest.importorskip("httpx")
    from notifykit.transports._timeouts import capped_connect_timeout
    from notifykit.transports.msg91 import MSG91Transport

    sms = nk.SMS("+919876543210", "x", template_id="1001", variables={"a": "b"})
    with BlackHole() as hole:
        msg91 = MSG91Transport("fake-key-123", base_url=f"http://127.0.0.1:{hole.port}", timeout=3)
        assert 3.0 == msg91._session.connect_timeout  # min(5, timeout)
        t0 = time.monotonic()
        with capped_connect_timeout(0.2), pytest.raises(nk.TransientError, match="connect"):
            msg91.send(sms)
        assert time.monotonic() - t0 < 1.5
        assert 10 == msg91._session.max_connections
        msg91.close()


def test_smtp_connect_timeout_on_a_black_hole() -> None:
    with BlackHole() as hole:
        smtp = nk.SMTPTransport("127.0.0.1", hole.port, security="none", connect_timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(nk.TransientError, match="timed out"):
            smtp.send(email())
        assert time.monotonic() - t0 < 1.5


def test_pool_and_probe_options_in_urls() -> None:
    composer = nk.from_dsn(
        "failover(smtp://127.0.0.1:2525?security=none&connect_timeout=2&max_connections=2)"
        "?probe_timeout=1"
    )
    assert isinstance(composer, nk.FailoverTransport)
    assert 1.0 == composer.probe_timeout
    smtp = composer.transports[0]
    assert isinstance(smtp, nk.SMTPTransport)
    assert (2.0, 2) == (smtp.connect_timeout, smtp.max_connections)


def test_a_bad_rate_in_a_url_does_not_echo_the_value() -> None:
    """A malformed URL's 'rate=' may be a piece of a password: the error does not repeat it."""
    with pytest.raises(ConfigurationError) as info:
        nk.from_dsn("smtp://user:s3cr?rate=t-pass@mail.example.com")
    assert "t-pass" not in str(info.value)
    assert "option 'rate' is not a rate" in str(info.value)
