"""``notifykit worker`` and ``notifykit outbox list|retry|purge``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiosmtpd")  # the tests talk to real SMTP servers

from notifykit import Email, Notifier
from notifykit.cli import main
from notifykit.outbox import Backoff, SQLiteOutbox, Worker
from tests.outbox.conftest import smtp_notifier
from tests.servers.smtp import SMTPServer

_REPO = Path(__file__).resolve().parents[2]


def email(subject: str) -> Email:
    return Email(to="asha@example.com", subject=subject, text="body")


@pytest.fixture
def dead_and_sent(outbox: SQLiteOutbox, smtp_server: SMTPServer) -> tuple[str, str]:
    """One row dead-lettered (550) and one sent."""
    notifier = smtp_notifier(smtp_server, outbox)
    smtp_server.fail("RCPT", "550 5.1.1 No such user")
    dead = notifier.enqueue(email("dead"))
    sent = notifier.enqueue(email("sent"))
    worker = Worker(outbox, notifier, backoff=Backoff(initial=0.01), batch=1)
    worker.run_once()
    worker.run_once()
    return dead, sent


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_states_and_reasons(
    outbox: SQLiteOutbox, dead_and_sent: tuple[str, str], capsys: pytest.CaptureFixture[str]
):
    dead, sent = dead_and_sent
    code, out, _ = run(["outbox", "list", "--outbox", str(outbox.path), "--json"], capsys)
    assert code == 0
    document = json.loads(out)
    assert document["counts"] == {"queued": 0, "leased": 0, "sent": 1, "dead": 1}
    rows = {r["id"]: r for r in document["rows"]}
    assert rows[dead]["state"] == "dead"
    assert "550" in rows[dead]["last_error"]
    assert rows[sent]["state"] == "sent"
    code, out, _ = run(["outbox", "list", "--outbox", str(outbox.path), "--state", "dead"], capsys)
    assert code == 0
    assert dead in out
    assert sent not in out
    assert "550" in out


def test_retry_and_purge(
    outbox: SQLiteOutbox,
    dead_and_sent: tuple[str, str],
    smtp_server: SMTPServer,
    capsys: pytest.CaptureFixture[str],
):
    dead, sent = dead_and_sent
    path = str(outbox.path)
    assert run(["outbox", "retry", "--outbox", path, "no-such-id"], capsys)[0] == 1
    code, out, _ = run(["outbox", "retry", "--outbox", path, dead], capsys)
    assert code == 0
    assert "1 dead row(s) queued again" in out
    entry = outbox.get(dead)
    assert entry is not None
    assert entry.state == "queued"
    Worker(outbox, smtp_notifier(smtp_server, outbox)).run_once()  # the fault fired once
    assert [str(m.message["Subject"]) for m in smtp_server.messages] == ["sent", "dead"]
    code, out, _ = run(["outbox", "purge", "--outbox", path, "--older-than", "1h"], capsys)
    assert (code, out.strip()) == (0, "0 row(s) deleted")
    code, out, _ = run(["outbox", "purge", "--outbox", path, "--older-than", "0s"], capsys)
    assert (code, out.strip()) == (0, "2 row(s) deleted")
    assert outbox.get(sent) is None


def test_usage_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("NOTIFYKIT_OUTBOX", raising=False)
    code, _, err = run(["outbox", "list"], capsys)
    assert code == 2
    assert "NOTIFYKIT_OUTBOX" in err
    code, _, err = run(["outbox", "list", "--outbox", str(tmp_path / "missing.db")], capsys)
    assert code == 2
    assert "no outbox at" in err
    code, _, err = run(["outbox", "retry", "--outbox", str(tmp_path / "x.db")], capsys)
    assert code == 2
    code, _, err = run(
        ["outbox", "purge", "--outbox", str(tmp_path / "x.db"), "--older-than", "soon"], capsys
    )
    assert code == 2
    assert "duration" in err
    code, _, err = run(["outbox"], capsys)
    assert code == 2
    assert "list, retry or purge" in err


def test_worker_process_delivers_and_stops_on_sigterm(tmp_path: Path, smtp_server: SMTPServer):
    path = tmp_path / "outbox.db"
    with SQLiteOutbox(path) as box:
        notifier = Notifier(outbox=box, sender="shop@example.com")
        ids = [notifier.enqueue(email(f"m{i}")) for i in range(5)]
    env = {
        **os.environ,
        "NOTIFYKIT_EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}?security=none&timeout=5",
        "NOTIFYKIT_OUTBOX": str(path),
        "PYTHONPATH": str(_REPO),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifykit", "worker", "--poll-interval", "100ms"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert smtp_server.wait_for(lambda: len(smtp_server.messages) == 5, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "5 sent" in out
    with SQLiteOutbox(path) as box:
        assert {box.get(i).state for i in ids} == {"sent"}  # type: ignore[union-attr]


def test_bad_configuration_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    for name in ("NOTIFYKIT_EMAIL_URL", "NOTIFYKIT_SMS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    code, _, err = run(["worker", "--outbox", str(tmp_path / "o.db")], capsys)
    assert code == 2
    assert err.startswith("notifykit: error: set NOTIFYKIT_EMAIL_URL")
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello, this is not SQLite " * 100)
    code, _, err = run(["outbox", "list", "--outbox", str(not_a_db)], capsys)
    assert code == 2
    assert "not a database" in err
    assert "Traceback" not in err
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", "memory://")
    code, _, err = run(["worker", "--outbox", str(tmp_path / "o.db"), "--lease", "0s"], capsys)
    assert code == 2
    assert "lease" in err
