"""No secret in any error, repr, exception chain, log record, sink file or CLI output.

Secrets are drawn by hypothesis (fixed seed, bounded examples) from printable
ASCII including ``/ # ? @ % : + " ' \\``, 3 characters and more. Each one starts
with the two characters tilde and backtick, which no error text, log line or file
here holds otherwise, so finding the secret means it leaked, never that it
collided with other text.

For each secret the test looks for every form it may travel in (:func:`forms`):
as written, percent-encoded, base64 (as SMTP ``AUTH LOGIN`` sends the password
and ``AUTH PLAIN`` sends ``\\0user\\0password``), and JSON- and repr-escaped.

The failures are real: DSNs that cannot be parsed; an aiosmtpd server on
127.0.0.1 whose ``535`` reply echoes the credentials it received in every form
(PLAIN and LOGIN); the loopback MSG91/Fast2SMS fake answering HTTP 401 with the
key in its message; an SES endpoint answering 403 with the secret key in its
message, and one that refuses connections.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.cli import main
from notifykit.config import from_dsn, mask_url
from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    mask_exception,
    mask_text,
    secret_forms,
)
from notifykit.sinks.jsonl import JSONLSink
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.sinks.stdlib import LoggingSink
from tests.servers import closed_port

MARKER = "~`"


def examples(n: int) -> settings:
    """Fixed seed, ``n`` examples at most: each test costs what its failure costs to cause."""
    return settings(
        derandomize=True,
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# Printable ASCII without space and without the marker's characters; "&" and parentheses
# are left out where a raw secret sits in a query string or inside failover(...).
_PRINTABLE = "".join(chr(c) for c in range(33, 127) if chr(c) not in "`~")
_IN_URL = "".join(c for c in _PRINTABLE if c not in "()&")


def secrets_from(alphabet: str) -> st.SearchStrategy[str]:
    """Secrets of 3 to 24 characters, each starting with the marker ``~`` + backtick."""
    return st.text(alphabet=alphabet, min_size=1, max_size=22).map(lambda s: MARKER + s)


def forms(secret: str, user: str | None = None) -> set[str]:
    """Every form in which ``secret`` could leak into a text."""
    raw = secret.encode()
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
    }
    if user is not None:
        plain = base64.b64encode(f"\0{user}\0{secret}".encode()).decode()
        found |= {plain, plain.rstrip("=")}
    escaped = set()
    for form in found:
        escaped.add(json.dumps(form)[1:-1])
        escaped.add(json.dumps(form, ensure_ascii=False)[1:-1])
        escaped.add(repr(form)[1:-1])
    return found | escaped


def assert_hidden(text: str | bytes, secret_forms_: set[str], where: str) -> None:
    data = text if isinstance(text, str) else text.decode("utf-8", "replace")
    for form in secret_forms_:
        assert form not in data, f"{form!r} leaked in {where}: {data[:2000]!r}"


def exception_texts(exc: BaseException) -> Iterator[tuple[str, str]]:
    """str, repr, args and attributes of ``exc`` and of every exception chained to it."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = type(current).__name__
        yield f"str({name})", str(current)
        yield f"repr({name})", repr(current)
        yield f"{name}.args", repr(current.args)
        for key, value in vars(current).items():
            yield f"{name}.{key}", repr(value)
        if isinstance(current, DeliveryError):
            for attempt in current.attempts:
                yield f"{name}.attempts", repr(attempt.to_dict())
        import traceback

        yield f"traceback of {name}", "".join(traceback.format_exception(current))
        for link in (current.__cause__, current.__context__):
            if link is not None:
                stack.append(link)


def assert_exception_hidden(exc: BaseException, secret_forms_: set[str]) -> None:
    for where, text in exception_texts(exc):
        assert_hidden(text, secret_forms_, where)


class _Records(logging.Handler):
    """Every log record at DEBUG, formatted with its exception and extras."""

    # aiosmtpd (the test server) logs what clients send; botocore logs each raw
    # HTTP answer at DEBUG ("Response body: ..."), so a provider that repeated a
    # secret would be repeated there: neither is notifykit's output (docs/security.md).
    IGNORED = ("mail.log", "botocore.parsers")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self._formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.IGNORED):
            return
        text = self._formatter.format(record) + " " + repr(vars(record))
        with self._guard:
            self.texts.append(text)


@contextlib.contextmanager
def debug_logs() -> Iterator[_Records]:
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(scope="module", autouse=True)
def _no_notifykit_environment() -> Iterator[None]:
    """The CLI reads NOTIFYKIT_* settings: none may come from the developer's shell."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYKIT_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        yield


def run_cli(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``notifykit`` in this process; (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, env or {}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


# --------------------------------------------------------------------------- the masking helpers


@examples(150)
@given(
    secret=st.binary(min_size=4, max_size=40),
    before=st.binary(max_size=7),
    after=st.binary(max_size=7),
)
def test_base64_fragments_are_found_at_every_alignment(
    secret: bytes, before: bytes, after: bytes
) -> None:
    """Inside any longer base64 text, some masked fragment covers the secret's bytes."""
    text = secret.decode("latin-1")
    encoded = base64.b64encode(before + text.encode() + after).decode()
    masked = mask_text(encoded, [text])
    assert "***" in masked
    # What is left cannot be decoded back into the secret.
    assert base64.b64encode(text.encode()).decode().rstrip("=") not in masked


def test_secret_forms_cover_percent_json_and_base64() -> None:
    got = set(secret_forms(["p@ss/w?rd"]))
    assert {"p@ss/w?rd", "p%40ss%2Fw%3Frd", "p%40ss%2fw%3frd", "cEBzcy93P3Jk"} <= got
    assert secret_forms(["ab", None, ""]) == ()  # too short to mask safely


def test_mask_exception_cleans_the_whole_chain() -> None:
    """args, attributes, OSError fields and an opaque __str__ are all masked."""
    import smtplib

    secret = "^Opaque/Secret?1"
    plain = base64.b64encode(f"\0me\0{secret}".encode())

    class Opaque(Exception):
        def __init__(self) -> None:
            super().__init__("nothing here")
            self._hidden = [secret]

        def __str__(self) -> str:
            return f"opaque {self._hidden!r}"

    root = Opaque()
    middle = OSError(13, f"denied for {secret}", f"/tmp/{secret}")
    middle.__context__ = root
    top = smtplib.SMTPAuthenticationError(535, b"5.7.8 you sent " + plain)
    top.__cause__ = middle
    top.add_note(f"while logging in with {secret}")
    mask_exception(top, [secret, f"\0me\0{secret}"])
    assert_exception_hidden(top, forms(secret, "me"))
    assert 535 == top.smtp_code
    assert isinstance(top.__cause__, OSError)
    assert "denied for ***" == top.__cause__.strerror
    assert ["while logging in with ***"] == top.__notes__


# --------------------------------------------------------------------------- DSN errors


def _dsn_cases(secret: str) -> dict[str, str]:
    s = secret
    return {
        "smtp bad port": f"smtp://mailer:{s}@mail.example.com:99999",
        "smtp bad port, raw @ in host part": f"smtp://u:{s}@ss@mail.example.com:99999",
        "smtps unknown option": f"smtps://mailer:{s}@mail.example.com?bogus=1",
        "smtp unexpected path": f"smtp://mailer:{s}@mail.example.com/path",
        "smtp bad IPv6": f"smtp://mailer:{s}@[::1",
        "smtp bad timeout": f"smtp://mailer:{s}@mail.example.com?timeout=inf",
        "ses unknown option": f"ses://AKIAEXAMPLE:{s}@?region=ap-south-1&bogus=1",
        "ses bad endpoint": f"ses://AKIAEXAMPLE:{s}@?region=ap-south-1&endpoint_url=not-a-url",
        "ses bad port": f"ses://AKIAEXAMPLE:{s}@ap-south-1:0",
        "ses secret as option": f"ses://AKIAEXAMPLE@?region=ap-south-1&secret={s}",
        "msg91 key as host": f"msg91://{s}",
        "msg91 key in authkey option": f"msg91://{s}@default?authkey={s}",
        "msg91 unknown option": f"msg91://{s}@default?bogus=1",
        "msg91 bad base_url": f"msg91://{s}@default?base_url=ftp://x",
        "fast2sms key in api_key option": f"fast2sms://default?api_key={s}",
        "fast2sms bad timeout": f"fast2sms://{s}@default?timeout=nan",
        "failover bad port inside": f"failover(smtp://u:{s}@h:99999 console://)",
        "nested composers": (
            f"roundrobin(failover(ses://AKIAEXAMPLE:{s}@?region=ap-south-1&bogus=1) memory://)"
        ),
        "failover bad cooldown": f"failover(smtp://u:{s}@mail.example.com)?cooldown=nan",
        "unknown scheme": f"nosuch://user:{s}@host",
    }


CASES = sorted(_dsn_cases("S"))


@pytest.mark.parametrize("case", CASES)
@examples(20)
@given(secret=secrets_from(_IN_URL), encoded=st.booleans())
def test_dsn_errors_never_show_the_secret(case: str, secret: str, encoded: bool) -> None:
    """Every DSN failure, for every scheme: the secret written raw or percent-encoded."""
    written = quote(secret, safe="") if encoded else secret
    url = _dsn_cases(written)[case]
    with pytest.raises(ConfigurationError) as info:
        from_dsn(url)
    hidden = forms(secret) | ({written} if len(written) >= 3 else set())
    assert_exception_hidden(info.value, hidden)
    assert_hidden(mask_url(url), hidden, "mask_url")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("ses://AKIAEXAMPLE:abc/def+ghi@?region=ap-south-1&bogus=1", "abc/def+ghi"),
        ("smtp://u:p@ss@host:99999", "p@ss"),
        ("msg91://KEY-1234567", "KEY-1234567"),
        ("msg91://KEY-1234567@default?authkey=KEY-1234567", "KEY-1234567"),
        ("fast2sms://default?api_key=KEY-1234567", "KEY-1234567"),
        ("ses://AKIAEXAMPLE@?secret=SECRET-987", "SECRET-987"),
    ],
)
def test_the_audited_dsns(url: str, secret: str) -> None:
    """The exact DSNs of the audit (issue 14, items 1 and 2)."""
    with pytest.raises(ConfigurationError) as info:
        from_dsn(url)
    assert_exception_hidden(info.value, forms(secret))


def test_a_secret_with_slashes_is_parsed_whole() -> None:
    """AWS secret keys hold "/": the DSN still builds, with the whole secret."""
    smtp = from_dsn("smtp://u:p@ss/w#rd?x@mail.example.com:2525")
    assert ("u", "p@ss/w#rd?x", "mail.example.com", 2525) == (
        smtp.username,  # type: ignore[attr-defined]
        smtp._password,  # type: ignore[attr-defined]
        smtp.host,  # type: ignore[attr-defined]
        smtp.port,  # type: ignore[attr-defined]
    )


def test_an_aws_secret_with_slashes_is_parsed_whole() -> None:
    """The SES form of the same: the secret access key arrives whole."""
    pytest.importorskip("boto3")
    transport = from_dsn("ses://AKIAEXAMPLE:abc/def+ghi@?region=ap-south-1")
    assert "abc/def+ghi" == transport._secret_access_key  # type: ignore[attr-defined]


@examples(12)
@given(secret=secrets_from(_IN_URL))
def test_cli_dsn_errors_never_show_the_secret(secret: str) -> None:
    """``notifykit check`` and ``send`` with a broken DSN: exit 2, one line, no secret."""
    for url in (
        f"smtp://mailer:{secret}@mail.example.com:99999",
        f"ses://AKIAEXAMPLE:{secret}@?region=ap-south-1&bogus=1",
        f"msg91://{quote(secret, safe='')}@default?authkey={quote(secret, safe='')}",
    ):
        send = ["--via", url, "--from", "a@example.com", "--to", "b@example.com"]
        send += ["--subject", "s", "--text", "t"]
        for argv in (
            ["check", url],
            ["check", "--json", url],
            ["send", *send],
            ["send", "--json", *send],
        ):
            code, output = run_cli(*argv)
            assert 2 == code, output
            assert 1 == len(output.splitlines()), output
            assert_hidden(output, forms(secret), f"notifykit {argv[0]}")


# --------------------------------------------------------------------------- SMTP AUTH


class EchoAuthServer:
    """aiosmtpd on 127.0.0.1 that refuses every login with a 535 echoing the credentials.

    The reply repeats what the client sent in each form: the user and password
    as is, base64 of ``\\0user\\0password`` (AUTH PLAIN), base64 of each
    (AUTH LOGIN), and the password percent-encoded. ``mechanism`` is the only
    one offered, so smtplib uses it.
    """

    def __init__(self, mechanism: str, certificates: Any = None) -> None:
        from aiosmtpd.controller import Controller

        self.port = closed_port()
        self.certificates = certificates  # implicit TLS (smtps) when given
        excluded = [m for m in ("PLAIN", "LOGIN") if m not in mechanism.split()]
        self.controller = Controller(
            _Sink(),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=certificates.server_context() if certificates else None,
            authenticator=self._refuse,
            auth_require_tls=False,
            auth_exclude_mechanism=excluded,
        )

    @staticmethod
    def _refuse(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        login, password = bytes(data.login), bytes(data.password)
        b64 = base64.b64encode
        echo = b" ".join(
            (
                login,
                password,
                b64(b"\0" + login + b"\0" + password),
                b64(login),
                b64(password),
                quote(password, safe="").encode(),
            )
        ).decode("ascii")
        return AuthResult(
            success=False, handled=False, message=f"535 5.7.8 rejected {mechanism} {echo}"
        )

    def __enter__(self) -> EchoAuthServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class _Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture(scope="module", params=["PLAIN", "LOGIN"])
def echo_server(request: pytest.FixtureRequest) -> Iterator[EchoAuthServer]:
    pytest.importorskip("aiosmtpd")
    with EchoAuthServer(request.param) as server:
        yield server


@pytest.fixture(scope="module")
def echo_smtps_server(certificates: Any) -> Iterator[EchoAuthServer]:
    """The same over implicit TLS (smtps), offering PLAIN and LOGIN."""
    with EchoAuthServer("PLAIN LOGIN", certificates) as server:
        yield server


def _smtp_url(server: EchoAuthServer, user: str, password: str) -> str:
    return (
        f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{server.port}"
        "?security=none&allow_insecure_auth=true&timeout=5"
    )


def _email() -> nk.Email:
    return nk.Email(
        to="customer@example.com", sender="shop@example.com", subject="Order", text="Thanks"
    )


def _send_and_collect(
    transport_url: str | nk.Transport, message: nk.Email | nk.SMS, secret_forms_: set[str]
) -> None:
    """Send through a Notifier logging to JSONL, SQLite and logging; check everything."""
    with tempfile.TemporaryDirectory() as tmp, debug_logs() as logs:
        jsonl, db = Path(tmp, "log.jsonl"), Path(tmp, "log.db")
        transport = from_dsn(transport_url) if isinstance(transport_url, str) else transport_url
        channel = "sms" if isinstance(message, nk.SMS) else "email"
        notifier = nk.Notifier(
            **{channel: transport},
            sinks=[JSONLSink(jsonl), SQLiteSink(str(db)), LoggingSink()],
        )
        with notifier, pytest.raises(DeliveryError) as info:
            notifier.send(message)
        assert_exception_hidden(info.value, secret_forms_)
        assert info.value.attempts
        assert all(a.error for a in info.value.attempts if a.outcome != "skipped")
        assert_hidden("\n".join(logs.texts), secret_forms_, "log records")
        assert logs.texts, "the delivery was logged"
        assert_hidden(jsonl.read_bytes(), secret_forms_, "the JSONL log")
        for path in Path(tmp).glob("log.db*"):  # the database and any WAL file
            assert_hidden(path.read_bytes(), secret_forms_, path.name)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT * FROM events").fetchall()
        assert any("failed" in repr(r) for r in rows)
        assert_hidden(repr(rows), secret_forms_, "the SQLite rows")


@examples(20)
@given(password=secrets_from(_PRINTABLE), wrap=st.sampled_from(["", "failover", "roundrobin"]))
def test_smtp_auth_failure_never_shows_the_credentials(
    echo_server: EchoAuthServer, password: str, wrap: str
) -> None:
    """A 535 reply echoing the credentials: masked in the error, its chain, logs and sinks."""
    user = "mailer"
    url = _smtp_url(echo_server, user, password)
    if wrap:
        url = f"{wrap}({url} {url})?retry_attempts=1"
    _send_and_collect(url, _email(), forms(password, user))


@examples(10)
@given(password=secrets_from(_PRINTABLE))
def test_smtps_auth_failure_never_shows_the_credentials(
    echo_smtps_server: EchoAuthServer, password: str
) -> None:
    """smtps (implicit TLS): smtplib tries PLAIN, then LOGIN; both replies echo."""
    from notifykit.transports.smtp import SMTPTransport

    transport = SMTPTransport(
        "127.0.0.1",
        echo_smtps_server.port,
        "mailer",
        password,
        security="ssl",
        ssl_context=echo_smtps_server.certificates.client_context(),
        timeout=5,
    )
    _send_and_collect(transport, _email(), forms(password, "mailer"))


def test_the_echo_server_does_echo(echo_server: EchoAuthServer) -> None:
    """Without masking the reply would hold the credentials (the test above can fail)."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", echo_server.port, timeout=5) as smtp:
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.login("mailer", "~`echo-me")
    assert base64.b64encode(b"~`echo-me").decode() in str(info.value)
    assert "~`echo-me" in str(info.value)


@examples(8)
@given(password=secrets_from(_PRINTABLE))
def test_cli_smtp_auth_failure_never_shows_the_credentials(
    echo_server: EchoAuthServer, password: str
) -> None:
    """``check`` and ``send``, with and without --json, and the sinks the CLI logs to."""
    url = _smtp_url(echo_server, "mailer", password)
    hidden = forms(password, "mailer")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"NOTIFYKIT_LOG": f"jsonl:///{tmp}/cli.jsonl sqlite:///{tmp}/cli.db"}
        send = ["--via", url, "--from", "a@example.com", "--to", "b@example.com"]
        send += ["--subject", "s", "--text", "t"]
        for argv in (
            ["check", url],
            ["check", "--json", url],
            ["send", *send],
            ["send", "--json", *send],
        ):
            code, output = run_cli(*argv, env=env)
            assert 1 == code, output
            assert "535" in output
            assert_hidden(output, hidden, f"notifykit {' '.join(argv[:2])}")
        for path in Path(tmp).iterdir():
            assert_hidden(path.read_bytes(), hidden, path.name)


# --------------------------------------------------------------------------- SMS providers


@pytest.fixture(scope="module")
def sms_fake() -> Iterator[Any]:
    pytest.importorskip("httpx")
    from tests.servers.sms_fake import SMSFakeServer

    with SMSFakeServer(hang_limit=5.0) as server:
        yield server


def _sms_url(provider: str, key: str, base_url: str) -> str:
    encoded = quote(key, safe="")
    if provider == "msg91":
        return f"msg91://{encoded}@default?base_url={base_url}&template_id=1001&timeout=5"
    return f"fast2sms://{encoded}@default?base_url={base_url}&route=q&timeout=5"


def _echo_401(provider: str, key: str) -> Any:
    from tests.servers.sms_fake import Reply

    said = f"Invalid key {key} (sent as {quote(key, safe='')})"
    if provider == "msg91":
        return Reply(401, {"type": "error", "message": f"Authentication failure: {said}"})
    return Reply(401, {"return": False, "status_code": 412, "message": said})


@examples(20)
@given(
    key=secrets_from(_PRINTABLE),
    provider=st.sampled_from(["msg91", "fast2sms"]),
    wrap=st.booleans(),
)
def test_sms_401_never_shows_the_key(sms_fake: Any, key: str, provider: str, wrap: bool) -> None:
    """HTTP 401 whose message repeats the key: masked everywhere."""
    url = _sms_url(provider, key, sms_fake.url)
    sms_fake.script(_echo_401(provider, key), _echo_401(provider, key))
    if wrap:
        url = f"failover({url})"
    message = nk.SMS(to="+919876543210", body="Your code is 1234", variables={"order": "1"})
    _send_and_collect(url, message, forms(key))
    with sms_fake._lock:
        sms_fake._script.clear()


@examples(8)
@given(key=secrets_from(_PRINTABLE), provider=st.sampled_from(["msg91", "fast2sms"]))
def test_cli_check_sms_401_never_shows_the_key(sms_fake: Any, key: str, provider: str) -> None:
    url = _sms_url(provider, key, sms_fake.url)
    for argv in (["check", url], ["check", "--json", url]):
        sms_fake.script(_echo_401(provider, key))
        code, output = run_cli(*argv)
        assert 1 == code, output
        assert_hidden(output, forms(key), f"notifykit {' '.join(argv)}")
    with sms_fake._lock:
        sms_fake._script.clear()


# --------------------------------------------------------------------------- SES


@examples(6)
@given(secret=secrets_from(_PRINTABLE), failure=st.sampled_from(["403 echo", "refused"]))
def test_ses_failures_never_show_the_secret_key(sms_fake: Any, secret: str, failure: str) -> None:
    """An endpoint that answers 403 repeating the secret key, and one that refuses connections."""
    pytest.importorskip("boto3")
    from tests.servers.sms_fake import Reply

    if failure == "403 echo":
        endpoint = sms_fake.url
        sms_fake.script(
            Reply(
                403,
                {"message": f"The signature for {secret} does not match"},
                {"x-amzn-ErrorType": "SignatureDoesNotMatch"},
            )
        )
    else:
        endpoint = f"http://127.0.0.1:{closed_port()}"
    url = (
        f"ses://AKIAEXAMPLE:{quote(secret, safe='')}@?region=ap-south-1"
        f"&endpoint_url={endpoint}&timeout=5"
    )
    _send_and_collect(url, _email(), forms(secret))
    with sms_fake._lock:
        sms_fake._script.clear()


# --------------------------------------------------------------------------- reprs


@examples(20)
@given(secret=secrets_from(_PRINTABLE))
def test_transport_str_and_repr_never_show_the_secret(secret: str) -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("httpx")
    encoded = quote(secret, safe="")
    for url in (
        f"smtp://mailer:{encoded}@mail.example.com",
        f"ses://AKIAEXAMPLE:{encoded}@?region=ap-south-1",
        f"msg91://{encoded}@default",
        f"fast2sms://{encoded}@default",
        f"failover(smtp://mailer:{encoded}@mail.example.com msg91://{encoded}@default)",
    ):
        transport = from_dsn(url)
        for text in (str(transport), repr(transport), transport.name):
            assert_hidden(text, forms(secret), url)
