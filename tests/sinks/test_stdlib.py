"""LoggingSink: one log record per event, at the status's level, with structured extra."""

from __future__ import annotations

import json
import logging

import pytest

from notifykit.sinks.base import DeliveryEvent, LogSink
from notifykit.sinks.stdlib import LoggingSink, format_event
from tests.sinks.events import BACKUP, PRIMARY, delivery

LOGGER = "notifykit.delivery"


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def test_is_a_log_sink() -> None:
    """LoggingSink satisfies the LogSink protocol and logs to notifykit.delivery."""
    sink = LoggingSink()
    assert isinstance(sink, LogSink)
    assert LOGGER == sink.logger.name


def test_levels_follow_status(log: pytest.LogCaptureFixture) -> None:
    """queued is DEBUG, attempt_failed WARNING, sent INFO, failed ERROR."""
    sink = LoggingSink()
    for event in delivery("m1", "failover") + delivery("m2", "failed"):
        sink.record(event)
    assert [
        ("queued", logging.DEBUG),
        ("attempt_failed", logging.WARNING),
        ("sent", logging.INFO),
        ("queued", logging.DEBUG),
        ("attempt_failed", logging.WARNING),
        ("failed", logging.ERROR),
    ] == [(r.notifykit_status, r.levelno) for r in log.records]  # type: ignore[attr-defined]
    assert {LOGGER} == {r.name for r in log.records}


def test_extra_carries_the_whole_event(log: pytest.LogCaptureFixture) -> None:
    """The record's extra has the event as a JSON-safe dict plus flat keys."""
    sent = delivery("m1", "failover", template="order_shipped")[2]
    LoggingSink().record(sent)
    (record,) = log.records
    assert sent.to_dict() == record.notifykit  # type: ignore[attr-defined]
    json.dumps(record.notifykit)  # type: ignore[attr-defined]
    assert ("m1", "sent", "email", BACKUP, "order_shipped", 2, None) == (
        record.notifykit_message_id,  # type: ignore[attr-defined]
        record.notifykit_status,  # type: ignore[attr-defined]
        record.notifykit_channel,  # type: ignore[attr-defined]
        record.notifykit_transport,  # type: ignore[attr-defined]
        record.notifykit_template,  # type: ignore[attr-defined]
        record.notifykit_attempt,  # type: ignore[attr-defined]
        record.notifykit_error_kind,  # type: ignore[attr-defined]
    )


def test_message_line_is_readable(log: pytest.LogCaptureFixture) -> None:
    """Each line names the message, the transport, the recipient and the error."""
    sink = LoggingSink()
    for event in delivery("m1", "failover"):
        sink.record(event)
    queued, failed, sent = (r.getMessage() for r in log.records)
    assert "email m1 (welcome) queued to asha@example.com" == queued
    assert (
        f"email m1 (welcome) attempt 1 via {PRIMARY} failed (transient): connection refused"
        == failed
    )
    assert sent.startswith(f"email m1 (welcome) sent via {BACKUP} to asha@example.com")
    assert "attempt 2" in sent
    assert "<m1@backup.example.com>" in sent


def test_final_failure_line(log: pytest.LogCaptureFixture) -> None:
    """A final failure says how many attempts were made and why, and flags uncertainty."""
    failed = delivery("m1", "failed", maybe_delivered=True)[-1]
    LoggingSink().record(failed)
    assert (
        "email m1 (welcome) to asha@example.com failed after 1 attempt(s): "
        "all transports failed (ProviderError: authentication failed); "
        "it may have been delivered"
    ) == log.records[0].getMessage()


def test_percent_in_text_is_not_a_format(log: pytest.LogCaptureFixture) -> None:
    """An error text with % signs is logged as is."""
    event = DeliveryEvent("m%s", "failed", "sms", error="quota 100% used %d", attempt=1)
    LoggingSink().record(event)
    assert "quota 100% used %d" in log.records[0].getMessage()


def test_logger_object_and_level_override(caplog: pytest.LogCaptureFixture) -> None:
    """A Logger may be given, and the level map may be changed per status."""
    caplog.set_level(logging.DEBUG, logger="shop.mail")
    sink = LoggingSink(logging.getLogger("shop.mail"), levels={"queued": logging.INFO})
    for event in delivery("m1"):
        sink.record(event)
    assert [("shop.mail", logging.INFO), ("shop.mail", logging.INFO)] == [
        (r.name, r.levelno) for r in caplog.records
    ]


def test_disabled_level_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Events below the logger's level are not logged at all."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sink = LoggingSink()
    for event in delivery("m1", "failover"):
        sink.record(event)
    assert ["attempt_failed"] == [r.notifykit_status for r in caplog.records]  # type: ignore[attr-defined]


def test_many_recipients_are_shortened() -> None:
    """Beyond three recipients the line says how many more there are."""
    event = DeliveryEvent("m1", "queued", "email", recipients=[f"u{i}@x.example" for i in range(5)])
    assert "email m1 queued to u0@x.example, u1@x.example, u2@x.example and 2 more" == (
        format_event(event)
    )


def test_partial_refusal_is_in_the_sent_line() -> None:
    """A sent event with refused recipients lists them."""
    event = DeliveryEvent(
        "m1", "sent", "email", transport="smtp", attempt=1, rejected={"b@x.example": "550"}
    )
    assert format_event(event).endswith("; refused: b@x.example")


def test_rejection_line_names_the_kind_and_transport() -> None:
    """A final rejection says which transport refused it and that it was a rejection."""
    failed = delivery("m1", "rejected")[-1]
    assert (
        "email m1 (welcome) to asha@example.com failed via smtp:mail.example.com:587 "
        "(rejected) after 1 attempt(s): 550 no such user"
    ) == format_event(failed)
