"""Real SMTP servers for tests: aiosmtpd on 127.0.0.1, in a background thread.

Nothing here mocks smtplib: the code under test opens real sockets to a real
SMTP server. The pieces:

- :class:`SMTPServer` -- an aiosmtpd server on a random free port: plain,
  STARTTLS or implicit TLS, optional AUTH, and scripted faults per command::

      with SMTPServer() as server:                       # plain, no AUTH
          ...send to ("127.0.0.1", server.port)...
          assert 1 == len(server.messages)

      server.fail("RCPT", "550 5.1.1 No such user", match="bob@example.com")
      server.drop("DATA")      # close the connection after the final "." instead of replying
      server.hang("MAIL")      # never answer MAIL (the client's time-out fires)
      server.restart()         # drop every connection and listen again on the same port
      server.drop_connections()  # hang up on idle clients, keep listening

  It counts connections (:attr:`SMTPServer.connections`) and records every
  message it received (:attr:`SMTPServer.messages`).
- :class:`Certificates` -- a throwaway CA (trustme) and a certificate for
  127.0.0.1 / localhost; ``client_context()`` trusts the CA.
- :class:`SilentServer` and :func:`closed_port` (from :mod:`tests.servers`, re-exported):
  a port that accepts TCP and never says a word, and one where nothing listens.

Every server is stopped by whoever started it (use them as context managers or
through the fixtures in ``tests/conftest.py``). The credentials used with them
are obviously fake.
"""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal, cast

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

from tests.servers import HOST, SilentServer, closed_port

__all__ = [
    "FAKE_PASSWORD",
    "FAKE_USER",
    "Certificates",
    "Fault",
    "Received",
    "SMTPServer",
    "SilentServer",
    "closed_port",
]

#: Credentials for servers with AUTH; fake by construction.
FAKE_USER = "test-user"
FAKE_PASSWORD = "not-a-real-password-0000"

Security = Literal["none", "starttls", "ssl"]
Action = Literal["reply", "drop", "hang"]
_COMMANDS = frozenset({"EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "QUIT"})


class Certificates:
    """A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost."""

    def __init__(self) -> None:
        import trustme

        self.ca = trustme.CA()
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        """The server side's TLS context, presenting the certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this CA (and nothing else)."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@dataclass(frozen=True)
class Received:
    """One message as the server received it.

    ``data`` is the message exactly as transmitted (dot-stuffing undone);
    ``connection`` is the 1-based number of the connection it arrived on;
    ``tls`` says whether that connection was encrypted; ``helo`` is the name
    the client gave in EHLO/HELO; ``login`` the AUTH user, if any.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    connection: int
    tls: bool
    helo: str | None
    login: str | None

    @property
    def message(self) -> EmailMessage:
        """The data parsed into an :class:`EmailMessage` (modern policy)."""
        parsed = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Fault:
    """A scripted misbehaviour: what to do instead of the normal reply to ``command``.

    ``match`` restricts it to one address (MAIL, RCPT) or EHLO/HELO name, compared
    case-insensitively; ``times`` is how often it fires (``None``: always).
    ``hits`` counts how often it fired.
    """

    command: str
    action: Action = "reply"
    reply: str | None = None
    match: str | None = None
    times: int | None = 1
    hits: int = 0

    def applies(self, command: str, subject: str | None) -> bool:
        if command != self.command or (self.times is not None and self.hits >= self.times):
            return False
        return self.match is None or (subject or "").lower() == self.match.lower()


class _Protocol(SMTP):
    """aiosmtpd's SMTP protocol, reporting connections to its :class:`SMTPServer`."""

    def __init__(self, owner: SMTPServer, **kwargs: Any) -> None:
        self.owner = owner
        self.number = 0  # set when the connection is established
        super().__init__(owner._handler, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None and self.transport is None
        super().connection_made(transport)
        if first:
            self.owner._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.owner._closed(self)
        super().connection_lost(error)


class _Handler:
    """aiosmtpd hooks: default behaviour plus the owner's scripted faults."""

    def __init__(self, owner: SMTPServer) -> None:
        self.owner = owner

    async def _fault(self, server: _Protocol, command: str, subject: str | None) -> str | None:
        """The reply a scripted fault wants, or None for normal behaviour.

        ``drop`` closes the connection, ``hang`` never answers; both wait here
        until the connection is gone (the wait is cancelled with it).
        """
        fault = self.owner._take_fault(command, subject)
        if fault is None:
            return None
        if fault.action == "reply":
            assert fault.reply is not None
            return fault.reply
        if fault.action == "drop":
            assert server.transport is not None
            server.transport.close()
        await asyncio.Event().wait()  # cancelled when the connection goes away
        raise AssertionError("unreachable")  # pragma: no cover

    async def handle_EHLO(
        self,
        server: _Protocol,
        session: Any,
        envelope: Any,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        reply = await self._fault(server, "EHLO", hostname)
        if reply is not None:
            return [reply]
        session.host_name = hostname
        if not self.owner.eightbitmime:
            return [r for r in responses if "8BITMIME" not in r.upper()]
        return responses

    async def handle_HELO(
        self, server: _Protocol, session: Any, envelope: Any, hostname: str
    ) -> str:
        reply = await self._fault(server, "HELO", hostname)
        if reply is not None:
            return reply
        session.host_name = hostname
        return f"250 {self.owner.hostname}"

    async def handle_AUTH(self, server: _Protocol, session: Any, envelope: Any, args: Any) -> Any:
        reply = await self._fault(server, "AUTH", None)
        return MISSING if reply is None else reply

    async def handle_MAIL(
        self, server: _Protocol, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.owner.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = await self._fault(server, "MAIL", address)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: _Protocol, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = await self._fault(server, "RCPT", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_RSET(self, server: _Protocol, session: Any, envelope: Any) -> str:
        self.owner._count("RSET")
        reply = await self._fault(server, "RSET", None)
        return "250 2.0.0 OK" if reply is None else reply

    async def handle_QUIT(self, server: _Protocol, session: Any, envelope: Any) -> str:
        reply = await self._fault(server, "QUIT", None)
        return "221 Bye" if reply is None else reply

    async def handle_DATA(self, server: _Protocol, session: Any, envelope: Any) -> str:
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content),
            mail_options=tuple(envelope.mail_options),
            connection=server.number,
            tls=session.ssl is not None or self.owner.security == "ssl",
            helo=session.host_name,
            login=_login_of(session),
        )
        fault = self.owner._peek_fault("DATA")
        if fault is not None and fault.action != "reply":
            # The message arrived; only the verdict is lost: record it.
            self.owner._record(received)
        reply = await self._fault(server, "DATA", None)
        if reply is not None:
            return reply
        number = self.owner._record(received)
        return f"250 2.0.0 OK queued as {number}"


def _login_of(session: Any) -> str | None:
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


class SMTPServer:
    """An aiosmtpd SMTP server on 127.0.0.1 running in its own thread.

    Args:
        security: ``"none"`` (plain), ``"starttls"`` (offers STARTTLS) or
            ``"ssl"`` (implicit TLS from the first byte).
        certificates: needed for ``starttls`` and ``ssl``.
        users: ``{login: password}`` accepted by AUTH (PLAIN and LOGIN). With
            ``security="starttls"`` AUTH is offered only after STARTTLS.
        auth_required: answer ``530`` to MAIL until the client authenticated.
        smtputf8: offer SMTPUTF8.
        eightbitmime: offer 8BITMIME (``False``: a 7-bit-only server).
        port: 0 picks a free port; :meth:`restart` keeps the one it got.
        idle_timeout: seconds after which the server hangs up on a silent client.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        security: Security = "none",
        certificates: Certificates | None = None,
        users: Mapping[str, str] | None = None,
        auth_required: bool = False,
        smtputf8: bool = True,
        eightbitmime: bool = True,
        port: int = 0,
        hostname: str = "smtp.test",
        idle_timeout: float = 60.0,
    ) -> None:
        if security != "none" and certificates is None:
            raise ValueError(f"security={security!r} needs certificates=Certificates()")
        self.security = security
        self.certificates = certificates
        self.users = dict(users or {})
        self.auth_required = auth_required
        self.smtputf8 = smtputf8
        self.eightbitmime = eightbitmime
        self.host = HOST
        self.port = port
        self.hostname = hostname
        self.idle_timeout = idle_timeout
        self.errors: list[str] = []  # exceptions the event loop saw (TLS failures...)

        self._handler = _Handler(self)
        self._cond = threading.Condition()
        self._messages: list[Received] = []
        self._faults: list[Fault] = []
        self._live: set[_Protocol] = set()
        self._connections = 0
        self._counts: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tls_context = certificates.server_context() if certificates else None

    # -- what the server saw

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return (self.host, self.port)

    @property
    def messages(self) -> list[Received]:
        """Every message received so far, in order (a copy)."""
        with self._cond:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many connections were established (TLS handshake done) since creation."""
        with self._cond:
            return self._connections

    @property
    def open_connections(self) -> int:
        """How many connections are open right now."""
        with self._cond:
            return len(self._live)

    def count(self, command: str) -> int:
        """How many times ``command`` (only ``"RSET"`` is counted) was received."""
        with self._cond:
            return self._counts.get(command.upper(), 0)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` holds (checked on every server event) or time runs out."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    # -- scripting

    def fail(
        self, command: str, reply: str, *, match: str | None = None, times: int | None = 1
    ) -> Fault:
        """Answer ``command`` with ``reply`` (e.g. ``"451 4.3.0 Try later"``) instead."""
        return self._add(Fault(_command(command), "reply", reply, match, times))

    def drop(self, command: str, *, match: str | None = None, times: int | None = 1) -> Fault:
        """Close the connection instead of answering ``command``.

        For ``"DATA"`` this happens after the final ``.``: the message arrived
        (it is recorded) but the client never learns it.
        """
        return self._add(Fault(_command(command), "drop", None, match, times))

    def hang(self, command: str, *, match: str | None = None, times: int | None = 1) -> Fault:
        """Never answer ``command``; the client's time-out must end the wait."""
        return self._add(Fault(_command(command), "hang", None, match, times))

    def clear_faults(self) -> None:
        """Forget every scripted fault."""
        with self._cond:
            self._faults.clear()

    # -- life cycle

    def start(self) -> SMTPServer:
        """Listen on 127.0.0.1 (on :attr:`port`, or a free one when it is 0)."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(self._loop_error)
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="test-smtp", daemon=True)
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        except BaseException:
            self._stop_loop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close every connection (abruptly) and stop listening. Idempotent."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        finally:
            self._stop_loop()

    def restart(self) -> None:
        """Stop (dropping open connections, as a crashed server would) and listen again."""
        self.stop()
        self.start()

    def drop_connections(self) -> None:
        """Hang up on every connected client (as after an idle time-out), keep listening."""
        assert self._loop is not None, "the server is not running"

        async def close_all() -> None:
            for proto in list(self._live):
                if proto.transport is None:
                    continue
                if self.security == "none":
                    proto.transport.close()  # FIN, as an idle time-out does
                else:
                    # A TLS close waits for the idle client's close_notify, which
                    # never comes; hang up at once instead.
                    cast(asyncio.Transport, proto.transport).abort()

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)
        if not self.wait_for(lambda: not self._live):
            raise RuntimeError("the connections did not close")

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SMTPServer {self.security} {self.host}:{self.port}>"

    # -- internals

    def _protocol(self) -> _Protocol:
        return _Protocol(
            self,
            hostname=self.hostname,
            tls_context=self._tls_context if self.security == "starttls" else None,
            # aiosmtpd offers AUTH only when it sees STARTTLS; implicit TLS and
            # plain servers with users offer it from the start.
            auth_require_tls=self.security == "starttls",
            authenticator=self._authenticate,
            enable_SMTPUTF8=self.smtputf8,
            timeout=self.idle_timeout,
            loop=self._loop,
        )

    async def _listen(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            self._protocol,
            self.host,
            self.port,
            ssl=self._tls_context if self.security == "ssl" else None,
            reuse_address=True,
        )

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for proto in list(self._live):
            if proto.transport is not None:
                cast(asyncio.Transport, proto.transport).abort()
        await self._server.wait_closed()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(3):  # let the transports' connection_lost callbacks run
            await asyncio.sleep(0)
        self._server = None

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        assert loop is not None
        assert thread is not None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        self._loop = None
        self._thread = None
        with self._cond:
            self._live.clear()
            self._cond.notify_all()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # TLS handshakes a client refused, resets by clients: expected in tests.
        exc = context.get("exception")
        self.errors.append(f"{context.get('message')}: {exc!r}")

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if login in self.users and self.users[login] == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def _add(self, fault: Fault) -> Fault:
        with self._cond:
            self._faults.append(fault)
        return fault

    def _peek_fault(self, command: str) -> Fault | None:
        with self._cond:
            return next((f for f in self._faults if f.applies(command, None)), None)

    def _take_fault(self, command: str, subject: str | None) -> Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.applies(command, subject):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, received: Received) -> int:
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()
            return len(self._messages)

    def _count(self, command: str) -> None:
        with self._cond:
            self._counts[command] = self._counts.get(command, 0) + 1
            self._cond.notify_all()

    def _opened(self, proto: _Protocol) -> None:
        with self._cond:
            self._connections += 1
            proto.number = self._connections
            self._live.add(proto)
            self._cond.notify_all()

    def _closed(self, proto: _Protocol) -> None:
        with self._cond:
            self._live.discard(proto)
            self._cond.notify_all()


def _command(command: str) -> str:
    command = command.upper()
    if command not in _COMMANDS:
        raise ValueError(f"cannot script {command!r}; choose from {sorted(_COMMANDS)}")
    return command
