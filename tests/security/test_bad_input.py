"""Bad input gets a notifykit error, never a raw exception from a dependency.

Each case of issue 14, item 11: a DSN nested 250 deep, a 64-character DNS label
(which must not stop a failover from trying its next transport), an
``endpoint_url`` that is not a URL, ``from_dict`` with ``attachments: None``,
non-finite option values, ``mask_url`` on a huge input, and every command-line
crasher: exit code 2, exactly one line on standard error, no traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.cli import main
from notifykit.config import MAX_NESTING, from_dsn
from notifykit.errors import ConfigurationError, InvalidMessage, ProviderError
from notifykit.transports.failover import FailoverTransport
from notifykit.transports.memory import MemoryTransport
from notifykit.transports.smtp import SMTPTransport

_REPO = Path(__file__).resolve().parents[2]
LONG_LABEL_HOST = "a" * 64 + ".example.com"  # a DNS label is at most 63 characters
_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYKIT_")}


def _email() -> nk.Email:
    return nk.Email(to="customer@example.com", sender="shop@example.com", subject="Hi", text="t")


def _nested(depth: int, inner: str = "memory://") -> str:
    return "failover(" * depth + inner + ")" * depth


# --------------------------------------------------------------------------- DSNs


def test_a_dsn_nested_250_deep_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=f"nested more than {MAX_NESTING} deep"):
        from_dsn(_nested(250))
    with pytest.raises(ConfigurationError):
        from_dsn(_nested(MAX_NESTING + 1))
    assert isinstance(from_dsn(_nested(MAX_NESTING)), FailoverTransport)


@pytest.mark.parametrize(
    "url",
    [
        "ses://?region=ap-south-1&endpoint_url=not-a-url",
        f"ses://?region=ap-south-1&endpoint_url=https://{LONG_LABEL_HOST}",
        "ses://?region=ap-south-1&endpoint_url=https://",
        "msg91://KEY-1234@default?base_url=not-a-url",
        f"fast2sms://KEY-1234@default?base_url=http://{LONG_LABEL_HOST}",
    ],
)
def test_endpoint_and_base_urls_are_checked(url: str) -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("httpx")
    with pytest.raises(ConfigurationError, match="not a usable http"):
        from_dsn(url)


def test_ses_endpoint_url_is_checked_by_the_constructor_too() -> None:
    pytest.importorskip("boto3")
    from notifykit.transports.ses import SESTransport

    for bad in ("not-a-url", f"http://{LONG_LABEL_HOST}", "ftp://example.com"):
        with pytest.raises(ConfigurationError):
            SESTransport(region="ap-south-1", endpoint_url=bad)


_FLOAT_OPTIONS = [
    ("failover(memory://)?{}", "cooldown"),
    ("failover(memory://)?{}", "retry_initial"),
    ("failover(memory://)?{}", "retry_maximum"),
    ("failover(memory://)?{}", "retry_multiplier"),
    ("failover(memory://)?{}", "retry_jitter"),
    ("roundrobin(memory://)?{}", "deadline"),
    ("smtp://mail.example.com?{}", "timeout"),
    ("ses://?region=ap-south-1&{}", "timeout"),
    ("msg91://KEY-1234@default?{}", "timeout"),
    ("fast2sms://KEY-1234@default?{}", "timeout"),
]


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    option=st.sampled_from(_FLOAT_OPTIONS),
    value=st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1", "x"]),
)
def test_non_finite_and_negative_numbers_are_refused(option: tuple[str, str], value: str) -> None:
    """``?cooldown=nan`` would keep a failed primary resting for ever; inf the same."""
    pytest.importorskip("boto3")
    pytest.importorskip("httpx")
    template, name = option
    with pytest.raises(ConfigurationError, match=name):
        from_dsn(template.format(f"{name}={value}"))


@pytest.mark.parametrize("cooldown", [float("nan"), float("inf"), -1.0])
def test_failover_cooldown_must_be_finite(cooldown: float) -> None:
    with pytest.raises(ConfigurationError, match="cooldown"):
        FailoverTransport([MemoryTransport()], cooldown=cooldown)


def test_huge_whole_numbers_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="retry_attempts"):
        from_dsn("failover(memory://)?retry_attempts=" + "9" * 5000)
    with pytest.raises(ConfigurationError, match="bad port"):
        from_dsn("smtp://mail.example.com:" + "9" * 5000)


# --------------------------------------------------------------------------- a 64-character label


def test_a_64_character_label_is_a_provider_error() -> None:
    transport = SMTPTransport(LONG_LABEL_HOST, 25, security="none", timeout=2)
    with pytest.raises(ProviderError, match="host name") as info:
        transport.send(_email())
    assert "provider" == info.value.attempts[0].outcome
    with pytest.raises(ProviderError, match="host name"):
        transport.check()


def test_a_64_character_label_does_not_stop_the_failover() -> None:
    """The audit's failover aborted with UnicodeError; the next transport must be tried."""
    backup = MemoryTransport()
    failover = from_dsn(f"failover(smtp://{LONG_LABEL_HOST}:25?security=none memory://)")
    assert isinstance(failover, FailoverTransport)
    failover = FailoverTransport([failover.transports[0], backup], retry=nk.Retry(attempts=1))
    receipt = failover.send(_email())
    assert "memory" == receipt.transport
    assert ["provider", "sent"] == [a.outcome for a in receipt.attempts]
    assert 1 == len(backup.outbox)


def test_a_64_character_label_in_an_sms_base_url_is_a_provider_error() -> None:
    """Constructed directly (the DSN path refuses it earlier), httpx's UnicodeError is mapped."""
    pytest.importorskip("httpx")
    from notifykit.transports.msg91 import MSG91Transport

    sms = MSG91Transport("KEY-1234", base_url=f"http://{LONG_LABEL_HOST}:1", template_id="1")
    backup = MemoryTransport()
    receipt = FailoverTransport([sms, backup]).send(
        nk.SMS(to="+919876543210", template_id="1", variables={"otp": "1"})
    )
    assert ["provider", "sent"] == [a.outcome for a in receipt.attempts]


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize("value", [None, 5, "a.pdf", {"filename": "a.pdf"}])
def test_from_dict_with_bad_attachments_is_an_invalid_message(value: object) -> None:
    data = {"to": ["a@example.com"], "subject": "s", "text": "t", "attachments": value}
    with pytest.raises(InvalidMessage, match="attachments"):
        nk.Email.from_dict(data)


# --------------------------------------------------------------------------- mask_url


_MASK_INPUTS = {
    "no URL": '"x" * 2_000_000',
    "schemes only": '"a://" * 500_000',
    "a long user part": '"smtp://" + "u" * 2_000_000',
    "a long query": '"smtp://u:p@h?" + "&" * 2_000_000',
    "many secret options": '"smtp://u:p@h?" + "api_key=1&" * 200_000',
    "many URLs": '("msg91://" + "k" * 50 + " ") * 40_000',
}


@pytest.mark.parametrize("name", sorted(_MASK_INPUTS))
def test_mask_url_is_linear(name: str) -> None:
    """The old regex took 8 s on 50,000 characters (quadratic); these are 2 MB each.

    Not a timing claim but a hang guard, in a child process that the time-out
    kills: a linear scan takes milliseconds, the quadratic one hours.
    """
    code = (
        "from notifykit.config import mask_url\n"
        f"masked = mask_url({_MASK_INPUTS[name]})\n"
        "assert 'api_key=1' not in masked and 'msg91://kkk' not in masked\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(_CLEAN, PYTHONPATH=str(_REPO)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "ok" == result.stdout.strip(), result.stderr


# --------------------------------------------------------------------------- the command line


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(_CLEAN, PYTHONPATH=str(_REPO))
    return subprocess.run(
        [sys.executable, "-m", "notifykit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_one_line_exit_2(code: int, stdout: str, stderr: str) -> None:
    assert 2 == code, (stdout, stderr)
    assert "Traceback" not in stderr
    assert 1 == len(stderr.splitlines()), stderr
    assert stderr.startswith("notifykit: error: "), stderr


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ragged.csv").write_text("email,name\na@example.com,Asha,extra\n")
    (tmp_path / "latin1.csv").write_bytes("email,name\na@example.com,José\n".encode("latin-1"))
    (tmp_path / "utf16.csv").write_text("email,name\na@example.com,José\n", encoding="utf-16")
    (tmp_path / "latin1.html").write_bytes("<p>José</p>".encode("latin-1"))
    (tmp_path / "utf16.html").write_text("<p>José</p>", encoding="utf-16")
    (tmp_path / "latin1.json").write_bytes('{"name": "José"}'.encode("latin-1"))
    (tmp_path / "utf16.json").write_text('{"name": "José"}', encoding="utf-16")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    from notifykit.sinks.sqlite import SQLiteSink

    SQLiteSink(str(tmp_path / "log.db")).close()
    return tmp_path


_SEND = ["send", "--via", "console://", "--from", "shop@example.com", "--subject", "Hi"]
_TO = ["--to", "a@example.com"]
_LATIN1_CONTEXT = ["--context", "latin1.json"]

CLI_CASES = {
    "ragged CSV row": [*_SEND, "--csv", "ragged.csv", "--text", "t"],
    "Latin-1 CSV": [*_SEND, "--csv", "latin1.csv", "--text", "t"],
    "UTF-16 CSV": [*_SEND, "--csv", "utf16.csv", "--text", "t"],
    "Latin-1 HTML": [*_SEND, *_TO, "--html-file", "latin1.html"],
    "UTF-16 HTML": [*_SEND, *_TO, "--html-file", "utf16.html"],
    "Latin-1 context (send)": [*_SEND, *_TO, "--template", "order_confirmation", *_LATIN1_CONTEXT],
    "UTF-16 context (render)": ["render", "order_confirmation", "--context", "utf16.json"],
    "context nested 100,000 deep": ["render", "order_confirmation", "--context", "deep.json"],
    "--since 99999999999d": ["log", "stats", "--db", "log.db", "--since", "99999999999d"],
    "--since 999999d": ["log", "stats", "--db", "log.db", "--since", "999999d"],
    "--since 0001-01-01": ["log", "stats", "--db", "log.db", "--since", "0001-01-01"],
    "tail -n 99999999999999999999": ["log", "tail", "--db", "log.db", "-n", "9" * 20],
    "DSN nested 250 deep": [*_SEND, *_TO, "--text", "t", "--via", _nested(250)],
    "endpoint_url=not-a-url": ["check", "ses://?region=ap-south-1&endpoint_url=not-a-url"],
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_input_is_one_line_and_exit_2(files: Path, case: str) -> None:
    result = _cli(files, *CLI_CASES[case])
    _assert_one_line_exit_2(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def in_files(files: Path) -> Iterator[Path]:
    """Run main() in ``files`` with no NOTIFYKIT_* setting (for argv that a process cannot get)."""
    with mock.patch.dict(os.environ, _CLEAN, clear=True), contextlib.chdir(files):
        yield files


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        [*_SEND, "--csv", "rag\0ged.csv", "--text", "t"],
        [*_SEND, *_TO, "--html-file", "x\0.html"],
        [*_SEND, *_TO, "--template", "order_confirmation", "--context", "x\0.json"],
        ["render", "order_confirmation", "--context", "x\0.json"],
        ["render", "order_confirmation", "--out", "out\0dir"],
        ["render", "order_confirmation", "--templates", "tem\0plates"],
        ["log", "tail", "--db", "lo\0g.db"],
        ["log", "stats", "--db", "lo\0g.db"],
    ],
    ids=["csv", "html", "send context", "render context", "out", "templates", "tail", "stats"],
)
def test_cli_nul_in_a_path_is_one_line_and_exit_2(in_files: Path, argv: list[str]) -> None:
    """No process can pass a NUL in argv, but main(argv) and .env files can."""
    code, out, err = _main(*argv)
    _assert_one_line_exit_2(code, out, err)
    assert "\0" not in err


@pytest.mark.parametrize(
    "error",
    [
        OverflowError("int too large"),
        RecursionError("maximum recursion depth exceeded"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        ValueError("embedded null byte"),
        AttributeError("'list' object has no attribute 'strip'"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_main_reports_an_unexpected_dependency_error_as_one_line(
    in_files: Path, error: Exception
) -> None:
    """The last resort: a cause not fixed where it arises still gets one line, exit 2."""
    with mock.patch("notifykit.cli.cmd_log_stats", side_effect=error):
        code, out, err = _main("log", "stats", "--db", "log.db")
    _assert_one_line_exit_2(code, out, err)
    assert type(error).__name__ in err


def test_a_good_csv_still_sends(in_files: Path) -> None:
    """The checks refuse bad files only: UTF-8 (with a BOM) and short rows still work."""
    (in_files / "good.csv").write_bytes(
        "\ufeffemail,name\na@example.com,José\nb@example.com\n".encode()
    )
    code, out, err = _main(*_SEND, "--csv", "good.csv", "--text", "t")
    assert 0 == code, err
    assert "2 sent, 0 failed" in out
