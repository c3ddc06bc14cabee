"""The whole pipeline: Notifier + failover over real SMTP servers + SQLite delivery log."""

from __future__ import annotations

from pathlib import Path

import pytest

import notifykit as nk

pytest.importorskip("aiosmtpd")

from tests.servers import closed_port
from tests.servers.smtp import SMTPServer


def test_failover_success_is_logged_attempt_by_attempt(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """A dead primary and a live backup: every message arrives once and the SQLite log holds each attempt."""
    dead = f"smtp://127.0.0.1:{closed_port()}?security=none&timeout=1"
    live = f"smtp://127.0.0.1:{smtp_server.port}?security=none&timeout=5"
    transport = nk.from_dsn(f"failover({dead} {live})?retry_attempts=2&retry_initial=0&cooldown=60")
    sink = nk.SQLiteSink(str(tmp_path / "log.db"))
    renderer = nk.TemplateRenderer.from_dict(
        {
            "shipped.html": (
                "{% block subject %}Order {{ n }} shipped{% endblock %}"
                "{% block html %}<p>Order <b>{{ n }}</b> is on its way.</p>{% endblock %}"
            )
        }
    )
    with nk.Notifier(
        email=transport, templates=renderer, sinks=[sink], sender="shop@example.com"
    ) as notifier:
        receipts = [
            notifier.send_email("shipped.html", to="asha@example.com", context={"n": n})
            for n in range(5)
        ]
        assert [live.split("?")[0].replace("smtp://", "smtp:")] * 5 == [
            r.transport for r in receipts
        ]
        first = sink.history(receipts[0].message_id)
        # The refused primary costs one attempt, then the backup takes it at once.
        assert ["queued", "attempt_failed", "sent"] == [e.status for e in first]
        later = sink.history(receipts[1].message_id)
        assert ["queued", "sent"] == [e.status for e in later]  # the resting primary was skipped
        by_template = {row.key: row for row in sink.stats(group_by="template")}
        assert (5, 0) == (by_template["shipped.html"].sent, by_template["shipped.html"].failed)
    assert [
        "Order 0 shipped",
        "Order 1 shipped",
        "Order 2 shipped",
        "Order 3 shipped",
        "Order 4 shipped",
    ] == [m.message["Subject"] for m in smtp_server.messages]
    text = smtp_server.messages[0].message.get_body(("plain",))
    assert text is not None
    assert "Order 0 is on its way." in text.get_content()
