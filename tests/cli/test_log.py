"""``notifykit log stats`` and ``notifykit log tail`` over a real SQLite delivery log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import notifykit as nk
from notifykit.cli import main
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.testing import ScriptedTransport, no_backoff

SENDER = "shop@shop.example"


def make_log(path: Path) -> None:
    """Three messages: two sent after the primary failed over, one rejected."""
    primary = ScriptedTransport([nk.TransientError("down")], name="primary")
    backup = ScriptedTransport(["ok", "ok", nk.RejectedError("550 no such user")], name="backup")
    transport = nk.FailoverTransport([primary, backup], retry=nk.Retry(attempts=1))
    sink = SQLiteSink(path)
    with no_backoff(), nk.Notifier(email=transport, sinks=[sink], sender=SENDER) as notifier:
        for n, template in enumerate(["welcome", "welcome", "receipt"]):
            email = nk.Email(to=f"p{n}@example.com", subject=f"s{n}", text="t")
            try:
                notifier.send(email, template=template)
            except nk.RejectedError:
                pass


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    make_log(path)
    return path


def test_stats_by_template_as_a_table(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """By template, each row shows sent, failed, queued, total and the success rate."""
    assert 0 == main(["log", "stats", "--db", str(db)])
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert ["key", "sent", "failed", "queued", "total", "success"] in lines
    assert ["welcome", "2", "0", "0", "2", "100%"] in lines
    assert ["receipt", "0", "1", "0", "1", "0%"] in lines


def test_stats_by_transport_json_matches_the_sink(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--by transport --json gives exactly what SQLiteSink.stats(group_by='transport') gives."""
    assert 0 == main(["log", "stats", "--db", str(db), "--by", "transport", "--json"])
    doc = json.loads(capsys.readouterr().out)
    with SQLiteSink(db) as sink:
        expected = [row._asdict() for row in sink.stats(group_by="transport")]
    assert expected == doc["rows"]
    assert {"primary", "backup"} == {r["key"] for r in doc["rows"]}
    assert "transport" == doc["by"]


def test_stats_since(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--since takes a duration or a date; a future date leaves nothing."""
    assert 0 == main(["log", "stats", "--db", str(db), "--since", "1h", "--json"])
    assert 3 == sum(r["total"] for r in json.loads(capsys.readouterr().out)["rows"])
    assert 0 == main(["log", "stats", "--db", str(db), "--since", "2999-01-01", "--json"])
    assert [] == json.loads(capsys.readouterr().out)["rows"]
    assert 2 == main(["log", "stats", "--db", str(db), "--since", "yesterday"])
    assert "--since 'yesterday': use a duration" in capsys.readouterr().err


def test_tail_prints_the_latest_events_oldest_first(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tail -n N prints the last N events in order, failures with their error."""
    assert 0 == main(["log", "tail", "--db", str(db), "-n", "2", "--json"])
    events = json.loads(capsys.readouterr().out)
    assert [("attempt_failed", "backup"), ("failed", "backup")] == [
        (e["status"], e["transport"]) for e in events
    ]
    assert "550 no such user" in events[0]["error"]
    assert 0 == main(["log", "tail", "--db", str(db)])
    out = capsys.readouterr().out
    with SQLiteSink(db) as sink:
        total = len(sink.tail(100))
    assert 8 == total
    assert total == sum(1 for line in out.splitlines()[1:] if line.strip())
    assert "p2@example.com" in out
    assert "550 no such user" in out


def test_missing_log_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a log file, exit code 2 says where it looked and how to point elsewhere."""
    assert 2 == main(["log", "stats"])
    err = capsys.readouterr().err
    assert "no delivery log at notifykit.db" in err
    assert not Path("notifykit.db").exists()  # reading never creates an empty log


def test_default_log_is_notifykit_log_then_notifykit_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log is NOTIFYKIT_LOG's sqlite URL when set, else ./notifykit.db."""
    make_log(tmp_path / "notifykit.db")
    assert 0 == main(["log", "tail", "-n", "1", "--json"])
    assert "failed" == json.loads(capsys.readouterr().out)[0]["status"]
    monkeypatch.setenv("NOTIFYKIT_LOG", "logging:// sqlite:///elsewhere.db")
    assert 2 == main(["log", "tail"])
    assert "no delivery log at elsewhere.db" in capsys.readouterr().err
    # The sink's options are not part of the file name.
    monkeypatch.setenv("NOTIFYKIT_LOG", "sqlite:///notifykit.db?durability=sync")
    assert 0 == main(["log", "tail", "-n", "1", "--json"])
    assert "failed" == json.loads(capsys.readouterr().out)[0]["status"]


def test_log_without_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """`notifykit log` alone is a usage error naming the subcommands."""
    assert 2 == main(["log"])
    assert "choose a subcommand: stats or tail" in capsys.readouterr().err


def _stdout_on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    import pty

    master, slave = pty.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "notifykit", *args],
            stdout=slave,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            timeout=60,
            check=True,
        )
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    return seen.decode()


def test_colour_only_on_a_terminal_without_no_color(db: Path, tmp_path: Path) -> None:
    """A terminal gets ANSI colours; NO_COLOR or a pipe gets plain text."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    args = ["log", "stats", "--db", str(db)]
    assert "\033[32m100%" in _stdout_on_a_terminal(args, tmp_path, env)
    assert "\033[" not in _stdout_on_a_terminal(args, tmp_path, {**env, "NO_COLOR": "1"})
    piped = subprocess.run(
        [sys.executable, "-m", "notifykit", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=True,
    )
    assert "100%" in piped.stdout
    assert "\033[" not in piped.stdout


def test_stats_by_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`log stats --help` explains --by: what each grouping counts."""
    assert 0 == main(["log", "stats", "--help"])
    out = " ".join(capsys.readouterr().out.split())

    assert "group by template (default) or channel, counting messages" in out
    assert "by transport, counting attempts" in out
