"""JSONLSink: one whole JSON line per event, from many threads and processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.sinks.base import DeliveryEvent, LogSink
from notifykit.sinks.jsonl import JSONLSink, read_events
from tests.sinks.events import delivery

ROOT = Path(__file__).resolve().parents[2]

# One writer process: waits for "go" on stdin so that all of them write at once.
WRITER = """
import sys
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.jsonl import JSONLSink

path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
pad = "x" * 700
with JSONLSink(path) as sink:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        sink.record(DeliveryEvent(
            f"{worker}-{i}", "sent", "email", transport="smtp",
            metadata={"worker": worker, "i": i, "pad": pad},
        ))
"""


def test_is_a_log_sink(tmp_path: Path) -> None:
    """JSONLSink satisfies the LogSink protocol."""
    with JSONLSink(tmp_path / "log.jsonl") as sink:
        assert isinstance(sink, LogSink)


def test_one_line_per_event_round_trips(tmp_path: Path) -> None:
    """Each event is one JSON line that reads back as the same event."""
    path = tmp_path / "log.jsonl"
    events = delivery("m1", "failover") + delivery("m2", "rejected")
    with JSONLSink(path) as sink:
        for event in events:
            sink.record(event)
    lines = path.read_text("utf-8").splitlines()
    assert [e.to_dict() for e in events] == [json.loads(line) for line in lines]
    assert events == list(read_events(path))


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    """A second sink on the same file appends; nothing is truncated."""
    path = tmp_path / "log.jsonl"
    for message_id in ("m1", "m2"):
        with JSONLSink(path) as sink:
            for event in delivery(message_id):
                sink.record(event)
    assert ["m1", "m1", "m2", "m2"] == [e.message_id for e in read_events(path)]


def test_values_json_cannot_carry_are_written_as_text(tmp_path: Path) -> None:
    """A Decimal in metadata is written as its string, and non-ASCII text stays UTF-8."""
    path = tmp_path / "log.jsonl"
    event = DeliveryEvent("m1", "sent", "sms", subject=None, metadata={"amount": Decimal("9.50")})
    with JSONLSink(path) as sink:
        sink.record(event)
        sink.record(DeliveryEvent("m2", "queued", "email", subject="Bestellung für Jürgen"))
    first, second = path.read_text("utf-8").splitlines()
    assert {"amount": "9.50"} == json.loads(first)["metadata"]
    assert '"subject":"Bestellung für Jürgen"' in second


def test_closed_sink_refuses_events(tmp_path: Path) -> None:
    """record() after close() raises, and closing twice is harmless."""
    sink = JSONLSink(tmp_path / "log.jsonl")
    sink.close()
    sink.close()
    assert sink.closed
    with pytest.raises(NotifyKitError, match="closed"):
        sink.record(delivery("m1")[0])


def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    """A path in a directory that does not exist is refused at construction."""
    with pytest.raises(ConfigurationError, match="cannot open the delivery log file"):
        JSONLSink(tmp_path / "nowhere" / "log.jsonl")


def test_read_events_names_a_bad_line(tmp_path: Path) -> None:
    """With strict=True, a line that is not an event is reported with its line number."""
    path = tmp_path / "log.jsonl"
    good = json.dumps(delivery("m1")[0].to_dict())
    path.write_text(f"{good}\n\n{good[:40]}\n", "utf-8")
    with pytest.raises(NotifyKitError, match=r"log\.jsonl:3: not a delivery event"):
        list(read_events(path, strict=True))


def test_many_threads_write_whole_lines(tmp_path: Path) -> None:
    """8 threads x 500 events give 4,000 whole lines, each thread's in order."""
    path = tmp_path / "log.jsonl"
    sink = JSONLSink(path)

    def work(worker: int) -> None:
        for i in range(500):
            sink.record(DeliveryEvent(f"{worker}-{i}", "sent", "email", metadata={"p": "y" * 300}))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    ids = [e.message_id for e in read_events(path)]
    assert 4000 == len(ids)
    for worker in range(8):
        assert [f"{worker}-{i}" for i in range(500)] == [
            m for m in ids if m.startswith(f"{worker}-")
        ]


def test_four_processes_write_whole_lines(tmp_path: Path) -> None:
    """4 processes appending 2,000 lines each at once leave 8,000 whole lines."""
    path = tmp_path / "log.jsonl"
    count = 2000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(worker), str(count)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert "ready\n" == proc.stdout.readline()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        codes = [proc.wait(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    assert [0, 0, 0, 0] == codes
    lines = path.read_bytes().split(b"\n")
    assert b"" == lines.pop()  # the file ends with a newline
    assert 4 * count == len(lines)
    seen: dict[str, list[int]] = {str(w): [] for w in range(4)}
    for line in lines:
        data = json.loads(line)  # a torn or interleaved line fails here
        seen[data["metadata"]["worker"]].append(data["metadata"]["i"])
    assert {str(w): list(range(count)) for w in range(4)} == seen
