"""``notifykit preview``: the command serves the app on loopback until stopped."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from notifykit.cli import main
from tests.preview.samples import write_templates


def test_the_command_serves_the_folder_on_loopback(tmp_path: Path) -> None:
    """The first line gives the URL; the index and a template page answer there."""
    folder = write_templates(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "notifykit", "preview", "--templates", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith(f"notifykit preview of {folder}: http://127.0.0.1:")
            url = line.rsplit(" ", 1)[-1].strip()
            with urllib.request.urlopen(url, timeout=10) as response:
                assert "welcome.html" in response.read().decode()
            with urllib.request.urlopen(url + "view/welcome.html", timeout=10) as response:
                assert "Welcome to Chai &amp; Co., Asha" in response.read().decode()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--templates that is not a folder: exit 2 with one line, no server."""
    assert 2 == main(["preview", "--templates", str(tmp_path / "nope"), "--port", "0"])
    assert "is not a directory" in capsys.readouterr().err
