"""The async defaults: simple transports, third-party transports, rate limits, captures, extras."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from pathlib import Path

import pytest

import notifykit as nk
from notifykit.receipt import Receipt
from notifykit.testing import capture_sent
from notifykit.transports.base import aclose_with, asend_with


def email(n: int = 0) -> nk.Email:
    return nk.Email(to="asha@example.com", subject=f"Hi {n}", text="t", sender="s@example.com")


def test_memory_console_and_file_asend(tmp_path: Path) -> None:
    """The simple transports deliver from async code as they do from sync code."""
    memory, out = nk.MemoryTransport(), io.StringIO()
    console, files = nk.ConsoleTransport(out), nk.FileTransport(tmp_path)

    async def run() -> list[Receipt]:
        return [await t.asend(email()) for t in (memory, console, files)]

    receipts = asyncio.run(run())
    assert all(r.simulated for r in receipts)
    assert 1 == len(memory.outbox)
    assert "Subject: Hi 0" in out.getvalue()
    assert 1 == len(list(tmp_path.iterdir()))


def test_wrong_channel_is_the_same_configuration_error() -> None:
    """asend checks the channel like send."""
    with pytest.raises(nk.ConfigurationError, match="carries email"):
        asyncio.run(
            nk.SMTPTransport("127.0.0.1", security="none").asend(nk.SMS("+919876543210", "x"))
        )


class SyncOnly:
    """A third-party transport with only the sync protocol."""

    name = "sync-only"

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.closed = False

    def send(self, message: nk.Message) -> Receipt:
        self.threads.append(threading.get_ident())
        time.sleep(0.05)  # would block the loop if it ran there
        return Receipt(message_id=message.id, transport=self.name)

    def close(self) -> None:
        self.closed = True


def test_a_sync_only_transport_runs_in_a_thread_and_the_loop_keeps_going() -> None:
    """asend_with() runs send() in a worker thread; the loop ticks meanwhile."""
    transport = SyncOnly()
    ticks: list[float] = []

    async def run() -> None:
        async def ticker() -> None:
            for _ in range(5):
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        await asyncio.gather(asend_with(transport, email()), ticker())
        await aclose_with(transport)

    asyncio.run(run())
    assert [threading.get_ident()] != transport.threads
    assert 5 == len(ticks)
    assert transport.closed


def test_failover_over_a_sync_only_transport_in_notifier() -> None:
    """A composer's asend falls back to the thread for members without asend."""
    transport = SyncOnly()
    notifier = nk.Notifier(email=nk.FailoverTransport([transport]))  # type: ignore[list-item]
    receipt = asyncio.run(notifier.asend(email()))
    assert "sync-only" == receipt.transport


def test_rate_limit_applies_to_asend() -> None:
    """rate= bounds asend too: 3 messages at 2/s take about a second, the loop free meanwhile."""
    transport = nk.MemoryTransport()
    transport.rate_limit = nk.RateLimit(2, per=1.0)

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(transport.asend(email(n)) for n in range(3)))
        return time.perf_counter() - t0

    assert 0.4 < asyncio.run(run()) < 5
    assert 3 == len(transport.outbox)


def test_capture_sent_sees_async_sends_once() -> None:
    """capture_sent() captures a composer's asend once, not once per inner transport."""
    composer = nk.FailoverTransport([nk.MemoryTransport()])
    with capture_sent() as sent:
        receipt = asyncio.run(composer.asend(email()))
    assert 1 == len(sent)
    assert receipt.provider_message_id.startswith("captured-")


def test_without_aiosmtplib_asend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """No aiosmtplib: a MissingDependency naming notifykit-py[async], not an ImportError trace."""
    monkeypatch.setitem(sys.modules, "aiosmtplib", None)
    smtp = nk.SMTPTransport("127.0.0.1", 2525, security="none")
    with pytest.raises(nk.MissingDependency, match=r"notifykit-py\[async\]"):
        asyncio.run(smtp.asend(email()))


def test_cancelled_while_waiting_for_a_rate_slot_gives_it_back() -> None:
    """A send cancelled while it waits for a rate-limit slot does not leak the slot."""
    transport = nk.MemoryTransport()
    limit = nk.RateLimit(1, per=0.3)
    transport.rate_limit = limit

    async def run() -> None:
        await transport.asend(email(0))  # takes the only slot of this window
        waiting = asyncio.create_task(transport.asend(email(1)))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.5)  # the thread takes the slot, then the callback frees it
        await asyncio.wait_for(transport.asend(email(2)), 2)

    asyncio.run(run())
    assert ["Hi 0", "Hi 2"] == [m.subject for m in transport.outbox]


def test_one_smtp_transport_serves_two_event_loops(smtp_server: object) -> None:
    """Each event loop (here one per thread) gets its own aiosmtplib pool."""
    pytest.importorskip("aiosmtplib")
    from tests.servers.smtp import SMTPServer

    assert isinstance(smtp_server, SMTPServer)
    smtp = nk.SMTPTransport(
        "127.0.0.1", smtp_server.port, security="none", local_hostname="client.test"
    )
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def run() -> None:
            for k in range(3):
                await smtp.asend(email(n * 10 + k))
            await smtp.aclose()

        try:
            asyncio.run(run())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [] == errors
    assert 6 == len(smtp_server.messages)
    assert 2 == smtp_server.connections


@pytest.mark.parametrize("durability", ["batched", "fsync"])
def test_sqlite_sink_records_async_sends(tmp_path: Path, durability: str) -> None:
    """asend logs to SQLite; a committing durability waits in a thread, not on the loop."""
    sink = nk.SQLiteSink(str(tmp_path / "log.db"), durability=durability)  # type: ignore[arg-type]
    notifier = nk.Notifier(email=nk.MemoryTransport(), sinks=[sink], strict_sinks=True)

    async def run() -> Receipt:
        async with notifier:
            return await notifier.asend(email())

    receipt = asyncio.run(run())
    import sqlite3

    with sqlite3.connect(tmp_path / "log.db") as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM events ORDER BY rowid")]
    assert ["queued", "sent"] == statuses, receipt


def test_asend_refuses_a_suppressed_recipient_like_send() -> None:
    """The suppression list applies to asend/asend_email: Suppressed, a failed event, no send."""
    from notifykit.suppression import SQLiteSuppressionList

    store = SQLiteSuppressionList()
    store.add("gone@example.com", "smtp; 550 5.1.1 user unknown", source="bounce")
    transport, sink = nk.MemoryTransport(), nk.MemorySink()
    notifier = nk.Notifier(email=transport, sinks=[sink], suppression=store, sender="s@x.example")
    message = nk.Email(to=["ok@example.com", "Gone@example.com"], subject="Hi", text="t")
    with pytest.raises(nk.Suppressed) as info:
        asyncio.run(notifier.asend(message))
    assert {"Gone@example.com": "smtp; 550 5.1.1 user unknown"} == info.value.rejected
    assert [] == transport.outbox
    assert ["queued", "failed"] == [e.status for e in sink.events]
    receipt = asyncio.run(notifier.asend(message, ignore_suppression=True))
    assert receipt.transport
    assert 1 == len(transport.outbox)
