"""``.env`` files are read, or the reason they cannot be is said: never silently ignored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from notifykit.config import notifier_from_env
from notifykit.errors import ConfigurationError, MissingDependency

DOTENV = "NOTIFYKIT_EMAIL_URL=memory://\nNOTIFYKIT_SENDER=Dev Shop <dev@shop.example>\n"


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("NOTIFYKIT_EMAIL_URL", "NOTIFYKIT_SMS_URL", "NOTIFYKIT_SENDER", "NOTIFYKIT_LOG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def without_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-dotenv made unimportable (it is really absent in the bare test run)."""
    monkeypatch.setitem(sys.modules, "dotenv", None)


def test_the_default_dotenv_is_read(no_env: Path) -> None:
    pytest.importorskip("dotenv")
    (no_env / ".env").write_text(DOTENV, encoding="utf-8")

    with notifier_from_env() as notifier:
        assert "dev@shop.example" in str(notifier.sender)


@pytest.mark.usefixtures("without_dotenv")
def test_a_dotenv_without_python_dotenv_names_the_extra(no_env: Path) -> None:
    """An existing .env with python-dotenv missing is MissingDependency, not an ignored file."""
    (no_env / ".env").write_text(DOTENV, encoding="utf-8")

    with pytest.raises(MissingDependency) as info:
        notifier_from_env()
    assert 'pip install "notifykit-py[cli]"' in str(info.value)
    assert "reading .env" in str(info.value)
    assert "python-dotenv" == info.value.package


@pytest.mark.usefixtures("without_dotenv")
def test_no_dotenv_file_needs_no_python_dotenv(
    no_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a .env file nothing is needed: the environment alone is used."""
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", "memory://")

    with notifier_from_env() as notifier:
        assert notifier.email is not None


@pytest.mark.usefixtures("without_dotenv")
def test_dotenv_none_skips_an_existing_file(no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dotenv=None reads no file, so an unreadable .env is no concern."""
    (no_env / ".env").write_text(DOTENV, encoding="utf-8")
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", "memory://")

    with notifier_from_env(dotenv=None) as notifier:
        assert notifier.sender is None


def test_an_unreadable_dotenv_is_a_configuration_error(no_env: Path) -> None:
    pytest.importorskip("dotenv")
    (no_env / ".env").write_bytes(b"NOTIFYKIT_EMAIL_URL=memory://\nNAME=\xff\xfe\n")

    with pytest.raises(ConfigurationError, match=r"cannot read the dotenv file \.env"):
        notifier_from_env()


def test_a_dotenv_that_is_a_folder_is_a_configuration_error(no_env: Path) -> None:
    pytest.importorskip("dotenv")
    (no_env / ".env").mkdir()

    with pytest.raises(ConfigurationError, match=r"cannot read the dotenv file \.env"):
        notifier_from_env()


def test_a_named_dotenv_that_does_not_exist_is_a_configuration_error(no_env: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"config/notify\.env.*does not exist"):
        notifier_from_env(dotenv="config/notify.env")


def test_the_cli_says_why_it_cannot_read_dotenv(no_env: Path) -> None:
    """`notifykit check` in a folder with .env but no python-dotenv: exit 2, the extra named."""
    import os
    import subprocess

    (no_env / ".env").write_text(DOTENV, encoding="utf-8")
    (no_env / "dotenv.py").write_text("raise ImportError('python-dotenv is not installed')\n")
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYKIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(no_env), str(repo)])
    result = subprocess.run(
        [sys.executable, "-m", "notifykit", "check"],
        cwd=no_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert 2 == result.returncode
    assert "Traceback" not in result.stderr
    assert 'pip install "notifykit-py[cli]"' in result.stderr
