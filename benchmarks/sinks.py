"""What each delivery-log sink adds to sending one message, against no sink at all.

For every message the loop builds the events a Notifier emits for a success
(``queued``, then ``sent``) and hands them to the sink; the baseline builds the
same events and hands them to nobody. Sinks that write in the background
(SQLiteSink) are flushed at the end and the flush is timed too, so the figure
is the amortised cost of getting every event onto disk, not just the cost of
queueing it. The ``record() only`` row is what the sending thread itself waits.

Target: SQLiteSink adds less than 50 µs per message.

A second table sends at a pace, one message every ``--gap`` seconds (0.3 ms by
default, about what one SMTP connection on loopback sustains), and measures
the CPU time of the whole process (writer thread included) per message: in a
burst every commit carries thousands of events, at a pace each wake-up of the
writer commits only what arrived meanwhile. The row with the linger at 0 is
SQLiteSink as it was before its writer waited 5 ms for more events.

    python benchmarks/sinks.py            # 20,000 messages, best of 3
    python benchmarks/sinks.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.jsonl import JSONLSink
from notifykit.sinks.memory import MemorySink
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.sinks.stdlib import LoggingSink

TARGET_US = 50.0


def send_loop(record: Callable[[DeliveryEvent], None] | None, n: int) -> None:
    """Build (and record) the events of ``n`` successful messages."""
    recipients = ("asha@example.com",)
    tags = ("orders",)
    metadata = {"order": "A-1001"}
    for i in range(n):
        message_id = f"{i:032x}"
        queued = DeliveryEvent(
            message_id,
            "queued",
            "email",
            recipients=recipients,
            subject="Your order has shipped",
            template="order_shipped",
            tags=tags,
            metadata=metadata,
            at=datetime.now(timezone.utc),
        )
        sent = DeliveryEvent(
            message_id,
            "sent",
            "email",
            transport="smtp:mail.example.com:587",
            recipients=recipients,
            subject="Your order has shipped",
            template="order_shipped",
            attempt=1,
            provider_message_id=f"<{message_id}@mail.example.com>",
            duration=0.012,
            tags=tags,
            metadata=metadata,
            at=datetime.now(timezone.utc),
        )
        if record is not None:
            record(queued)
            record(sent)


def logging_sink(level: int) -> LoggingSink:
    logger = logging.getLogger(f"bench.notifykit.{level}")
    logger.handlers[:] = [logging.StreamHandler(io.StringIO())]
    logger.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.setLevel(level)
    logger.propagate = False
    return LoggingSink(logger)


def timed(make: Callable[[str], Any], n: int, repeats: int, flush: bool) -> float:
    """Best wall time, in seconds, of the loop with a fresh sink from ``make``."""
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            sink = make(tmp)
            start = time.perf_counter()
            send_loop(None if sink is None else sink.record, n)
            if flush and hasattr(sink, "flush"):
                sink.flush(timeout=None)
            best = min(best, time.perf_counter() - start)
            if hasattr(sink, "close"):
                sink.close()
    return best


def paced(make: Callable[[str], Any], n: int, gap: float, repeats: int) -> float:
    """Median CPU seconds of the process for ``n`` messages sent one per ``gap``."""
    samples = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            sink = make(tmp)
            record = None if sink is None else sink.record
            start = time.process_time()
            for _ in range(n):
                send_loop(record, 1)
                time.sleep(gap)
            if hasattr(sink, "flush"):
                sink.flush(timeout=None)
            samples.append(time.process_time() - start)
            if hasattr(sink, "close"):
                sink.close()
    return sorted(samples)[len(samples) // 2]


def paced_table(n: int, gap: float, repeats: int) -> None:
    from notifykit.sinks import sqlite

    def no_linger(tmp: str) -> SQLiteSink:
        sqlite._LINGER = 0.0
        return SQLiteSink(os.path.join(tmp, "n.db"))

    def default(tmp: str) -> SQLiteSink:
        sqlite._LINGER = linger
        return SQLiteSink(os.path.join(tmp, "n.db"))

    linger = sqlite._LINGER
    cases: list[tuple[str, Callable[[str], Any]]] = [
        ("no sink (baseline)", lambda tmp: None),
        ("JSONLSink", lambda tmp: JSONLSink(os.path.join(tmp, "log.jsonl"))),
        (f"**SQLiteSink(file), default (writer lingers {linger * 1000:g} ms)**", default),
        ("SQLiteSink(file), linger 0 (a commit per wake-up, as before)", no_linger),
    ]
    results = [(name, paced(make, n, gap, repeats)) for name, make in cases]
    sqlite._LINGER = linger
    base = results[0][1]
    print(
        f"\nPaced: {n:,} messages, one every {gap * 1000:g} ms, CPU time of the process "
        f"(median of {repeats})\n"
    )
    print("| sink | CPU µs / message | added vs no sink (µs) |")
    print("|---|---:|---:|")
    for name, seconds in results:
        print(f"| {name} | {seconds / n * 1e6:.1f} | {(seconds - base) / n * 1e6:+.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="2,000 messages, one run")
    parser.add_argument("-n", type=int, default=None, help="messages per run")
    parser.add_argument("--gap", type=float, default=0.0003, help="seconds between paced messages")
    args = parser.parse_args()
    n = args.n or (2_000 if args.quick else 20_000)
    repeats = 1 if args.quick else 3

    cases: list[tuple[str, Callable[[str], Any], bool]] = [
        ("no sink (baseline)", lambda tmp: None, False),
        ("MemorySink", lambda tmp: MemorySink(), False),
        ("LoggingSink, level WARNING (nothing emitted)", lambda tmp: logging_sink(30), False),
        ("LoggingSink, level INFO, to a stream", lambda tmp: logging_sink(20), False),
        ("JSONLSink", lambda tmp: JSONLSink(os.path.join(tmp, "log.jsonl")), False),
        ("SQLiteSink(':memory:'), with flush", lambda tmp: SQLiteSink(), True),
        ("SQLiteSink(file), with flush", lambda tmp: SQLiteSink(os.path.join(tmp, "n.db")), True),
        (
            # The queue is made big enough never to fill, so this is what the
            # sending thread waits when the disk keeps up (the writer thread
            # still competes for the GIL meanwhile).
            "SQLiteSink(file), record() only, no flush",
            lambda tmp: SQLiteSink(os.path.join(tmp, "n.db"), max_queue=2 * n + 1),
            False,
        ),
    ]
    results = [(name, timed(make, n, repeats, flush)) for name, make, flush in cases]
    base = results[0][1]

    print(f"Delivery-log sinks: {n:,} messages (queued + sent), best of {repeats}\n")
    print("| sink | µs / message | added vs no sink (µs) | ratio |")
    print("|---|---:|---:|---:|")
    for name, seconds in results:
        per = seconds / n * 1e6
        added = (seconds - base) / n * 1e6
        print(f"| {name} | {per:.1f} | {added:+.1f} | {seconds / base:.2f}x |")
    sqlite_added = (results[6][1] - base) / n * 1e6
    verdict = "met" if sqlite_added < TARGET_US else "NOT met"
    print(
        f"\nSQLiteSink(file) adds {sqlite_added:.1f} µs per message, flush included "
        f"(target < {TARGET_US:.0f} µs: {verdict})."
    )
    paced_table(n // 10, args.gap, repeats * 2 + 1)


if __name__ == "__main__":
    main()
