"""Fixtures for the ``notifykit`` command: a clean environment and a subprocess runner.

Every CLI test runs in its own empty working directory (the command reads
``.env`` from there) with no ``NOTIFYKIT_*`` variable inherited from the
developer's shell, so what a test sees is what it set up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.servers.sms_fake import SMSFakeServer

_INHERITED = (
    "NOTIFYKIT_EMAIL_URL",
    "NOTIFYKIT_SMS_URL",
    "NOTIFYKIT_SENDER",
    "NOTIFYKIT_SMS_SENDER",
    "NOTIFYKIT_DEFAULT_REGION",
    "NOTIFYKIT_TEMPLATES",
    "NOTIFYKIT_LOG",
    "NO_COLOR",
    "BROWSER",
)
_REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty directory with no NOTIFYKIT_* settings."""
    for name in _INHERITED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Runner:
    """Runs ``python -m notifykit ...`` in a subprocess, in a given directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO), os.environ.get("PYTHONPATH", "")) if p
        )
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "notifykit", *args],
            cwd=self.cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def run(tmp_path: Path) -> Runner:
    """A runner of the real command in a subprocess (cwd: the test's directory)."""
    return Runner(tmp_path)


@pytest.fixture
def sms_fake() -> Iterator[SMSFakeServer]:
    """The fake MSG91 + Fast2SMS API on 127.0.0.1, stopped after the test."""
    with SMSFakeServer(hang_limit=5.0) as server:
        yield server
