"""Deliver e-mail to an SMTP server with the standard library's :mod:`smtplib`.

:class:`SMTPTransport` keeps its connections open and reuses them for every
message (TLS handshake, EHLO and AUTH are paid once per connection, not once per
message), reconnects transparently when the server has dropped an idle
connection, and is safe to share between threads: a pool of up to
``max_connections`` connections lets that many threads send at once.

Every failure leaves as one of notifykit's delivery errors; the translation of
smtplib, socket and ssl exceptions lives in one function, :func:`_map_error`:

========================================================  ==========================
what happened                                             error
========================================================  ==========================
4xx reply, connection refused, time-out, connection lost  ``TransientError``
connection lost after the final ``.`` of DATA             ``TransientError`` with
                                                          ``maybe_delivered=True``
530/534/535/538, no STARTTLS, certificate not trusted,    ``ProviderError``
5xx on MAIL FROM (sender refused), 5xx at connect/AUTH
5xx for every recipient, 5xx for the message (DATA)       ``RejectedError``
5xx for some recipients                                   a :class:`Receipt` whose
                                                          ``rejected`` names them
========================================================  ==========================

A 4xx reply to any recipient fails the whole message with a ``TransientError``
rather than sending it to the others: a later retry then reaches everyone once,
where a partial send would leave the temporarily refused recipients behind.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, NamedTuple
from urllib.parse import quote

from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidMessage,
    ProviderError,
    RejectedError,
    TransientError,
)
from notifykit.message import Email
from notifykit.ratelimit import RateLimit, parse_rate
from notifykit.receipt import Receipt
from notifykit.transports._timeouts import DEFAULT_CONNECT_TIMEOUT, connect_timeout
from notifykit.transports.base import BaseTransport

if TYPE_CHECKING:
    from notifykit.message import Message
    from notifykit.transports._asmtp import AsyncSMTP

__all__ = ["SMTPTransport"]

logger = logging.getLogger("notifykit.smtp")

Security = Literal["starttls", "ssl", "none"]
_SECURITIES = ("starttls", "ssl", "none")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Replies that say "authenticate (properly) first": this account cannot send.
_AUTH_CODES = frozenset({530, 534, 535, 538})
# RFC 5321 4.5.2: a line starting with "." gets one more.
_LEADING_DOT = re.compile(rb"(?m)^\.")
#: Connections per transport by default: as many threads as a typical web worker
#: runs send at once; connections open only when that many sends overlap.
DEFAULT_MAX_CONNECTIONS = 4


class _Phase(enum.IntEnum):
    """Where in the SMTP dialogue a failure happened; decides what it means."""

    CONNECT = 0  # TCP connect, implicit TLS handshake, greeting
    HELLO = 1
    STARTTLS = 2
    AUTH = 3
    MAIL = 4
    RCPT = 5
    DATA = 6  # the DATA command, waiting for 354
    BODY = 7  # writing the message and its terminator
    REPLY = 8  # terminator written, waiting for the verdict: maybe delivered
    QUIT = 9

    @property
    def doing(self) -> str:
        return _DOING[self]


_DOING = {
    _Phase.CONNECT: "connecting",
    _Phase.HELLO: "waiting for the reply to EHLO",
    _Phase.STARTTLS: "starting TLS",
    _Phase.AUTH: "authenticating",
    _Phase.MAIL: "waiting for the reply to MAIL FROM",
    _Phase.RCPT: "waiting for the reply to RCPT TO",
    _Phase.DATA: "waiting for the reply to DATA",
    _Phase.BODY: "sending the message",
    _Phase.REPLY: "waiting for the server to confirm the message",
    _Phase.QUIT: "closing the connection",
}


class _Prepared(NamedTuple):
    """A message serialised for the wire, built outside the connection lock."""

    sender: str
    recipients: tuple[str, ...]
    payload: bytes  # dot-stuffed, ends with CRLF.CRLF
    size: int
    smtputf8: bool
    eightbit: bool
    message_id: str
    eight_bit_body: bool  # text parts as raw UTF-8: only for a server offering 8BITMIME


class _Connection(smtplib.SMTP):
    """smtplib.SMTP with an IPv4-only resolver and implicit TLS on demand."""

    def __init__(
        self,
        host: str,
        *,
        timeout: float,
        local_hostname: str | None,
        ipv4_only: bool,
        implicit_tls: ssl.SSLContext | None,
    ) -> None:
        self._ipv4_only = ipv4_only
        self._implicit_tls = implicit_tls
        super().__init__(local_hostname=local_hostname, timeout=timeout)
        # smtplib names the server for STARTTLS's certificate check only when the
        # host goes to __init__ (which would also connect there); set it here.
        self._host = host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        try:
            if self._ipv4_only:
                sock = _connect_ipv4(host, port, timeout)
            else:
                sock = socket.create_connection((host, port), timeout)
        except UnicodeError as exc:  # a DNS label over 63 characters, a bad IDN
            raise socket.gaierror(socket.EAI_NONAME, f"invalid host name ({exc})") from None
        if self._implicit_tls is None:
            return sock
        try:
            return self._implicit_tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


def _connect_ipv4(host: str, port: int, timeout: float) -> socket.socket:
    """Connect to the first reachable IPv4 address of ``host`` (at most eight tried)."""
    infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    error: OSError = OSError(f"{host} has no IPv4 address")
    for family, kind, proto, _, address in infos[:8]:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
        else:
            return sock
    raise error


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _is_timeout(exc: BaseException) -> bool:
    """True for a time-out, also when smtplib wrapped it in SMTPServerDisconnected."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 4:  # smtplib chains at most one level
        if isinstance(current, (TimeoutError, socket.timeout)):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _classify_reply(
    code: int, phase: _Phase
) -> type[TransientError] | type[ProviderError] | type[RejectedError]:
    """The delivery error kind of an SMTP reply ``code`` received in ``phase``."""
    if 400 <= code < 500:
        return TransientError
    if code in _AUTH_CODES or not 500 <= code < 600:
        return ProviderError
    if phase == _Phase.MAIL:
        # The sender is refused (550 5.7.1 relay denied, 553 not allowed): the same
        # for every message of this account. Only "too large" is about the message.
        return RejectedError if code == 552 else ProviderError
    if phase >= _Phase.RCPT and phase != _Phase.QUIT:
        return RejectedError
    return ProviderError  # 5xx at greeting, EHLO, STARTTLS or AUTH


def _map_error(exc: OSError, phase: _Phase, timeout: float) -> DeliveryError:
    """Translate one smtplib / socket / ssl exception raised in ``phase``.

    This is the only place where those exceptions become notifykit errors.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = {
            rcpt: f"{code} {_reply_text(reply)}" for rcpt, (code, reply) in exc.recipients.items()
        }
        listing = "; ".join(f"{rcpt}: {reason}" for rcpt, reason in refused.items())
        codes = [code for code, _ in exc.recipients.values()]
        temporary = [code for code in codes if 400 <= code < 500]
        if temporary:
            return TransientError(
                f"recipients temporarily refused, message not sent ({listing})",
                provider_code=temporary[0],
            )
        return RejectedError(
            f"every recipient was refused ({listing})",
            provider_code=codes[0] if codes else None,
            rejected=refused,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if phase == _Phase.STARTTLS:
            return ProviderError(
                "the server does not offer STARTTLS, so the connection cannot be encrypted; "
                "use security='ssl' for implicit TLS; for a local test server (MailHog, "
                "Mailpit, aiosmtpd) use security='none' (in a URL: ?security=none)"
            )
        return ProviderError(f"the server does not support what is needed: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        reason = f"{code} {_reply_text(exc.smtp_error)}"
        kind = _classify_reply(code, phase)
        if phase == _Phase.AUTH and kind is ProviderError:
            text = f"authentication failed ({reason})"
        elif phase == _Phase.MAIL and kind is ProviderError:
            text = f"the server refused the sender ({reason})"
        elif phase in (_Phase.DATA, _Phase.REPLY) and kind is RejectedError:
            text = f"the server refused the message ({reason})"
        else:
            text = f"the server replied {reason} while {phase.doing}"
        if kind is RejectedError:
            return RejectedError(text, provider_code=code)
        return kind(text, provider_code=code)
    maybe = phase == _Phase.REPLY
    after = (
        "; the message was handed over and may have been delivered"
        if maybe
        else "; the message was not sent"
    )
    if _is_timeout(exc):
        return TransientError(
            f"timed out after {timeout:g} s while {phase.doing}{after}", maybe_delivered=maybe
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ProviderError(
            f"TLS certificate verification failed ({exc.verify_message}); "
            "pass ssl_context= to trust a private certificate authority"
        )
    if isinstance(
        exc,
        (ssl.SSLEOFError, ssl.SSLZeroReturnError, smtplib.SMTPServerDisconnected, ConnectionError),
    ):
        if isinstance(exc, ConnectionRefusedError):
            return TransientError(f"connection refused{after}")
        return TransientError(f"connection lost while {phase.doing}{after}", maybe_delivered=maybe)
    if isinstance(exc, ssl.SSLError):
        if maybe:
            return TransientError(f"TLS error while {phase.doing}{after}", maybe_delivered=True)
        return ProviderError(f"TLS failed while {phase.doing}: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return TransientError(f"cannot resolve the host name now: {exc.strerror}")
        return ProviderError(f"cannot resolve the host name: {exc.strerror or exc}")
    if isinstance(exc, smtplib.SMTPException):
        return ProviderError(f"SMTP error while {phase.doing}: {exc}")
    return TransientError(
        f"{exc.strerror or type(exc).__name__} while {phase.doing}{after}",
        maybe_delivered=maybe,
    )


def _is_stale(exc: OSError, phase: _Phase) -> bool:
    """True when a reused connection turned out to be dead before the message left.

    Servers drop idle connections (or answer 421 and close); the first command
    of the next transaction then fails. Nothing was handed over yet, so a new
    connection may try again at once. A time-out is not staleness: a server
    that stopped answering would only make the caller wait twice.
    """
    if phase not in (_Phase.MAIL, _Phase.RCPT, _Phase.DATA) or _is_timeout(exc):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, ssl.SSLEOFError))


def _is_sound(exc: BaseException, phase: _Phase, connected: bool) -> bool:
    """True when the connection survived ``exc`` and RSET may make it usable again."""
    return (
        isinstance(exc, smtplib.SMTPResponseException)
        and exc.smtp_code != 421
        and phase in (_Phase.MAIL, _Phase.RCPT, _Phase.DATA, _Phase.REPLY)
        and connected
    ) or isinstance(exc, smtplib.SMTPNotSupportedError)


def _check_credential(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string")
    if not value.isascii() or "\r" in value or "\n" in value or "\0" in value:
        # smtplib encodes credentials as ASCII; say so now rather than mid-send.
        raise ConfigurationError(f"{what} must be printable ASCII (smtplib's AUTH limit)")
    return value


class SMTPTransport(BaseTransport):
    """Send e-mail through an SMTP server, reusing one connection.

    Args:
        host: the server's name or IP address (``"smtp.example.com"``).
        port: the server's port; by default 587 for ``starttls``, 465 for
            ``ssl`` and 25 for ``none``.
        username, password: credentials for SMTP AUTH; both or neither.
        security: ``"starttls"`` (upgrade a plain connection, port 587),
            ``"ssl"`` (implicit TLS, port 465, RFC 8314) or ``"none"`` (plain
            text: local development servers and trusted relays only).
        timeout: seconds to wait for each reply once connected (10 by default).
        connect_timeout: seconds to set up a connection: TCP connect, TLS, the
            greeting, EHLO, STARTTLS and AUTH together. By default 5, or
            ``timeout`` when that is shorter. A failover's probe may cap it further.
        ssl_context: the TLS settings; by default ``ssl.create_default_context()``,
            which verifies the server's certificate. Pass a context that trusts
            your private CA rather than switching verification off.
        local_hostname: the name sent in EHLO; by default this machine's FQDN.
        ipv4_only: resolve and connect over IPv4 only (for hosts whose IPv6
            route is broken).
        max_messages_per_connection: close and reopen the connection after
            this many messages (some providers limit messages per session).
        allow_insecure_auth: permit AUTH with ``security="none"``, i.e. the
            password in clear text on the wire. Off by default: such a
            configuration is a :class:`~notifykit.errors.ConfigurationError`.
        max_connections: the most connections open at once (4 by default). Each
            thread sending takes one from the pool; when all are busy it waits
            for one. ``1`` serialises every send on one connection.
        rate: the most messages per second, minute or hour (``"14/s"``), shared
            by every thread; see :mod:`notifykit.ratelimit`.

    Connections are opened on demand (one for a single-threaded program), kept
    open, and reused. ``close()`` sends QUIT on every idle connection (a busy
    one is closed when its send ends); sending afterwards opens new ones.

    Example::

        with SMTPTransport("127.0.0.1", 1025, security="none") as smtp:
            smtp.send(email)
    """

    channels: frozenset[str] = frozenset({"email"})

    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        security: Security = "starttls",
        timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        ipv4_only: bool = False,
        max_messages_per_connection: int | None = None,
        allow_insecure_auth: bool = False,
        *,
        connect_timeout: float | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        rate: str | float | RateLimit | None = None,
    ) -> None:
        if security not in _SECURITIES:
            raise ConfigurationError(
                f"security must be one of {', '.join(map(repr, _SECURITIES))}, not {security!r}"
            )
        if not isinstance(host, str) or not host.strip():
            raise ConfigurationError("host must be a non-empty string")
        host = host.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if any(c.isspace() or c in "/@[]" for c in host):
            raise ConfigurationError(f"host {host!r} is not a host name or IP address")
        if host.count(":") == 1:
            raise ConfigurationError(f"host {host!r} includes a port; pass it as port= instead")
        if port is None:
            port = _DEFAULT_PORTS[security]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port must be an integer from 1 to 65535, not {port!r}")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < float("inf")
        ):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, not {timeout!r}"
            )
        if connect_timeout is not None and (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or not 0 < connect_timeout < float("inf")
        ):
            raise ConfigurationError(
                f"connect_timeout must be a positive number of seconds, not {connect_timeout!r}"
            )
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or not 1 <= max_connections <= 1000
        ):
            raise ConfigurationError(
                f"max_connections must be an integer from 1 to 1000, not {max_connections!r}"
            )
        if password is not None and username is None:
            raise ConfigurationError("a password was given without a username")
        if username is not None:
            _check_credential("username", username)
            if not username:
                raise ConfigurationError("username must not be empty")
            if password is None:
                raise ConfigurationError("a username was given without a password")
            _check_credential("password", password)
            if security == "none" and not allow_insecure_auth:
                raise ConfigurationError(
                    "refusing to send the SMTP password over an unencrypted connection "
                    "(security='none'); use security='starttls' or 'ssl', or pass "
                    "allow_insecure_auth=True for a trusted local relay"
                )
        if ssl_context is not None:
            if not isinstance(ssl_context, ssl.SSLContext):
                raise ConfigurationError("ssl_context must be an ssl.SSLContext")
            if security == "none":
                raise ConfigurationError("ssl_context was given but security='none' never uses TLS")
        if local_hostname is not None and (
            not isinstance(local_hostname, str)
            or not local_hostname
            or any(c.isspace() for c in local_hostname)
        ):
            raise ConfigurationError(f"local_hostname {local_hostname!r} is not a host name")
        if max_messages_per_connection is not None and (
            isinstance(max_messages_per_connection, bool)
            or not isinstance(max_messages_per_connection, int)
            or max_messages_per_connection < 1
        ):
            raise ConfigurationError(
                "max_messages_per_connection must be a positive integer or None, "
                f"not {max_messages_per_connection!r}"
            )

        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.security: Security = security
        self.timeout = float(timeout)
        self.connect_timeout = float(
            connect_timeout
            if connect_timeout is not None
            else min(DEFAULT_CONNECT_TIMEOUT, self.timeout)
        )
        self.max_connections = max_connections
        if rate is not None:
            self.rate_limit = parse_rate(rate)
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname
        self.ipv4_only = bool(ipv4_only)
        self.max_messages_per_connection = max_messages_per_connection
        self.allow_insecure_auth = bool(allow_insecure_auth)

        bracketed = f"[{host}]" if ":" in host else host
        self._hostport = f"{bracketed}:{port}"
        self.name = f"smtp:{self._hostport}"
        self._tls: ssl.SSLContext | None = None
        # Whether the last EHLO offered 8BITMIME: bodies are then built as raw
        # UTF-8 (8bit), about half the work of quoted-printable.
        self._offers_8bitmime = False
        # The pool: idle connections (with the messages each has carried), a
        # semaphore of free slots, and a generation bumped by close().
        self._local = threading.local()
        self._pool_lock = threading.Lock()
        # The pool's slots: a counter under _pool_lock (one C lock per send, where a
        # threading.Semaphore costs a Condition in Python), and a Condition to wait on.
        self._free_slots = max_connections
        self._waiting = 0
        self._slot_freed = threading.Condition(self._pool_lock)
        self._idle: list[tuple[_Connection, int]] = []
        self._generation = 0

    # -- the pool: each thread works on the connection it checked out

    @property
    def _conn(self) -> _Connection | None:
        """The connection this thread holds (``None``: open one)."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        return conn

    @_conn.setter
    def _conn(self, conn: _Connection | None) -> None:
        self._local.conn = conn

    @property
    def _sent_on_connection(self) -> int:
        sent: int = getattr(self._local, "sent", 0)
        return sent

    @_sent_on_connection.setter
    def _sent_on_connection(self, sent: int) -> None:
        self._local.sent = sent

    @property
    def _phase(self) -> _Phase:
        """Where this thread's current SMTP dialogue is."""
        phase: _Phase = getattr(self._local, "phase", _Phase.CONNECT)
        return phase

    @_phase.setter
    def _phase(self, phase: _Phase) -> None:
        self._local.phase = phase

    def _take(self) -> int:
        """Take a pool slot and an idle connection (if any) for this thread; the generation.

        Bounded: every holder's send is bounded by its time-outs. Pair with :meth:`_give_back`.
        """
        with self._pool_lock:
            if not self._free_slots:
                self._waiting += 1
                try:
                    while not self._free_slots:
                        self._slot_freed.wait()
                finally:
                    self._waiting -= 1
            self._free_slots -= 1
            generation = self._generation
            conn, sent = self._idle.pop() if self._idle else (None, 0)
        local = self._local
        local.conn, local.sent, local.phase = conn, sent, _Phase.CONNECT
        return generation

    def _give_back(self, generation: int) -> None:
        """Return this thread's connection to the pool (or QUIT it after close()) and the slot."""
        released = False
        try:
            local = self._local
            conn, local.conn = getattr(local, "conn", None), None
            with self._pool_lock:
                if conn is None or generation == self._generation:
                    if conn is not None:
                        self._idle.append((conn, getattr(local, "sent", 0)))
                    self._free_slot()
                    released = True
            if conn is not None and not released:
                # close() ran meanwhile: this connection ends here (holding its slot,
                # so that no more than max_connections are ever open).
                _say_quit(conn)
        finally:
            if not released:
                with self._pool_lock:
                    self._free_slot()

    def _free_slot(self) -> None:
        """Give a slot back; called with ``_pool_lock`` held."""
        self._free_slots += 1
        if self._waiting:
            self._slot_freed.notify()

    @contextmanager
    def _checkout(self) -> Iterator[None]:
        """Hold one pooled connection (or the right to open one) for this thread."""
        generation = self._take()
        try:
            yield
        finally:
            self._give_back(generation)

    def _timeout_in(self, phase: _Phase) -> float:
        """The time-out that applied in ``phase`` (for error messages)."""
        return connect_timeout(self.connect_timeout) if phase <= _Phase.AUTH else self.timeout

    # -- identity

    @property
    def scheme(self) -> str:  # type: ignore[override]
        """``"smtps"`` for implicit TLS, ``"smtp"`` otherwise (as in DSNs)."""
        return "smtps" if self.security == "ssl" else "smtp"

    def _url(self, with_user: bool) -> str:
        user = ""
        if with_user and self.username is not None:
            user = quote(self.username, safe="") + (":***" if self._password else "") + "@"
        query = "?security=none" if self.security == "none" else ""
        return f"{self.scheme}://{user}{self._hostport}{query}"

    def __str__(self) -> str:
        return self._url(with_user=False)

    def __repr__(self) -> str:
        return f"<SMTPTransport {self._url(with_user=True)}>"

    def _secrets(self) -> tuple[str | None, ...]:
        if self._password is None:
            return ()
        # AUTH PLAIN sends base64("\0user\0password"): mask that whole string too.
        return (self._password, f"\0{self.username}\0{self._password}")

    # -- sending

    def _send(self, message: Message) -> Receipt:
        if not isinstance(message, Email):  # pragma: no cover - BaseTransport checks channels
            raise ConfigurationError(f"{self.name} sends e-mail only")
        prepared = _prepare(message, self._offers_8bitmime)  # CPU work, outside the pool
        # _checkout() inlined: a generator-based context manager per message costs
        # more than the rest of the pool's bookkeeping.
        generation = self._take()
        try:
            return self._transmit(message, prepared)
        finally:
            self._give_back(generation)

    async def _asend(self, message: Message) -> Receipt:
        """Send on this event loop's aiosmtplib pool (see :mod:`notifykit.transports._asmtp`)."""
        if not isinstance(message, Email):  # pragma: no cover - BaseTransport checks channels
            raise ConfigurationError(f"{self.name} sends e-mail only")
        # _prepare (CPU work) runs once a pool slot is held: a thousand sends
        # gathered at once then serialise a few at a time, between which the
        # loop runs other tasks, instead of all in one long loop iteration.
        return await self._async_pool().send(message, _prepare)

    def _async_pool(self) -> AsyncSMTP:
        """The async pool of the running event loop (each loop has its own connections)."""
        loop = asyncio.get_running_loop()
        pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSMTP]
        pools = self.__dict__.setdefault("_apools", weakref.WeakKeyDictionary())
        pool = pools.get(loop)
        if pool is None:
            from notifykit.transports._asmtp import AsyncSMTP

            pool = pools[loop] = AsyncSMTP(self)
        return pool

    async def aclose(self) -> None:
        """Say QUIT on every idle connection of this loop's pool and of the sync pool.

        Idempotent; a later send opens new connections.
        """
        pools = self.__dict__.get("_apools")
        pool = pools.get(asyncio.get_running_loop()) if pools is not None else None
        if pool is not None:
            await pool.aclose()
        if self._idle:  # connections of the sync path too (QUIT waits on the network)
            await asyncio.to_thread(self._close_idle)
        else:
            self._generation += 1

    def check(self) -> None:
        """Connect (and authenticate) without sending anything.

        Raises the same errors a send would; used by ``notifykit check``. An
        open connection is probed with NOOP (and reopened if dead); the
        connection stays open for the next send.
        """
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        with self._checkout():
            if self._conn is not None:
                try:
                    code, _ = self._conn.noop()
                except OSError:
                    code = 0
                if code == 250:
                    return
                self._drop()
            try:
                self._open()
            except OSError as exc:
                err = _map_error(exc, self._phase, self._timeout_in(self._phase))
                # Masks secrets in err and in exc (a 535 reply may echo the credentials).
                self._finish_error(err, started, time.perf_counter() - t0, cause=exc)
                raise err from exc

    def _transmit(self, message: Email, prepared: _Prepared) -> Receipt:
        local = self._local  # this thread's connection, read directly (once per send)
        retried = False
        while True:  # runs at most twice: one transparent reconnect
            conn = getattr(local, "conn", None)
            reused = conn is not None
            try:
                if conn is None:
                    conn = self._open()
                if prepared.eight_bit_body and not conn.has_extn("8bitmime"):
                    prepared = _prepare(message, False)  # this server wants 7-bit bodies
                accepted, rejected = self._transaction(conn, prepared)
            except OSError as exc:
                phase = self._phase
                self._recover(exc, phase)
                if reused and not retried and _is_stale(exc, phase):
                    logger.debug("%s: the idle connection was dropped; reconnecting", self.name)
                    retried = True
                    continue
                raise _map_error(exc, phase, self._timeout_in(phase)) from exc
            except BaseException:
                # Interrupted mid-transaction (KeyboardInterrupt...): the
                # connection's state is unknown, so it must not carry the next message.
                self._drop()
                raise
            break
        sent = local.sent = getattr(local, "sent", 0) + 1
        limit = self.max_messages_per_connection
        if limit is not None and sent >= limit:
            self._quit()
        return Receipt(
            message_id=message.id,
            transport=self.name,
            provider_message_id=prepared.message_id,
            accepted=accepted,
            rejected=rejected,
        )

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            # Loading the system CA store costs milliseconds: once per transport.
            self._tls = self.ssl_context or ssl.create_default_context()
        return self._tls

    def _open(self) -> _Connection:
        """Connect, greet, secure and authenticate; called with a pool slot held."""
        self._phase = _Phase.CONNECT
        implicit = self._tls_context() if self.security == "ssl" else None
        conn = _Connection(
            self.host,
            timeout=connect_timeout(self.connect_timeout),  # the whole set-up; reads below
            local_hostname=self.local_hostname,
            ipv4_only=self.ipv4_only,
            implicit_tls=implicit,
        )
        try:
            code, reply = conn.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            self._phase = _Phase.HELLO
            conn.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                self._phase = _Phase.STARTTLS
                conn.starttls(context=self._tls_context())
                self._phase = _Phase.HELLO
                conn.ehlo_or_helo_if_needed()
            if self.username is not None and self._password is not None:
                self._phase = _Phase.AUTH
                conn.login(self.username, self._password)
        except BaseException:
            conn.close()
            raise
        if self.local_hostname is None:
            # smtplib looked up the FQDN (a DNS query); do it once per transport.
            self.local_hostname = conn.local_hostname
        self._offers_8bitmime = conn.has_extn("8bitmime")
        conn.timeout = self.timeout  # the session is up: from now on, the reply time-out
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        self._conn = conn
        self._sent_on_connection = 0
        logger.debug("%s: connected", self.name)
        return conn

    def _transaction(
        self, conn: _Connection, p: _Prepared
    ) -> tuple[tuple[str, ...], dict[str, str]]:
        """MAIL, RCPT, DATA on an open connection; smtplib errors propagate."""
        local = self._local  # this thread's phase, set directly: once per command
        local.phase = _Phase.MAIL
        options = _mail_options(p, conn.has_extn)
        # MAIL and RCPT are written directly: the addresses were validated when
        # the Email was built, and smtplib's mail()/rcpt() would parse each one
        # again (about a quarter of the client's CPU per message).
        conn.command_encoding = "utf-8" if p.smtputf8 else "ascii"
        extra = " " + " ".join(options) if options and conn.does_esmtp else ""
        conn.putcmd("mail", f"FROM:<{p.sender}>{extra}")
        code, reply = conn.getreply()
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, p.sender)

        local.phase = _Phase.RCPT
        accepted: list[str] = []
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in p.recipients:
            conn.putcmd("rcpt", f"TO:<{rcpt}>")
            code, reply = conn.getreply()
            if code in (250, 251):
                accepted.append(rcpt)
            elif code == 421:  # the server is closing the connection
                raise smtplib.SMTPResponseException(code, reply)
            else:
                refused[rcpt] = (code, reply)
        if not accepted or any(400 <= code < 500 for code, _ in refused.values()):
            raise smtplib.SMTPRecipientsRefused(refused)

        local.phase = _Phase.DATA
        conn.putcmd("data")
        code, reply = conn.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        local.phase = _Phase.BODY
        conn.send(p.payload)
        local.phase = _Phase.REPLY
        code, reply = conn.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        rejected = {rcpt: f"{code} {_reply_text(reply)}" for rcpt, (code, reply) in refused.items()}
        return tuple(accepted), rejected

    def _recover(self, exc: OSError, phase: _Phase) -> None:
        """After a failure: reset the transaction if the connection is sound, else drop it."""
        conn = self._conn
        if conn is None:
            return
        if _is_sound(exc, phase, conn.sock is not None):
            try:
                code, _ = conn.rset()
            except OSError:
                code = 0
            if code == 250:
                return
        self._drop()

    def _drop(self) -> None:
        """Forget the connection without QUIT (it is broken or the server hung up)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _quit(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.sock is not None:
                conn.quit()
        except OSError:
            pass  # the server may have gone already; we are leaving anyway
        finally:
            conn.close()

    def close(self) -> None:
        """Say QUIT on every idle connection and close it; busy ones close when done.

        Idempotent; a later send opens new connections.
        """
        self._close_idle()

    def _close_idle(self) -> None:
        with self._pool_lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            _say_quit(conn)


def _say_quit(conn: _Connection) -> None:
    """QUIT and close ``conn``, ignoring a server that is already gone."""
    try:
        if conn.sock is not None:
            conn.quit()
    except OSError:
        pass
    finally:
        conn.close()


def _mail_options(p: _Prepared, has_extn: Callable[[str], bool]) -> list[str]:
    """The MAIL FROM parameters for ``p`` on a server with these extensions (both clients)."""
    options: list[str] = []
    if p.smtputf8:
        if not has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError(
                "the SMTPUTF8 extension (RFC 6531), which this message needs because an "
                "address has a non-ASCII local part (international domains alone never "
                "need it); send through a server that offers SMTPUTF8, or use an ASCII address"
            )
        options.append("SMTPUTF8")
    if p.eightbit and has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if has_extn("size"):
        options.append(f"SIZE={p.size}")
    return options


def _prepare(message: Email, eight_bit: bool = False) -> _Prepared:
    """Serialise ``message`` for DATA: CRLF line ends, dot-stuffing, terminator.

    ``eight_bit``: UTF-8 text parts as 8bit (the server offers 8BITMIME).
    """
    sender = message.sender_address  # envelope_sender, else the From address (IDNA domain)
    recipients = message.recipients  # envelope_recipients, else to + cc + bcc
    # SMTPUTF8 (and raw UTF-8 headers) only for a non-ASCII local part; an
    # international domain travels in punycode and needs nothing from the server.
    smtputf8 = message.needs_smtputf8
    try:
        # InvalidMessage when there is no sender
        data = message.to_bytes(utf8=smtputf8, eight_bit=eight_bit)
    except (ValueError, TypeError, UnicodeError) as exc:
        if isinstance(exc, InvalidMessage):
            raise
        # The email package refused a value notifykit's validation let through.
        raise InvalidMessage(f"the e-mail cannot be serialised: {exc}") from exc
    assert sender is not None  # to_bytes() refused a message without one
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    eightbit = not data.isascii()
    return _Prepared(
        sender=sender,
        recipients=recipients,
        payload=data + b".\r\n",
        size=len(data),
        smtputf8=smtputf8,
        eightbit=eightbit,
        message_id=message.message_id_header,
        eight_bit_body=eight_bit and eightbit,
    )
