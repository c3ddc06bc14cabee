"""The command as a whole: help, version, usage errors, start-up cost, missing extras."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import notifykit
from notifykit.cli import main

if TYPE_CHECKING:
    from tests.cli.conftest import Runner

HEAVY = ("jinja2", "premailer", "httpx", "boto3", "aiosmtpd", "sqlite3", "smtplib", "attrs")


def test_help_lists_every_command(run: Runner) -> None:
    """`notifykit --help` exits 0 and names every command (python -m notifykit works)."""
    result = run("--help")
    assert 0 == result.returncode
    for command in ("demo", "send", "render", "check", "log"):
        assert f"    {command} " in result.stdout


def test_help_imports_nothing_heavy() -> None:
    """Building the parser and printing help imports no optional or heavy module."""
    code = (
        "import sys, contextlib, io\n"
        "from notifykit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "[]" == result.stdout.strip()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the distribution name (what pip installs) and the version."""
    assert 0 == main(["--version"])
    assert f"notifykit-py {notifykit.__version__}\n" == capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command the help goes to stderr and the exit code is 2."""
    assert 2 == main([])
    assert "usage: notifykit" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's own usage errors also give exit code 2."""
    assert 2 == main(["check", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback_or_secret(run: Runner) -> None:
    """A configuration error from the environment is one masked line on stderr, exit 2."""
    result = run(
        "send",
        "--to",
        "a@example.com",
        "--subject",
        "s",
        "--text",
        "t",
        "--from",
        "shop@shop.example",
        env={"NOTIFYKIT_EMAIL_URL": "smtp://app:topsecret-123@mail.example.com?timout=5"},
    )
    assert 2 == result.returncode
    assert 1 == len(result.stderr.splitlines())
    assert result.stderr.startswith("notifykit: error: smtp://app:***@mail.example.com?timout=5")
    assert "topsecret-123" not in result.stdout + result.stderr


def test_demo_without_aiosmtpd_names_the_extra(run: Runner, tmp_path: Path) -> None:
    """Without aiosmtpd, `notifykit demo` says `pip install "notifykit-py[demo]"` (exit 2)."""
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    # A module that fails to import exactly as an absent package does.
    (blocker / "aiosmtpd.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'aiosmtpd'\")\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = run("demo", env={"PYTHONPATH": f"{blocker}:{repo}"})
    assert 2 == result.returncode
    assert 'pip install "notifykit-py[demo]"' in result.stderr
    assert "Traceback" not in result.stderr


def test_json_errors_still_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """With --json, stdout stays clean JSON or empty: errors are on stderr."""
    assert 2 == main(["log", "stats", "--json"])
    captured = capsys.readouterr()
    assert "" == captured.out
    assert "no delivery log" in captured.err


def test_check_json_output_is_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    """--json output parses as JSON (console:// needs no server)."""
    assert 0 == main(["check", "console://", "--json"])
    assert True is json.loads(capsys.readouterr().out)["ok"]
