"""The shared HTTP plumbing: pooled keep-alive client, timeouts, injection, error mapping."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

import notifykit as nk  # noqa: E402
from notifykit.transports._http import (  # noqa: E402
    MAX_BODY_BYTES,
    HTTPRequest,
    HTTPSession,
    decode_json,
    map_httpx_error,
    parse_retry_after,
)
from notifykit.transports.msg91 import MSG91Transport  # noqa: E402
from tests.servers.sms_fake import MSG91_KEY, Reply, SMSFakeServer  # noqa: E402


def sms() -> nk.SMS:
    return nk.SMS(
        "+919876543210", "Order A-1 shipped", template_id="1001", variables={"order": "A-1"}
    )


def transport(fake: SMSFakeServer, **kwargs: Any) -> MSG91Transport:
    return MSG91Transport(MSG91_KEY, base_url=fake.url, **kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- pooling


def test_session_creates_client_lazily_and_reopens(sms_fake: SMSFakeServer) -> None:
    """The pooled client exists only from the first request until close(), and comes back after."""
    session = HTTPSession(timeout=2.0)
    assert not session.is_open
    request = HTTPRequest(f"{sms_fake.url}/any", {}, None)
    session.request("GET", request)
    assert session.is_open
    session.close()
    session.close()
    assert not session.is_open
    session.request("GET", request)
    assert session.is_open
    session.close()
    assert 2 == sms_fake.connections


class RacingSession(HTTPSession):
    """Closes the pooled client right after handing it out, as a concurrent close() would."""

    raced = False

    def client(self) -> Any:
        client = super().client()
        if not self.raced:
            self.raced = True
            self.close()
        return client


def test_close_racing_a_send_is_survived(sms_fake: SMSFakeServer) -> None:
    """A send that finds its client closed by another thread retries once on a new client."""
    session = RacingSession(timeout=2.0)
    try:
        response = session.request("GET", HTTPRequest(f"{sms_fake.url}/any", {}, None))
    finally:
        session.close()
    assert session.raced
    assert 404 == response.status
    assert 1 == len(sms_fake.requests)


def test_keep_alive_reuses_one_connection(sms_fake: SMSFakeServer) -> None:
    """Five sends in a row travel over a single TCP connection."""
    with transport(sms_fake) as t:
        for _ in range(5):
            t.send(sms())
    assert 5 == len(sms_fake.requests)
    assert 1 == sms_fake.connections


def test_close_is_idempotent_and_reopens(sms_fake: SMSFakeServer) -> None:
    """close() drops the pooled connection, twice is harmless, and the next send opens a new one."""
    t = transport(sms_fake)
    t.send(sms())
    t.close()
    t.close()
    assert sms_fake.wait_idle()
    t.send(sms())
    t.close()
    assert 2 == sms_fake.connections


def test_reconnects_when_server_dropped_idle_connection(sms_fake: SMSFakeServer) -> None:
    """A keep-alive connection the server closed is replaced transparently on the next send."""
    sms_fake.script("close")
    with transport(sms_fake) as t:
        t.send(sms())
        assert sms_fake.wait_idle()
        receipt = t.send(sms())
    assert "sent" == receipt.attempts[-1].outcome
    assert 2 == sms_fake.connections


def test_threads_share_the_pool(sms_fake: SMSFakeServer) -> None:
    """Forty sends from eight threads all succeed through one transport and a bounded pool."""
    with transport(sms_fake) as t, ThreadPoolExecutor(8) as pool:
        receipts = list(pool.map(lambda _: t.send(sms()), range(40)))
    assert 40 == len({r.provider_message_id for r in receipts})
    assert 40 == len(sms_fake.requests)
    assert 8 >= sms_fake.connections


def test_injected_client_is_used_and_not_closed(sms_fake: SMSFakeServer) -> None:
    """An http_client given to the transport carries the requests and stays open after close()."""
    with httpx.Client(headers={"x-injected": "yes"}, timeout=2.0) as client:
        t = transport(sms_fake, http_client=client)
        t.send(sms())
        t.close()
        assert not client.is_closed
        t.send(sms())
        assert "yes" == sms_fake.requests[-1].headers["x-injected"]


def test_closed_injected_client_is_a_configuration_error(sms_fake: SMSFakeServer) -> None:
    """Sending through an injected client the caller already closed says so clearly."""
    client = httpx.Client()
    client.close()
    t = transport(sms_fake, http_client=client)
    with pytest.raises(nk.ConfigurationError, match="http_client"):
        t.send(sms())
    assert [] == sms_fake.requests


def test_user_agent_names_notifykit(sms_fake: SMSFakeServer) -> None:
    """The pooled client identifies itself as notifykit."""
    with transport(sms_fake) as t:
        t.send(sms())
    assert sms_fake.requests[0].headers["user-agent"].startswith("notifykit/")


def test_session_request_returns_status_headers_body(sms_fake: SMSFakeServer) -> None:
    """HTTPSession.request hands back the status, lower-cased headers and the raw body."""
    sms_fake.script(Reply(202, {"ok": 1}, {"X-Thing": "v"}))
    session = HTTPSession(timeout=2.0)
    try:
        response = session.request("POST", HTTPRequest(f"{sms_fake.url}/any", {}, {"a": 1}))
    finally:
        session.close()
    assert 202 == response.status
    assert "v" == response.headers["x-thing"]
    assert {"ok": 1} == json.loads(response.body)
    assert {"a": 1} == sms_fake.requests[0].json


# --------------------------------------------------------------------------- errors over the wire


def test_connection_refused_is_transient_not_maybe_delivered() -> None:
    """Nothing listening: a TransientError that says the message was not handed over."""
    t = MSG91Transport(MSG91_KEY, base_url=f"http://127.0.0.1:{closed_port()}", timeout=2.0)
    with pytest.raises(nk.TransientError) as info:
        t.send(sms())
    assert not info.value.maybe_delivered
    assert "transient" == info.value.attempts[0].outcome
    assert "msg91" == info.value.transport


def test_read_timeout_is_maybe_delivered(sms_fake: SMSFakeServer) -> None:
    """An answer that never comes within the timeout is a TransientError with maybe_delivered."""
    sms_fake.script("hang")
    with transport(sms_fake, timeout=0.1) as t, pytest.raises(nk.TransientError) as info:
        t.send(sms())
    assert info.value.maybe_delivered
    assert info.value.attempts[0].maybe_delivered
    assert 1 == len(sms_fake.requests)


def test_connection_dropped_after_request_is_maybe_delivered(sms_fake: SMSFakeServer) -> None:
    """The server closing the connection after reading the request means maybe delivered."""
    sms_fake.script("drop")
    with transport(sms_fake) as t, pytest.raises(nk.TransientError) as info:
        t.send(sms())
    assert info.value.maybe_delivered


def test_transport_works_again_after_a_timeout(sms_fake: SMSFakeServer) -> None:
    """After a timed-out request the next send succeeds on a fresh connection."""
    sms_fake.script("hang")
    with transport(sms_fake, timeout=0.1) as t:
        with pytest.raises(nk.TransientError):
            t.send(sms())
        assert "sent" == t.send(sms()).attempts[-1].outcome


def test_rate_limit_carries_retry_after(sms_fake: SMSFakeServer) -> None:
    """HTTP 429 is transient and carries the provider's Retry-After in seconds."""
    sms_fake.script("rate_limit")
    with transport(sms_fake) as t, pytest.raises(nk.TransientError) as info:
        t.send(sms())
    assert 7.0 == info.value.retry_after
    assert "429" == info.value.provider_code
    assert not info.value.maybe_delivered


def test_rate_limit_without_retry_after() -> None:
    """HTTP 429 without a Retry-After header has retry_after None."""
    with SMSFakeServer(retry_after=None) as fake:
        fake.script("rate_limit")
        with transport(fake) as t, pytest.raises(nk.TransientError) as info:
            t.send(sms())
    assert info.value.retry_after is None


def test_server_error_is_transient(sms_fake: SMSFakeServer) -> None:
    """HTTP 500 with an HTML body is a TransientError, not a crash on the body."""
    sms_fake.script("server_error")
    with transport(sms_fake) as t, pytest.raises(nk.TransientError) as info:
        t.send(sms())
    assert "500" == info.value.provider_code
    assert not info.value.maybe_delivered


def test_garbage_after_200_is_transient_maybe_delivered(sms_fake: SMSFakeServer) -> None:
    """A 200 whose body is not JSON is transient, and maybe delivered (the provider took it)."""
    sms_fake.script("garbage")
    with transport(sms_fake) as t, pytest.raises(nk.TransientError) as info:
        t.send(sms())
    assert info.value.maybe_delivered
    assert "not JSON" in str(info.value)


def test_oversized_answer_is_cut_off(sms_fake: SMSFakeServer) -> None:
    """An answer larger than MAX_BODY_BYTES is not read into memory whole: transient error."""
    sms_fake.script(Reply(200, b"x" * (MAX_BODY_BYTES + 10)))
    with transport(sms_fake) as t, pytest.raises(nk.TransientError, match="larger than"):
        t.send(sms())


# --------------------------------------------------------------------------- secrets


def test_key_never_in_logs_errors_or_repr(
    sms_fake: SMSFakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither debug logs (httpx, httpcore, notifykit) nor errors nor reprs ever show the key."""
    caplog.set_level(logging.DEBUG)
    sms_fake.msg91_keys = {"another-key"}  # now the key is refused
    sms_fake.script("hang", "rate_limit")
    texts: list[str] = []
    with transport(sms_fake, timeout=0.1) as t:
        texts += [str(t), repr(t), t.name]
        for _ in range(3):
            with pytest.raises(nk.DeliveryError) as info:
                t.send(sms())
            err = info.value
            texts += [str(err), repr(err), err.message, *(repr(a) for a in err.attempts)]
        with pytest.raises(nk.ProviderError) as checked:
            t.check()
        texts += [str(checked.value), repr(checked.value)]
        texts.append(repr(t.build_request(sms())))
    texts += [caplog.text, *(repr(r.__dict__) for r in caplog.records)]
    assert caplog.records  # httpx did log the requests
    assert all(MSG91_KEY not in text for text in texts)


def test_request_repr_masks_auth_headers() -> None:
    """HTTPRequest's repr hides authkey and authorization values but shows the rest."""
    text = repr(
        HTTPRequest(
            "https://x.example/a",
            {"authkey": "s3cret", "Authorization": "t0ken", "accept": "a/b"},
            None,
        )
    )
    assert "s3cret" not in text
    assert "t0ken" not in text
    assert "a/b" in text


def test_provider_echoing_the_key_is_masked(sms_fake: SMSFakeServer) -> None:
    """A provider error message that quotes the key reaches the caller with the key masked."""
    sms_fake.script(Reply(401, {"type": "error", "message": f"Invalid authkey {MSG91_KEY}"}))
    with transport(sms_fake) as t, pytest.raises(nk.ProviderError) as info:
        t.send(sms())
    assert MSG91_KEY not in str(info.value)
    assert "***" in str(info.value)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"base_url": "control.msg91.com"}, "base_url"),
        ({"base_url": "https://x.example/?a=1"}, "query"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_options_are_configuration_errors(kwargs: dict[str, Any], match: str) -> None:
    """Impossible options fail at construction with a ConfigurationError that names them."""
    with pytest.raises(nk.ConfigurationError, match=match):
        MSG91Transport(MSG91_KEY, **kwargs)


@pytest.mark.parametrize("key", ["", "   ", "key with space", "key\r\nX-Evil: 1", "kéy-abc", 123])
def test_bad_keys_are_refused_without_echoing_them(key: Any) -> None:
    """An empty key, or one with whitespace, control or non-ASCII characters, is refused unquoted."""
    with pytest.raises(nk.ConfigurationError) as info:
        MSG91Transport(key)
    if isinstance(key, str) and key.strip():
        assert key not in str(info.value)


def test_missing_httpx_names_the_extra() -> None:
    """Without httpx the modules import, pure functions work, and the transport names notifykit-py[sms]."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httpx"] = None  # as if not installed
        import notifykit as nk
        from notifykit.transports import msg91, fast2sms
        req = msg91.build_request(
            nk.SMS("+919876543210", "x", template_id="1"), authkey="k-123")
        assert req.url.endswith("/api/v5/flow/")
        try:
            fast2sms.Fast2SMSTransport("k-123")
        except nk.MissingDependency as exc:
            assert 'notifykit-py[sms]' in str(exc), exc
            assert isinstance(exc, ImportError)
            print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "ok" == out.stdout.strip(), out.stderr


def test_importing_the_modules_does_not_import_httpx() -> None:
    """httpx is imported only when a transport is built, never by importing notifykit's modules."""
    code = (
        "import sys, notifykit.transports.msg91, notifykit.transports.fast2sms, "
        "notifykit.transports._http; print('httpx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "False" == out.stdout.strip(), out.stderr


# --------------------------------------------------------------------------- pure mapping


def _req() -> Any:
    return httpx.Request("POST", "https://x.example/")


@pytest.mark.parametrize(
    ("exc", "kind", "maybe"),
    [
        (httpx.ConnectError("refused"), nk.TransientError, False),
        (httpx.ConnectTimeout("slow"), nk.TransientError, False),
        (httpx.PoolTimeout("busy"), nk.TransientError, False),
        (httpx.WriteError("broken pipe"), nk.TransientError, False),
        (httpx.WriteTimeout("slow"), nk.TransientError, False),
        (httpx.ProxyError("proxy"), nk.TransientError, False),
        (httpx.ReadTimeout("slow"), nk.TransientError, True),
        (httpx.ReadError("reset"), nk.TransientError, True),
        (httpx.RemoteProtocolError("disconnected"), nk.TransientError, True),
        (httpx.DecodingError("bad gzip"), nk.TransientError, True),
        (httpx.UnsupportedProtocol("gopher"), nk.ProviderError, False),
        (httpx.LocalProtocolError("bad header"), nk.ProviderError, False),
        (httpx.InvalidURL("bad url"), nk.ProviderError, False),
        (httpx.TooManyRedirects("loop"), nk.ProviderError, False),
        (httpx.NetworkError("other"), nk.TransientError, False),
    ],
)
def test_map_httpx_error(exc: Exception, kind: type[nk.DeliveryError], maybe: bool) -> None:
    """Each httpx failure maps to its delivery kind, maybe_delivered only after the request went out."""
    err = map_httpx_error(exc)
    assert kind is type(err)
    assert isinstance(err, nk.DeliveryError)
    assert maybe is err.maybe_delivered
    assert type(exc).__name__ in str(err)


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", None),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP date; unreadable or negative values are None."""
    assert expected == parse_retry_after(value, now=NOW)


@pytest.mark.parametrize(
    ("status", "body", "kind", "maybe"),
    [
        (429, b"{}", nk.TransientError, False),
        (408, b"", nk.TransientError, False),
        (502, b"<html>bad gateway</html>", nk.TransientError, False),
        (503, b"", nk.TransientError, False),
        (503, b'{"message": "down"}', nk.TransientError, False),
        (301, b"", nk.ProviderError, False),
        (200, b"not json", nk.TransientError, True),
        (200, b"\xff\xfe", nk.TransientError, True),
        (401, b"<html>denied</html>", nk.ProviderError, False),
        (403, b"", nk.ProviderError, False),
        (404, b"<html>nope</html>", nk.ProviderError, False),
    ],
)
def test_decode_json_refusals(status: int, body: bytes, kind: type[Exception], maybe: bool) -> None:
    """Status and body checks shared by every JSON provider answer map to the right kind."""
    with pytest.raises(kind) as info:
        decode_json(status, {"location": "https://elsewhere.example/"}, body)
    assert maybe is getattr(info.value, "maybe_delivered", False)


def test_decode_json_passes_json_through() -> None:
    """A JSON body with a non-error status comes back parsed, whatever its shape."""
    assert {"type": "error"} == decode_json(400, {}, b'{"type": "error"}')
    assert [1, 2] == decode_json(200, {}, b"[1, 2]")


def test_503_retry_after() -> None:
    """A 503 that says when to come back carries retry_after."""
    with pytest.raises(nk.TransientError) as info:
        decode_json(503, {"retry-after": "120"}, b"")
    assert 120.0 == info.value.retry_after


def test_server_message_is_kept_for_5xx() -> None:
    """A 5xx with a JSON message keeps the provider's words in the error."""
    with pytest.raises(nk.TransientError, match="maintenance"):
        decode_json(503, {}, b'{"message": "maintenance"}')
