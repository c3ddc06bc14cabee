"""How many acknowledged events a SIGKILL costs SQLiteSink, per durability mode.

A child process records a burst of events into a SQLiteSink as fast as it can
and, after each ``record()`` returns, writes the count to a shared memory page
(so the parent knows exactly how many were acknowledged). The parent kills it
with SIGKILL at a given point of the burst, then counts the acknowledged events
that are in the database. Run::

    python benchmarks/sqlite_kill.py            # 3 runs per row
    python benchmarks/sqlite_kill.py --runs 5

This is a durability measurement, not a speed benchmark: the numbers it prints
are the loss windows quoted in docs/logging.md and docs/security.md.
"""

from __future__ import annotations

import argparse
import mmap
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import mmap, os, sys, time
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.sqlite import SQLiteSink

path, durability, counter, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pace = float(sys.argv[5])
sink = SQLiteSink(path, durability=durability)
fd = os.open(counter, os.O_RDWR)
acked = mmap.mmap(fd, 8)
acked[0:8] = (0).to_bytes(8, "little")
start = time.perf_counter()
for i in range(total):
    sink.record(DeliveryEvent(f"m{i}", "sent", "email", transport="smtp", subject="x" * 80))
    acked[0:8] = (i + 1).to_bytes(8, "little")
    if pace:
        time.sleep(pace)
print(f"{total / (time.perf_counter() - start):.0f}", flush=True)
time.sleep(120)
"""


def run(durability: str, total: int, kill_after: int, pace: float = 0.0) -> tuple[int, int, float]:
    """Returns (acknowledged, of those stored, events/s of the burst or 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "log.db"
        counter = Path(tmp) / "counter"
        counter.write_bytes(b"\0" * 8)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), durability, str(counter), str(total), str(pace)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        rate = 0.0
        with open(counter, "r+b") as file, mmap.mmap(file.fileno(), 8) as shared:
            deadline = time.monotonic() + 300
            while int.from_bytes(shared[0:8], "little") < kill_after:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the child died or was too slow")
                time.sleep(0.0002)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            acknowledged = int.from_bytes(shared[0:8], "little")
        assert child.stdout is not None
        out = child.stdout.read().strip()
        if out:
            rate = float(out)
        conn = sqlite3.connect(db)
        stored = {r[0] for r in conn.execute("SELECT message_id FROM events")}
        conn.close()
        return acknowledged, sum(1 for i in range(acknowledged) if f"m{i}" in stored), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = [
        ("batched", 5_000, 2_000, "killed while recording one event per ms", 0.001),
        ("batched", 20_000, 20_000, "killed right after a 20,000-event burst", 0.0),
        ("batched", 20_000, 10_000, "killed in the middle of a 20,000-event burst", 0.0),
        ("sync", 2_000, 2_000, "killed right after a 2,000-event burst", 0.0),
        ("sync", 2_000, 1_000, "killed in the middle of a 2,000-event burst", 0.0),
    ]
    print("| durability | when | acknowledged (mean) | lost, worst run | lost, each run |")
    print("|---|---|---:|---:|---|")
    for durability, total, kill_after, label, pace in rows:
        runs = [run(durability, total, kill_after, pace) for _ in range(args.runs)]
        losses = [acked - stored for acked, stored, _rate in runs]
        worst = max(range(len(runs)), key=lambda i: losses[i])
        mean = sum(acked for acked, _s, _r in runs) / len(runs)
        print(
            f"| {durability} | {label} | {mean:,.0f} | {losses[worst]:,} of "
            f"{runs[worst][0]:,} ({100 * losses[worst] / runs[worst][0]:.1f} %) "
            f"| {', '.join(f'{x:,}' for x in losses)} |"
        )
    print()
    print("| durability | record() cost, µs/event (mean of a burst, flush included) |")
    print("|---|---:|")
    for durability, count in (("batched", 20_000), ("sync", 2_000), ("fsync", 2_000)):
        print(f"| {durability} | {cost(durability, count):,.1f} |")


def cost(durability: str, count: int) -> float:
    """Mean µs per event to record ``count`` events and flush them."""
    from notifykit.sinks.base import DeliveryEvent
    from notifykit.sinks.sqlite import SQLiteSink

    with tempfile.TemporaryDirectory() as tmp:
        sink = SQLiteSink(Path(tmp) / "log.db", durability=durability)  # type: ignore[arg-type]
        events = [
            DeliveryEvent(f"m{i}", "sent", "email", transport="smtp", subject="x" * 80)
            for i in range(count)
        ]
        start = time.perf_counter()
        for event in events:
            sink.record(event)
        sink.flush()
        elapsed = time.perf_counter() - start
        sink.close()
    return elapsed / count * 1e6


if __name__ == "__main__":
    main()
