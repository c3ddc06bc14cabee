"""``notifykit send``: real messages to a real local SMTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifykit.cli import main
from tests.cli._args import SENDER, memory_args, send_args, via

if TYPE_CHECKING:
    from tests.servers.smtp import SMTPServer


def test_send_text_arrives_at_the_server(
    smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--text with --via sends one e-mail that the local server receives."""
    code = main(
        send_args(
            to="asha@example.com,ravi@example.com",
            subject="Hello from the CLI",
            text="It works.",
            sender=SENDER,
            via=via(smtp_server),
        )
    )
    out = capsys.readouterr().out
    assert 0 == code
    assert (
        f"sent to asha@example.com, ravi@example.com via smtp:127.0.0.1:{smtp_server.port}" in out
    )
    [got] = smtp_server.messages
    assert ("asha@example.com", "ravi@example.com") == got.rcpt_tos
    assert "noreply@shop.example" == got.mail_from
    assert "Hello from the CLI" == got.message["Subject"]
    assert "It works." == got.message.get_content().strip()


def test_send_html_file_and_defaults_from_the_environment(
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --via and --from, NOTIFYKIT_EMAIL_URL and NOTIFYKIT_SENDER are used."""
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", via(smtp_server))
    monkeypatch.setenv("NOTIFYKIT_SENDER", SENDER)
    page = tmp_path / "mail.html"
    page.write_text("<p>Your <b>order</b> shipped.</p>", encoding="utf-8")
    code = main(send_args("--html-file", str(page), to="asha@example.com", subject="Shipped"))
    assert 0 == code, capsys.readouterr().err
    [got] = smtp_server.messages
    assert "Shop <noreply@shop.example>" == got.message["From"]
    html = got.message.get_body(("html",))
    assert html is not None
    assert "<b>order</b>" in html.get_content()


def test_send_failure_exits_1_with_the_reason(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message no transport delivers is exit code 1 and names the reason."""
    code = main(
        send_args(
            to="asha@example.com",
            subject="s",
            text="t",
            sender=SENDER,
            via=f"smtp://127.0.0.1:{closed_port}?security=none",
        )
    )
    out = capsys.readouterr().out
    assert 1 == code
    assert "not sent to asha@example.com" in out
    assert "connection refused" in out


def test_send_json_has_the_receipt(
    smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the counts and each receipt with its provider message id."""
    code = main(
        send_args(
            "--json", to="a@example.com", subject="s", text="t", sender=SENDER, via=via(smtp_server)
        )
    )
    doc = json.loads(capsys.readouterr().out)
    assert 0 == code
    assert (1, 0) == (doc["sent"], doc["failed"])
    receipt = doc["results"][0]["receipt"]
    assert f"smtp:127.0.0.1:{smtp_server.port}" == receipt["transport"]
    assert str(smtp_server.messages[0].message["Message-ID"]) == receipt["provider_message_id"]


def test_send_csv_sends_one_message_per_row_and_counts_failures(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--csv sends to each row's email; a bad address fails its row and the exit code is 1."""
    rows = tmp_path / "people.csv"
    rows.write_text("email,name\nasha@example.com,Asha\nnot an address,X\nravi@example.com,Ravi\n")
    code = main(
        send_args(
            "--csv", str(rows), subject="News", text="Hi", sender=SENDER, via=via(smtp_server)
        )
    )
    out = capsys.readouterr().out
    assert 1 == code
    assert "row 2 not sent to not an address" in out
    assert "2 sent, 1 failed, 3 in all" in out
    assert [("asha@example.com",), ("ravi@example.com",)] == sorted(  # rows go 4 at a time
        m.rcpt_tos for m in smtp_server.messages
    )


def test_send_csv_without_an_email_column_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV file without an 'email' column is exit code 2 and lists its columns."""
    rows = tmp_path / "people.csv"
    rows.write_text("mail,name\na@example.com,A\n")
    code = main(
        send_args("--csv", str(rows), subject="s", text="t", sender=SENDER, via="memory://")
    )
    assert 2 == code
    assert "has no 'email' column (columns: mail, name)" in capsys.readouterr().err


def test_send_csv_shows_a_progress_bar_on_a_terminal(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """On a terminal, --csv draws a progress bar on stderr (not on stdout)."""
    import pty

    rows = tmp_path / "people.csv"
    rows.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(3)))
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "notifykit",
                "send",
                "--csv",
                str(rows),
                "--subject",
                "s",
                "--text",
                "t",
                "--from",
                SENDER,
                "--via",
                via(smtp_server),
            ],
            stdout=subprocess.PIPE,
            stderr=slave,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            text=True,
            timeout=60,
            check=False,
        )
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other end is closed and everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    assert 0 == proc.returncode
    assert "3/3  sent 3  failed 0" in seen.decode()
    assert "[##############################]" in seen.decode()
    assert "3/3" not in proc.stdout
    assert "3 sent, 0 failed, 3 in all" in proc.stdout


def test_send_needs_a_transport_a_sender_and_a_subject(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Missing settings are exit code 2 with a line that says what to add."""
    base = send_args(to="a@example.com", text="t")
    assert 2 == main([*base, "--subject", "s", "--from", SENDER])
    assert "pass --via URL or set NOTIFYKIT_EMAIL_URL" in capsys.readouterr().err
    assert 2 == main([*base, "--subject", "s", "--via", "memory://"])
    assert "pass --from ADDRESS or set NOTIFYKIT_SENDER" in capsys.readouterr().err
    assert 2 == main([*base, "--from", SENDER, "--via", "memory://"])
    assert "--subject is required" in capsys.readouterr().err
    assert 2 == main(send_args(text="t", subject="s"))
    assert "give --to" in capsys.readouterr().err


def test_send_bad_sender_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unparseable --from is refused before anything is sent (exit code 2)."""
    code = main(memory_args(sender="not an address"))
    assert 2 == code
    assert "notifykit: InvalidMessage: sender: 'not an address'" in capsys.readouterr().err


def test_send_logs_to_the_sqlite_sink_named_by_notifykit_log(
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """NOTIFYKIT_LOG=sqlite:///... logs the send, and `log stats` then reads the same file."""
    monkeypatch.setenv("NOTIFYKIT_LOG", "sqlite:///sent.db")
    code = main(
        send_args(
            to="a@example.com", subject="Logged", text="t", sender=SENDER, via=via(smtp_server)
        )
    )
    assert 0 == code
    capsys.readouterr()
    assert (tmp_path / "sent.db").is_file()
    assert 0 == main(["log", "stats", "--by", "transport", "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(f"smtp:127.0.0.1:{smtp_server.port}", 1, 0)] == [
        (r["key"], r["sent"], r["failed"]) for r in rows
    ]


def test_send_template_per_csv_row_with_columns_as_context(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --template and --csv, each row's columns join the --context variables."""
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "welcome.html").write_text(
        "{% block subject %}Welcome, {{ name }}{% endblock %}"
        "{% block html %}<p>Your code at {{ shop }} is {{ code }}.</p>{% endblock %}",
        encoding="utf-8",
    )
    (tmp_path / "ctx.json").write_text(json.dumps({"shop": "Chai & Co."}))
    (tmp_path / "rows.csv").write_text(
        "email,name,code\nasha@example.com,Asha,A1\nravi@example.com,Ravi,R2\n"
    )
    code = main(
        send_args(
            "--csv",
            "rows.csv",
            "--template",
            "welcome",
            "--templates",
            str(templates),
            "--context",
            "ctx.json",
            sender=SENDER,
            via=via(smtp_server),
        )
    )
    assert 0 == code, capsys.readouterr()
    received = sorted(smtp_server.messages, key=lambda m: str(m.message["Subject"]))  # 4 at a time
    assert ["Welcome, Asha", "Welcome, Ravi"] == [m.message["Subject"] for m in received]
    html = received[1].message.get_body(("html",))
    assert html is not None
    assert "Your code at Chai &amp; Co. is R2." in html.get_content()


def test_send_bundled_template_by_default(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--template without --templates uses the bundled templates; --subject overrides theirs."""
    from importlib import resources

    sample = (
        resources.files("notifykit.templates")
        .joinpath("bundled")
        .joinpath("order_confirmation.json")
    )
    (tmp_path / "order.json").write_text(sample.read_text(encoding="utf-8"), encoding="utf-8")
    code = main(
        send_args(
            "--template",
            "order_confirmation",
            "--context",
            "order.json",
            to="asha@example.com",
            subject="Your order",
            sender=SENDER,
            via=via(smtp_server),
        )
    )
    assert 0 == code, capsys.readouterr()
    [got] = smtp_server.messages
    assert "Your order" == got.message["Subject"]
    text = got.message.get_body(("plain",))
    assert text is not None
    assert "Masala chai" in text.get_content()


def test_send_template_missing_variable_fails_the_row(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV row whose context lacks a template variable fails alone; the others go out."""
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "hi.html").write_text(
        "{% block subject %}Hi {{ name }}{% endblock %}{% block html %}<p>Hi</p>{% endblock %}"
    )
    (tmp_path / "rows.csv").write_text("email,name\na@example.com,A\n")
    (tmp_path / "bad.csv").write_text("email\nb@example.com\n")
    base = ["send", "--template", "hi", "--templates", str(templates), "--from", SENDER]
    base += ["--via", via(smtp_server)]
    assert 0 == main([*base, "--csv", "rows.csv"])
    assert 1 == main([*base, "--csv", "bad.csv"])
    out = capsys.readouterr().out
    assert "row 1 not sent to b@example.com: template 'hi.html'" in out
    assert "'name'" in out
    assert 1 == len(smtp_server.messages)


def test_send_unknown_template_stops_before_any_row(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown template is one error up front (exit code 2), not one failure per row."""
    (tmp_path / "rows.csv").write_text("email\na@example.com\nb@example.com\n")
    code = main(
        send_args("--csv", "rows.csv", "--template", "nosuch", sender=SENDER, via=via(smtp_server))
    )
    captured = capsys.readouterr()
    assert 2 == code
    assert captured.err.startswith(
        "notifykit: error: unknown template 'nosuch': not in the bundled"
    )
    assert "pass --templates DIR or set NOTIFYKIT_TEMPLATES" in captured.err
    assert [] == smtp_server.messages


def test_unknown_template_names_the_folder_also_in_a_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dry-run and --templates DIR: the error says which folder was searched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tpl").mkdir()
    (tmp_path / "rows.csv").write_text("email\na@example.com\n")
    argv = ["send", "--csv", "rows.csv", "--template", "order_shipped", "--from", SENDER]
    assert 2 == main([*argv, "--dry-run"])
    assert "not in the bundled templates" in capsys.readouterr().err
    assert 2 == main([*argv, "--dry-run", "--templates", "tpl"])
    assert "not in the directory 'tpl'" in capsys.readouterr().err
