"""Configuration by URL (from_dsn), sink URLs, and Notifier.from_env."""

from __future__ import annotations

from pathlib import Path

import pytest

import notifykit as nk
from notifykit.config import from_dsn, mask_url, notifier_from_env, sink_from_url
from notifykit.transports.failover import FailoverTransport, RoundRobinTransport

SECRET = "s3cr3t-p@ss/word"
QUOTED = "s3cr3t-p%40ss%2Fword"


def test_smtp_url_with_percent_encoded_password() -> None:
    """smtp:// builds an SMTPTransport with decoded credentials, port and options."""
    t = from_dsn(f"smtp://mailer:{QUOTED}@mail.example.com:2525?security=starttls&timeout=5")
    from notifykit.transports.smtp import SMTPTransport

    assert isinstance(t, SMTPTransport)
    assert ("mail.example.com", 2525) == (t.host, t.port)
    assert SECRET not in str(t)
    assert SECRET not in repr(t)
    assert QUOTED not in repr(t)


def test_percent_encoded_credentials_log_in_to_a_real_server() -> None:
    """The decoded user and password are what AUTH sends: a real server accepts them."""
    from tests.servers.smtp import SMTPServer

    with SMTPServer(users={"shop@example.com": SECRET}) as server:
        url = (
            f"smtp://shop%40example.com:{QUOTED}@127.0.0.1:{server.port}"
            "?security=none&allow_insecure_auth=true&timeout=5"
        )
        with from_dsn(url) as transport:
            transport.send(
                nk.Email(to="a@example.com", sender="shop@example.com", subject="s", text="t")
            )
        assert 1 == len(server.messages)


def test_smtps_defaults_to_implicit_tls_on_465() -> None:
    """smtps:// means implicit TLS on port 465 unless a port is given."""
    t = from_dsn("smtps://u:p@mail.example.com")
    assert 465 == t.port  # type: ignore[attr-defined]
    assert "smtps://" in str(t) or ":465" in str(t)


def test_smtp_default_ports_follow_security() -> None:
    """Without a port, smtp:// uses 587 for starttls, 465 for ssl and 25 for none."""
    assert 587 == from_dsn("smtp://mail.example.com").port  # type: ignore[attr-defined]
    assert 465 == from_dsn("smtp://mail.example.com?security=ssl").port  # type: ignore[attr-defined]
    assert 25 == from_dsn("smtp://mail.example.com?security=none").port  # type: ignore[attr-defined]


def test_console_memory_file(tmp_path: Path) -> None:
    """console://, memory:// and file:///dir build their transports."""
    assert isinstance(from_dsn("console://"), nk.ConsoleTransport)
    assert isinstance(from_dsn("memory://"), nk.MemoryTransport)
    from notifykit.transports.file import FileTransport

    t = from_dsn(f"file://{tmp_path}/out")
    assert isinstance(t, FileTransport)
    msg = nk.Email(to="a@example.com", subject="s", text="t", sender="b@example.com")
    t.send(msg)
    assert (tmp_path / "out" / f"{msg.id}.eml").read_bytes().startswith(b"From: b@example.com")


def test_nested_composers_with_options() -> None:
    """failover(...) and roundrobin(...) nest, and take cooldown and retry options."""
    t = from_dsn(
        "failover(roundrobin(memory://a memory://b) console://)?cooldown=5&retry_attempts=2&deadline=9"
    )
    assert isinstance(t, FailoverTransport)
    assert isinstance(t.transports[0], RoundRobinTransport)
    assert 5.0 == t.cooldown
    assert (2, 9.0) == (t.retry.attempts, t.retry.deadline)
    assert "failover(roundrobin(memory:// memory://) console://)" == str(t)


def test_sms_urls() -> None:
    """msg91:// and fast2sms:// take the key in the user part, never shown."""
    pytest.importorskip("httpx")
    m = from_dsn("msg91://FAKEAUTHKEY123@default?sender=SHOPIN&template_id=abc")
    f = from_dsn("fast2sms://FAKEAPIKEY456@default?route=dlt&sender_id=SHOPIN")
    assert "FAKEAUTHKEY123" not in repr(m) + str(m)
    assert "FAKEAPIKEY456" not in repr(f) + str(f)


def test_ses_url() -> None:
    """ses:// takes the region as an option and optional KEY:SECRET credentials, masked."""
    pytest.importorskip("boto3")
    t = from_dsn("ses://FAKEKEYID:FAKESECRET%2Fxyz@?region=ap-south-1")
    assert "FAKESECRET" not in repr(t) + str(t)
    assert "ap-south-1" in str(t)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "non-empty"),
        ("mail.example.com", "not a URL"),
        ("gopher://x", "unknown scheme"),
        (f"smtp://u:{QUOTED}@host:99999", "bad port"),
        (f"smtp://u:{QUOTED}@host:abc", "bad port"),
        (f"smtp://u:{QUOTED}@host?colour=red", "unknown option 'colour'"),
        (f"smtp://u:{QUOTED}@host?timeout=-1", "timeout"),
        (f"smtp://u:{QUOTED}@host?security=tls", "security"),
        ("smtp://:pw@host", "needs a user"),
        ("smtp://", "needs a host"),
        ("failover(console:// memory://", "unbalanced"),
        ("failover()", "at least one"),
        ("failover(console://) trailing", "unexpected text"),
        ("failover(console://)?cooldown=soon", "cooldown"),
        ("console://?x=1", "unknown option"),
        ("sqlite:///x.db", "unknown scheme"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, expected: str) -> None:
    """Each malformed URL is a ConfigurationError that says what is wrong and never shows the secret."""
    with pytest.raises(nk.ConfigurationError) as info:
        from_dsn(url)
    assert expected in str(info.value)
    assert SECRET not in str(info.value)
    assert QUOTED not in str(info.value)


def test_sms_key_errors_do_not_echo_the_key() -> None:
    """A bad option on an SMS URL names the problem without showing the API key."""
    with pytest.raises(nk.ConfigurationError) as info:
        from_dsn("fast2sms://FAKEAPIKEY456@default?colour=red")
    assert "FAKEAPIKEY456" not in str(info.value)
    assert "colour" in str(info.value)


def test_mask_url() -> None:
    """mask_url hides passwords and keys but keeps user names and hosts."""
    assert "smtp://me:***@mail.example.com:587" == mask_url(
        f"smtp://me:{QUOTED}@mail.example.com:587"
    )
    assert "msg91://***@default?sender=X" == mask_url("msg91://FAKEKEY@default?sender=X")
    assert "failover(smtp://a:***@h console://)" == mask_url("failover(smtp://a:b@h console://)")


def test_sink_urls(tmp_path: Path) -> None:
    """Log URLs build the matching sinks; an unknown one is a ConfigurationError."""
    from notifykit.sinks.jsonl import JSONLSink
    from notifykit.sinks.stdlib import LoggingSink

    assert isinstance(sink_from_url(f"jsonl:///{tmp_path}/log.jsonl"), JSONLSink)
    assert isinstance(sink_from_url("logging://"), LoggingSink)
    with pytest.raises(nk.ConfigurationError):
        sink_from_url("postgres://x")


@pytest.mark.parametrize("durability", ["sync", "fsync", "batched"])
def test_sqlite_url_durability(tmp_path: Path, durability: str) -> None:
    """sqlite:///path?durability=... picks the sink's durability; the path has no query."""
    from notifykit.sinks.sqlite import SQLiteSink

    sink = sink_from_url(f"sqlite:///{tmp_path}/log.db?durability={durability}")
    try:
        assert isinstance(sink, SQLiteSink)
        assert durability == sink.durability
        assert str(tmp_path / "log.db") == str(sink.path)
    finally:
        sink.close()
    plain = sink_from_url(f"sqlite:///{tmp_path}/plain.db")
    try:
        assert isinstance(plain, SQLiteSink)
        assert "batched" == plain.durability
    finally:
        plain.close()


@pytest.mark.parametrize(
    ("query", "match"), [("durability=later", "durability must be"), ("mode=ro", "unknown option")]
)
def test_sqlite_url_bad_option(tmp_path: Path, query: str, match: str) -> None:
    """A wrong durability or an unknown option is a clear ConfigurationError."""
    with pytest.raises(nk.ConfigurationError, match=match):
        sink_from_url(f"sqlite:///{tmp_path}/log.db?{query}")


def test_from_env_sqlite_durability(tmp_path: Path) -> None:
    """NOTIFYKIT_LOG takes the same option."""
    from notifykit.sinks.sqlite import SQLiteSink

    env = {
        "NOTIFYKIT_EMAIL_URL": "memory://",
        "NOTIFYKIT_LOG": f"sqlite:///{tmp_path}/n.db?durability=sync",
    }
    with notifier_from_env(environ=env, dotenv=None) as notifier:
        (sink,) = notifier.sinks
        assert isinstance(sink, SQLiteSink)
        assert "sync" == sink.durability


def test_notifier_from_env(tmp_path: Path) -> None:
    """NOTIFYKIT_* variables configure transports, senders, region and sinks."""
    env = {
        "NOTIFYKIT_EMAIL_URL": "memory://",
        "NOTIFYKIT_SMS_URL": "console://",
        "NOTIFYKIT_SENDER": "Shop <noreply@shop.example>",
        "NOTIFYKIT_SMS_SENDER": "SHOPIN",
        "NOTIFYKIT_DEFAULT_REGION": "IN",
        "NOTIFYKIT_LOG": f"jsonl:///{tmp_path}/a.jsonl logging://",
    }
    notifier = nk.Notifier.from_env(environ=env)
    assert isinstance(notifier.email, nk.MemoryTransport)
    assert isinstance(notifier.sms, nk.ConsoleTransport)
    assert ("Shop <noreply@shop.example>", "SHOPIN", "IN") == (
        notifier.sender,
        notifier.sms_sender,
        notifier.default_region,
    )
    assert 2 == len(notifier.sinks)
    notifier.send(nk.Email(to="a@example.com", subject="s", text="t"))
    notifier.close()
    assert 2 == len((tmp_path / "a.jsonl").read_text().splitlines())


def test_notifier_from_env_needs_a_transport() -> None:
    """With no transport URL at all, from_env says which variables to set."""
    with pytest.raises(nk.ConfigurationError) as info:
        notifier_from_env(environ={})
    assert "NOTIFYKIT_EMAIL_URL" in str(info.value)


def test_dotenv_file_fills_missing_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .env file (python-dotenv) supplies values the environment does not set."""
    pytest.importorskip("dotenv")
    env_file = tmp_path / ".env"
    env_file.write_text("NOTIFYKIT_EMAIL_URL=memory://\nNOTIFYKIT_SENDER=dotenv@example.com\n")
    monkeypatch.delenv("NOTIFYKIT_EMAIL_URL", raising=False)
    monkeypatch.setenv("NOTIFYKIT_SENDER", "env@example.com")
    notifier = notifier_from_env(dotenv=env_file)
    assert isinstance(notifier.email, nk.MemoryTransport)
    assert "env@example.com" == notifier.sender
