"""SQLiteSink: every event stored, one projected row per message, reads and purge."""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.sinks.base import DeliveryEvent, LogSink
from notifykit.sinks.sqlite import SCHEMA_VERSION, SQLiteSink, StatsRow
from tests.sinks.events import BACKUP, PRIMARY, Outcome, delivery

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)


def count(path: Path, table: str = "events") -> int:
    """Rows in ``table``, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def record_all(sink: SQLiteSink, events: list[DeliveryEvent]) -> None:
    for event in events:
        sink.record(event)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "notifykit.db"


@pytest.fixture
def sink(path: Path) -> Iterator[SQLiteSink]:
    with SQLiteSink(path) as sink:
        yield sink


# -- schema -------------------------------------------------------------------


def test_is_a_log_sink() -> None:
    """SQLiteSink satisfies the LogSink protocol; the default database is in memory."""
    with SQLiteSink() as sink:
        assert isinstance(sink, LogSink)
        assert ":memory:" == sink.path


def test_schema_version_wal_and_tables(sink: SQLiteSink, path: Path) -> None:
    """A new file gets WAL mode, the schema version, both tables and the attempts view."""
    conn = sqlite3.connect(path)
    try:
        assert SCHEMA_VERSION == conn.execute("PRAGMA user_version").fetchone()[0]
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]
        names = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            )
        }
    finally:
        conn.close()
    assert {"events", "deliveries", "attempts"} <= names


def test_reopening_keeps_the_data(path: Path) -> None:
    """A second sink on the same file sees what the first one wrote."""
    with SQLiteSink(path) as first:
        record_all(first, delivery("m1"))
    with SQLiteSink(path) as second:
        assert ["queued", "sent"] == [e.status for e in second.history("m1")]


def test_newer_schema_is_refused(path: Path) -> None:
    """A file written by a newer notifykit (higher user_version) is a ConfigurationError."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigurationError, match="newer notifykit"):
        SQLiteSink(path)


def test_not_a_database_is_refused(path: Path) -> None:
    """A file that is not SQLite is a ConfigurationError, not a raw sqlite3 error."""
    path.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(ConfigurationError, match="cannot use"):
        SQLiteSink(path)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    """A file in a directory that does not exist is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="cannot open"):
        SQLiteSink(tmp_path / "nowhere" / "log.db")


@pytest.mark.parametrize(
    "options", [{"max_queue": 0}, {"max_batch": 0}, {"timeout": -1.0}, {"block_timeout": -1.0}]
)
def test_bad_options_are_refused(options: dict[str, float]) -> None:
    """Out-of-range sizes and timeouts are ConfigurationError."""
    with pytest.raises(ConfigurationError):
        SQLiteSink(**options)  # type: ignore[arg-type]


# -- projection ---------------------------------------------------------------


def test_success_projects_a_sent_row(sink: SQLiteSink) -> None:
    """queued then sent gives a sent row with the transport and provider id."""
    record_all(sink, delivery("m1", at=T0))
    row = sink.delivery("m1")
    assert row is not None
    assert ("sent", PRIMARY, "<m1@mail.example.com>", 1, None) == (
        row.status,
        row.transport,
        row.provider_message_id,
        row.attempts,
        row.last_error,
    )
    assert ("email", ("asha@example.com",), "Welcome", "welcome") == (
        row.channel,
        row.recipients,
        row.subject,
        row.template,
    )
    assert (("onboarding",), {"user": 42}, 0.05) == (row.tags, row.metadata, row.duration)
    assert (T0, T0, T0) == (row.created_at, row.updated_at, row.sent_at)


def test_failover_success_keeps_the_failed_attempt(sink: SQLiteSink) -> None:
    """attempt_failed then sent: the row is sent by the backup after 2 attempts."""
    record_all(sink, delivery("m1", "failover"))
    row = sink.delivery("m1")
    assert row is not None
    assert ("sent", BACKUP, 2, "connection refused", "transient") == (
        row.status,
        row.transport,
        row.attempts,
        row.last_error,
        row.error_kind,
    )
    assert ["queued", "attempt_failed", "sent"] == [e.status for e in sink.history("m1")]


def test_total_failure_projects_a_failed_row(sink: SQLiteSink) -> None:
    """A final failure gives a failed row with the error and no sent_at."""
    record_all(sink, delivery("m1", "failed"))
    row = sink.delivery("m1")
    assert row is not None
    assert ("failed", PRIMARY, "failed", None) == (
        row.status,
        row.transport,
        row.error_kind,
        row.sent_at,
    )
    assert row.last_error is not None
    assert row.last_error.startswith("all transports failed")


def test_rejection_keeps_the_refused_recipients(sink: SQLiteSink) -> None:
    """A rejection gives a failed row with the refused recipients and their reason."""
    record_all(sink, delivery("m1", "rejected"))
    row = sink.delivery("m1")
    assert row is not None
    assert ("failed", "rejected", {"asha@example.com": "550 no such user"}) == (
        row.status,
        row.error_kind,
        row.rejected,
    )


def test_in_flight_message_is_queued(sink: SQLiteSink) -> None:
    """A message with only a queued event (or a failed attempt) is queued."""
    record_all(sink, delivery("m1", "queued"))
    record_all(sink, delivery("m2", "failover")[1:2])  # an attempt_failed arriving first
    first, second = sink.delivery("m1"), sink.delivery("m2")
    assert first is not None
    assert second is not None
    assert ("queued", 0) == (first.status, first.attempts)
    assert ("queued", 1, "transient") == (second.status, second.attempts, second.error_kind)


def test_sent_again_after_failing_ends_sent(sink: SQLiteSink) -> None:
    """A message that failed and was sent again later (a task retry) ends up sent."""
    record_all(sink, delivery("m1", "failed", at=T0))
    record_all(sink, delivery("m1", "sent", at=T0 + timedelta(minutes=5)))
    row = sink.delivery("m1")
    assert row is not None
    assert ("sent", T0, T0 + timedelta(minutes=5)) == (row.status, row.created_at, row.sent_at)


def test_maybe_delivered_sticks(sink: SQLiteSink) -> None:
    """An attempt that may have delivered marks the row, even after a later success."""
    events = delivery("m1", "failover")
    events[1] = attrs.evolve(events[1], maybe_delivered=True)
    record_all(sink, events)
    row = sink.delivery("m1")
    assert row is not None
    assert (True, "sent") == (row.maybe_delivered, row.status)


def test_unknown_message_has_no_row(sink: SQLiteSink) -> None:
    """delivery() and history() of an unknown id are None and empty."""
    assert None is sink.delivery("nope")
    assert [] == sink.history("nope")


# -- history and tail ---------------------------------------------------------


def test_history_round_trips_events_in_order(sink: SQLiteSink) -> None:
    """history() gives back equal events, in the order they were recorded."""
    mine = delivery("m1", "failover", at=T0)
    record_all(sink, delivery("m0") + mine + delivery("m2", "rejected"))
    assert mine == sink.history("m1")


def test_times_are_stored_in_utc(sink: SQLiteSink) -> None:
    """An aware time in another zone and a naive time come back as UTC."""
    ist = timezone(timedelta(hours=5, minutes=30))
    sink.record(DeliveryEvent("m1", "queued", "sms", at=datetime(2024, 5, 1, 15, 0, tzinfo=ist)))
    sink.record(DeliveryEvent("m1", "failed", "sms", at=datetime(2024, 5, 1, 9, 31)))
    assert [T0, T0 + timedelta(minutes=1)] == [e.at for e in sink.history("m1")]


def test_metadata_json_cannot_carry_is_stored_as_text(sink: SQLiteSink) -> None:
    """A Decimal in metadata is kept as its string rather than losing the event."""
    sink.record(DeliveryEvent("m1", "queued", "sms", metadata={"amount": Decimal("9.50")}))
    assert [{"amount": "9.50"}] == [dict(e.metadata) for e in sink.history("m1")]


def test_tail_gives_the_latest_events_oldest_first(sink: SQLiteSink) -> None:
    """tail(n) is the last n events, in recording order."""
    for i in range(10):
        record_all(sink, delivery(f"m{i}"))
    assert [("m8", "queued"), ("m8", "sent"), ("m9", "queued"), ("m9", "sent")] == [
        (e.message_id, e.status) for e in sink.tail(4)
    ]
    assert 20 == len(sink.tail(100))
    with pytest.raises(ConfigurationError):
        sink.tail(-1)


# -- stats --------------------------------------------------------------------


def test_stats_by_template_counts_messages(sink: SQLiteSink) -> None:
    """By template: sent, failed, in-flight and the success rate of decided messages."""
    for i in range(6):
        record_all(sink, delivery(f"w{i}", "sent", template="welcome"))
    record_all(sink, delivery("w6", "failover", template="welcome"))
    record_all(sink, delivery("w7", "failed", template="welcome"))
    record_all(sink, delivery("w8", "queued", template="welcome"))
    record_all(sink, delivery("r1", "rejected", template="receipt"))
    record_all(sink, delivery("p1", "sent", template=None))
    assert [
        StatsRow("welcome", sent=7, failed=1, queued=1, total=9, success_rate=7 / 8),
        StatsRow(None, sent=1, failed=0, queued=0, total=1, success_rate=1.0),
        StatsRow("receipt", sent=0, failed=1, queued=0, total=1, success_rate=0.0),
    ] == sink.stats()


def test_stats_of_only_in_flight_messages_has_no_rate(sink: SQLiteSink) -> None:
    """With nothing decided yet, the success rate is None rather than 0."""
    record_all(sink, delivery("m1", "queued"))
    assert [StatsRow("welcome", 0, 0, 1, 1, None)] == sink.stats()


def test_stats_by_channel(sink: SQLiteSink) -> None:
    """By channel: e-mail and SMS counted apart."""
    record_all(sink, delivery("e1", "sent") + delivery("e2", "failed"))
    record_all(sink, delivery("s1", "sent", channel="sms"))
    assert [
        StatsRow("email", 1, 1, 0, 2, 0.5),
        StatsRow("sms", 1, 0, 0, 1, 1.0),
    ] == sink.stats(group_by="channel")


def test_stats_by_transport_counts_attempts(sink: SQLiteSink) -> None:
    """By transport: each attempt counts for its transport, so failovers show."""
    record_all(sink, delivery("m1", "sent") + delivery("m2", "sent"))
    record_all(sink, delivery("m3", "failover") + delivery("m4", "failed"))
    record_all(sink, delivery("m5", "rejected"))
    assert [
        StatsRow(PRIMARY, sent=2, failed=3, queued=0, total=5, success_rate=0.4),
        StatsRow(BACKUP, sent=1, failed=0, queued=0, total=1, success_rate=1.0),
    ] == sink.stats(group_by="transport")


def test_stats_by_transport_counts_a_lone_final_failure_once(sink: SQLiteSink) -> None:
    """A failed event naming a transport, with no attempt_failed for it, is one failure."""
    sink.record(DeliveryEvent("m1", "queued", "sms"))
    sink.record(DeliveryEvent("m1", "failed", "sms", transport="msg91", attempt=1))
    assert [StatsRow("msg91", 0, 1, 0, 1, 0.0)] == sink.stats(group_by="transport")


def test_stats_since(sink: SQLiteSink) -> None:
    """since= (a datetime or a timedelta) leaves out older messages and attempts."""
    record_all(sink, delivery("old", "failed", at=T0))
    record_all(sink, delivery("new", "sent"))
    assert [StatsRow("welcome", 1, 0, 0, 1, 1.0)] == sink.stats(since=timedelta(hours=1))
    assert [StatsRow("welcome", 1, 1, 0, 2, 0.5)] == sink.stats(since=T0)
    assert [StatsRow(PRIMARY, 1, 0, 0, 1, 1.0)] == sink.stats(
        since=T0 + timedelta(seconds=1), group_by="transport"
    )


def test_stats_refuses_an_unknown_grouping(sink: SQLiteSink) -> None:
    """group_by other than template, transport or channel is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="group_by"):
        sink.stats(group_by="recipient")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="datetime or a timedelta"):
        sink.stats(since=3600)  # type: ignore[arg-type]


# -- purge --------------------------------------------------------------------


def test_purge_deletes_old_messages_whole(sink: SQLiteSink, path: Path) -> None:
    """purge() removes messages last updated before the cutoff, with all their events."""
    for i in range(3):
        record_all(sink, delivery(f"old{i}", "failover", at=T0))
    record_all(sink, delivery("new", "sent"))
    assert 3 == sink.purge(timedelta(days=1))
    assert [] == sink.history("old0")
    assert None is sink.delivery("old1")
    assert ["queued", "sent"] == [e.status for e in sink.history("new")]
    assert 2 == count(path)
    assert 1 == count(path, "deliveries")


def test_purge_by_datetime_keeps_recent_updates(sink: SQLiteSink) -> None:
    """A message created before the cutoff but updated after it is kept with its history."""
    record_all(sink, delivery("m1", "queued", at=T0))
    record_all(sink, delivery("m1", "sent", at=T0 + timedelta(days=2))[1:])
    record_all(sink, delivery("m2", "sent", at=T0))
    assert 1 == sink.purge(T0 + timedelta(days=1))
    assert ["queued", "sent"] == [e.status for e in sink.history("m1")]
    assert 0 == sink.purge(T0)


# -- threads, flush, close, exit ----------------------------------------------


def test_eight_threads_thousand_messages_each(sink: SQLiteSink, path: Path) -> None:
    """8 threads x 1,000 messages: every event is stored and stats() adds up."""
    per_thread, threads_n = 1000, 8

    def work(worker: int) -> None:
        template = "welcome" if worker % 2 == 0 else "receipt"
        for i in range(per_thread):
            outcome: Outcome = "failed" if i % 10 == 0 else "failover" if i % 10 == 1 else "sent"
            record_all(sink, delivery(f"{worker}-{i}", outcome, template=template))

    def read() -> None:
        for _ in range(20):
            sink.tail(5)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(threads_n)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sink.flush()
    # per thread: 100 failed and 100 failovers of 3 events, 800 sent of 2
    assert threads_n * (100 * 3 + 100 * 3 + 800 * 2) == count(path)
    assert threads_n * per_thread == count(path, "deliveries")
    assert [
        StatsRow("receipt", 3600, 400, 0, 4000, 0.9),
        StatsRow("welcome", 3600, 400, 0, 4000, 0.9),
    ] == sink.stats()
    assert [
        StatsRow(PRIMARY, 6400, 1600, 0, 8000, 0.8),
        StatsRow(BACKUP, 800, 0, 0, 800, 1.0),
    ] == sink.stats(group_by="transport")
    assert ["queued", "attempt_failed", "sent"] == [e.status for e in sink.history("5-321")]
    assert 0 == sink.dropped


def test_flush_makes_events_visible_to_other_connections(sink: SQLiteSink, path: Path) -> None:
    """After flush() another connection (another process) sees every event."""
    for i in range(500):
        record_all(sink, delivery(f"m{i}"))
    assert sink.flush()
    assert 1000 == count(path)


def test_close_writes_everything_then_refuses(path: Path) -> None:
    """close() writes what is queued; record() afterwards raises; reads still work."""
    sink = SQLiteSink(path)
    for i in range(2000):
        record_all(sink, delivery(f"m{i}"))
    sink.close()
    sink.close()
    assert sink.closed
    assert 4000 == count(path)
    with pytest.raises(NotifyKitError, match="closed"):
        sink.record(delivery("late")[0])
    assert ["queued", "sent"] == [e.status for e in sink.history("m1999")]


def test_in_memory_log_can_be_read_after_close() -> None:
    """A closed in-memory sink keeps its data for reading; two are independent."""
    first, second = SQLiteSink(), SQLiteSink()
    record_all(first, delivery("m1"))
    first.close()
    second.close()
    assert ["queued", "sent"] == [e.status for e in first.history("m1")]
    assert [] == second.history("m1")


def test_exit_without_close_loses_nothing(path: Path) -> None:
    """A process that records events and exits without close() has them all written."""
    script = (
        "import sys\n"
        "from notifykit.sinks.sqlite import SQLiteSink\n"
        "from tests.sinks.events import delivery\n"
        "sink = SQLiteSink(sys.argv[1])\n"
        "for i in range(3000):\n"
        "    for event in delivery(f'm{i}'):\n"
        "        sink.record(event)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], cwd=ROOT, timeout=60, capture_output=True
    )
    assert (0, b"") == (done.returncode, done.stderr)
    assert 6000 == count(path)


def test_garbage_collected_sink_writes_its_events(path: Path) -> None:
    """A sink nobody holds is collected (the writer thread keeps no hold on it) and flushed."""
    sink = SQLiteSink(path)
    for i in range(500):
        record_all(sink, delivery(f"m{i}"))
    ref = weakref.ref(sink)
    del sink
    gc.collect()
    assert None is ref()
    assert 1000 == count(path)


def test_full_queue_blocks_then_raises_and_loses_nothing(path: Path) -> None:
    """With the database locked, record() still returns until the queue is full, then raises."""
    sink = SQLiteSink(path, max_queue=5, max_batch=5, block_timeout=0.005, timeout=30)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    accepted: list[str] = []

    def record_until_refused() -> None:
        for i in range(1000):
            sink.record(DeliveryEvent(f"m{i}", "queued", "email"))
            accepted.append(f"m{i}")

    try:
        with pytest.raises(NotifyKitError, match="waiting to be written"):
            record_until_refused()
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    sink.close()
    assert 5 <= len(accepted) <= 10  # the queue, plus at most one batch in the writer's hands
    assert len(accepted) == count(path)


def test_an_event_that_cannot_be_stored_is_dropped_alone(
    sink: SQLiteSink, caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid event in a batch is logged and counted; the others are stored."""
    caplog.set_level(logging.ERROR, logger="notifykit")
    bad = DeliveryEvent(None, "queued", "email")  # type: ignore[arg-type]
    events = [*delivery("m1"), bad, *delivery("m2")]
    record_all(sink, events)
    assert sink.flush()
    assert 1 == sink.dropped
    assert ["queued", "sent"] == [e.status for e in sink.history("m2")]
    assert 4 == len(sink.tail(10))
    assert any("cannot log" in r.getMessage() for r in caplog.records)


def test_two_sinks_share_one_file(path: Path) -> None:
    """Two sinks (as two processes would) writing one file at once lose nothing."""
    with SQLiteSink(path) as first, SQLiteSink(path) as second:

        def work(target: SQLiteSink, prefix: str) -> None:
            for i in range(500):
                record_all(target, delivery(f"{prefix}{i}"))

        threads = [
            threading.Thread(target=work, args=(first, "a")),
            threading.Thread(target=work, args=(second, "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert first.flush()
        assert second.flush()
        assert [StatsRow("welcome", 1000, 0, 0, 1000, 1.0)] == first.stats()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_logs_through_its_own_writer(sink: SQLiteSink, path: Path) -> None:
    """After fork the child's events are written by the child, the parent's by the parent."""
    record_all(sink, delivery("parent-before"))
    assert sink.flush()  # the writer thread is running and idle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            record_all(sink, delivery("child"))
            sink.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert 0 == os.waitstatus_to_exitcode(status)
    record_all(sink, delivery("parent-after"))
    assert sink.flush()
    assert 6 == count(path)
    assert ["sent", "sent", "sent"] == [
        sink.delivery(m).status  # type: ignore[union-attr]
        for m in ("parent-before", "child", "parent-after")
    ]


def test_events_arriving_at_a_pace_share_commits(path: Path) -> None:
    """Group commit: messages a fraction of a millisecond apart do not commit one by one.

    The writer waits a few milliseconds for more events before it commits a
    small batch; a reader's flush() does not wait for that linger.
    """
    sink = SQLiteSink(str(path))
    batches: list[int] = []
    writer = sink._writer
    write = writer._write

    def counting(batch: list[DeliveryEvent]) -> list[Exception]:
        batches.append(len(batch))
        return write(batch)

    writer._write = counting  # type: ignore[method-assign]
    try:
        for i in range(60):
            sink.record(DeliveryEvent(f"m{i}", "queued", "email", recipients=("a@example.com",)))
            time.sleep(0.0002)
        assert sink.flush(timeout=10)
        assert 60 == sum(batches)
        assert len(batches) <= 30, batches  # about one commit per event without the linger
        assert 20 == len(sink.tail(20))
    finally:
        sink.close()
