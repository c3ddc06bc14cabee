"""MemorySink: every event kept, in order, from any thread."""

from __future__ import annotations

import threading

from notifykit.sinks.base import LogSink
from notifykit.sinks.memory import MemorySink
from tests.sinks.events import delivery


def test_is_a_log_sink() -> None:
    """MemorySink satisfies the LogSink protocol."""
    assert isinstance(MemorySink(), LogSink)


def test_keeps_events_in_order() -> None:
    """Events come back in the order they were recorded."""
    sink = MemorySink()
    events = delivery("m1", "failover") + delivery("m2", "failed")
    for event in events:
        sink.record(event)
    assert events == sink.events
    assert 6 == len(sink)


def test_helpers_select_by_message_and_status() -> None:
    """for_message, with_status and statuses pick the right events."""
    sink = MemorySink()
    for event in delivery("m1", "failover") + delivery("m2", "sent"):
        sink.record(event)
    assert ["queued", "attempt_failed", "sent"] == sink.statuses("m1")
    assert ["queued", "sent"] == [e.status for e in sink.for_message("m2")]
    assert ["m1", "m2"] == [e.message_id for e in sink.with_status("sent")]
    assert ["queued", "attempt_failed", "sent", "queued", "sent"] == sink.statuses()


def test_events_is_a_snapshot() -> None:
    """Changing the list from .events does not change the sink."""
    sink = MemorySink()
    sink.record(delivery("m1")[0])
    sink.events.clear()
    assert 1 == len(sink)


def test_clear_forgets_everything() -> None:
    """clear() empties the sink."""
    sink = MemorySink()
    for event in delivery("m1"):
        sink.record(event)
    sink.clear()
    assert [] == sink.events


def test_many_threads_lose_nothing() -> None:
    """8 threads recording 1,000 events each leave 8,000 events, each thread's in order."""
    sink = MemorySink()
    template = delivery("x")[0]

    def work(worker: int) -> None:
        for i in range(1000):
            sink.record(template.__class__(f"{worker}-{i}", "queued", "email"))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = sink.events
    assert 8000 == len(events)
    for worker in range(8):
        mine = [e.message_id for e in events if e.message_id.startswith(f"{worker}-")]
        assert [f"{worker}-{i}" for i in range(1000)] == mine
