"""``notifykit check``: connect and authenticate to real local servers, never send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifykit.cli import main

if TYPE_CHECKING:
    from tests.cli.conftest import Runner
    from tests.servers.sms_fake import SMSFakeServer
    from tests.servers.smtp import Certificates, SMTPServer


def plain(server: SMTPServer) -> str:
    return f"smtp://127.0.0.1:{server.port}?security=none"


def test_check_ok_against_a_local_server_sends_nothing(
    smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reachable SMTP server is OK, the exit code 0, and no message is sent."""
    code = main(["check", plain(smtp_server)])
    out = capsys.readouterr().out
    assert 0 == code
    assert f"smtp://127.0.0.1:{smtp_server.port}?security=none" in out
    assert "OK" in out
    assert "FAIL" not in out
    assert "connected + EHLO OK" in out
    assert 1 <= smtp_server.connections
    assert [] == smtp_server.messages


def test_check_closed_port_fails_with_exit_code_1(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port where nothing listens is FAIL with the reason, and the exit code is 1."""
    code = main(["check", f"smtp://127.0.0.1:{closed_port}?security=none"])
    out = capsys.readouterr().out
    assert 1 == code
    assert "FAIL" in out
    assert "connection refused (transient)" in out


def test_check_json_reports_each_result(
    smtp_server: SMTPServer, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json gives one document with ok, detail and latency per transport."""
    dead = f"smtp://127.0.0.1:{closed_port}?security=none"
    code = main(["check", plain(smtp_server), dead, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert 1 == code
    assert False is doc["ok"]
    assert [plain(smtp_server), dead] == [r["url"] for r in doc["results"]]
    assert [True, False] == [r["ok"] for r in doc["results"]]
    assert all(isinstance(r["latency_ms"], float) for r in doc["results"])


def test_check_expands_composers_into_their_children(
    smtp_server: SMTPServer, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """failover(...) is checked child by child; one dead child fails the check."""
    url = f"failover(smtp://127.0.0.1:{closed_port}?security=none {plain(smtp_server)} console://)"
    code = main(["check", url, "--json"])
    rows = json.loads(capsys.readouterr().out)["results"]
    assert 1 == code
    assert [None, False, True, True] == [r["ok"] for r in rows]
    assert [0, 1, 1, 1] == [r["depth"] for r in rows]
    assert rows[0]["url"].startswith("failover(")
    assert "nothing to connect to" == rows[3]["detail"]


def test_check_starttls_and_auth_with_a_trusted_ca(
    smtp_tls_server: SMTPServer, certificates: Certificates, run: Runner, tmp_path: Path
) -> None:
    """STARTTLS and AUTH succeed against a server whose CA is trusted; the password stays hidden."""
    from tests.servers.smtp import FAKE_PASSWORD, FAKE_USER

    ca = tmp_path / "ca.pem"
    certificates.ca.cert_pem.write_to_path(str(ca))
    url = f"smtp://{FAKE_USER}:{FAKE_PASSWORD}@127.0.0.1:{smtp_tls_server.port}"
    result = run("check", url, env={"SSL_CERT_FILE": str(ca)})
    assert 0 == result.returncode, result.stderr
    assert "connected + EHLO + STARTTLS + AUTH OK" in result.stdout
    assert f"smtp://{FAKE_USER}:***@127.0.0.1:{smtp_tls_server.port}" in result.stdout
    assert FAKE_PASSWORD not in result.stdout + result.stderr
    assert [] == smtp_tls_server.messages


def test_check_wrong_password_is_a_provider_failure_without_the_password(
    smtp_tls_server: SMTPServer, certificates: Certificates, run: Runner, tmp_path: Path
) -> None:
    """Refused credentials are FAIL (authentication failed) and the password is never printed."""
    from tests.servers.smtp import FAKE_USER

    ca = tmp_path / "ca.pem"
    certificates.ca.cert_pem.write_to_path(str(ca))
    wrong = "wrong-password-9876"
    url = f"smtp://{FAKE_USER}:{wrong}@127.0.0.1:{smtp_tls_server.port}"
    result = run("check", url, env={"SSL_CERT_FILE": str(ca)})
    assert 1 == result.returncode
    assert "authentication failed" in result.stdout
    assert "(provider)" in result.stdout
    assert wrong not in result.stdout + result.stderr


def test_check_untrusted_certificate_fails(
    smtp_tls_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A certificate from an unknown CA is FAIL: verification stays on."""
    code = main(["check", f"smtp://127.0.0.1:{smtp_tls_server.port}"])
    out = capsys.readouterr().out
    assert 1 == code
    assert "certificate verification failed" in out


def test_check_defaults_to_the_environment(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without URLs, NOTIFYKIT_EMAIL_URL (and NOTIFYKIT_SMS_URL) are checked."""
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", plain(smtp_server))
    code = main(["check"])
    assert 0 == code
    assert plain(smtp_server) in capsys.readouterr().out


def test_check_reads_a_dotenv_file(
    smtp_server: SMTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .env file in the working directory provides the URL when python-dotenv is installed."""
    pytest.importorskip("dotenv")
    (tmp_path / ".env").write_text(f"NOTIFYKIT_EMAIL_URL={plain(smtp_server)}\n")
    code = main(["check"])
    assert 0 == code
    assert plain(smtp_server) in capsys.readouterr().out


def test_check_with_nothing_configured_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No URL and no NOTIFYKIT_* variable: exit 2 and say what to set."""
    code = main(["check"])
    err = capsys.readouterr().err
    assert 2 == code
    assert "NOTIFYKIT_EMAIL_URL" in err


def test_check_bad_url_exits_2_with_a_masked_message(run: Runner) -> None:
    """A malformed URL is exit code 2, one line on stderr, the password masked, no traceback."""
    result = run("check", "smtp://mailer:hunter2-secret@mail.example.com:99999")
    assert 2 == result.returncode
    assert "notifykit: error: smtp://mailer:***@mail.example.com:99999: bad port\n" == result.stderr
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_bad_url_among_good_ones_checks_nothing(
    smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every URL is parsed before any is checked: one bad URL stops the run with exit 2."""
    code = main(["check", plain(smtp_server), "nosuch://x"])
    assert 2 == code
    assert "unknown scheme 'nosuch'" in capsys.readouterr().err
    assert 0 == smtp_server.connections


def test_check_msg91_and_fast2sms_keys(
    sms_fake: SMSFakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """SMS transports are checked through their balance APIs; a refused key is FAIL."""
    pytest.importorskip("httpx")
    from tests.servers.sms_fake import FAST2SMS_KEY, MSG91_KEY

    base = f"base_url={sms_fake.url}&timeout=2"
    code = main(
        [
            "check",
            "--json",
            f"msg91://{MSG91_KEY}@default?{base}",
            f"fast2sms://{FAST2SMS_KEY}@default?{base}",
            f"msg91://not-the-key-000@default?{base}",
        ]
    )
    out = capsys.readouterr().out
    rows = json.loads(out)["results"]
    assert 1 == code
    assert [True, True, False] == [r["ok"] for r in rows]
    assert "balance 1000" in rows[0]["detail"]
    assert "100" in rows[1]["detail"]
    assert MSG91_KEY not in out
    assert FAST2SMS_KEY not in out
    assert "not-the-key-000" not in out
    assert all(r["url"].startswith(("msg91://***@", "fast2sms://***@")) for r in rows)


def test_check_file_transport_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """file:// is OK when its directory (or the parent it will be made in) is writable."""
    code = main(["check", "--json", f"file://{tmp_path}/spool"])
    rows = json.loads(capsys.readouterr().out)["results"]
    assert 0 == code
    assert f"{tmp_path}/spool is writable" == rows[0]["detail"]


def test_check_ses_reports_the_quota() -> None:
    """An SES check prints the account's quota, sandbox and pause state from GetAccount."""
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    from notifykit.cli import _check_rows
    from notifykit.transports.ses import SESTransport

    session = boto3.session.Session(
        aws_access_key_id="AKIDTESTING", aws_secret_access_key="x" * 20, region_name="eu-west-1"
    )
    client = session.client("sesv2")
    answer = {
        "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 12.0},
        "SendingEnabled": True,
        "ProductionAccessEnabled": False,
        "EnforcementStatus": "HEALTHY",
        "DedicatedIpAutoWarmupEnabled": False,
    }
    with Stubber(client) as stubber:
        stubber.add_response("get_account", answer, {})
        [row] = list(_check_rows("ses://?region=eu-west-1", SESTransport(client=client)))
    assert (True, "quota 12/200 in 24 h, 1/s, sandbox") == (row["ok"], row["detail"])
