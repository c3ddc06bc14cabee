"""``notifykit send`` options (--cc, --bcc, --reply-to, --attach, --dry-run, --rate), CSV
failures in the delivery log, and the exit code of a failover that fell back to the console."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifykit.cli import EXIT_SIMULATED, main
from tests.cli._args import SENDER, memory_args, send_args, via

if TYPE_CHECKING:
    from tests.servers.smtp import SMTPServer


def test_cc_bcc_reply_to_and_attachments_arrive(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cc and --bcc are recipients (Bcc not in the headers), --reply-to a header, --attach parts."""
    (tmp_path / "invoice.pdf").write_bytes(b"%PDF-1.4 fake")
    (tmp_path / "notes.txt").write_text("hello")
    code = main(
        send_args(
            "--cc",
            "ravi@example.com,meera@example.com",
            "--bcc",
            "audit@example.com",
            "--reply-to",
            "support@shop.example",
            "--attach",
            "invoice.pdf",
            "--attach",
            "notes.txt",
            to="asha@example.com",
            subject="Your invoice",
            text="Attached.",
            sender=SENDER,
            via=via(smtp_server),
        )
    )
    assert 0 == code, capsys.readouterr()
    [received] = smtp_server.messages
    assert {
        "asha@example.com",
        "ravi@example.com",
        "meera@example.com",
        "audit@example.com",
    } == set(received.rcpt_tos)
    message = received.message
    assert "ravi@example.com, meera@example.com" == message["Cc"]
    assert message["Bcc"] is None
    assert "support@shop.example" == message["Reply-To"]
    names = [part.get_filename() for part in message.iter_attachments()]
    assert ["invoice.pdf", "notes.txt"] == names


def test_attach_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(memory_args("--attach", "nosuch.pdf"))
    assert 2 == code
    assert "cannot read nosuch.pdf" in capsys.readouterr().err


def test_dry_run_renders_and_validates_but_sends_and_logs_nothing(
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--dry-run builds every message, reports the invalid rows, sends nothing, logs nothing."""
    monkeypatch.setenv("NOTIFYKIT_LOG", "sqlite:///dry.db")
    (tmp_path / "rows.csv").write_text("email\na@example.com\nnot an address\n")
    base = send_args("--dry-run", subject="News", text="Hi", sender=SENDER)
    code = main([*base, "--via", via(smtp_server), "--csv", "rows.csv"])
    out = capsys.readouterr().out
    assert 1 == code  # one row is invalid
    assert "row 1: would send 'News' to a@example.com" in out
    assert "row 2: invalid, not sent to not an address" in out
    assert "dry run: 1 valid, 1 invalid, nothing sent" in out
    assert 0 == main([*base, "--to", "b@example.com", "--json"])  # no --via needed
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True
    assert 1 == doc["valid"]
    assert doc["results"][0]["size"] > 0
    assert [] == smtp_server.messages
    assert 0 == smtp_server.connections
    assert not (tmp_path / "dry.db").exists()


def test_rate_limits_a_csv_send(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--rate 2/s: no second at the server holds more than two of the five messages."""
    from tests.servers.timed import TimedSMTPServer

    (tmp_path / "rows.csv").write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(5)))
    with TimedSMTPServer() as server:
        code = main(
            send_args(
                "--csv",
                "rows.csv",
                "--rate",
                "2/s",
                subject="s",
                text="t",
                sender=SENDER,
                via=f"smtp://127.0.0.1:{server.port}?security=none",
            )
        )
    assert 0 == code, capsys.readouterr()
    times = sorted(server.arrivals)
    assert 5 == len(times)
    assert all(times[i + 2] - times[i] >= 1.0 for i in range(len(times) - 2))


def test_bad_rate_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(memory_args("--rate", "fast"))
    assert 2 == code
    assert "is not a rate" in capsys.readouterr().err


def test_every_failing_csv_row_is_a_failed_event_in_the_log(
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Invalid rows and template errors reach the log: `log stats` counts them as failed."""
    monkeypatch.setenv("NOTIFYKIT_LOG", "sqlite:///sent.db")
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "hi.html").write_text(
        "{% block subject %}Hi {{ name }}{% endblock %}{% block html %}<p>Hi</p>{% endblock %}"
    )
    (tmp_path / "rows.csv").write_text(
        "email,name\na@example.com,A\n,NoAddress\nnot an address,B\nc@example.com,C\n"
    )
    (tmp_path / "bad.csv").write_text("email\nd@example.com\n")  # no 'name': template error
    base = ["send", "--template", "hi", "--templates", str(templates), "--from", SENDER]
    base += ["--via", via(smtp_server)]
    assert 1 == main([*base, "--csv", "rows.csv"])
    assert 1 == main([*base, "--csv", "bad.csv"])
    out = capsys.readouterr().out
    assert "row 2 not sent to (no address): no e-mail address" in out
    assert "2 sent, 2 failed, 4 in all" in out
    assert 0 == main(["log", "stats", "--by", "template", "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [("hi.html", 2, 3)] == [(r["key"], r["sent"], r["failed"]) for r in rows]


def test_failover_ending_on_the_console_exits_3_with_a_note(
    smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local server without STARTTLS inside failover(... console://): not a success."""
    url = f"failover(smtp://127.0.0.1:{smtp_server.port} console://)"
    code = main(send_args(to="a@example.com", subject="s", text="t", sender=SENDER, via=url))
    captured = capsys.readouterr()
    assert EXIT_SIMULATED == code == 3
    assert "got nothing: the failover fell back to console" in captured.out
    assert "?security=none" in captured.out  # the STARTTLS error's hint, in the attempt
    assert [] == smtp_server.messages


def test_console_alone_is_a_plain_success(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        send_args(to="a@example.com", subject="s", text="t", sender=SENDER, via="console://")
    )
    assert 0 == code
    assert "got nothing" not in capsys.readouterr().out
