"""The management commands, run with call_command."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifykit.contrib.django.models import Delivery, DeliveryAttempt
from tests.contrib.django_tests.conftest import smtp_url
from tests.servers import closed_port
from tests.servers.smtp import SMTPServer

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def make(message_id: str, *, days_old: int, status: str = "sent", **fields: Any) -> Delivery:
    at = timezone.now() - timedelta(days=days_old)
    delivery = Delivery.objects.create(
        message_id=message_id,
        channel="email",
        status=status,
        created_at=at,
        status_changed_at=at,
        **fields,
    )
    DeliveryAttempt.objects.create(delivery=delivery, event_key=message_id, outcome="sent", at=at)
    return delivery


def test_check_connects_to_every_transport(notifykit_settings: SMTPServer, settings: Any) -> None:
    """notifykit_check connects to each member of a failover and reports each one."""
    url = smtp_url(notifykit_settings)
    settings.NOTIFYKIT = {"EMAIL_URL": f"failover({url} console://)", "SINKS": ["django"]}

    output = run("notifykit_check")

    assert f"ok      email  smtp://127.0.0.1:{notifykit_settings.port}?security=none" in output
    assert "console://  (nothing to connect to)" in output
    assert "Delivery model on 'default'" in output
    assert 1 == notifykit_settings.connections
    assert [] == notifykit_settings.messages
    assert notifykit_settings.wait_for(lambda: notifykit_settings.open_connections == 0)


def test_check_fails_when_a_transport_is_down(settings: Any) -> None:
    """An unreachable SMTP server makes notifykit_check fail with a non-zero exit."""
    port = closed_port()
    settings.NOTIFYKIT = {
        "EMAIL_URL": f"smtp://127.0.0.1:{port}?security=none&local_hostname=client.test&timeout=2",
        "SINKS": [],
    }
    out = StringIO()

    with pytest.raises(CommandError, match="1 check"):
        call_command("notifykit_check", stdout=out)
    assert f"FAILED  email  smtp://127.0.0.1:{port}" in out.getvalue()


def test_check_reports_bad_settings(settings: Any) -> None:
    """A wrong NOTIFYKIT is a CommandError that names the key."""
    settings.NOTIFYKIT = {"EMAIL_URL": "nosuch://x"}

    with pytest.raises(CommandError, match=r"NOTIFYKIT\['EMAIL_URL'\]"):
        run("notifykit_check")


def test_cleanup_deletes_old_rows_and_their_attempts() -> None:
    """notifykit_cleanup --days N deletes older deliveries with their attempts, keeps the rest."""
    make("old", days_old=40)
    make("new", days_old=2)

    output = run("notifykit_cleanup", "--days", "30", "--batch-size", "1")

    assert "deleted 1 deliveries older than 30 days" in output
    assert ["new"] == list(Delivery.objects.values_list("message_id", flat=True))
    assert ["new"] == list(DeliveryAttempt.objects.values_list("event_key", flat=True))


def test_cleanup_by_status_and_dry_run() -> None:
    """--status limits what is deleted, and --dry-run only counts."""
    make("old-sent", days_old=40)
    make("old-failed", days_old=40, status="failed")

    assert "1 deliveries older than 30 days would be deleted" in run(
        "notifykit_cleanup", "--days", "30", "--status", "sent", "--dry-run"
    )
    assert 2 == Delivery.objects.count()
    run("notifykit_cleanup", "--days", "30", "--status", "sent")
    assert ["old-failed"] == list(Delivery.objects.values_list("message_id", flat=True))


def test_cleanup_refuses_zero_days() -> None:
    """--days 0 would delete everything by accident: refused."""
    with pytest.raises(CommandError, match="--days must be at least 1"):
        run("notifykit_cleanup", "--days", "0")


def test_stats_by_template_and_transport() -> None:
    """notifykit_stats counts sent and failed, with success rates per template and transport."""
    make("a", days_old=1, template="welcome", transport="smtp")
    make("b", days_old=1, template="welcome", transport="smtp", status="failed")
    make("c", days_old=1, template="otp", transport="msg91")
    make("d", days_old=30, template="otp", transport="msg91", status="failed")

    result = json.loads(run("notifykit_stats", "--json", "--days", "7"))
    text = run("notifykit_stats")

    assert {"total": 3, "sent": 2, "failed": 1, "queued": 0} == {
        k: v for k, v in result["totals"].items() if k in ("total", "sent", "failed", "queued")
    }
    assert result["totals"]["delivery_rate"] is None  # no provider reports: unknown, not 0
    rates = {row["template"]: row["success_rate"] for row in result["by_template"]}
    assert {"welcome": 0.5, "otp": 1.0} == rates
    assert {"smtp": 2, "msg91": 1} == {r["transport"]: r["total"] for r in result["by_transport"]}
    assert "total 4  sent 2  failed 2  queued 0  success 50.0%" in text
