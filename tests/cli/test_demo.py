"""``notifykit demo``: the whole library at work against a real local SMTP server."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifykit.cli import main

if TYPE_CHECKING:
    from tests.cli.conftest import Runner


@pytest.fixture(autouse=True)
def _needs_aiosmtpd() -> None:
    pytest.importorskip("aiosmtpd")


def refused(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port any more."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_demo_end_to_end_in_a_subprocess(run: Runner) -> None:
    """The demo fails over from the dead primary, delivers to its server, prints the stats."""
    result = run("demo", "--db", "demo.db")
    out = result.stdout
    assert 0 == result.returncode, result.stderr
    server = re.search(r"local SMTP server \(aiosmtpd\)\s+127\.0\.0\.1:(\d+)", out)
    dead = re.search(r"dead primary\s+127\.0\.0\.1:(\d+)", out)
    assert server is not None
    assert dead is not None
    live_name, dead_name = f"smtp:127.0.0.1:{server[1]}", f"smtp:127.0.0.1:{dead[1]}"
    # The first message: the primary is refused once, and the local server takes it at once.
    assert re.search(rf"1  {dead_name} \(dead primary\)\s+transient\s+connection refused", out)
    assert re.search(rf"2  {live_name} \(local server\)\s+sent", out)
    # The next ones: the resting primary is skipped by the circuit breaker.
    skipped = rf"1  {dead_name} \(dead primary\)\s+skipped\s+resting after a failure"
    assert 2 == len(re.findall(skipped, out))
    assert 3 == out.count(f"receipt   delivered by {live_name}")
    for subject in (
        "Order A-10042 confirmed",
        "Order A-10043 confirmed",
        "Order A-10044 confirmed",
    ):
        assert f"server    subject  {subject}" in out
    assert "parts    multipart/alternative, text/plain, text/html" in out
    # The log's stats, by transport (attempts) and by template (messages).
    assert re.search(rf"{live_name}\s+3\s+0\s+0\s+3\s+100%", out)
    assert re.search(rf"{dead_name}\s+0\s+1\s+0\s+1\s+0%", out)
    assert re.search(r"order_confirmation\.html\s+3\s+0\s+0\s+3\s+100%", out)
    assert "3 of 3 messages delivered." in out
    assert "The dead primary failed 1 attempt, then was skipped 2 times at no cost" in out
    assert refused(int(server[1]))  # the demo stopped its server


def test_demo_json_and_the_log_it_leaves(tmp_path: Path, run: Runner) -> None:
    """--json --db: the attempts, receipts and stats as JSON, and a log that `log` can read."""
    db = tmp_path / "demo.db"
    result = run("demo", "--json", "--db", str(db), "--messages", "2")
    assert 0 == result.returncode, result.stderr
    doc = json.loads(result.stdout)
    assert str(db) == doc["db"]
    first, second = doc["messages"]
    assert ["transient", "sent"] == [a["outcome"] for a in first["attempts"]]
    assert ["skipped", "sent"] == [a["outcome"] for a in second["attempts"]]
    assert first["receipt"]["provider_message_id"].startswith("<")
    [received] = first["received"]
    assert (received["to"], received["from"]) == (
        "asha@example.com",
        "Demo Shop <orders@shop.example>",
    )
    assert ["multipart/alternative", "text/plain", "text/html"] == received["parts"]
    by_transport = {
        row["key"]: (row["sent"], row["failed"]) for row in doc["stats"]["by_transport"]
    }
    assert {f"smtp:{doc['server']}": (2, 0), f"smtp:{doc['dead_primary']}": (0, 1)} == by_transport
    logged = run("log", "stats", "--db", str(db), "--by", "template", "--json")
    assert [("order_confirmation.html", 2)] == [
        (r["key"], r["sent"]) for r in json.loads(logged.stdout)["rows"]
    ]


def test_demo_in_process_leaves_no_thread_behind(capsys: pytest.CaptureFixture[str]) -> None:
    """The server thread and the log's writer thread are gone when the demo returns."""
    before = set(threading.enumerate())
    assert 0 == main(["demo", "--messages", "1", "--db", "demo.db"])
    assert set() == set(threading.enumerate()) - before
    out = capsys.readouterr().out
    assert "Message 1/1 to asha@example.com" in out


def test_demo_default_log_is_a_fresh_temporary_file(run: Runner, tmp_path: Path) -> None:
    """Without --db the log goes to a new file outside the working directory, path printed."""
    result = run("demo", "--messages", "1")
    assert 0 == result.returncode
    match = re.search(r"delivery log \(SQLite\)\s+(\S+)", result.stdout)
    assert match is not None
    path = Path(match[1])
    try:
        assert path.is_file()
        assert tmp_path not in path.parents
        assert [] == list(tmp_path.iterdir())
    finally:
        shutil.rmtree(path.parent)


def test_demo_message_count_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    """--messages outside 1..100 is a usage error."""
    assert 2 == main(["demo", "--messages", "0"])
    assert "--messages must be from 1 to 100" in capsys.readouterr().err


def test_demo_of_one_message_does_not_count_zero_skips(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With one message the breaker never skips: no "skipped 0 time(s)", no "(s)" at all."""
    assert 0 == main(["demo", "--messages", "1"])
    out = capsys.readouterr().out

    assert "1 of 1 message delivered." in out
    assert "The dead primary failed 1 attempt (send more messages" in out
    assert "skipped 0" not in out
    assert "(s)" not in out.splitlines()[-2]
