"""The delivery log loses one event at most: bad events, kill -9, full disks.

- a bad event (a lone surrogate, a value SQLite refuses) costs only itself, and
  every event a sink drops counts in ``Notifier.sink_failures``;
- ``SQLiteSink(durability="sync")`` loses no acknowledged event when its
  process is killed with SIGKILL (a real subprocess, really killed);
- a JSONL line torn by a full disk does not glue the next events to it, and
  ``read_events`` skips and counts unreadable lines instead of stopping;
- ``SQLiteSink()`` on a full disk says the disk is full.

A real full disk is a tiny tmpfs, mounted when the tests run as root with the
right to mount (skipped otherwise); the JSONL tests also run everywhere with
``os.write`` failing with ENOSPC part-way, since a full disk cannot be made
portably in CI.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.jsonl import JSONLSink, read_events
from notifykit.sinks.sqlite import SQLiteSink

ROOT = Path(__file__).resolve().parents[2]
SURROGATE = "bad \udc80 text"


def _event(i: int, **fields: object) -> DeliveryEvent:
    return DeliveryEvent(f"m{i}", "sent", "email", transport="memory", **fields)  # type: ignore[arg-type]


def _ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT message_id FROM events")}
    finally:
        conn.close()


# ------------------------------------------------------------------ one bad event


def test_a_lone_surrogate_costs_the_sqlite_batch_nothing(tmp_path: Path) -> None:
    """1,000 events with one lone surrogate among them: all 1,000 are stored, none dropped."""
    path = tmp_path / "log.db"
    sink = SQLiteSink(path)
    for i in range(1000):
        sink.record(_event(i, subject=SURROGATE if i == 500 else "fine"))
    assert sink.flush()
    assert 0 == sink.dropped
    assert {f"m{i}" for i in range(1000)} == _ids(path)
    (stored,) = sink.history("m500")
    assert "bad \\udc80 text" == stored.subject  # escaped, readable, not lost
    sink.close()


@settings(derandomize=True, max_examples=30, deadline=None)
@given(kinds=st.lists(st.sampled_from(["good", "good", "surrogate", "huge"]), max_size=60))
def test_each_bad_event_costs_only_itself(kinds: list[str]) -> None:
    """Any mix of good events, lone surrogates and values SQLite refuses, in one batch."""
    sink = SQLiteSink(max_batch=1_000)
    for i, kind in enumerate(kinds):
        fields: dict[str, object] = {}
        if kind == "surrogate":
            fields["error"] = f"{SURROGATE} {i}"
        elif kind == "huge":
            fields["attempt"] = 2**70
        sink.record(_event(i, **fields))
    assert sink.flush()
    stored = {e.message_id for e in sink.tail(1_000)}
    assert {f"m{i}" for i, kind in enumerate(kinds) if kind != "huge"} == stored
    assert kinds.count("huge") == sink.dropped
    sink.close()


@pytest.mark.parametrize("durability", ["batched", "sync"])
def test_an_event_sqlite_refuses_is_dropped_alone_and_counted(
    tmp_path: Path, durability: str
) -> None:
    """A value SQLite cannot store costs one event, which counts in sink_failures."""
    sink = SQLiteSink(tmp_path / "log.db", durability=durability)  # type: ignore[arg-type]
    notifier = nk.Notifier(email=nk.MemoryTransport(), sinks=[sink])
    for i in range(50):
        event = _event(i, attempt=10**30 if i == 20 else 1)  # too big for an INTEGER
        notifier._emit(event)
    sink.flush()
    assert 1 == notifier.sink_failures
    assert 49 == len(_ids(tmp_path / "log.db"))
    receipt = notifier.send(
        nk.Email(to="a@example.com", subject="s", text="t", sender="b@example.com")
    )
    sink.flush()
    assert ["queued", "sent"] == [e.status for e in sink.history(receipt.message_id)]
    assert 1 == notifier.sink_failures
    notifier.close()


def test_a_lone_surrogate_is_kept_by_jsonl(tmp_path: Path) -> None:
    """JSONL writes the event with \\u escapes instead of failing on it."""
    path = tmp_path / "log.jsonl"
    with JSONLSink(path) as sink:
        sink.record(_event(1, subject=SURROGATE))
        sink.record(_event(2))
    events = list(read_events(path))
    assert [SURROGATE, None] == [e.subject for e in events]


# ------------------------------------------------------------------ kill -9

_CHILD = """
import mmap, os, sys, time
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.sqlite import SQLiteSink

path, durability, counter, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sink = SQLiteSink(path, durability=durability)
fd = os.open(counter, os.O_RDWR)
acked = mmap.mmap(fd, 8)
for i in range(total):
    sink.record(DeliveryEvent(f"m{i}", "sent", "email", transport="smtp", subject="x" * 80))
    acked[0:8] = (i + 1).to_bytes(8, "little")  # record() returned: acknowledged
time.sleep(60)
"""


def kill_during_burst(
    path: Path, durability: str, total: int, kill_after: int, timeout: float = 60.0
) -> tuple[int, int]:
    """Run a child recording ``total`` events; SIGKILL it once ``kill_after`` are acknowledged.

    Returns (acknowledged, acknowledged events found in the database).
    """
    counter = path.with_suffix(".counter")
    counter.write_bytes(b"\0" * 8)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), durability, str(counter), str(total)], env=env
    )
    with open(counter, "r+b") as file, mmap.mmap(file.fileno(), 8) as shared:
        deadline = time.monotonic() + timeout
        try:
            while int.from_bytes(shared[0:8], "little") < kill_after:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the child died or was too slow")
                time.sleep(0.0005)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        acknowledged = int.from_bytes(shared[0:8], "little")
    stored = _ids(path)
    return acknowledged, sum(1 for i in range(acknowledged) if f"m{i}" in stored)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")
def test_sync_durability_loses_no_acknowledged_event_under_kill_9(tmp_path: Path) -> None:
    """durability="sync": every event whose record() returned is in the file after SIGKILL."""
    for run in range(3):
        acknowledged, stored = kill_during_burst(
            tmp_path / f"sync{run}.db", "sync", total=5_000, kill_after=200 + 150 * run
        )
        assert acknowledged >= 200
        assert acknowledged == stored


# ------------------------------------------------------------------ JSONL torn lines


def test_a_torn_last_line_does_not_swallow_the_next_events(tmp_path: Path) -> None:
    """A file ending mid-line: the sink starts a new line; the reader skips and counts."""
    path = tmp_path / "log.jsonl"
    with JSONLSink(path) as sink:
        sink.record(_event(1))
    whole = path.read_bytes()
    path.write_bytes(whole + whole[:37])  # a second line cut short, as by a full disk
    with JSONLSink(path) as sink:
        sink.record(_event(2))
        sink.record(_event(3))
    reader = read_events(path)
    assert ["m1", "m2", "m3"] == [e.message_id for e in reader]
    assert 1 == reader.skipped
    assert [2] == reader.skipped_lines


@settings(derandomize=True, max_examples=50, deadline=None)
@given(
    before=st.integers(min_value=0, max_value=5),
    cut=st.integers(min_value=1, max_value=10_000),
    after=st.integers(min_value=1, max_value=5),
    subject=st.text(max_size=30),
)
def test_a_line_torn_anywhere_costs_only_itself(
    before: int, cut: int, after: int, subject: str
) -> None:
    """Tear the last line at any byte (even mid-character): every other event is read back."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        with JSONLSink(path) as sink:
            for i in range(before + 1):
                sink.record(_event(i, subject=subject))
        data = path.read_bytes()
        last = data.rstrip(b"\n").rfind(b"\n") + 1  # where the last line starts
        torn = data[: last + cut % (len(data) - last - 1) + 1] if len(data) - last > 1 else data
        path.write_bytes(torn)
        with JSONLSink(path) as sink:
            for i in range(100, 100 + after):
                sink.record(_event(i, subject=subject))
        reader = read_events(path)
        ids = [e.message_id for e in reader]
    assert [f"m{i}" for i in range(before)] == ids[:before]
    assert [f"m{i}" for i in range(100, 100 + after)] == ids[-after:]
    assert reader.skipped <= 1
    assert len(ids) + reader.skipped == before + 1 + after


def test_read_events_goes_past_bad_lines(tmp_path: Path) -> None:
    """Garbage, half an event and bytes that are not UTF-8 are skipped, the rest read."""
    path = tmp_path / "log.jsonl"
    good = (_event(1).to_dict(), _event(2).to_dict())
    path.write_bytes(
        json.dumps(good[0]).encode()
        + b'\n{"message_id": "x"\n\xff\xfe not utf-8\n[1, 2]\n'
        + json.dumps(good[1]).encode()
        + b"\n"
    )
    reader = read_events(path)
    assert ["m1", "m2"] == [e.message_id for e in reader]
    assert [2, 3, 4] == reader.skipped_lines
    with pytest.raises(NotifyKitError, match=":2: not a delivery event"):
        list(read_events(path, strict=True))


def test_a_write_cut_short_by_enospc_costs_one_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.write writes part of a line then fails with ENOSPC: later events stay readable."""
    path = tmp_path / "log.jsonl"
    sink = JSONLSink(path)
    sink.record(_event(1))
    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, data[:25])  # the kernel took part of the line...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk was full

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        sink.record(_event(2))
    monkeypatch.setattr(os, "write", real_write)  # space freed
    sink.record(_event(3))
    sink.record(_event(4))
    sink.close()
    reader = read_events(path)
    assert ["m1", "m3", "m4"] == [e.message_id for e in reader]
    assert 1 == reader.skipped


def test_a_jsonl_write_failure_counts_in_sink_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSONL record() that fails is counted by the Notifier; the message still goes out."""
    sink = JSONLSink(tmp_path / "log.jsonl")
    memory = nk.MemoryTransport()
    notifier = nk.Notifier(email=memory, sinks=[sink])

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    notifier.send(nk.Email(to="a@example.com", subject="s", text="t", sender="b@example.com"))
    monkeypatch.undo()
    assert 1 == len(memory.outbox)
    assert 2 == notifier.sink_failures  # the queued and the sent event
    notifier.close()


# ------------------------------------------------------------------ a real full disk


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, nearly filled by a file named ``filler``."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * (252 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_sqlite_on_a_full_disk_says_so(full_disk: Path) -> None:
    """SQLiteSink() on a full disk reports "database or disk is full", not a ROLLBACK error."""
    with pytest.raises(ConfigurationError) as caught:
        SQLiteSink(full_disk / "log.db")
    assert "full" in str(caught.value)
    assert "cannot rollback" not in str(caught.value)


def test_sqlite_writes_on_a_full_disk_say_so(full_disk: Path) -> None:
    """A sync write to a full disk raises from record(), naming the full disk."""
    (full_disk / "filler").unlink()
    sink = SQLiteSink(full_disk / "log.db", durability="sync")
    sink.record(_event(0))
    filler = os.open(full_disk / "filler", os.O_WRONLY | os.O_CREAT)  # fill what is left
    try:
        while os.write(filler, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(filler)
    failure: NotifyKitError | None = None
    for i in range(1, 200):
        try:
            sink.record(_event(i, subject="z" * 2000))
        except NotifyKitError as exc:
            failure = exc
            break
    assert failure is not None
    assert "database or disk is full" in str(failure)
    assert "cannot rollback" not in str(failure)
    sink.close()


def test_jsonl_on_a_really_full_disk_recovers(full_disk: Path) -> None:
    """Fill a real tmpfs: the torn line costs one event, the events after space is freed are read."""
    path = full_disk / "log.jsonl"
    sink = JSONLSink(path)
    written = 0
    failure: OSError | None = None
    for i in range(10_000):
        try:
            sink.record(_event(i, subject="y" * 300))
        except OSError as exc:
            failure = exc
            break
        written += 1
    assert failure is not None
    assert errno.ENOSPC == failure.errno
    (full_disk / "filler").unlink()
    for i in range(10_000, 10_010):
        sink.record(_event(i))
    sink.close()
    reader = read_events(path)
    ids = [e.message_id for e in reader]
    assert [f"m{i}" for i in range(written)] == ids[:written]
    assert [f"m{i}" for i in range(10_000, 10_010)] == ids[written:]
    assert reader.skipped <= 1
