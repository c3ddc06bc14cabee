"""The ``notifykit`` command: ``demo``, ``send``, ``render``, ``check`` and ``log``.

Run ``notifykit demo`` for a first look: it starts a real SMTP server on
127.0.0.1, sends a bundled order confirmation through a failover whose primary
is down, logs every attempt to SQLite and prints what happened.

Exit codes: ``0`` success; ``1`` something was not delivered (``send``) or a
check failed (``check``); ``2`` a usage or configuration error (a bad URL, a
missing file, an unknown template, a missing optional dependency); ``3``
(``send``) a failover fell back to a transport that delivers to no one
(console, file, memory) after a real one failed, so nothing reached a person;
``130`` interrupted. Errors from notifykit's error tree print one line on standard
error, never a traceback, and never a secret: URLs go through
:func:`~notifykit.config.mask_url`.

Output is coloured only when standard output is a terminal and ``NO_COLOR``
is unset; ``--json`` prints one JSON document for machines instead.

Only :mod:`argparse` and the error tree are imported at start-up, so
``notifykit --help`` stays fast: each command imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from notifykit import __version__
from notifykit.errors import ConfigurationError, DeliveryError, NotifyKitError

if TYPE_CHECKING:
    from datetime import datetime, timedelta
    from pathlib import Path

    from notifykit.notifier import Notifier
    from notifykit.receipt import Attempt, Receipt
    from notifykit.sinks.sqlite import SQLiteSink
    from notifykit.transports.base import Transport

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SIMULATED", "EXIT_USAGE", "main"]

#: Everything went as asked.
EXIT_OK = 0
#: A message was not delivered, or a check failed.
EXIT_FAILED = 1
#: A usage or configuration error: nothing was attempted.
EXIT_USAGE = 2
#: ``send``: a failover fell back to a transport that delivers to no one
#: (console, file, memory) after a real one failed: nothing was sent to a person.
EXIT_SIMULATED = 3

_DEMO_TEMPLATE = "order_confirmation.html"
_DEFAULT_DB = "notifykit.db"

# -- output ----------------------------------------------------------------------

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def _colour_enabled(stream: TextIO) -> bool:
    """Colour only on a terminal, never with ``NO_COLOR`` set (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _Console:
    """Where a command writes: plain or coloured text on stdout, errors on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.colour = _colour_enabled(self.out)

    def paint(self, text: str, style: str | None) -> str:
        if not style or not self.colour or not text:
            return text
        codes = ";".join(_CODES[s] for s in style.split())
        return f"\033[{codes}m{text}\033[0m"

    def line(self, text: str = "", style: str | None = None) -> None:
        print(self.paint(text, style), file=self.out)

    def json(self, document: object) -> None:
        import json

        print(json.dumps(document, indent=2, ensure_ascii=False, default=str), file=self.out)

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[str | tuple[str, str | None]]],
        *,
        right: Iterable[int] = (),
        indent: str = "  ",
    ) -> None:
        """Print ``rows`` in aligned columns; a cell may be ``(text, style)``."""
        cells = [[c if isinstance(c, tuple) else (c, None) for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in cells:
            for i, (text, _) in enumerate(row):
                widths[i] = max(widths[i], len(text))
        align_right = set(right)

        def fit(i: int, text: str, style: str | None = None) -> str:
            pad = " " * (widths[i] - len(text))
            painted = self.paint(text, style)  # colour the text, not the padding
            return pad + painted if i in align_right else painted + pad

        head = "  ".join(fit(i, h) for i, h in enumerate(headers)).rstrip()
        self.line(indent + head, "bold")
        for row in cells:
            parts = [fit(i, text, style) for i, (text, style) in enumerate(row)]
            self.line(indent + "  ".join(parts).rstrip())


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def _count(n: int, noun: str) -> str:
    """``1 message``, ``2 messages``, ``0 messages``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- shared helpers -------------------------------------------------------------


def _environ(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The process environment over ``.env`` (if there is one: ``_load_dotenv``), plus overrides."""
    from notifykit.config import _load_dotenv

    env = _load_dotenv(".env")
    env.update(os.environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            env[key] = value
    return env


def _read_text(path: str, what: str) -> str:
    """The text of a UTF-8 file (a BOM is allowed); anything else is a ConfigurationError."""
    if "\0" in path:
        raise ConfigurationError(f"{what} {path!r}: a path cannot hold a NUL character")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        hint = "it looks like UTF-16" if utf16 else f"byte {exc.start + 1} is not UTF-8"
        raise ConfigurationError(
            f"{what} {path} is not UTF-8 text ({hint}): save it as UTF-8"
        ) from None


def _read_context(path: str | None) -> dict[str, Any]:
    """The template context from a JSON file (``-`` for standard input)."""
    if path is None:
        return {}
    import json

    try:
        text = sys.stdin.read() if path == "-" else _read_text(path, "the context file")
    except (OSError, UnicodeDecodeError) as exc:  # standard input
        raise ConfigurationError(f"cannot read the context from standard input: {exc}") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigurationError(f"the context file {path} is nested too deeply") from None
    except ValueError as exc:
        raise ConfigurationError(f"the context file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"the context file {path} must hold a JSON object")
    return data


def _renderer(directory: str | None) -> Any:
    """A TemplateRenderer over ``directory``, or over notifykit's bundled templates."""
    from notifykit.templates import TemplateRenderer

    if directory is None:
        return _bundled_renderer()
    if not os.path.isdir(directory):
        raise ConfigurationError(f"--templates {directory!r} is not a directory")
    return TemplateRenderer.from_directory(directory)


def _bundled_renderer() -> Any:
    """The templates shipped in ``notifykit/templates/bundled`` (``order_confirmation.html``)."""
    from notifykit.templates import TemplateRenderer

    return TemplateRenderer.from_package("notifykit", "templates/bundled")


def _template_name(renderer: Any, name: str) -> str:
    """``name``, or ``name.html`` when only that exists: ``render order_confirmation`` works."""
    last = name.rsplit("/", 1)[-1]
    if "." in last:
        return name
    env = renderer.environment
    loader = env.loader
    if loader is None:
        return name
    import jinja2

    for candidate in (name, f"{name}.html"):
        try:
            loader.get_source(env, candidate)
        except jinja2.TemplateNotFound:
            continue
        return candidate
    return name  # the renderer reports it as unknown


def _sample_context(directory: str | None, name: str) -> dict[str, Any] | None:
    """The sample context kept next to a template (``NAME.json``), if there is one."""
    import json

    stem = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
    if directory is None:
        from importlib import resources

        bundled = resources.files("notifykit.templates").joinpath("bundled")
        resource = bundled.joinpath(f"{stem}.json")
        if not resource.is_file():
            return None
        text = resource.read_text(encoding="utf-8")
    else:
        path = os.path.join(directory, f"{stem}.json")
        if not os.path.isfile(path):
            return None
        return _read_context(path)
    data = json.loads(text)
    return data if isinstance(data, dict) else None


def _attempt_rows(
    attempts: Iterable[Attempt], roles: Mapping[str, str] | None = None
) -> list[list[str | tuple[str, str | None]]]:
    styles = {"sent": "green", "skipped": "yellow"}
    rows: list[list[str | tuple[str, str | None]]] = []
    for n, a in enumerate(attempts, 1):
        error = a.error or ""
        # The transport has its own column; the rest of the sentence is the news.
        error = error.removeprefix(f"{a.transport}: ").removesuffix("; the message was not sent")
        if a.outcome == "skipped":
            error = f"{error} (circuit breaker)" if error else "circuit breaker"
        role = (roles or {}).get(a.transport)
        rows.append(
            [
                str(n),
                f"{a.transport} ({role})" if role else a.transport,
                (a.outcome, styles.get(a.outcome, "red")),
                _one_line(error),
                _ms(a.duration),
            ]
        )
    return rows


def _sqlite_from_env() -> str:
    """The SQLite file named by ``NOTIFYKIT_LOG``, else ``./notifykit.db``."""
    from notifykit.config import _sqlite_or_jsonl_path

    for url in _environ().get("NOTIFYKIT_LOG", "").split():
        if url.lower().startswith("sqlite:"):
            # The path only (no ?durability=): opening a sink here would create an empty log file.
            return _sqlite_or_jsonl_path(url.partition("?")[0], "sqlite")
    return _DEFAULT_DB


def _open_log(db: str | None) -> SQLiteSink:
    from notifykit.sinks.sqlite import SQLiteSink

    path = db if db is not None else _sqlite_from_env()
    if "\0" in path:
        raise ConfigurationError(f"--db {path!r}: a path cannot hold a NUL character")
    if not os.path.isfile(path):
        raise ConfigurationError(
            f"no delivery log at {path} (pass --db, or set NOTIFYKIT_LOG=sqlite:///path)"
        )
    return SQLiteSink(path)


def _stats_document(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [row._asdict() for row in rows]


def _print_stats(console: _Console, title: str, rows: Sequence[Any]) -> None:
    console.line(title, "bold")
    if not rows:
        console.line("  (nothing logged yet)", "dim")
        return
    body: list[list[str | tuple[str, str | None]]] = []
    # Delivery-report columns only once a provider reported something.
    reports = any(getattr(r, "delivery_rate", None) is not None for r in rows)
    for r in rows:
        rate = "-" if r.success_rate is None else f"{r.success_rate:.0%}"
        style = None
        if r.success_rate is not None:
            style = {1.0: "green", 0.0: "red"}.get(r.success_rate, "yellow")
        body.append(
            [
                "(none)" if r.key is None else str(r.key),
                str(r.sent),
                str(r.failed),
                str(r.queued),
                str(r.total),
                (rate, style),
                *(_report_rates(r) if reports else []),
            ]
        )
    head = ["key", "sent", "failed", "queued", "total", "success"]
    if reports:
        head += ["delivered", "bounced", "complaints"]
    console.table(head, body, right=range(1, len(head)))


def _report_rates(row: Any) -> list[str]:
    """The delivery, bounce and complaint rates of a stats row ("-": no reports)."""
    return [
        "-" if rate is None else f"{rate:.1%}"
        for rate in (row.delivery_rate, row.bounce_rate, row.complaint_rate)
    ]


# -- demo ------------------------------------------------------------------------


class _Inbox:
    """What the demo's SMTP server received: an aiosmtpd handler."""

    def __init__(self) -> None:
        import threading

        self.messages: list[tuple[str, tuple[str, ...], bytes]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        with self._lock:
            self.messages.append((envelope.mail_from, tuple(envelope.rcpt_tos), bytes(data)))
        return "250 2.0.0 OK: queued by the notifykit demo"

    def received(self) -> list[tuple[str, tuple[str, ...], bytes]]:
        with self._lock:
            return list(self.messages)


def _smtp_server_class() -> Any:
    """aiosmtpd's threaded Controller, listening on a free port; names the extra if missing."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        from notifykit.errors import MissingDependency

        raise MissingDependency("aiosmtpd", "demo", "notifykit demo") from None

    class FreePortController(Controller):
        """aiosmtpd's Controller, listening on a port the kernel picks (port 0)."""

        def _trigger_server(self) -> None:
            # The server is bound by now: learn its port before connecting to it.
            server: Any = self.server
            self.port = server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    return FreePortController


def _start_smtp_server(server_class: Any, inbox: _Inbox) -> Any:
    """Start the SMTP server on 127.0.0.1; returns the running controller."""
    controller = server_class(
        inbox, hostname="127.0.0.1", port=0, server_hostname="demo.notifykit.test"
    )
    controller.start()
    return controller


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connecting is refused at once)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _describe_mime(data: bytes) -> dict[str, Any]:
    """Subject, addresses, size and MIME structure of a received message."""
    import email
    from email import policy

    msg = email.message_from_bytes(data, policy=policy.default)
    parts = [part.get_content_type() for part in msg.walk()]
    return {
        "subject": str(msg.get("Subject", "")),
        "from": str(msg.get("From", "")),
        "to": str(msg.get("To", "")),
        "size": len(data),
        "parts": parts,
    }


def _demo_contexts(count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` (recipient, context) pairs built from the bundled sample context."""
    import copy
    import re

    sample = _sample_context(None, _DEMO_TEMPLATE) or {}
    names = ["Asha Rao", "Vikram Nair", "Meera Iyer", "Kabir Shah", "Leela Menon"]
    out = []
    for i in range(count):
        name = names[i % len(names)]
        address = f"{name.split()[0].lower()}@example.com"
        if i >= len(names):
            address = address.replace("@", f"{i // len(names) + 1}@")
        context = copy.deepcopy(sample)
        customer = context.get("customer")
        if isinstance(customer, dict):
            customer.update(name=name, email=address)
        order = context.get("order")
        if isinstance(order, dict) and isinstance(order.get("number"), str):
            # A-10042, A-10043, ...: each customer gets an order of their own.
            match = re.search(r"(\d+)$", order["number"])
            if match:
                number = int(match[1]) + i
                order["number"] = order["number"][: match.start()] + str(number)
        out.append((address, context))
    return out


def cmd_demo(args: argparse.Namespace, console: _Console) -> int:
    """Send a bundled template through a failover whose primary is down; report everything."""
    import tempfile
    import time

    from notifykit.config import from_dsn, mask_url
    from notifykit.notifier import Notifier
    from notifykit.sinks.sqlite import SQLiteSink

    if args.messages < 1 or args.messages > 100:
        raise ConfigurationError("--messages must be from 1 to 100")
    t_start = time.perf_counter()
    server_class = _smtp_server_class()  # first: a missing extra is the first thing to say
    db = args.db or os.path.join(tempfile.mkdtemp(prefix="notifykit-demo-"), "notifykit.db")
    renderer = _bundled_renderer()
    jobs = _demo_contexts(args.messages)
    preview = renderer.render(_DEMO_TEMPLATE, jobs[0][1])  # what each message will carry

    inbox = _Inbox()
    controller = _start_smtp_server(server_class, inbox)
    try:
        live_port: int = controller.port
        dead_port = _closed_port()
        url = (
            f"failover(smtp://127.0.0.1:{dead_port}?security=none&timeout=2"
            f" smtp://127.0.0.1:{live_port}?security=none&timeout=2"
            " console://)?retry_attempts=2&retry_initial=0.2&retry_maximum=0.5&cooldown=60"
        )
        transport = from_dsn(url)
        sink = SQLiteSink(db)
        results: list[dict[str, Any]] = []
        with Notifier(
            email=transport,
            templates=renderer,
            sinks=[sink],
            sender="Demo Shop <orders@shop.example>",
        ) as notifier:
            for to, context in jobs:
                seen = len(inbox.received())
                try:
                    receipt = notifier.send_email(_DEMO_TEMPLATE, to=to, context=context)
                except DeliveryError as exc:
                    results.append(
                        {"to": to, "ok": False, "error": str(exc), "attempts": exc.attempts}
                    )
                    continue
                new = inbox.received()[seen:]
                results.append(
                    {
                        "to": to,
                        "ok": True,
                        "receipt": receipt,
                        "attempts": receipt.attempts,
                        "received": [_describe_mime(data) for _, _, data in new],
                    }
                )
            by_transport = sink.stats(group_by="transport")
            by_template = sink.stats(group_by="template")
    finally:
        controller.stop()
    elapsed = time.perf_counter() - t_start

    dead_name, live_name = f"smtp:127.0.0.1:{dead_port}", f"smtp:127.0.0.1:{live_port}"
    setup: dict[str, Any] = {
        "server": f"127.0.0.1:{live_port}",
        "dead_primary": f"127.0.0.1:{dead_port}",
        "dead_transport": dead_name,
        "roles": {dead_name: "dead primary", live_name: "local server", "console": "last resort"},
        "transport": mask_url(url),
        "db": os.path.abspath(db),
        "template": _DEMO_TEMPLATE,
        "rendered": {
            "subject": preview.subject,
            "html_bytes": len((preview.html or "").encode()),
            "css": preview.strategy,
            "text": preview.text_strategy,
            "sms": preview.sms,
        },
    }
    if args.json:
        console.json(
            {
                **setup,
                "messages": [_demo_json(r) for r in results],
                "stats": {
                    "by_transport": _stats_document(by_transport),
                    "by_template": _stats_document(by_template),
                },
                "seconds": round(elapsed, 3),
            }
        )
    else:
        _demo_report(console, setup, results, by_transport, by_template, elapsed)
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED


def _demo_json(result: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "to": result["to"],
        "ok": result["ok"],
        "attempts": [a.to_dict() for a in result["attempts"]],
    }
    if result["ok"]:
        receipt: Receipt = result["receipt"]
        out["receipt"] = receipt.to_dict()
        out["received"] = result["received"]
    else:
        out["error"] = result["error"]
    return out


def _demo_report(
    console: _Console,
    setup: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    by_transport: Sequence[Any],
    by_template: Sequence[Any],
    elapsed: float,
) -> None:
    line = console.line
    line("notifykit demo", "bold")
    line(f"  local SMTP server (aiosmtpd)  {setup['server']}")
    line(f"  dead primary                  {setup['dead_primary']}  (nothing listens there)")
    line(f"  transport                     {setup['transport']}")
    line(f"  delivery log (SQLite)         {setup['db']}")
    r = setup["rendered"]
    line(f"  template                      {setup['template']} (bundled)")
    line(
        f"    rendered as                 HTML {r['html_bytes']} bytes, CSS inlined ({r['css']}), "
        f"text part ({r['text']}), SMS part ({len(r['sms'] or '')} characters)"
    )
    for n, result in enumerate(results, 1):
        line()
        line(f"Message {n}/{len(results)} to {result['to']}", "bold")
        line("  attempts")
        console.table(
            ["#", "transport", "outcome", "error", "duration"],
            _attempt_rows(result["attempts"], setup["roles"]),
            right=(0, 4),
            indent="    ",
        )
        if not result["ok"]:
            line(f"  not delivered: {result['error']}", "red")
            continue
        receipt: Receipt = result["receipt"]
        line(f"  receipt   delivered by {receipt.transport}", "green")
        line(f"            provider message id {receipt.provider_message_id}")
        for got in result["received"]:
            line(f"  server    subject  {got['subject']}")
            line(f"            from     {got['from']}")
            line(f"            to       {got['to']}")
            line(f"            size     {got['size']} bytes")
            line(f"            parts    {', '.join(got['parts'])}")
        if not result["received"]:
            line("  server    (nothing arrived at the local server)", "yellow")
    line()
    _print_stats(console, "Delivery log by transport (attempts)", by_transport)
    line()
    _print_stats(console, "Delivery log by template (messages)", by_template)
    line()
    dead = setup["dead_transport"]
    outcomes = [a.outcome for r in results for a in r["attempts"] if a.transport == dead]
    failed = sum(1 for o in outcomes if o not in ("sent", "skipped"))
    skipped = outcomes.count("skipped")
    delivered = sum(1 for r in results if r["ok"])
    summary = f"Done in {_ms(elapsed)}: {delivered} of {_count(len(results), 'message')} delivered."
    if failed:
        summary += f" The dead primary failed {_count(failed, 'attempt')}"
        if skipped:
            summary += (
                f", then was skipped {_count(skipped, 'time')} at no cost by the circuit breaker."
            )
        else:
            summary += (
                " (send more messages, e.g. --messages 3, to see the circuit breaker skip it)."
            )
    line(summary, "bold")
    line(f"Explore the log: notifykit log stats --db {setup['db']} --by transport", "dim")


# -- send -----------------------------------------------------------------------


def _split_addresses(values: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or ():
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


class _Progress:
    """A one-line progress bar on a terminal's standard error; silent elsewhere."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled and bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int, ok: int, failed: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r  [{bar}] {done}/{self.total}  sent {ok}  failed {failed}")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _read_csv(path: str) -> list[dict[str, str]]:
    import csv
    import io

    text = _read_text(path, "the CSV file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = [f.strip() for f in reader.fieldnames or ()]
        if "email" not in fields:
            raise ConfigurationError(
                f"{path} has no 'email' column (columns: {', '.join(fields) or 'none'})"
            )
        rows = []
        for row in reader:
            if None in row:  # more fields than the header has columns
                raise ConfigurationError(
                    f"{path} line {reader.line_num} has more fields than the header's "
                    f"{len(fields)} columns"
                )
            rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items()})
    except csv.Error as exc:
        raise ConfigurationError(f"{path} is not a readable CSV file: {exc}") from None
    return rows


def _send_notifier(args: argparse.Namespace, *, dry_run: bool = False) -> Notifier:
    from notifykit.config import notifier_from_env

    env = _environ(
        {
            "NOTIFYKIT_EMAIL_URL": args.via,
            "NOTIFYKIT_SENDER": args.sender,
            "NOTIFYKIT_TEMPLATES": args.templates,
        }
    )
    if dry_run:  # render and validate only: no transport is used, nothing is logged
        env["NOTIFYKIT_EMAIL_URL"] = "memory://"
        env.pop("NOTIFYKIT_SMS_URL", None)
        env.pop("NOTIFYKIT_LOG", None)
    if not env.get("NOTIFYKIT_EMAIL_URL", "").strip():
        raise ConfigurationError(
            "no e-mail transport: pass --via URL or set NOTIFYKIT_EMAIL_URL (e.g. console://)"
        )
    if not env.get("NOTIFYKIT_SENDER", "").strip():
        raise ConfigurationError("no sender: pass --from ADDRESS or set NOTIFYKIT_SENDER")
    notifier = notifier_from_env(environ=env)
    if args.template is not None and notifier.templates is None:
        notifier.templates = _bundled_renderer()
    if args.template is not None and notifier.templates is not None:
        _template_exists(notifier.templates, args.template, env.get("NOTIFYKIT_TEMPLATES"))
    return notifier


def _template_exists(renderer: Any, name: str, directory: str | None) -> None:
    """Refuse an unknown ``--template`` up front, saying where it was looked for."""
    import jinja2

    candidates = [name] if name.endswith(".html") else [f"{name}.html", name]
    environment = renderer.environment
    for candidate in candidates:
        try:
            environment.get_template(candidate)
        except jinja2.TemplateNotFound:
            continue
        except Exception:
            return  # it exists; rendering reports its own errors
        return
    where = f"the directory {directory!r}" if directory else "the bundled templates"
    raise ConfigurationError(
        f"unknown template {name!r}: not in {where}; "
        "pass --templates DIR or set NOTIFYKIT_TEMPLATES"
    )


def _read_attachments(paths: Sequence[str] | None) -> list[Any]:
    from notifykit.message import Attachment

    out = []
    for path in paths or ():
        try:
            out.append(Attachment.from_path(path))
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    return out


def cmd_send(args: argparse.Namespace, console: _Console) -> int:
    """Send one e-mail (or one per CSV row) and report each receipt or failure."""
    recipients = _split_addresses(args.to)
    if args.csv is None and not recipients:
        raise ConfigurationError("give --to ADDRESS[,ADDRESS] or --csv recipients.csv")
    if args.csv is not None and recipients:
        raise ConfigurationError("give --to or --csv, not both")
    if args.template is None and not args.subject:
        raise ConfigurationError("--subject is required with --text and --html-file")
    if args.locale is not None and args.template is None:
        raise ConfigurationError("--locale chooses a template's language: give --template too")
    if args.concurrency < 1:
        raise ConfigurationError("--concurrency must be at least 1")
    rate = None
    if args.rate is not None:
        from notifykit.ratelimit import parse_rate

        rate = parse_rate(args.rate)
    html = None
    if args.html_file is not None:
        html = _read_text(args.html_file, "the HTML file")
    extra: dict[str, Any] = {
        "cc": _split_addresses(args.cc),
        "bcc": _split_addresses(args.bcc),
        "reply_to": _split_addresses(args.reply_to),
        "attachments": _read_attachments(args.attach),
    }
    extra = {k: v for k, v in extra.items() if v}
    base_context = _read_context(args.context)
    rows: list[dict[str, str]] = (
        _read_csv(args.csv) if args.csv is not None else [{"email": ",".join(recipients)}]
    )
    many = args.csv is not None

    results: list[dict[str, Any]] = []
    progress = _Progress(len(rows), console.err, enabled=many and not args.json)
    with _send_notifier(args, dry_run=args.dry_run) as notifier:
        if rate is not None:
            if not hasattr(notifier.email, "rate_limit"):
                raise ConfigurationError(f"--rate: {notifier.email} cannot be rate-limited")
            notifier.email.rate_limit = rate  # type: ignore[union-attr]
        template = None
        if args.template is not None:
            template = _template_name(notifier.templates, args.template)
            # An unknown or broken template is one error up front, not one per row.
            explain = getattr(notifier.templates, "explain", None)
            if callable(explain):
                explain(template)
        jobs = _send_jobs(args, notifier, template, rows, base_context, html, extra)
        try:
            if args.dry_run:
                _dry_run(notifier, jobs, results)
            else:
                _send_rows(args, console, notifier, jobs, results, progress, many)
        finally:
            progress.finish()
    results.sort(key=lambda r: int(r["row"]))
    ok = sum(1 for r in results if r["ok"])
    failed = len(results) - ok
    simulated = [r for r in results if r.get("simulated_fallback")]

    if args.json:
        document: dict[str, Any] = {"sent": ok, "failed": failed, "results": results}
        if args.dry_run:
            document = {"dry_run": True, "valid": ok, "invalid": failed, "results": results}
        console.json(document)
    elif args.dry_run:
        _dry_run_report(console, results, ok, failed)
    else:
        _send_report(console, results, ok, failed, many=many)
        for entry in simulated:
            where = f"row {entry['row']}: " if many else ""
            console.line(
                f"note: {where}{', '.join(entry['to'])} got nothing: the failover fell back to "
                f"{entry['receipt']['transport']}, which delivers to no one, after "
                f"{entry['simulated_fallback']} failed (exit code {EXIT_SIMULATED})",
                "yellow",
            )
    if failed:
        return EXIT_FAILED
    return EXIT_SIMULATED if simulated else EXIT_OK


def _send_jobs(
    args: argparse.Namespace,
    notifier: Notifier,
    template: str | None,
    rows: Sequence[Mapping[str, str]],
    base_context: Mapping[str, Any],
    html: str | None,
    extra: Mapping[str, Any],
) -> list[Any]:
    """One bulk-send job per row: how to build its message (errors are the row's failure)."""
    from notifykit.errors import InvalidMessage
    from notifykit.message import Email, Message
    from notifykit.notifier import _Job

    jobs: list[Any] = []
    for row in rows:
        to = _split_addresses([row.get("email", "")])
        context = {**base_context, **{k: v for k, v in row.items() if k != "email"}}

        def build(to: list[str] = to, context: dict[str, Any] = context) -> Message:
            if not to:
                raise InvalidMessage("no e-mail address")
            if template is not None:
                overrides = {**extra, **({"subject": args.subject} if args.subject else {})}
                locale = context.get("locale") or args.locale  # a CSV column wins
                rendered = notifier._render(template, context, locale)
                return notifier._email_from(rendered, to, overrides)
            return Email(to=to, subject=args.subject, text=args.text, html=html, **extra)

        jobs.append(_Job(build, template, "email", tuple(to)))
    return jobs


def _entry(n: int, job: Any, result: Any) -> dict[str, Any]:
    """The report entry of row ``n`` (1-based) from its bulk-send result."""
    from notifykit.config import mask_url
    from notifykit.receipt import Receipt

    entry: dict[str, Any] = {"row": n, "to": list(job.to)}
    if isinstance(result, Receipt):
        entry.update(ok=True, receipt=result.to_dict())
        if result.simulated:
            failed = [a.transport for a in result.attempts if a.outcome != "sent"]
            if failed:
                entry["simulated_fallback"] = ", ".join(dict.fromkeys(failed))
    else:
        entry.update(ok=False, error=mask_url(_one_line(str(result))), kind=type(result).__name__)
        if isinstance(result, DeliveryError):
            entry["attempts"] = [a.to_dict() for a in result.attempts]
    return entry


def _send_rows(
    args: argparse.Namespace,
    console: _Console,
    notifier: Notifier,
    jobs: Sequence[Any],
    results: list[dict[str, Any]],
    progress: _Progress,
    many: bool,
) -> None:
    """Send the jobs through :meth:`Notifier.send_many`'s machinery, reporting as they end."""
    counts = {"ok": 0, "failed": 0}

    def on_progress(index: int, result: Any) -> None:
        entry = _entry(index + 1, jobs[index], result)
        results.append(entry)
        counts["ok" if entry["ok"] else "failed"] += 1
        if many and not entry["ok"] and not args.json:
            # Failures are reported as they happen, not only at the end.
            to = ", ".join(entry["to"]) or "(no address)"
            console.line(f"row {entry['row']} not sent to {to}: {entry['error']}", "red")
            console.out.flush()
        progress.update(len(results), counts["ok"], counts["failed"])

    outcomes = notifier._send_jobs(
        jobs, concurrency=args.concurrency if many else 1, on_progress=on_progress
    )
    for result in outcomes:
        if isinstance(result, ConfigurationError):
            raise result  # the set-up is wrong, not one row


def _dry_run(notifier: Notifier, jobs: Sequence[Any], results: list[dict[str, Any]]) -> None:
    """Build and serialise every message as a send would; send nothing, log nothing."""
    from notifykit.config import mask_url
    from notifykit.message import Email

    for n, job in enumerate(jobs, 1):
        entry: dict[str, Any] = {"row": n, "to": list(job.to)}
        try:
            message = notifier._with_defaults(job.build())
            size = len(message.to_bytes()) if isinstance(message, Email) else 0
        except ConfigurationError:
            raise
        except NotifyKitError as exc:
            entry.update(ok=False, error=mask_url(_one_line(str(exc))), kind=type(exc).__name__)
        else:
            subject = message.subject if isinstance(message, Email) else None
            entry.update(ok=True, subject=subject, size=size)
        results.append(entry)


def _dry_run_report(
    console: _Console, results: Sequence[Mapping[str, Any]], ok: int, failed: int
) -> None:
    for entry in results:
        to = ", ".join(entry["to"]) or "(no address)"
        if entry["ok"]:
            console.line(
                f"row {entry['row']}: would send {entry['subject']!r} to {to} "
                f"({entry['size']:,} bytes)"
            )
        else:
            console.line(f"row {entry['row']}: invalid, not sent to {to}: {entry['error']}", "red")
    style = "green" if failed == 0 else "red"
    console.line(f"dry run: {ok} valid, {failed} invalid, nothing sent", style)


def _send_report(
    console: _Console, results: Sequence[Mapping[str, Any]], ok: int, failed: int, many: bool
) -> None:
    for entry in results:
        to = ", ".join(entry["to"]) or "(no address)"
        if entry["ok"]:
            if many:
                continue
            receipt = entry["receipt"]
            console.line(f"sent to {to} via {receipt['transport']}", "green")
            console.line(f"  provider message id {receipt['provider_message_id']}")
            tries = [a for a in receipt["attempts"] if a["outcome"] != "sent"]
            for a in tries:
                console.line(f"  earlier attempt: {a['transport']} {a['outcome']}: {a['error']}")
        elif not many:  # a CSV row's failure was printed when it happened
            console.line(f"not sent to {to}: {entry['error']}", "red")
    if many or failed:
        style = "green" if failed == 0 else "red"
        console.line(f"{ok} sent, {failed} failed, {ok + failed} in all", style)


# -- render ---------------------------------------------------------------------


def _preview_stem(name: str) -> str:
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".jinja2", ".jinja", ".j2", ".html", ".htm", ".txt"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem or "preview"


_PREVIEW_SUFFIXES = {"html": ".preview.html", "text": ".preview.txt", "sms": ".preview.sms.txt"}


def _template_sources(directory: str | None, name: str) -> set[Path]:
    """The template being rendered, which render must never write over.

    Previews are always named ``NAME.preview.html``, ``.preview.txt`` and
    ``.preview.sms.txt``, so they cannot take the name of the template they
    come from (``NAME.html``) or of its sample context (``NAME.json``).
    """
    from pathlib import Path

    if directory is None:
        return set()
    return {(Path(directory) / name).resolve()}


def _preview_targets(
    args: argparse.Namespace, name: str, stem: str, kinds: Sequence[str]
) -> tuple[Path, dict[str, Path]]:
    """Where each preview goes; refuses to overwrite (without --force) or hit a source."""
    import tempfile
    from pathlib import Path

    suffixes = _PREVIEW_SUFFIXES
    if args.out is None:
        # A new folder per run: previews never collide with anything.
        out = Path(tempfile.mkdtemp(prefix=f"notifykit-render-{stem}-"))
    else:
        out = Path(args.out)
    targets = {kind: out / f"{stem}{suffixes[kind]}" for kind in kinds}
    try:
        protected = _template_sources(args.templates, name)
        if args.context not in (None, "-"):
            protected.add(Path(args.context).resolve())
        resolved = {kind: path.resolve() for kind, path in targets.items()}
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigurationError(f"cannot write the previews to {str(out)!r}: {reason}") from None
    for kind, path in targets.items():
        if resolved[kind] in protected:
            raise ConfigurationError(
                f"{path} is a template or context file: notifykit render never writes over "
                "one (choose another --out)"
            )
        if path.is_dir():
            raise ConfigurationError(f"{path} is a directory")
        if path.exists() and not args.force:
            raise ConfigurationError(
                f"{path} already exists: pass --force to overwrite it, or choose another --out"
            )
    return out, targets


def cmd_render(args: argparse.Namespace, console: _Console) -> int:
    """Render a template to NAME.preview.html, NAME.preview.txt and NAME.preview.sms.txt."""
    from pathlib import Path

    renderer = _renderer(args.templates)
    name = _template_name(renderer, args.name)
    if args.context is not None:
        context = _read_context(args.context)
    else:
        context = _sample_context(args.templates, name) or {}
    rendered = renderer.render(name, context)
    contents = {
        kind: content
        for kind, content in (
            ("html", rendered.html),
            ("text", rendered.text),
            ("sms", rendered.sms),
        )
        if content
    }
    stem = _preview_stem(args.name)
    out, targets = _preview_targets(args, name, stem, list(contents))
    files: dict[str, str] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for kind, content in contents.items():
            path = targets[kind]
            mode = "w" if args.force else "x"  # "x": fail rather than overwrite, even in a race
            with open(path, mode, encoding="utf-8") as fh:
                fh.write(content if content.endswith("\n") else content + "\n")
            files[kind] = str(path)
    except FileExistsError as exc:
        raise ConfigurationError(
            f"{exc.filename} already exists: pass --force to overwrite it"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigurationError(f"cannot write the previews to {str(out)!r}: {reason}") from None
    opened = False
    if args.open and "html" in files:
        import webbrowser

        opened = webbrowser.open(Path(files["html"]).resolve().as_uri())
    if args.json:
        console.json(
            {"template": args.name, "subject": rendered.subject, "files": files, "opened": opened}
        )
        return EXIT_OK
    console.line(f"subject: {rendered.subject}", "bold")
    for kind, written in files.items():
        console.line(f"  {kind:<5} {written}")
    if "sms" not in files:
        console.line("  (the template has no sms block)", "dim")
    if args.open and not opened:
        console.line("  no web browser could be opened", "yellow")
    return EXIT_OK


def cmd_preview(args: argparse.Namespace, console: _Console) -> int:
    """Serve the preview app for a templates folder until interrupted."""
    from notifykit.preview import PreviewApp, is_loopback, make_preview_server

    if args.templates is not None and not os.path.isdir(args.templates):
        raise ConfigurationError(f"--templates {args.templates!r} is not a directory")
    app = PreviewApp(args.templates, send_via=args.send_via, send_from=args.send_from)
    try:
        server = make_preview_server(app, args.host, args.port, quiet=not args.verbose)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    console.line(f"notifykit preview of {app.root}: http://{shown}:{port}/", "bold")
    if not is_loopback(args.host):
        console.line(
            "  warning: listening beyond this machine; anyone who can reach it sees your "
            "templates and sample data",
            "yellow",
        )
    console.line("  sending a test: " + ("on" if app.transport else "off (--send-via URL)"), "dim")
    console.line("  Ctrl-C to stop", "dim")
    console.out.flush()  # the URL must reach a pipe (a script, a test) before we block
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return EXIT_OK


# -- check ----------------------------------------------------------------------


def _check_one(transport: Transport) -> tuple[bool, str]:
    """Run ``transport.check()`` (or the best equivalent); (ok, detail)."""
    check = getattr(transport, "check", None)
    if callable(check):
        result = check()
        return True, _check_detail(transport, result)
    from notifykit.transports.file import FileTransport

    if isinstance(transport, FileTransport):
        directory = transport.directory
        target = directory if directory.exists() else directory.parent
        if not os.access(target, os.W_OK):
            return False, f"{directory} is not writable"
        return True, f"{directory} is writable"
    return True, "nothing to connect to"


def _check_detail(transport: Transport, result: object) -> str:
    detail = getattr(result, "detail", None)
    if isinstance(detail, str):
        return detail
    if result is None and hasattr(transport, "security"):
        steps = ["connected", "EHLO"]
        security = getattr(transport, "security", "none")
        if security == "starttls":
            steps.append("STARTTLS")
        elif security == "ssl":
            steps.insert(1, "TLS")
        if getattr(transport, "username", None):
            steps.append("AUTH")
        return " + ".join(steps) + " OK"
    if hasattr(result, "max_24_hour_send"):
        quota: Any = result
        limit = "unlimited" if quota.max_24_hour_send < 0 else f"{quota.max_24_hour_send:g}"
        text = f"quota {quota.sent_last_24_hours:g}/{limit} in 24 h, {quota.max_send_rate:g}/s"
        if quota.sending_enabled is False:
            text += ", sending paused"
        if quota.production_access is False:
            text += ", sandbox"
        return text
    return "OK" if result is None else _one_line(str(result))


def _check_rows(label: str, transport: Transport, depth: int = 0) -> Iterable[dict[str, Any]]:
    """One row per leaf transport (composers are expanded) with OK/FAIL and latency."""
    import time

    from notifykit.config import mask_url

    children = getattr(transport, "transports", None)
    if isinstance(children, tuple) and children:
        yield {"url": label, "depth": depth, "ok": None, "detail": "", "latency_ms": None}
        for child in children:
            yield from _check_rows(mask_url(str(child)), child, depth + 1)
        return
    t0 = time.perf_counter()
    try:
        ok, detail = _check_one(transport)
    except DeliveryError as exc:
        # "; the message was not sent" is true but beside the point of a check.
        reason = exc.message.removesuffix("; the message was not sent")
        ok, detail = False, f"{reason} ({exc.kind})"
    except NotifyKitError as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a third-party check that did not map its error
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    finally:
        transport.close()
    latency = (time.perf_counter() - t0) * 1000
    yield {
        "url": label,
        "depth": depth,
        "ok": ok,
        "detail": mask_url(_one_line(detail)),
        "latency_ms": round(latency, 1),
    }


def cmd_check(args: argparse.Namespace, console: _Console) -> int:
    """Connect and authenticate to each transport without sending anything."""
    from notifykit.config import from_dsn, mask_url

    urls: list[str] = list(args.urls)
    if not urls:
        env = _environ()
        urls = [
            env[name].strip()
            for name in ("NOTIFYKIT_EMAIL_URL", "NOTIFYKIT_SMS_URL")
            if env.get(name, "").strip()
        ]
        if not urls:
            raise ConfigurationError(
                "nothing to check: pass URLs, or set NOTIFYKIT_EMAIL_URL / NOTIFYKIT_SMS_URL"
            )
    transports = [(mask_url(url), from_dsn(url)) for url in urls]  # all parse before any check
    rows: list[dict[str, Any]] = []
    for label, transport in transports:
        rows.extend(_check_rows(label, transport))
    failed = [r for r in rows if r["ok"] is False]
    if args.json:
        console.json({"ok": not failed, "results": rows})
    else:
        body: list[list[str | tuple[str, str | None]]] = []
        for r in rows:
            url = "  " * r["depth"] + r["url"]
            if r["ok"] is None:
                body.append([url, "", "", ""])
                continue
            status = ("OK", "green") if r["ok"] else ("FAIL", "red")
            body.append([url, status, r["detail"], f"{r['latency_ms']:.0f}"])
        console.table(["transport", "status", "detail", "ms"], body, right=(3,), indent="")
    return EXIT_FAILED if failed else EXIT_OK


# -- log ------------------------------------------------------------------------


def _parse_since(text: str) -> datetime | timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` (ago), or an ISO date/time (naive = local time)."""
    import re
    from datetime import datetime, timedelta, timezone

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
        try:
            delta = timedelta(**{unit[match[2]]: float(match[1])})
            datetime.now(timezone.utc) - delta  # the sink subtracts it from now: may overflow
        except (OverflowError, ValueError):
            raise ConfigurationError(
                f"--since {text!r} reaches back before the year 1: use a shorter duration"
            ) from None
        return delta
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r}: use a duration (30m, 12h, 7d, 2w) or a date (2024-05-01)"
        ) from None
    if when.tzinfo is not None:
        return when
    try:
        return when.astimezone()
    except (OverflowError, ValueError):  # the edge of the calendar (0001-01-01)
        raise ConfigurationError(
            f"--since {text!r} is too early to convert from local time: "
            "give a time zone (0001-01-01T00:00+00:00) or a later date"
        ) from None


def cmd_log_stats(args: argparse.Namespace, console: _Console) -> int:
    """Sent/failed counts and success rates from the SQLite delivery log."""
    since = _parse_since(args.since) if args.since else None
    sink = _open_log(args.db)
    try:
        rows = sink.stats(since=since, group_by=args.by)
    finally:
        sink.close()
    if args.json:
        console.json({"db": sink.path, "by": args.by, "rows": _stats_document(rows)})
        return EXIT_OK
    unit = "attempts" if args.by == "transport" else "messages"
    _print_stats(console, f"By {args.by} ({unit}) in {sink.path}", rows)
    return EXIT_OK


def cmd_log_tail(args: argparse.Namespace, console: _Console) -> int:
    """The latest events of the SQLite delivery log, oldest first."""
    if not 0 <= args.n < 2**63:  # SQLite's integers are 64-bit
        raise ConfigurationError(f"-n must be from 0 to {2**63 - 1}, not {args.n}")
    sink = _open_log(args.db)
    try:
        events = sink.tail(args.n)
    finally:
        sink.close()
    if args.json:
        console.json(
            [
                {
                    "at": e.at.isoformat(),
                    "message_id": e.message_id,
                    "status": e.status,
                    "channel": e.channel,
                    "transport": e.transport,
                    "recipients": list(e.recipients),
                    "subject": e.subject,
                    "template": e.template,
                    "attempt": e.attempt,
                    "error": e.error,
                    "error_kind": e.error_kind,
                    "provider_message_id": e.provider_message_id,
                    "duration": e.duration,
                }
                for e in events
            ]
        )
        return EXIT_OK
    if not events:
        console.line(f"(no events in {sink.path})", "dim")
        return EXIT_OK
    styles = {
        "sent": "green",
        "failed": "red",
        "attempt_failed": "yellow",
        "delivered": "green",
        "bounced": "red",
        "complained": "red",
        "rejected_by_provider": "red",
        "deferred": "yellow",
    }
    body: list[list[str | tuple[str, str | None]]] = []
    for e in events:
        what = e.template or e.subject or ""
        body.append(
            [
                e.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                e.message_id[:8],
                (e.status, styles.get(e.status)),
                e.transport or "-",
                ", ".join(e.recipients),
                what,
                _one_line(
                    f"{e.error_kind}: {e.error or ''}" if e.status == "bounced" else e.error or ""
                ),
            ]
        )
    console.table(
        ["time", "message", "status", "transport", "to", "template/subject", "error"],
        body,
        indent="",
    )
    return EXIT_OK


# -- the outbox: worker and outbox list|retry|purge --------------------------------


def _outbox_path(args: argparse.Namespace) -> str:
    path = args.outbox or os.environ.get("NOTIFYKIT_OUTBOX", "").strip()
    if not path:
        raise ConfigurationError("no outbox: pass --outbox PATH or set NOTIFYKIT_OUTBOX")
    return str(path)


def _open_outbox(args: argparse.Namespace, *, must_exist: bool = True) -> Any:
    from pathlib import Path

    from notifykit.outbox import SQLiteOutbox

    path = _outbox_path(args)
    if must_exist and not Path(path).is_file():
        raise ConfigurationError(f"no outbox at {path!r}")
    return SQLiteOutbox(path)


def _duration(text: str, option: str) -> float:
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", text)
    if not match:
        raise ConfigurationError(
            f"{option} {text!r}: use a duration such as 500ms, 30s, 5m, 2h, 7d"
        )
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return float(match[1]) * unit[match[2]]


def cmd_worker(args: argparse.Namespace, console: _Console) -> int:
    """Deliver the outbox's due messages until SIGTERM or Ctrl-C (then finish the one in hand)."""
    import signal
    import threading

    from notifykit.config import notifier_from_env
    from notifykit.outbox import Backoff, Worker

    backoff = Backoff(
        initial=_duration(args.retry_initial, "--retry-initial"),
        maximum=_duration(args.retry_max, "--retry-max"),
        max_age=_duration(args.max_age, "--max-age"),
        max_attempts=args.max_attempts,
    )
    outbox = _open_outbox(args, must_exist=False)
    notifier = notifier_from_env()
    worker = Worker(
        outbox,
        notifier,
        poll_interval=_duration(args.poll_interval, "--poll-interval"),
        lease=_duration(args.lease, "--lease"),
        batch=args.batch,
        backoff=backoff,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    console.line(f"notifykit worker {worker.name} on {outbox.path}", "dim")
    try:
        worker.run(stop)
    finally:
        notifier.close()
        outbox.close()
    console.line(f"stopped: {worker.sent} sent, {worker.retried} retried, {worker.dead} dead")
    return EXIT_OK


def cmd_outbox_list(args: argparse.Namespace, console: _Console) -> int:
    """The latest rows of the outbox, newest first, with their state and last error."""
    if args.n < 0:
        raise ConfigurationError("-n must be 0 or more")
    outbox = _open_outbox(args)
    try:
        rows = outbox.list(args.state, limit=args.n)
        counts = outbox.counts()
    finally:
        outbox.close()
    if args.json:
        console.json({"counts": counts, "rows": [_entry_document(e) for e in rows]})
        return EXIT_OK
    console.line(", ".join(f"{k}: {v}" for k, v in counts.items()), "bold")
    styles = {"sent": "green", "dead": "red", "queued": "yellow", "leased": "cyan"}
    body: list[list[str | tuple[str, str | None]]] = [
        [
            e.id,
            (e.state, styles.get(e.state)),
            str(e.priority),
            str(e.attempts),
            e.due_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            ", ".join(e.recipients),
            e.template or e.subject or "",
            ("maybe" if e.maybe_delivered else ""),
            _one_line(e.last_error or ""),
        ]
        for e in rows
    ]
    console.table(
        ["id", "state", "prio", "tries", "due", "to", "template/subject", "dup?", "last error"],
        body,
        right=(2, 3),
        indent="",
    )
    return EXIT_OK


def _entry_document(entry: Any) -> dict[str, Any]:
    import attrs

    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in attrs.asdict(entry).items()
    }


def cmd_outbox_retry(args: argparse.Namespace, console: _Console) -> int:
    """Queue dead-lettered rows again (named ids, or --all)."""
    if not args.ids and not args.all:
        raise ConfigurationError(
            "name the rows to retry (ids from 'notifykit outbox list') or --all"
        )
    outbox = _open_outbox(args)
    try:
        count = outbox.retry(None if args.all else args.ids)
    finally:
        outbox.close()
    if args.json:
        console.json({"retried": count})
    else:
        console.line(f"{count} dead row(s) queued again")
    return EXIT_OK if count or args.all else EXIT_FAILED


def cmd_outbox_purge(args: argparse.Namespace, console: _Console) -> int:
    """Delete finished rows: sent (default), dead or both, older than --older-than."""
    states = ("sent", "dead") if args.state == "all" else (args.state,)
    older = _duration(args.older_than, "--older-than")
    outbox = _open_outbox(args)
    try:
        count = outbox.purge(states, older_than=older)
    finally:
        outbox.close()
    if args.json:
        console.json({"purged": count})
    else:
        console.line(f"{count} row(s) deleted")
    return EXIT_OK


def cmd_outbox_help(args: argparse.Namespace, console: _Console) -> int:
    """``notifykit outbox`` without a subcommand: say which ones exist."""
    args.outbox_parser.print_usage(console.err)
    console.err.write("notifykit outbox: error: choose a subcommand: list, retry or purge\n")
    return EXIT_USAGE


def _add_outbox_commands(
    command: Callable[[str, str, Callable[..., int]], argparse.ArgumentParser],
) -> None:
    path_help = "the SQLite outbox file (default: NOTIFYKIT_OUTBOX)"
    p = command(
        "worker", "deliver the outbox's due messages (transports from NOTIFYKIT_*)", cmd_worker
    )
    p.add_argument("--outbox", metavar="PATH", help=path_help)
    p.add_argument("--poll-interval", default="1s", metavar="T", help="idle poll (default 1s)")
    p.add_argument("--lease", default="60s", metavar="T", help="row lease (default 60s)")
    p.add_argument("--batch", type=int, default=10, metavar="N", help="rows per claim (10)")
    p.add_argument("--retry-initial", default="1m", metavar="T", help="first retry wait (1m)")
    p.add_argument("--retry-max", default="1h", metavar="T", help="longest retry wait (1h)")
    p.add_argument("--max-age", default="2d", metavar="T", help="dead-letter after (2d)")
    p.add_argument("--max-attempts", type=int, metavar="N", help="dead-letter after N tries")

    p = command("outbox", "list, re-drive or purge the rows of the outbox", cmd_outbox_help)
    sub = p.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="the latest rows and their state")
    ls.set_defaults(func=cmd_outbox_list)
    ls.add_argument("--state", choices=("queued", "leased", "sent", "dead"))
    ls.add_argument("-n", type=int, default=50, metavar="N", help="how many (default 50)")
    retry = sub.add_parser("retry", help="queue dead rows again")
    retry.set_defaults(func=cmd_outbox_retry)
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all", action="store_true", help="every dead row")
    purge = sub.add_parser("purge", help="delete finished rows")
    purge.set_defaults(func=cmd_outbox_purge)
    purge.add_argument("--state", choices=("sent", "dead", "all"), default="sent")
    purge.add_argument("--older-than", default="7d", metavar="T", help="default 7d")
    for q in (ls, retry, purge):
        q.add_argument("--outbox", metavar="PATH", help=path_help)
        q.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(outbox_parser=p)


# -- suppress -------------------------------------------------------------------


def _open_suppression(db: str | None, create: bool) -> Any:
    from notifykit.suppression import SQLiteSuppressionList

    path = db if db is not None else _sqlite_from_env()
    if "\0" in path:
        raise ConfigurationError(f"--db {path!r}: a path cannot hold a NUL character")
    if not create and not os.path.isfile(path):
        raise ConfigurationError(f"no suppression list at {path} (pass --db)")
    return SQLiteSuppressionList(path)


def cmd_suppress_list(args: argparse.Namespace, console: _Console) -> int:
    """The suppressed recipients, oldest first."""
    with _open_suppression(args.db, create=False) as store:
        entries = store.entries()
    if args.json:
        console.json(
            [
                {
                    "recipient": e.recipient,
                    "reason": e.reason,
                    "source": e.source,
                    "created_at": e.created_at.isoformat(),
                }
                for e in entries
            ]
        )
        return EXIT_OK
    if not entries:
        console.line("(the suppression list is empty)", "dim")
        return EXIT_OK
    body: list[list[str | tuple[str, str | None]]] = [
        [
            e.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            e.recipient,
            e.source,
            _one_line(e.reason),
        ]
        for e in entries
    ]
    console.table(["since", "recipient", "source", "reason"], body, indent="")
    return EXIT_OK


def cmd_suppress_add(args: argparse.Namespace, console: _Console) -> int:
    """Suppress recipients by hand."""
    with _open_suppression(args.db, create=True) as store:
        for recipient in args.recipients:
            added = store.add(recipient, args.reason, source="manual")
            console.line(f"{'added' if added else 'already suppressed'}: {recipient}")
    return EXIT_OK


def cmd_suppress_remove(args: argparse.Namespace, console: _Console) -> int:
    """Lift suppressions; exit 1 if a recipient was not suppressed."""
    missing = 0
    with _open_suppression(args.db, create=False) as store:
        for recipient in args.recipients:
            if store.remove(recipient):
                console.line(f"removed: {recipient}")
            else:
                missing += 1
                console.line(f"not suppressed: {recipient}", "yellow")
    return EXIT_FAILED if missing else EXIT_OK


def cmd_suppress_import(args: argparse.Namespace, console: _Console) -> int:
    """Suppress every recipient of a file (one a line, or CSV ``recipient,reason``)."""
    from notifykit.suppression import read_import

    rows = read_import(_read_text(args.file, "import file"))
    added = 0
    bad: list[str] = []
    with _open_suppression(args.db, create=True) as store:
        for recipient, reason in rows:
            try:
                added += bool(store.add(recipient, reason, source="import"))
            except ConfigurationError:
                bad.append(recipient)
    if args.json:
        console.json({"read": len(rows), "added": added, "invalid": bad})
    else:
        console.line(
            f"{added} added, {len(rows) - added - len(bad)} already suppressed, "
            f"{len(bad)} invalid ({len(rows)} read)"
        )
        for recipient in bad[:20]:
            console.line(f"  not an address or a number: {_one_line(recipient)}", "yellow")
    return EXIT_FAILED if bad else EXIT_OK


def _add_suppress_commands(sub: Any, add_json: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "suppress",
        help="the suppression list: list, add, remove, import",
        description="Recipients notifykit refuses to send to (hard bounces, complaints).",
    )
    p.set_defaults(func=lambda args, console: _usage(p, console, "list, add, remove or import"))
    cmds = p.add_subparsers(dest="suppress_command", metavar="SUBCOMMAND")
    db_help = "SQLite file (default: NOTIFYKIT_LOG's sqlite URL, else ./notifykit.db)"
    c = cmds.add_parser("list", help="the suppressed recipients")
    c.set_defaults(func=cmd_suppress_list)
    add_json(c)
    c.add_argument("--db", metavar="PATH", help=db_help)
    c = cmds.add_parser("add", help="suppress recipients")
    c.set_defaults(func=cmd_suppress_add)
    c.add_argument("recipients", nargs="+", metavar="RECIPIENT")
    c.add_argument("--reason", default="added by hand", help="why (shown by list)")
    c.add_argument("--db", metavar="PATH", help=db_help)
    c = cmds.add_parser("remove", help="lift suppressions")
    c.set_defaults(func=cmd_suppress_remove)
    c.add_argument("recipients", nargs="+", metavar="RECIPIENT")
    c.add_argument("--db", metavar="PATH", help=db_help)
    c = cmds.add_parser("import", help="suppress each recipient of a file")
    c.set_defaults(func=cmd_suppress_import)
    c.add_argument("file", metavar="FILE", help="one recipient a line, or CSV recipient,reason")
    c.add_argument("--db", metavar="PATH", help=db_help)
    add_json(c)


def _usage(parser: argparse.ArgumentParser, console: _Console, choices: str) -> int:
    parser.print_usage(console.err)
    console.err.write(f"error: choose a subcommand: {choices}\n")
    return EXIT_USAGE


# -- the parser -----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notifykit",
        description="Transactional e-mail and SMS: try it, send, preview, check, read the log.",
        epilog="Start with: notifykit demo.  Exit codes: 0 ok, 1 not delivered / check "
        "failed, 2 usage or configuration error, 3 (send) only a console/file/memory transport "
        "took a message after a real one failed.",
    )
    parser.add_argument("--version", action="version", version=f"notifykit-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    def add_json(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON document")

    p = command(
        "demo",
        "send a bundled order confirmation through a failover into a local SMTP server "
        "(needs notifykit-py[demo])",
        cmd_demo,
    )
    p.add_argument("--db", metavar="PATH", help="SQLite log file (default: a new temporary file)")
    p.add_argument("--messages", type=int, default=3, metavar="N", help="messages (default 3)")
    add_json(p)

    p = command("send", "send an e-mail (to addresses, or to each row of a CSV file)", cmd_send)
    p.add_argument("--to", action="append", metavar="ADDR[,ADDR]", help="recipients")
    p.add_argument("--csv", metavar="FILE", help="one message per row; column 'email' + context")
    p.add_argument("--subject", help="the subject (a template's own subject by default)")
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--text", help="the plain-text body")
    body.add_argument("--html-file", metavar="FILE", help="the HTML body, from a file")
    body.add_argument("--template", metavar="NAME", help="render this template")
    p.add_argument("--context", metavar="FILE", help="template context: a JSON object")
    p.add_argument("--templates", metavar="DIR", help="template directory (default: bundled)")
    p.add_argument(
        "--locale", metavar="LOCALE", help="render --template in this language ('hi', 'ta_IN')"
    )
    p.add_argument("--from", dest="sender", metavar="SENDER", help="the From address")
    p.add_argument("--via", metavar="URL", help="transport URL (default: NOTIFYKIT_EMAIL_URL)")
    p.add_argument("--cc", action="append", metavar="ADDR[,ADDR]", help="copy recipients")
    p.add_argument("--bcc", action="append", metavar="ADDR[,ADDR]", help="blind copy recipients")
    p.add_argument("--reply-to", action="append", metavar="ADDR[,ADDR]", help="Reply-To")
    p.add_argument(
        "--attach", action="append", metavar="FILE", help="attach a file (repeat for more)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="render and validate every message, send nothing, log nothing",
    )
    p.add_argument(
        "--rate", metavar="N/s", help="send at most this many messages per s, min or h ('5/s')"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="CSV rows sent at once (default 4; the rate still applies)",
    )
    add_json(p)

    p = command("render", "render a template to HTML, text and SMS preview files", cmd_render)
    p.add_argument("name", metavar="NAME", help="the template name")
    p.add_argument("--context", metavar="FILE", help="template context: a JSON object")
    p.add_argument("--templates", metavar="DIR", help="template directory (default: bundled)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where to write NAME.preview.html/.txt/.sms.txt (default: a new temporary folder)",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite existing previews (never a template)"
    )
    p.add_argument("--open", action="store_true", help="open the HTML preview in a browser")
    add_json(p)

    p = command("preview", "serve a live preview of every template in a browser", cmd_preview)
    p.add_argument("--templates", metavar="DIR", help="template directory (default: bundled)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8025, metavar="N", help="port (default 8025)")
    p.add_argument("--send-via", metavar="URL", help="enable 'send a test' through this transport")
    p.add_argument("--send-from", metavar="ADDR", default="notifykit preview <preview@example.com>")
    p.add_argument("--verbose", action="store_true", help="log each request")

    p = command("check", "connect and authenticate to each transport without sending", cmd_check)
    p.add_argument(
        "urls", nargs="*", metavar="URL", help="default: NOTIFYKIT_EMAIL_URL, NOTIFYKIT_SMS_URL"
    )
    add_json(p)

    p = command("log", "read the SQLite delivery log", cmd_log_help)
    log = p.add_subparsers(dest="log_command", metavar="SUBCOMMAND")
    db_help = "SQLite file (default: NOTIFYKIT_LOG's sqlite URL, else ./notifykit.db)"
    stats = log.add_parser("stats", help="sent/failed counts and success rates")
    stats.set_defaults(func=cmd_log_stats)
    stats.add_argument("--db", metavar="PATH", help=db_help)
    stats.add_argument(
        "--by",
        choices=("template", "transport", "channel"),
        default="template",
        help="group by template (default) or channel, counting messages; or by transport, "
        "counting attempts (a failover's failed tries show up)",
    )
    stats.add_argument("--since", metavar="WHEN", help="30m, 12h, 7d, 2w or an ISO date")
    add_json(stats)
    tail = log.add_parser("tail", help="the latest events")
    tail.set_defaults(func=cmd_log_tail)
    tail.add_argument("--db", metavar="PATH", help=db_help)
    tail.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    add_json(tail)
    p.set_defaults(log_parser=p)
    _add_outbox_commands(command)
    _add_suppress_commands(sub, add_json)
    return parser


def cmd_log_help(args: argparse.Namespace, console: _Console) -> int:
    """``notifykit log`` without a subcommand: say which ones exist."""
    args.log_parser.print_usage(console.err)
    console.err.write("notifykit log: error: choose a subcommand: stats or tail\n")
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``notifykit`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    console = _Console()
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(console.err)
        return EXIT_USAGE
    try:
        return int(func(args, console))
    except NotifyKitError as exc:
        return _fail(console, exc)
    except KeyboardInterrupt:
        console.err.write("notifykit: interrupted\n")
        return 130
    except _LAST_RESORT as exc:
        # Bad input that reached a dependency unchecked (each known case is checked
        # where it arises): one line, exit 2, never a traceback.
        return _fail(console, exc)


#: Errors of the standard library and dependencies that bad input can cause and
#: that ``main()`` reports as one line (exit 2) rather than as a traceback.
_LAST_RESORT = (UnicodeError, OverflowError, RecursionError, ValueError, AttributeError)


def _fail(console: _Console, exc: BaseException) -> int:
    from notifykit.config import mask_url

    if isinstance(exc, ConfigurationError):
        kind = "error"
    elif isinstance(exc, NotifyKitError):
        kind = type(exc).__name__
    else:
        kind = f"error: {type(exc).__name__}"
    try:
        text = str(exc)
    except Exception:
        text = "(no description)"
    message = mask_url(_one_line(text.replace("\0", "\\0")))
    console.err.write(f"notifykit: {kind}: {message}\n")
    return EXIT_FAILED if isinstance(exc, DeliveryError) else EXIT_USAGE
