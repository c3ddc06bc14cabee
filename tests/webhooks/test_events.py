"""Delivery reports in the SQLite log: the row moves on from ``sent``, stats gain rates."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.cli import main
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.sqlite import SCHEMA_VERSION, SQLiteSink

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


@pytest.fixture
def sink(path: Path) -> Iterator[SQLiteSink]:
    with SQLiteSink(path) as sink:
        yield sink


def send(sink: SQLiteSink, n: int, template: str = "welcome") -> list[nk.Receipt]:
    """Send ``n`` e-mails through a MemoryTransport; their receipts."""
    notifier = nk.Notifier(email=nk.MemoryTransport(), sinks=[sink], sender="s@shop.example")
    return [
        notifier.send(nk.Email(to=f"u{i}@example.com", subject="Hi", text="t"), template=template)
        for i in range(n)
    ]


def report(
    provider_id: str | None,
    status: str,
    to: str = "u0@example.com",
    reason: str | None = None,
    kind: str | None = None,
    at: datetime | None = None,
) -> DeliveryEvent:
    return DeliveryEvent(
        message_id=f"ses:{provider_id}",
        status=status,  # type: ignore[arg-type]
        channel="email",
        recipients=(to,),
        provider_message_id=provider_id,
        error=reason,
        error_kind=kind,
        at=at or datetime.now(timezone.utc),
    )


def test_schema_version_2_indexes_the_provider_id(sink: SQLiteSink, path: Path) -> None:
    """Reports find their message by provider id: version 2 adds that index."""
    sink.flush()
    conn = sqlite3.connect(path)
    try:
        assert SCHEMA_VERSION == 2 == conn.execute("PRAGMA user_version").fetchone()[0]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        conn.close()
    assert "deliveries_provider_message_id" in names


def test_a_report_moves_the_row_and_joins_the_history(sink: SQLiteSink) -> None:
    """``delivered`` then ``bounced`` (hard): the row follows, the events join the message."""
    (receipt,) = send(sink, 1)
    pid = receipt.provider_message_id
    sink.record(report(pid, "delivered", reason="250 2.0.0 OK"))
    row = sink.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"
    assert row.last_error == "250 2.0.0 OK"
    sink.record(report(pid, "bounced", reason="smtp; 550 5.1.1 user unknown", kind="hard"))
    row = sink.delivery(receipt.message_id)
    assert row is not None
    assert (row.status, row.error_kind, row.last_error) == (
        "bounced",
        "hard",
        "smtp; 550 5.1.1 user unknown",
    )
    history = sink.history(receipt.message_id)
    assert [e.status for e in history] == ["queued", "sent", "delivered", "bounced"]
    assert history[-1].provider_message_id == pid


def test_reports_only_move_forward(sink: SQLiteSink) -> None:
    """A late ``delivered`` or ``deferred`` never hides a complaint; opened changes nothing."""
    (receipt,) = send(sink, 1)
    pid = receipt.provider_message_id
    for status in ["complained", "delivered", "deferred", "opened", "bounced"]:
        sink.record(report(pid, status, reason=status))
    row = sink.delivery(receipt.message_id)
    assert row is not None
    assert (row.status, row.last_error) == ("complained", "complained")
    assert len(sink.history(receipt.message_id)) == 7


def test_a_report_for_an_unknown_message_is_kept_apart(sink: SQLiteSink) -> None:
    """No message with that provider id: the event is stored under its own id, no row made."""
    send(sink, 1)
    sink.record(report("not-ours", "delivered"))
    assert sink.delivery("ses:not-ours") is None
    assert [e.status for e in sink.history("ses:not-ours")] == ["delivered"]


def test_a_sent_and_its_report_in_one_batch(path: Path) -> None:
    """The writer applies reports after the rest of a batch: the order of one commit holds."""
    sink = SQLiteSink(path, max_batch=1000)
    try:
        sent = DeliveryEvent(
            message_id="m1",
            status="sent",
            channel="email",
            recipients=("a@example.com",),
            transport="ses",
            provider_message_id="p1",
        )
        # One batch, as the writer thread takes it from the queue: the report
        # first, yet applied after its message's sent.
        assert sink._writer._write([report("p1", "delivered"), sent]) == []
        row = sink.delivery("m1")
    finally:
        sink.close()
    assert row is not None
    assert row.status == "delivered"


def test_stats_rates_by_template_and_transport(sink: SQLiteSink) -> None:
    """Delivery, bounce and complaint rates over the messages that went out."""
    receipts = send(sink, 4, template="welcome") + send(sink, 1, template="receipt")
    ids = [r.provider_message_id for r in receipts]
    sink.record(report(ids[0], "delivered"))
    sink.record(report(ids[1], "delivered"))
    sink.record(report(ids[2], "bounced", kind="hard"))
    sink.record(report(ids[3], "complained"))
    by_template = {r.key: r for r in sink.stats()}
    welcome = by_template["welcome"]
    assert (welcome.sent, welcome.delivered, welcome.bounced, welcome.complained) == (4, 3, 1, 1)
    assert welcome.success_rate == 1.0
    assert (welcome.delivery_rate, welcome.bounce_rate, welcome.complaint_rate) == (
        0.75,
        0.25,
        0.25,
    )
    # nothing reported for "receipt": the rates are unknown, not 0
    assert by_template["receipt"].delivery_rate is None
    (memory,) = sink.stats(group_by="transport")
    assert (memory.delivered, memory.bounced, memory.complained) == (3, 1, 1)
    assert memory.bounce_rate == 0.2


def test_stats_since_counts_reports_of_recent_messages(sink: SQLiteSink) -> None:
    """``since`` filters on when the message was created, as for sent/failed."""
    (receipt,) = send(sink, 1)
    sink.record(report(receipt.provider_message_id, "delivered"))
    assert sink.stats(since=timedelta(hours=1))[0].delivered == 1
    assert sink.stats(since=datetime.now(timezone.utc) + timedelta(hours=1)) == []


def test_event_round_trip_keeps_the_new_statuses() -> None:
    """to_dict/from_dict carry a report's status, reason and bounce kind."""
    event = report("p", "bounced", reason="5.1.1", kind="soft", at=T0)
    assert DeliveryEvent.from_dict(event.to_dict()) == event


def test_log_shows_reports(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``notifykit log tail`` prints the new statuses and reasons; ``stats`` gains rates."""
    with SQLiteSink(path) as sink:
        (receipt,) = send(sink, 1)
        sink.record(
            report(receipt.provider_message_id, "bounced", reason="550 5.1.1 no user", kind="hard")
        )
    assert 0 == main(["log", "tail", "--db", str(path)])
    out = capsys.readouterr().out
    assert "bounced" in out
    assert "hard: 550 5.1.1 no user" in out
    assert 0 == main(["log", "stats", "--db", str(path)])
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert [
        "key",
        "sent",
        "failed",
        "queued",
        "total",
        "success",
        "delivered",
        "bounced",
        "complaints",
    ] in lines
    assert ["welcome", "1", "0", "0", "1", "100%", "0.0%", "100.0%", "0.0%"] in lines


def test_a_version_1_log_is_upgraded(tmp_path: Path) -> None:
    """A log written before delivery reports (schema 1) is upgraded in place, rows kept."""
    from notifykit.sinks.sqlite import _SCHEMA_V1

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute(
        "INSERT INTO deliveries VALUES ('m1', 'email', 'sent', '[]', NULL, NULL, 'ses', 'p1', 1,"
        " NULL, NULL, 0, NULL, '[]', '{}', NULL, ?1, ?1, ?1)",
        (T0.isoformat(),),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with SQLiteSink(path) as sink:
        sink.record(report("p1", "delivered"))
        row = sink.delivery("m1")
    assert row is not None
    assert row.status == "delivered"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        conn.close()


_RANK = {"deferred": 2, "delivered": 3, "bounced": 4, "rejected_by_provider": 4, "complained": 5}


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["delivered", "bounced", "complained", "deferred", "opened", "clicked"]),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["email", "sms"]),
)
def test_any_order_of_reports_ends_at_the_furthest(statuses: list[str], channel: str) -> None:
    """Whatever order reports arrive in, the row ends at the furthest one (SMS: delivered is final)."""
    with SQLiteSink() as sink:
        sink.record(
            DeliveryEvent(
                message_id="m",
                status="sent",
                channel=channel,  # type: ignore[arg-type]
                provider_message_id="p",
            )
        )
        for status in statuses:
            event = report("p", status)
            sink.record(attrs.evolve(event, channel=channel))
        row = sink.delivery("m")
    assert row is not None
    ranked = [s for s in statuses if s in _RANK]
    expected = "sent"
    for status in ranked:
        if channel == "sms" and expected == "delivered":
            break
        if _RANK[status] > _RANK.get(expected, 1):
            expected = status
    assert row.status == expected
