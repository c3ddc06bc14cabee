"""Shared HTTP plumbing for the HTTP API transports (MSG91, Fast2SMS).

What lives here, once, so the provider modules only hold what differs per
provider (building the request and reading the answer):

- :class:`HTTPSession`: one pooled ``httpx.Client`` per transport, created on
  first use, kept alive between messages (HTTP keep-alive saves a TCP and TLS
  handshake per SMS), closed by ``close()`` and reopened by the next send. An
  ``http_client=`` given by the caller is used as is and never closed by us.
- :func:`map_httpx_error`: the one place where httpx exceptions become
  notifykit errors. What matters is *when* the failure happened: before the
  request was written (connect refused, connect timeout) the message was
  plainly not delivered; after it was written (read timeout, connection
  dropped before the answer) the provider may have sent it, so the error says
  ``maybe_delivered=True`` and a composer knows a resend may duplicate it.
- :func:`decode_json`: the checks every JSON API answer goes through before a
  provider module reads it: HTTP 429 (with ``Retry-After``), 5xx, redirects,
  and malformed bodies, which are a :class:`TransientError` rather than a crash.
- :class:`HTTPTransport`: the common base of the two SMS transports.

httpx is imported lazily (:func:`import_httpx`), so ``import notifykit`` and the
pure request/response functions of the provider modules work without it.
Secrets travel only in request headers, never in URLs, and no function here
logs or formats a header value.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar
from urllib.parse import urlsplit

import attrs

from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    MissingDependency,
    NotifyKitError,
    ProviderError,
    RejectedError,
    TransientError,
)
from notifykit.message import SMS, Message
from notifykit.ratelimit import RateLimit, parse_rate
from notifykit.receipt import Receipt
from notifykit.transports._timeouts import DEFAULT_CONNECT_TIMEOUT, connect_timeout
from notifykit.transports.base import BaseTransport, mask_secrets

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_BODY_BYTES",
    "SENSITIVE_HEADERS",
    "CheckResult",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPSession",
    "HTTPTransport",
    "decode_json",
    "import_httpx",
    "malformed",
    "map_httpx_error",
    "parse_retry_after",
    "templates_option",
]

_R = TypeVar("_R")

#: Pooled HTTP connections per transport: one per thread sending at once, kept
#: alive between messages (the SMTP transport's pool has the same knob).
DEFAULT_MAX_CONNECTIONS = 10

#: Header names whose values are secrets: masked in every repr.
SENSITIVE_HEADERS = frozenset({"authkey", "authorization", "proxy-authorization"})
#: Provider answers are a few hundred bytes; anything beyond this is not an answer.
MAX_BODY_BYTES = 1 << 20


def import_httpx() -> ModuleType:
    """Import httpx, or raise :class:`MissingDependency` naming the ``sms`` extra."""
    try:
        import httpx
    except ImportError as exc:
        raise MissingDependency("httpx", "sms", "each SMS transport (MSG91, Fast2SMS)") from exc
    return httpx


class HTTPRequest(NamedTuple):
    """A request built by a provider module's pure ``build_request`` function.

    It unpacks as ``url, headers, json``; the method is given to
    :meth:`HTTPSession.request`. Its ``repr`` masks the auth header, so printing
    one in a debugger or a test failure never shows the key.
    """

    url: str
    headers: dict[str, str]
    json: dict[str, Any] | None

    def __repr__(self) -> str:
        headers = {
            k: ("***" if k.lower() in SENSITIVE_HEADERS else v) for k, v in self.headers.items()
        }
        return f"HTTPRequest(url={self.url!r}, headers={headers!r}, json={self.json!r})"


class HTTPResponse(NamedTuple):
    """What came back: the status, the headers (names lower-cased) and the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes


@attrs.frozen
class CheckResult:
    """The answer of a transport's ``check()``: the key works, and what was learnt.

    Attributes:
        transport: the transport's name.
        detail: one human line (``"wallet balance 123.45"``).
        balance: the account balance as the provider wrote it, when it gave one.
    """

    transport: str
    detail: str
    balance: str | None = None


# --------------------------------------------------------------------------- errors


def map_httpx_error(exc: Exception) -> NotifyKitError:
    """Translate an httpx exception into a notifykit error (the caller raises it ``from exc``).

    =====================================================  =================================
    httpx exception                                        notifykit error
    =====================================================  =================================
    ``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``  ``TransientError`` (not delivered)
    ``WriteError``, ``WriteTimeout``, ``ProxyError``       ``TransientError`` (not delivered:
                                                           the request never fully arrived)
    ``ReadTimeout``, ``ReadError``,                        ``TransientError(maybe_delivered=True)``
    ``RemoteProtocolError``, ``DecodingError``             (the request was sent, the answer lost)
    ``UnsupportedProtocol``, ``InvalidURL``,               ``ProviderError`` (this integration
    ``LocalProtocolError``, ``TooManyRedirects``           cannot reach the provider as set up)
    any other ``httpx`` error                              ``TransientError``
    =====================================================  =================================

    The message holds the exception's type and text, which never include
    request headers.
    """
    httpx = import_httpx()
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientError(f"could not connect to the provider ({what})")
    if isinstance(exc, (httpx.WriteError, httpx.WriteTimeout, httpx.ProxyError)):
        return TransientError(f"the request could not be sent ({what})")
    if isinstance(exc, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)):
        return TransientError(
            f"no answer after the request was sent ({what}); the message may have been sent",
            maybe_delivered=True,
        )
    if isinstance(exc, httpx.DecodingError):
        return TransientError(
            f"the provider's answer could not be decoded ({what}); the message may have been sent",
            maybe_delivered=True,
        )
    if isinstance(
        exc,
        (
            httpx.UnsupportedProtocol,
            httpx.InvalidURL,
            httpx.LocalProtocolError,
            httpx.TooManyRedirects,
        ),
    ):
        return ProviderError(f"the request cannot be made as configured ({what})")
    return TransientError(f"HTTP error ({what})")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns ``None`` when the header is missing or unreadable; a date in the
    past gives ``0.0``.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = now or datetime.now(timezone.utc)
        return max(0.0, (when - current).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _provider_text(body: bytes) -> str | None:
    """The provider's own ``message`` from a JSON error body, if there is one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict):
        message = data.get("message")
        if isinstance(message, str) and message:
            return message[:300]
    return None


def decode_json(status: int, headers: Mapping[str, str], body: bytes) -> Any:
    """Apply the checks every JSON API answer needs, then return the parsed body.

    - HTTP 429 → :class:`TransientError` with ``retry_after`` from ``Retry-After``;
    - HTTP 408 and 5xx → :class:`TransientError` (the provider failed, not the
      message), with ``retry_after`` when a 503 says when to come back;
    - HTTP 3xx → :class:`ProviderError` (nothing here follows redirects: a
      redirect means ``base_url`` is wrong);
    - a body that is not JSON → :class:`TransientError`; after a 2xx it is also
      ``maybe_delivered`` (the provider accepted the request and then said
      something unreadable: it may well have sent the SMS); after a 401/403
      it is a :class:`ProviderError` (a gateway refused the key), after another
      4xx a :class:`ProviderError` too (this endpoint does not speak the API).

    ``headers`` must have lower-case names (:class:`HTTPResponse` does).
    """
    if status == 429:
        reason = _provider_text(body) or "too many requests"
        raise TransientError(
            f"rate limited by the provider (HTTP 429: {reason})",
            provider_code=429,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    if status == 408 or status >= 500:
        said = _provider_text(body)
        suffix = f": {said}" if said else ""
        raise TransientError(
            f"provider error (HTTP {status}{suffix})",
            provider_code=status,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    if 300 <= status < 400:
        raise ProviderError(
            f"unexpected redirect (HTTP {status}) to {headers.get('location', '?')!r}; "
            "check base_url",
            provider_code=status,
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        pass
    sample = body[:80].decode("utf-8", "replace")
    if 200 <= status < 300:
        raise TransientError(
            f"malformed answer from the provider (HTTP {status}, not JSON: {sample!r}); "
            "the message may have been sent",
            maybe_delivered=True,
            provider_code=status,
        )
    if status in (401, 403):
        raise ProviderError(
            f"the provider refused the credentials (HTTP {status})", provider_code=status
        )
    raise ProviderError(
        f"unexpected answer (HTTP {status}, not JSON: {sample!r}); check base_url",
        provider_code=status,
    )


def malformed(status: int, what: str) -> DeliveryError:
    """The error for a JSON answer that lacks what the API always sends.

    After a 2xx it is a :class:`TransientError` that may have been delivered;
    after a 4xx a :class:`ProviderError` (this endpoint does not speak the API:
    a wrong ``base_url``); otherwise a plain :class:`TransientError`.
    """
    text = f"malformed answer from the provider (HTTP {status}: {what})"
    if 400 <= status < 500:
        return ProviderError(f"{text}; check base_url", provider_code=status)
    return TransientError(text, maybe_delivered=200 <= status < 300, provider_code=status)


# --------------------------------------------------------------------------- session


class HTTPSession:
    """A lazily created, pooled, thread-safe ``httpx.Client`` and the calls made on it.

    ``timeout`` (seconds) bounds writing, reading and waiting for a pooled
    connection; ``connect_timeout`` (default: 5, or ``timeout`` when shorter)
    bounds connecting, TLS included. The pool keeps up to ``max_connections``
    connections, all kept alive, so that many threads send at once without a
    new handshake each. These apply to the client this session creates. An
    injected ``http_client`` keeps its own settings (timeouts, proxies,
    certificates, pool) and stays the caller's to close; only a failover
    probe's shorter connect time-out is applied to its requests.
    """

    def __init__(
        self,
        *,
        timeout: float,
        http_client: httpx.Client | None = None,
        connect_timeout: float | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.timeout = timeout
        self.connect_timeout = (
            connect_timeout
            if connect_timeout is not None
            else min(DEFAULT_CONNECT_TIMEOUT, timeout)
        )
        self.max_connections = max_connections
        self._injected = http_client
        self._client: httpx.Client | None = None
        #: One async client per event loop (a client is bound to the loop that made it).
        self._aclients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """True when the pooled client exists (after a request, until :meth:`close`)."""
        return self._client is not None

    def client(self) -> httpx.Client:
        """The client to use: the injected one, or the pooled one (created on first use)."""
        if self._injected is not None:
            return self._injected
        with self._lock:
            if self._client is None:
                self._client = import_httpx().Client(**self._client_options())
            return self._client

    def _client_options(self) -> dict[str, Any]:
        """The settings of the clients this session creates (sync and async alike)."""
        httpx = import_httpx()
        from notifykit import __version__

        return {
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
            "limits": httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
                keepalive_expiry=30.0,
            ),
            "follow_redirects": False,
            "headers": {"user-agent": f"notifykit/{__version__}"},
        }

    def request(self, method: str, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read the whole answer (at most :data:`MAX_BODY_BYTES`).

        httpx errors leave as notifykit errors (:func:`map_httpx_error`). If the
        pooled client was closed by a concurrent ``close()`` before the request
        went out, a fresh client is made and the request sent once more: nothing
        had been sent, so that cannot duplicate a message.
        """
        httpx = import_httpx()
        url, headers, body = request
        for _ in range(2):
            client = self.client()
            extra = _probe_options(client.timeout)
            try:
                with client.stream(method, url, headers=headers, json=body, **extra) as response:
                    data = bytearray()
                    for chunk in response.iter_bytes():
                        _add_chunk(data, chunk)
                    return _response(response, data)
            except httpx.HTTPError as exc:
                raise map_httpx_error(exc) from exc
            except RuntimeError as exc:
                # httpx says "the client has been closed": nothing was sent.
                if not client.is_closed:
                    raise
                if client is self._injected:
                    raise ConfigurationError(
                        "the http_client given to the transport is closed"
                    ) from exc
                with self._lock:
                    if self._client is client:
                        self._client = None
        raise TransientError("the HTTP client was closed while sending; not sent")

    def close(self) -> None:
        """Close the pooled client (idempotent); the next request opens a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- the async twin: one httpx.AsyncClient per event loop, the same limits

    def aclient(self) -> httpx.AsyncClient:
        """The pooled ``httpx.AsyncClient`` of the running event loop (created on first use)."""
        import asyncio

        loop = asyncio.get_running_loop()
        current = self._aclients.get(loop)
        if current is not None and not current.is_closed:
            return current
        client: httpx.AsyncClient = import_httpx().AsyncClient(**self._client_options())
        self._aclients[loop] = client
        return client

    async def arequest(self, method: str, request: HTTPRequest) -> HTTPResponse:
        """:meth:`request` from async code, on ``httpx.AsyncClient``: the same answers and errors.

        An injected (sync) ``http_client`` is used in a worker thread.
        """
        if self._injected is not None:
            import asyncio

            return await asyncio.to_thread(self.request, method, request)
        httpx = import_httpx()
        url, headers, body = request
        client = self.aclient()
        extra = _probe_options(client.timeout)
        try:
            async with client.stream(method, url, headers=headers, json=body, **extra) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    _add_chunk(data, chunk)
                return _response(response, data)
        except httpx.HTTPError as exc:
            raise map_httpx_error(exc) from exc

    async def aclose(self) -> None:
        """Close the async client (and the sync one); the next request opens new ones."""
        import asyncio

        current = self._aclients.pop(asyncio.get_running_loop(), None)
        if current is not None and not current.is_closed:
            await current.aclose()
        if self._client is not None:
            self.close()  # closing idle pooled sockets does not wait on the network


def _probe_options(timeout: httpx.Timeout) -> dict[str, Any]:
    """Request options for a failover probe: a shorter connect time-out, else nothing."""
    configured = timeout.connect
    if configured is not None and connect_timeout(configured) < configured:
        # A failover probe: connect quickly or give up.
        return {
            "timeout": timeout.__class__(
                connect=connect_timeout(configured),
                read=timeout.read,
                write=timeout.write,
                pool=timeout.pool,
            )
        }
    return {}


def _add_chunk(data: bytearray, chunk: bytes) -> None:
    data += chunk
    if len(data) > MAX_BODY_BYTES:
        raise TransientError(
            f"the provider's answer is larger than {MAX_BODY_BYTES} bytes; "
            "the message may have been sent",
            maybe_delivered=True,
        )


def _response(response: httpx.Response, data: bytearray) -> HTTPResponse:
    return HTTPResponse(
        response.status_code, {k.lower(): v for k, v in response.headers.items()}, bytes(data)
    )


# --------------------------------------------------------------------------- base transport


def _check_url(base_url: object) -> str:
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url: expected a string, got {type(base_url).__name__}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"base_url {base_url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"base_url {base_url!r} must not have a query or fragment")
    return base_url.rstrip("/")


def _check_key(key: object, what: str) -> str:
    # The message never quotes the key itself.
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"{what}: expected a non-empty string")
    if key != key.strip() or any(c.isspace() or not c.isprintable() for c in key):
        raise ConfigurationError(f"{what} contains whitespace or control characters")
    if not key.isascii():
        raise ConfigurationError(f"{what} contains non-ASCII characters")
    return key


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigurationError(f"timeout: expected seconds as a number, got {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def templates_option(value: object) -> dict[str, str]:
    """Check a ``templates=`` option: your template names mapped to the provider's ids."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (str, int)) and str(v).strip()
        for k, v in value.items()
    ):
        raise ConfigurationError("templates: expected a mapping of template name to provider id")
    return {k: str(v).strip() for k, v in value.items()}


def localized_template(templates: Mapping[str, str], name: str, locale: object) -> str:
    """The provider id of template ``name`` in ``locale``: a DLT template per language.

    ``locale`` is the SMS's ``metadata["locale"]`` (set by ``Notifier.send_sms(...,
    locale=...)``). Tried in order: ``"otp.ta_IN"``, ``"otp.ta"``, ``"otp"``; a
    name in none of them is sent as is (it is already the provider's id).
    """
    if isinstance(locale, str) and locale:
        parts = locale.replace("-", "_").split("_")
        parts[0] = parts[0].lower()
        for n in range(len(parts), 0, -1):
            key = f"{name}.{'_'.join(parts[:n])}"
            if key in templates:
                return templates[key]
    return templates.get(name, name)


class HTTPTransport(BaseTransport):
    """The common frame of the HTTP API transports: key, base URL, pooled session.

    Subclasses set ``scheme`` and implement :meth:`build_request` and
    :meth:`_parse` with their provider module's pure functions; sending is
    the same for every provider.
    """

    channels: frozenset[str] = frozenset({"sms"})
    #: What the key is called in this provider's docs, for error messages.
    key_label: ClassVar[str] = "key"

    def __init__(
        self,
        key: str,
        *,
        base_url: str,
        http_client: httpx.Client | None,
        timeout: float,
        name: str,
        connect_timeout: float | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        rate: str | float | RateLimit | None = None,
    ) -> None:
        self._key = _check_key(key, self.key_label)
        self.base_url = _check_url(base_url)
        self.timeout = _check_timeout(timeout)
        if connect_timeout is not None:
            connect_timeout = _check_timeout(connect_timeout)
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or not 1 <= max_connections <= 1000
        ):
            raise ConfigurationError(
                f"max_connections must be an integer from 1 to 1000, not {max_connections!r}"
            )
        if rate is not None:
            self.rate_limit = parse_rate(rate)
        if not isinstance(name, str) or not name:
            raise ConfigurationError("name: expected a non-empty string")
        self.name = mask_secrets(name, (self._key,))
        if http_client is None:
            import_httpx()  # fail now, with the extra to install, not at the first send
        self._session = HTTPSession(
            timeout=self.timeout,
            http_client=http_client,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._key,)

    def build_request(self, message: SMS) -> HTTPRequest:
        """The request :meth:`send` would make for ``message`` (no I/O)."""
        raise NotImplementedError

    def _parse(self, response: HTTPResponse) -> str | None:
        """The provider's request id from its answer, or raise the mapped error."""
        raise NotImplementedError

    def _send(self, message: Message) -> Receipt:
        sms = self._sms(message)
        return self._receipt(sms, self._exchange(self.build_request(sms)))

    async def _asend(self, message: Message) -> Receipt:
        sms = self._sms(message)
        request = self.build_request(sms)
        return self._receipt(sms, await self._session.arequest("POST", request))

    def _sms(self, message: Message) -> SMS:
        if not isinstance(message, SMS):  # BaseTransport.send checked the channel
            raise ConfigurationError(f"{self.name} sends SMS only")
        return message

    def _receipt(self, message: SMS, response: HTTPResponse) -> Receipt:
        """The receipt for ``message`` from the provider's answer, or its mapped error."""
        try:
            request_id = self._parse(response)
        except RejectedError as exc:
            exc.rejected = exc.rejected or {message.to: exc.message}
            raise
        return Receipt(
            message_id=message.id,
            transport=self.name,
            provider_message_id=request_id,
            accepted=(message.to,),
        )

    def _exchange(self, request: HTTPRequest, method: str = "POST") -> HTTPResponse:
        """Send one request through the pooled session."""
        return self._session.request(method, request)

    def _checked(self, check: Callable[[], _R]) -> _R:
        """Run a ``check()`` body: name the transport in its errors and mask the key."""
        try:
            return check()
        except DeliveryError as exc:
            self._mask_error(exc)
            if exc.transport is None:
                exc.transport = self.name
            raise

    def close(self) -> None:
        """Close the pooled HTTP client (idempotent); the next send opens a new one."""
        self._session.close()

    async def aclose(self) -> None:
        """Close the pooled HTTP clients, async and sync (idempotent)."""
        await self._session.aclose()
