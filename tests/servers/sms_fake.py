"""A fake MSG91 + Fast2SMS API: a real HTTP/1.1 server on 127.0.0.1 for the SMS tests.

It behaves like the providers as ``reference/providers.md`` describes them
(sections 1 and 2), from its own state, so a test sets the scene and sends:

- valid keys (``msg91_keys``, ``fast2sms_keys``); any other key is refused the
  way each provider refuses it (MSG91: 401 ``Authentication failure``,
  Fast2SMS: HTTP 401 with ``status_code`` 412);
- registered templates: MSG91 flows with their variable names
  (``msg91_templates``), Fast2SMS DLT message ids with their number of
  variables (``fast2sms_templates``); approved DLT headers (``senders``);
- numbers the operator refuses (``invalid_numbers``, as the provider writes
  them: ``919876543210`` for MSG91, ``9876543210`` for Fast2SMS);
- balances (``msg91_balance`` in SMS credits, ``fast2sms_balance`` in rupees,
  ``fast2sms_price`` per SMS).

Batch requests are answered as the providers do: MSG91 takes several
``recipients`` (each with its own variables), Fast2SMS comma-separated
``numbers`` (one text for all; the same number twice is 995, spam); either
accepts or refuses the whole request, with one request id, and a request
counts against the balance once per number.

MSG91 answers some errors with HTTP 200 and ``{"type": "error"}``, as the real
API may: a client that trusts the status alone is caught.

On top of that, :meth:`SMSFakeServer.script` queues what the next requests
get, one entry per request, before the provider logic: ``"rate_limit"`` (429
with ``Retry-After``), ``"server_error"`` (500, HTML), ``"garbage"`` (200, not
JSON), ``"hang"`` (the answer never comes: the handler waits until the client
gives up, bounded by ``hang_limit`` and ended at once by :meth:`stop`),
``"drop"`` (the connection is closed after the request, without an answer),
``"close"`` (answer normally, then close the connection), or a :class:`Reply`.

It records every request (:attr:`requests`: method, path, query, headers,
JSON body) and counts TCP connections (:attr:`connections`), which is how the
keep-alive tests see a pooled client at work.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FAST2SMS_KEY", "FAULTS", "MSG91_KEY", "RecordedRequest", "Reply", "SMSFakeServer"]

#: The keys the fake accepts unless told otherwise.
MSG91_KEY = "msg91-test-authkey-123"
FAST2SMS_KEY = "f2s-test-api-key-456"

#: The scripted faults :meth:`SMSFakeServer.script` understands.
FAULTS = frozenset({"rate_limit", "server_error", "garbage", "hang", "drop", "close"})

MSG91_FLOW_PATHS = ("/api/v5/flow/", "/api/v5/flow")
MSG91_BALANCE_PATH = "/api/balance.php"
FAST2SMS_BULK_PATH = "/dev/bulkV2"
FAST2SMS_WALLET_PATH = "/dev/wallet"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any
    body: bytes
    raw_target: str  # the request target as sent, query string included


@dataclass(frozen=True)
class Reply:
    """An answer to send as is: a status, a body (dict → JSON) and headers."""

    status: int
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


def _msg91_error(status: int, message: str, code: str | None = None) -> Reply:
    body: dict[str, Any] = {"type": "error", "message": message}
    if code is not None:
        body["code"] = code
    return Reply(status, body)


def _f2s_error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"return": False, "status_code": code, "message": message})


class SMSFakeServer:
    """The fake provider; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        *,
        msg91_keys: Iterable[str] = (MSG91_KEY,),
        fast2sms_keys: Iterable[str] = (FAST2SMS_KEY,),
        hang_limit: float = 5.0,
        retry_after: str | None = "7",
    ) -> None:
        self.msg91_keys = set(msg91_keys)
        self.fast2sms_keys = set(fast2sms_keys)
        self.msg91_templates: dict[str, tuple[str, ...]] = {
            "1001": ("order",),
            "65e06f45d6fc05278c7d47e2": ("otp", "name"),
        }
        self.fast2sms_templates: dict[str, int] = {"1001": 1, "158923": 2, "200": 0}
        self.senders: set[str] = {"SHOPIN"}
        self.invalid_numbers: set[str] = set()
        self.msg91_balance = 1000
        self.fast2sms_balance = 100.0
        self.fast2sms_price = 0.25
        self.wallet_field = "wallet"
        #: How MSG91 refuses a key: ``"401"`` (HTTP 401 "Authentication failure")
        #: or ``"200"`` (HTTP 200 "Invalid authkey"); both are seen in the wild.
        self.msg91_auth_variant = "401"
        self.hang_limit = hang_limit
        self.retry_after = retry_after
        self.requests: list[RecordedRequest] = []
        self.connections = 0
        self._script: deque[str | Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- control

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``base_url`` to give the transports."""
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def open_connections(self) -> int:
        """How many client connections are open right now."""
        with self._lock:
            return len(self._open)

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """Wait (bounded) until no client connection is open; True when that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.open_connections:
                return True
            time.sleep(0.002)
        return False

    def script(self, *entries: str | Reply) -> None:
        """Queue what the next requests get, one entry each (then the provider logic)."""
        for entry in entries:
            if isinstance(entry, str) and entry not in FAULTS:
                raise ValueError(f"unknown fault {entry!r}; one of {sorted(FAULTS)}")
        with self._lock:
            self._script.extend(entries)

    def start(self) -> SMSFakeServer:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        server = _Server(("127.0.0.1", 0), Handler)
        server.fake = self
        server.daemon_threads = False  # stop() joins every handler thread
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end hanging and idle keep-alive handlers, join every thread."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SMSFakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- bookkeeping used by the handler

    def _connected(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(sock)

    def _disconnected(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _next_scripted(self) -> str | Reply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- faults

    def fault_reply(self, fault: str, path: str) -> Reply:
        """The answer of a scripted fault that has one, in the provider's dialect."""
        headers = {"retry-after": self.retry_after} if self.retry_after is not None else {}
        msg91 = not path.startswith("/dev/")
        if fault == "rate_limit":
            body: dict[str, Any] = (
                {"type": "error", "message": "Too many requests"}
                if msg91
                else {"return": False, "message": "Too Many Requests"}
            )
            return Reply(429, body, headers)
        if fault == "server_error":
            return Reply(500, b"<html><body>500 Internal Server Error</body></html>")
        if fault == "garbage":
            return Reply(200, b"<html>Service temporarily unavailable</html>{")
        raise AssertionError(fault)

    # -- MSG91

    def msg91_flow(self, req: RecordedRequest) -> Reply:
        if req.method != "POST":
            return _msg91_error(405, "Method not allowed")
        if req.headers.get("authkey") not in self.msg91_keys:
            if self.msg91_auth_variant == "200":
                return _msg91_error(200, "Invalid authkey", "418")
            return _msg91_error(401, "Authentication failure", "401")
        data = req.json
        if not isinstance(data, dict):
            return _msg91_error(400, "Invalid JSON")
        template = data.get("template_id") or data.get("flow_id")
        if not template:
            return _msg91_error(400, "Template ID missing")
        if template not in self.msg91_templates:
            return _msg91_error(400, "Invalid template")
        sender = data.get("sender")
        if sender is not None and sender not in self.senders:
            return _msg91_error(400, "Sender ID (DLT header) not approved")
        recipients = data.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            return _msg91_error(400, "Mobile no. not found")
        count = 0
        for recipient in recipients:
            if not isinstance(recipient, dict):
                return _msg91_error(400, "Invalid recipients")
            numbers = str(recipient.get("mobiles", "")).split(",")
            for number in numbers:
                if not (number.isdigit() and 10 <= len(number) <= 15):
                    return _msg91_error(200, "Mobile no. not found")
                if number in self.invalid_numbers:
                    return _msg91_error(200, "Mobile number is invalid or blocked (DND)")
            missing = [v for v in self.msg91_templates[template] if v not in recipient]
            if missing:
                return _msg91_error(
                    400, f"Template variables mismatch: {', '.join(missing)} missing"
                )
            count += len(numbers)
        with self._lock:
            if self.msg91_balance < count:
                return _msg91_error(200, "Insufficient balance")
            self.msg91_balance -= count
        return Reply(200, {"type": "success", "message": uuid.uuid4().hex[:24]})

    def msg91_balance_answer(self, req: RecordedRequest) -> Reply:
        key = req.headers.get("authkey") or req.query.get("authkey")
        if key not in self.msg91_keys:
            return _msg91_error(401, "Authentication failure", "401")
        return Reply(200, str(self.msg91_balance))

    # -- Fast2SMS

    def _f2s_data(self, req: RecordedRequest) -> dict[str, Any] | None:
        if isinstance(req.json, dict):
            return req.json
        if req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(req.body.decode()))
        return None

    def fast2sms_bulk(self, req: RecordedRequest) -> Reply:
        if req.headers.get("authorization") not in self.fast2sms_keys:
            return _f2s_error(401, 412, "Invalid Authentication, Check Authorization Key")
        data = self._f2s_data(req) or {}
        route = data.get("route")
        if not route:
            return _f2s_error(400, 403, "Route missing")
        if route not in ("dlt", "q", "otp"):
            return _f2s_error(400, 408, "Invalid Route")
        raw_numbers = str(data.get("numbers") or "")
        if not raw_numbers:
            return _f2s_error(400, 405, "Numbers missing")
        numbers = raw_numbers.split(",")
        if len(set(numbers)) != len(numbers):
            return _f2s_error(400, 995, "Spamming detected (same number repeatedly)")
        for number in numbers:
            if not (len(number) == 10 and number.isdigit() and number[0] in "6789"):
                return _f2s_error(400, 411, "Invalid Numbers")
            if number in self.invalid_numbers:
                return _f2s_error(400, 411, "Invalid Numbers")
        values = str(data.get("variables_values") or "")
        if route == "dlt":
            sender = data.get("sender_id")
            if not sender:
                return _f2s_error(400, 401, "Sender ID Missing")
            if sender not in self.senders:
                return _f2s_error(400, 406, "Invalid Sender ID")
            template = str(data.get("message") or "")
            if not template:
                return _f2s_error(400, 402, "Message Text Missing")
            if template not in self.fast2sms_templates:
                return _f2s_error(400, 424, "Invalid Message ID")
            given = len(values.split("|")) if values else 0
            if given != self.fast2sms_templates[template]:
                return _f2s_error(400, 425, "Invalid Template")
        elif route == "q":
            text = data.get("message")
            if not text:
                return _f2s_error(400, 402, "Message Text Missing")
            language = data.get("language")
            if not language:
                return _f2s_error(400, 404, "Language Missing")
            if language not in ("english", "unicode"):
                return _f2s_error(400, 410, "Invalid Language")
            if language == "english" and not str(text).isascii():
                return _f2s_error(400, 417, "Use English letters or change language to unicode")
        elif not values.isdigit():
            return _f2s_error(400, 997, "Only numeric variables_values allowed in OTP route")
        cost = self.fast2sms_price * len(numbers)
        with self._lock:
            if self.fast2sms_balance < cost:
                return _f2s_error(400, 416, "Insufficient Wallet Balance")
            self.fast2sms_balance -= cost
        return Reply(
            200,
            {
                "return": True,
                "request_id": uuid.uuid4().hex[:15],
                "message": ["SMS sent successfully."],
            },
        )

    def fast2sms_wallet(self, req: RecordedRequest) -> Reply:
        if req.headers.get("authorization") not in self.fast2sms_keys:
            return _f2s_error(401, 412, "Invalid Authentication, Check Authorization Key")
        return Reply(200, {"return": True, self.wallet_field: f"{self.fast2sms_balance:.2f}"})

    def answer(self, req: RecordedRequest) -> Reply:
        """The provider logic: route by path."""
        if req.path in MSG91_FLOW_PATHS:
            return self.msg91_flow(req)
        if req.path == MSG91_BALANCE_PATH and req.method == "GET":
            return self.msg91_balance_answer(req)
        if req.path == FAST2SMS_BULK_PATH and req.method == "POST":
            return self.fast2sms_bulk(req)
        if req.path == FAST2SMS_WALLET_PATH and req.method == "GET":
            return self.fast2sms_wallet(req)
        return Reply(404, b"not found")


class _Server(ThreadingHTTPServer):
    fake: SMSFakeServer

    def shutdown_request(self, request: Any) -> None:
        # Counted as closed only once the socket really is.
        super().shutdown_request(request)
        self.fake._disconnected(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_fake: SMSFakeServer
    timeout = 10  # an idle keep-alive connection ends after this, whatever happens
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle and the
    # peer's delayed ACK add ~40 ms to every answer on loopback.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server_fake._connected(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        target = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=target.path,
            query=dict(parse_qsl(target.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            json=parsed,
            body=body,
            raw_target=self.path,
        )
        fake._record(request)
        scripted = fake._next_scripted()
        close_after = False
        if scripted == "hang":
            fake._stopping.wait(fake.hang_limit)
            self.close_connection = True
            return
        if scripted == "drop":
            self.close_connection = True
            return
        if scripted == "close":
            close_after, scripted = True, None
        if isinstance(scripted, Reply):
            reply = scripted
        elif isinstance(scripted, str):
            reply = fake.fault_reply(scripted, request.path)
        else:
            reply = fake.answer(request)
        payload, content_type = reply.encoded()
        self.send_response(reply.status)
        headers = {"content-type": content_type, **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        if close_after:
            # Close without a "Connection: close" header, as a server that drops
            # idle connections does: the client must notice and reconnect.
            self.close_connection = True
