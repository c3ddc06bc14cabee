"""The async side of :class:`~notifykit.SMTPTransport`, on aiosmtplib.

``await smtp.asend(email)`` gives exactly what ``smtp.send(email)`` gives: the
same envelope and bytes (:func:`notifykit.transports.smtp._prepare`, which
uses ``Email.to_bytes()``), the same SMTPUTF8/8BITMIME/SIZE options, the same
TLS (STARTTLS or implicit, certificates verified with the transport's
``ssl_context``), AUTH refused over plain text unless allowed (checked when
the transport is built), the same time-outs (``connect_timeout`` for the whole
set-up, a failover probe's cap included; ``timeout`` for each reply), one
transparent reconnect of a stale kept-alive connection, and the same errors:
aiosmtplib's exceptions are translated to their :mod:`smtplib` counterparts
and handed to the sync transport's one mapping function, ``_map_error``.

Connections are pooled per event loop: at most ``max_connections`` open at
once (an :class:`asyncio.Semaphore`); idle ones are kept for the next send.
aiosmtplib is imported on first use: without it, ``asend`` raises
:class:`~notifykit.errors.MissingDependency` naming the ``async`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from notifykit.errors import DeliveryError, MissingDependency
from notifykit.message import Email
from notifykit.receipt import Receipt
from notifykit.transports._timeouts import connect_timeout

if TYPE_CHECKING:
    import aiosmtplib

    from notifykit.transports.smtp import SMTPTransport, _Prepared

__all__ = ["AsyncSMTP"]

logger = logging.getLogger("notifykit.smtp")


def _aiosmtplib() -> Any:
    try:
        import aiosmtplib
    except ImportError:
        raise MissingDependency("aiosmtplib", "async", "SMTPTransport.asend()") from None
    return aiosmtplib


def _as_smtplib(exc: BaseException, lib: Any) -> BaseException:
    """The smtplib (or socket/ssl) exception that means what aiosmtplib's ``exc`` means."""
    if isinstance(exc, lib.SMTPRecipientsRefused):
        return smtplib.SMTPRecipientsRefused(
            {r.recipient: (r.code, r.message.encode()) for r in exc.recipients}
        )
    if isinstance(exc, lib.SMTPTimeoutError):
        return TimeoutError(str(exc))
    if isinstance(exc, lib.SMTPResponseException):
        code, text = exc.code, exc.message.encode()
        if isinstance(exc, lib.SMTPConnectResponseError):
            return smtplib.SMTPConnectError(code, text)
        if isinstance(exc, lib.SMTPAuthenticationError):
            return smtplib.SMTPAuthenticationError(code, text)
        if isinstance(exc, lib.SMTPDataError):
            return smtplib.SMTPDataError(code, text)
        return smtplib.SMTPResponseException(code, text)
    if isinstance(exc, lib.SMTPNotSupported):
        return smtplib.SMTPNotSupportedError(str(exc))
    if isinstance(exc, (lib.SMTPConnectError, lib.SMTPServerDisconnected)):
        cause = exc.__cause__
        if isinstance(cause, OSError) and not isinstance(cause, lib.SMTPException):
            return cause  # refused, unresolvable, certificate not trusted...
        return smtplib.SMTPServerDisconnected(str(exc))
    if isinstance(exc, lib.SMTPException):
        return smtplib.SMTPException(str(exc))
    if isinstance(exc, asyncio.TimeoutError):
        return TimeoutError(str(exc) or "timed out")
    return exc


class _Session:
    """One pooled connection and where its current dialogue is (per task, not per thread)."""

    __slots__ = ("conn", "phase", "sent")

    def __init__(self, conn: aiosmtplib.SMTP | None, sent: int) -> None:
        from notifykit.transports.smtp import _Phase

        self.conn = conn
        self.sent = sent
        self.phase = _Phase.CONNECT


class AsyncSMTP:
    """The aiosmtplib connection pool of one :class:`SMTPTransport` on one event loop."""

    def __init__(self, transport: SMTPTransport) -> None:
        self.t = transport
        self.lib = _aiosmtplib()
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(transport.max_connections)
        self.idle: list[tuple[aiosmtplib.SMTP, int]] = []
        self.generation = 0

    async def send(self, message: Email, prepare: Callable[[Email, bool], _Prepared]) -> Receipt:
        from notifykit.transports.smtp import _is_stale, _map_error

        async with self.slots:
            prepared = prepare(message, self.t._offers_8bitmime)
            generation = self.generation
            conn, sent = self.idle.pop() if self.idle else (None, 0)
            session = _Session(conn, sent)
            try:
                retried = False
                while True:  # at most twice: one transparent reconnect of a stale connection
                    reused = session.conn is not None
                    try:
                        if session.conn is None:
                            await self._open(session)
                        assert session.conn is not None
                        if prepared.eight_bit_body and not session.conn.supports_extension(
                            "8bitmime"
                        ):
                            prepared = prepare(message, False)  # this server wants 7-bit bodies
                        accepted, rejected = await self._transaction(session, prepared)
                    except (self.lib.SMTPException, OSError, asyncio.TimeoutError) as raw:
                        exc = _as_smtplib(raw, self.lib)
                        phase = session.phase
                        await self._recover(session, exc, phase)
                        if reused and not retried and _is_stale(exc, phase):  # type: ignore[arg-type]
                            logger.debug(
                                "%s: the idle connection was dropped; reconnecting", self.t.name
                            )
                            retried = True
                            continue
                        err: DeliveryError = _map_error(exc, phase, self.t._timeout_in(phase))  # type: ignore[arg-type]
                        raise err from raw
                    except BaseException:
                        self._drop(session)  # cancelled mid-dialogue: state unknown
                        raise
                    break
                session.sent += 1
                limit = self.t.max_messages_per_connection
                if limit is not None and session.sent >= limit:
                    await self._quit(session)
            finally:
                if session.conn is not None:
                    if generation == self.generation:
                        self.idle.append((session.conn, session.sent))
                    else:  # aclose() ran meanwhile: this connection ends here
                        await self._quit(session)
        return Receipt(
            message_id=message.id,
            transport=self.t.name,
            provider_message_id=prepared.message_id,
            accepted=accepted,
            rejected=rejected,
        )

    async def _open(self, session: _Session) -> None:
        """Connect, greet, secure and authenticate, all within the connect time-out."""
        from notifykit.transports.smtp import _Phase

        t = self.t
        session.phase = _Phase.CONNECT
        if t.local_hostname is None:
            # A DNS query: once per transport, and never on the loop.
            t.local_hostname = await asyncio.to_thread(socket.getfqdn)
        limit = connect_timeout(t.connect_timeout)
        conn = self.lib.SMTP(
            hostname=t.host,
            port=None if t.ipv4_only else t.port,  # ipv4_only: a connected socket instead
            local_hostname=t.local_hostname,
            timeout=limit,
            use_tls=t.security == "ssl",
            start_tls=False,
            tls_context=t._tls_context() if t.security != "none" else None,
        )

        async def setup() -> None:
            sock = await self._ipv4_socket() if t.ipv4_only else None
            await conn.connect(sock=sock) if sock is not None else await conn.connect()
            session.phase = _Phase.HELLO
            await conn.ehlo()
            if t.security == "starttls":
                session.phase = _Phase.STARTTLS
                if not conn.supports_extension("starttls"):
                    raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported")
                await conn.starttls(tls_context=t._tls_context(), server_hostname=t.host)
                session.phase = _Phase.HELLO
                await conn.ehlo()
            if t.username is not None and t._password is not None:
                session.phase = _Phase.AUTH
                await conn.login(t.username, t._password)

        try:
            await asyncio.wait_for(setup(), limit)
        except BaseException:
            _hang_up(conn)
            raise
        t._offers_8bitmime = conn.supports_extension("8bitmime")
        conn.timeout = t.timeout  # the session is up: from now on, the reply time-out
        session.conn, session.sent = conn, 0
        logger.debug("%s: connected (async)", t.name)

    async def _ipv4_socket(self) -> socket.socket:
        infos = await self.loop.getaddrinfo(
            self.t.host, self.t.port, family=socket.AF_INET, type=socket.SOCK_STREAM
        )
        error: OSError = OSError(f"{self.t.host} has no IPv4 address")
        for family, kind, proto, _, address in infos[:8]:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await self.loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:  # cancelled (the connect time-out): not left to the GC
                sock.close()
                raise
            else:
                return sock
        raise error

    async def _transaction(
        self, session: _Session, p: _Prepared
    ) -> tuple[tuple[str, ...], dict[str, str]]:
        """MAIL, RCPT, DATA; failures raise smtplib's exceptions, as the sync dialogue does."""
        from notifykit.transports.smtp import _mail_options, _Phase, _reply_text

        conn = session.conn
        assert conn is not None
        timeout = self.t.timeout
        session.phase = _Phase.MAIL
        options = _mail_options(p, conn.supports_extension)
        encoding = "utf-8" if p.smtputf8 else "ascii"
        protocol = conn.protocol
        if protocol is None or not conn.is_connected:  # the server hung up while idle
            raise smtplib.SMTPServerDisconnected("connection lost")
        args = [f"FROM:<{p.sender}>".encode(encoding), *(o.encode() for o in options)]
        reply = await protocol.execute_command(b"MAIL", *args, timeout=timeout)
        if reply.code != 250:
            raise smtplib.SMTPSenderRefused(reply.code, reply.message.encode(), p.sender)

        session.phase = _Phase.RCPT
        accepted: list[str] = []
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in p.recipients:
            arg = f"TO:<{rcpt}>".encode(encoding)
            reply = await protocol.execute_command(b"RCPT", arg, timeout=timeout)
            if reply.code in (250, 251):
                accepted.append(rcpt)
            elif reply.code == 421:  # the server is closing the connection
                raise smtplib.SMTPResponseException(reply.code, reply.message.encode())
            else:
                refused[rcpt] = (reply.code, reply.message.encode())
        if not accepted or any(400 <= code < 500 for code, _ in refused.values()):
            raise smtplib.SMTPRecipientsRefused(refused)

        session.phase = _Phase.DATA
        reply = await protocol.execute_command(b"DATA", timeout=timeout)
        if reply.code != 354:
            raise smtplib.SMTPDataError(reply.code, reply.message.encode())
        session.phase = _Phase.BODY
        protocol._response_pending = True  # as aiosmtplib's own DATA does before writing
        protocol.write(p.payload)  # dot-stuffed, CRLF.CRLF-terminated by _prepare()
        session.phase = _Phase.REPLY
        reply = await protocol.read_response(timeout=timeout)
        if reply.code != 250:
            raise smtplib.SMTPDataError(reply.code, reply.message.encode())
        rejected = {rcpt: f"{code} {_reply_text(text)}" for rcpt, (code, text) in refused.items()}
        return tuple(accepted), rejected

    async def _recover(self, session: _Session, exc: BaseException, phase: Any) -> None:
        """After a failure: RSET if the connection is sound, else drop it (as the sync one)."""
        from notifykit.transports.smtp import _is_sound

        conn = session.conn
        if conn is None:
            return
        if _is_sound(exc, phase, conn.is_connected):
            try:
                reply = await conn.rset()
            except (self.lib.SMTPException, OSError):
                pass
            else:
                if reply.code == 250:
                    return
        self._drop(session)

    def _drop(self, session: _Session) -> None:
        conn, session.conn = session.conn, None
        if conn is not None:
            _hang_up(conn)

    async def _quit(self, session: _Session) -> None:
        conn, session.conn = session.conn, None
        if conn is not None:
            await self._say_quit(conn)

    async def _say_quit(self, conn: aiosmtplib.SMTP) -> None:
        transport = conn.transport
        try:
            if conn.is_connected:
                await asyncio.wait_for(conn.quit(), self.t.timeout)
        except (self.lib.SMTPException, OSError, asyncio.TimeoutError):
            pass  # the server may have gone already; we are leaving anyway
        finally:
            _hang_up(conn, transport)
            # The socket closes in the loop's next callback: let it run, so that
            # once aclose() returns, the loop may end without leaving it open.
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        """QUIT every idle connection; busy ones close when their send ends."""
        self.generation += 1
        idle, self.idle = self.idle, []
        for conn, _ in idle:
            await self._say_quit(conn)


def _hang_up(conn: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Close ``conn`` now: abort its transport instead of a graceful TLS shutdown.

    aiosmtplib's ``close()`` starts a TLS close (close_notify, then waiting for
    the server's) that needs more turns of the event loop; a loop that ends
    first (``asyncio.run`` returning, a loop thread stopped) left the socket to
    the garbage collector. After QUIT, or with the dialogue's state unknown,
    there is nothing left to say: the socket is closed at the loop's next
    callback, as the sync transport closes its socket at once.
    """
    transport = transport if transport is not None else conn.transport
    conn.close()
    if isinstance(transport, asyncio.Transport):  # a plain or a TLS stream
        transport.abort()
