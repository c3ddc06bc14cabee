"""The preview web app: a WSGI callable, and the request handling Django and Flask reuse.

Routes (under the mount point):

- ``/``: every template and its sample cases;
- ``/view/<template>?case=<name>``: one template rendered with one case;
- ``/api/state``: ``{"version": ...}``, which changes when any file under the
  templates folder changes (the page polls it for live reload);
- ``/send`` (POST): send the rendered case through the configured transport,
  only when one was configured, and only with the page's CSRF token.

Everything from a template, a sample or an error is escaped before it goes
into the page; the e-mail itself goes into a ``sandbox`` iframe's ``srcdoc``,
where it can run no script.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from notifykit.errors import NotifyKitError, TemplateError
from notifykit.message import SMS, Email
from notifykit.preview._checks import GMAIL_CLIP_BYTES, inspect_html
from notifykit.preview._samples import Case, Samples
from notifykit.templates import Rendered, TemplateRenderer

__all__ = ["PreviewApp", "Request", "Response"]

#: The two widths the HTML is shown at (CSS pixels): a desktop client and a phone.
WIDTHS = {"desktop": 600, "mobile": 375}
#: The sample recipient used to build the MIME source and to count the SMS.
SAMPLE_TO = "preview@example.com"
SAMPLE_PHONE = "+919812345678"
_MAX_FORM = 64 * 1024

_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.I)


def _bundled_folder() -> Path:
    import notifykit.templates

    return Path(notifykit.templates.__file__).resolve().parent / "bundled"


def dark_variant(document: str) -> str:
    """``document`` as a client in dark mode shows it: its dark media queries always apply.

    A sandboxed iframe follows the page's colour scheme, not a button, so the
    dark view rewrites ``(prefers-color-scheme: dark)`` to a query that always
    matches, and ``(prefers-color-scheme: light)`` to one that never does.
    """
    document = _DARK.sub("(min-width: 0px)", document)
    return _LIGHT.sub("(min-width: 100000px)", document)


@dataclass
class Request:
    """The parts of an HTTP request the preview looks at (framework-neutral)."""

    method: str
    path: str  # below the mount point, starting with "/"
    prefix: str = ""  # the mount point, without a trailing slash
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None


@dataclass
class Response:
    """What the preview answers: a status, headers and a body."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json_for_script(value: object) -> str:
    """JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class PreviewApp:
    """Preview the templates of a folder in a browser.

    Args:
        templates: the templates folder (default: notifykit's bundled templates).
        renderer: the renderer to use (default: ``TemplateRenderer.from_directory``
            over ``templates``, re-reading a template as soon as it changes).
        send_via: a transport (or its URL) for the "send a test" button; without
            one the button is not shown and ``/send`` refuses.
        send_from: the From address of test sends.
        allowed_hosts: when given, requests whose ``Host`` is not one of these
            are refused (a DNS-rebinding guard for the loopback server).
        poll_interval: how often the page asks whether a file changed, in seconds.
    """

    def __init__(
        self,
        templates: str | Path | None = None,
        *,
        renderer: TemplateRenderer | None = None,
        send_via: Any = None,
        send_from: str = "notifykit preview <preview@example.com>",
        allowed_hosts: Iterable[str] | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        root = Path(templates) if templates is not None else _bundled_folder()
        if not root.is_dir():
            from notifykit.errors import ConfigurationError

            raise ConfigurationError(f"the templates folder {str(root)!r} is not a directory")
        self.root = root
        self.samples = Samples(root)
        self.renderer = renderer or TemplateRenderer.from_directory(root, reload_interval=0.0)
        if isinstance(send_via, str):
            from notifykit.config import from_dsn

            send_via = from_dsn(send_via)
        self.transport = send_via
        self.send_from = send_from
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.poll_interval = poll_interval
        self.csrf_token = secrets.token_urlsafe(32)

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The WSGI entry point."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        form: dict[str, str] = {}
        too_big = False
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > _MAX_FORM:
                too_big = True
            elif length > 0:
                raw = environ["wsgi.input"].read(length).decode("utf-8", "replace")
                form = {k: v[0] for k, v in parse_qs(raw).items()}
        request = Request(
            method=method,
            path=environ.get("PATH_INFO", "") or "/",
            prefix=environ.get("SCRIPT_NAME", "").rstrip("/"),
            query=query,
            form=form,
            host=environ.get("HTTP_HOST"),
        )
        response = self._text(413, "the form is too large") if too_big else self.handle(request)
        headers = [("Content-Type", response.content_type), *response.headers.items()]
        headers.append(("Content-Length", str(len(response.body))))
        status = f"{response.status} {_REASONS.get(response.status, 'OK')}"
        start_response(status, headers)
        return [response.body]

    # ------------------------------------------------------------------ routing
    def handle(self, request: Request) -> Response:
        """Answer one request (the WSGI app, the Django view and the Flask blueprint call this)."""
        if self.allowed_hosts is not None:
            host = (request.host or "").lower()
            bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host not in self.allowed_hosts and bare not in self.allowed_hosts:
                return self._text(400, "this host name is not allowed (DNS-rebinding guard)")
        path = request.path or "/"
        if path == "/api/state":
            body = json.dumps({"version": self.samples.fingerprint()}).encode()
            return Response(200, body, "application/json", {"Cache-Control": "no-store"})
        if path == "/send":
            if request.method != "POST":
                return self._text(405, "POST only")
            return self._send(request)
        if request.method not in ("GET", "HEAD"):
            return self._text(405, "GET only")
        if path in ("/", ""):
            return self._page(request, "templates", self._index(request))
        if path.startswith("/view/"):
            name = path[len("/view/") :]
            if name not in self.samples.templates():
                return self._text(404, f"no template {name!r}")
            return self._view(request, name, request.query.get("case"))
        return self._text(404, "not found")

    def _text(self, status: int, text: str) -> Response:
        return Response(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    # ------------------------------------------------------------------ pages
    def _url(self, request: Request, path: str, **query: str) -> str:
        url = request.prefix + path
        if query:
            url += "?" + urlencode(query)
        return url

    def _page(self, request: Request, title: str, body: str, status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(16)
        state = _json_for_script(
            {
                "state": self._url(request, "/api/state"),
                "version": self.samples.fingerprint(),
                "interval": int(self.poll_interval * 1000),
            }
        )
        document = PAGE.format(
            title=_e(title),
            nonce=nonce,
            css=CSS,
            js=JS,
            home=_e(self._url(request, "/")),
            body=body,
            config=state,
        )
        csp = (
            "default-src 'none'; "
            f"script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src * data:; "
            "font-src * data:; connect-src 'self'; frame-src 'self' about: data:; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
        )
        headers = {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
        return Response(status, document.encode("utf-8"), headers=headers)

    def _index(self, request: Request) -> str:
        rows = []
        for name in self.samples.templates():
            cases = self.samples.cases(name)
            view = "/view/" + quote(name)
            links = " ".join(
                f'<a class="case" href="{_e(self._url(request, view, case=c.name))}">'
                f"{_e(c.name)}</a>"
                for c in cases
            )
            rows.append(
                f'<li><a class="template" href="{_e(self._url(request, "/view/" + quote(name)))}">'
                f"{_e(name)}</a> {links}</li>"
            )
        problem = self.samples.module_error()
        banner = f'<div class="error" id="module-error">{_e(problem)}</div>' if problem else ""
        listing = "".join(rows) or "<li>No templates in this folder.</li>"
        return (
            f'<h1>Templates</h1><p class="muted">{_e(self.root)}</p>{banner}'
            f'<ul id="templates">{listing}</ul>'
        )

    def _view(
        self,
        request: Request,
        name: str,
        case_name: str | None,
        notice: str = "",
        status: int = 200,
    ) -> Response:
        cases = self.samples.cases(name)
        case = next((c for c in cases if c.name == case_name), cases[0])
        locale = request.query.get("locale") or request.form.get("locale") or ""
        extra = {"locale": locale} if locale else {}
        view = "/view/" + quote(name)
        tabs = " ".join(
            f'<a href="{_e(self._url(request, view, case=c.name, **extra))}"'
            f"{' aria-current=page' if c is case else ''}>{_e(c.name)}</a>"
            for c in cases
        )
        head = (
            f'<h1 id="template-name">{_e(name)}</h1>'
            f'<p class="cases">Cases: {tabs} <span class="muted">from {_e(case.source)}</span></p>'
            f'<form method="get" action="{_e(self._url(request, view))}" id="locale-form">'
            f'<input type="hidden" name="case" value="{_e(case.name)}">'
            f'<label>Locale <input name="locale" value="{_e(locale)}" placeholder="en" '
            'size="8"></label> <button type="submit">Render</button></form>'
            f"{notice}"
        )
        try:
            rendered = self._render(name, case, locale or None)
        except TemplateError as exc:
            return self._page(request, name, head + self._error(exc), status)
        except _SampleError as exc:
            return self._page(
                request, name, head + f'<div class="error" id="error">{_e(exc)}</div>', status
            )
        return self._page(request, name, head + self._parts(request, name, case, rendered), status)

    def _render(self, name: str, case: Case, locale: str | None = None) -> Rendered:
        if case.error is not None:
            raise _SampleError(case.error)
        try:
            return self.renderer.render(name, case.context or {}, locale=locale)
        except TemplateError:
            raise
        except NotifyKitError as exc:  # anything else of ours, shown the same way
            raise TemplateError(str(exc), template=name) from exc

    def _error(self, exc: TemplateError) -> str:
        where = exc.template or "?"
        line = f", line {exc.lineno}" if exc.lineno else ""
        excerpt = ""
        if exc.template and exc.lineno:
            excerpt = self._excerpt(exc.template, exc.lineno)
        return (
            '<div class="error" id="error"><strong>Template error</strong> in '
            f'<code id="error-template">{_e(where)}</code><span id="error-line">{_e(line)}</span>'
            f'<pre id="error-message">{_e(exc)}</pre>{excerpt}</div>'
        )

    def _excerpt(self, template: str, lineno: int) -> str:
        path = self.root / template
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeError, ValueError):
            return ""
        start = max(lineno - 3, 0)
        shown = []
        for number in range(start, min(lineno + 2, len(lines))):
            mark = ' class="here"' if number + 1 == lineno else ""
            shown.append(f"<span{mark}>{number + 1:>4}  {_e(lines[number])}</span>")
        return '<pre class="excerpt">' + "\n".join(shown) + "</pre>"

    def _parts(self, request: Request, name: str, case: Case, rendered: Rendered) -> str:
        report = inspect_html(
            rendered.html, rendered.text, marketing=self.samples.is_marketing(name)
        )
        plan = self.renderer.explain(name)
        inbox = (
            '<div class="inbox" id="inbox"><span class="from">notifykit preview</span> '
            f'<span class="subject" id="subject">{_e(rendered.subject or "(no subject)")}</span>'
            f' <span class="preheader" id="preheader">{_e(report.preheader)}</span></div>'
        )
        buttons = (
            '<div class="toolbar">'
            '<span class="group">'
            f'<button type="button" data-width="{WIDTHS["desktop"]}" aria-pressed="true">'
            f"Desktop {WIDTHS['desktop']}</button>"
            f'<button type="button" data-width="{WIDTHS["mobile"]}" aria-pressed="false">'
            f"Mobile {WIDTHS['mobile']}</button></span>"
            '<span class="group">'
            '<button type="button" data-scheme="light" aria-pressed="true">Light</button>'
            '<button type="button" data-scheme="dark" aria-pressed="false">Dark</button></span>'
            "</div>"
        )
        tab_names = [("html", "HTML"), ("text", "Text"), ("sms", "SMS"), ("source", "Source")]
        tab_names += [("explain", "Explain"), ("checks", f"Checks ({len(report.warnings)})")]
        tabs = (
            '<div class="tabs" role="tablist">'
            + "".join(
                f'<button type="button" role="tab" data-tab="{key}" id="tab-{key}">{label}</button>'
                for key, label in tab_names
            )
            + "</div>"
        )
        panels = []
        if rendered.html is not None:
            docs = {"light": rendered.html, "dark": dark_variant(rendered.html)}
            frame = (
                f'<iframe id="frame" title="the e-mail" sandbox="allow-popups '
                f'allow-popups-to-escape-sandbox" srcdoc="{_e(rendered.html)}" '
                f'width="{WIDTHS["desktop"]}" height="900"></iframe>'
                f'<script type="application/json" id="nk-docs">{_json_for_script(docs)}</script>'
            )
        else:
            frame = '<p class="muted" id="frame-missing">This template has no HTML part.</p>'
        panels.append(("html", buttons + f'<div class="stage" id="stage">{frame}</div>'))
        panels.append(("text", f'<pre id="text">{_e(rendered.text or "(no text part)")}</pre>'))
        panels.append(("sms", self._sms(rendered.sms)))
        panels.append(("source", f'<pre id="source">{_e(self._mime(rendered))}</pre>'))
        panels.append(("explain", self._explain(plan, rendered)))
        size = (
            f'<p id="size">HTML: {report.html_bytes:,} bytes '
            f"({report.html_bytes / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB "
            f"before it clips)</p>"
        )
        warnings = "".join(f"<li>{_e(w)}</li>" for w in report.warnings) or "<li>none</li>"
        panels.append(("checks", size + f'<ul id="warnings">{warnings}</ul>'))
        body = "".join(
            f'<section class="panel" id="panel-{key}" data-panel="{key}">{content}</section>'
            for key, content in panels
        )
        return inbox + tabs + body + self._send_form(request, name, case, rendered)

    def _sms(self, body: str | None) -> str:
        if not body:
            return '<p id="sms-missing" class="muted">This template has no sms block.</p>'
        try:
            sms = SMS(to=SAMPLE_PHONE, body=body)
        except NotifyKitError as exc:
            return f'<div class="error">{_e(exc)}</div>'
        units = len(body.encode("utf-16-le")) // 2
        forcing = ""
        if sms.encoding != "GSM-7":
            unique = {ch: label for _i, ch, label in sms.ucs2_characters}
            shown = list(unique.items())[:6]
            more = f" and {len(unique) - len(shown)} more" if len(unique) > len(shown) else ""
            listed = ", ".join(f"<code>{_e(ch)}</code> ({_e(label)})" for ch, label in shown)
            forcing = f'<p id="sms-ucs2">Characters outside GSM-7: {listed}{_e(more)}</p>'

        return (
            f'<pre id="sms">{_e(body)}</pre>'
            f'<p id="sms-facts"><span id="sms-encoding">{_e(sms.encoding)}</span> · '
            f'<span id="sms-chars">{units}</span> characters · '
            f'<span id="sms-segments">{sms.segments}</span> segment'
            f"{'' if sms.segments == 1 else 's'}</p>{forcing}"
        )

    def _mime(self, rendered: Rendered) -> str:
        if rendered.html is None and not rendered.text:
            return "(no e-mail part: this template renders an SMS only)"
        try:
            email = Email(
                to=SAMPLE_TO,
                sender=self.send_from,
                subject=rendered.subject or "(no subject)",
                html=rendered.html,
                text=rendered.text,
                id="preview@notifykit.invalid",
            )
            return email.to_bytes().decode("utf-8", "replace")
        except NotifyKitError as exc:
            return f"cannot build the MIME message: {exc}"

    def _explain(self, plan: Any, rendered: Rendered) -> str:
        def row(label: str, strategy: str, reason: str | None) -> str:
            why = _e(reason) if reason else "—"
            return f"<tr><th>{label}</th><td>{_e(strategy)}</td><td>{why}</td></tr>"

        return (
            '<table id="explain"><tr><th></th><th>strategy</th><th>why</th></tr>'
            + row("CSS (plan)", plan.strategy, plan.reason)
            + row("text (plan)", plan.text_strategy, plan.text_reason)
            + row("CSS (this render)", rendered.strategy, rendered.reason)
            + row("text (this render)", rendered.text_strategy, None)
            + f"</table><p>Parts: {_e(', '.join(plan.parts))}</p>"
            + '<p class="muted">compiled: the CSS was inlined once per template; '
            "per_message: inlined for each message (slower), for the reason shown.</p>"
        )

    def _send_form(self, request: Request, name: str, case: Case, rendered: Rendered) -> str:
        del rendered  # the form re-renders on the server: nothing of the page is trusted
        if self.transport is None:
            return (
                '<p class="muted" id="send-off">Sending a test is off: start the preview '
                "with <code>--send-via URL</code> to enable it.</p>"
            )
        return (
            f'<form method="post" action="{_e(self._url(request, "/send"))}" id="send">'
            f'<input type="hidden" name="csrf" value="{_e(self.csrf_token)}">'
            f'<input type="hidden" name="template" value="{_e(name)}">'
            f'<input type="hidden" name="case" value="{_e(case.name)}">'
            f'<input type="hidden" name="locale" value="{_e(request.query.get("locale", ""))}">'
            '<label>Send a test to <input type="email" name="to" required></label> '
            f'<button type="submit">Send via {_e(getattr(self.transport, "name", "transport"))}'
            "</button></form>"
        )

    # ------------------------------------------------------------------ sending
    def _send(self, request: Request) -> Response:
        if self.transport is None:
            return self._text(403, "sending is off (start the preview with --send-via URL)")
        token = request.form.get("csrf", "")
        if not hmac.compare_digest(token.encode(), self.csrf_token.encode()):
            return self._text(403, "missing or wrong CSRF token: reload the page")
        name = request.form.get("template", "")
        if name not in self.samples.templates():
            return self._text(404, f"no template {name!r}")
        case_name = request.form.get("case")
        cases = self.samples.cases(name)
        case = next((c for c in cases if c.name == case_name), cases[0])
        try:
            rendered = self._render(name, case, request.form.get("locale") or None)
            email = Email(
                to=request.form.get("to", ""),
                sender=self.send_from,
                subject=rendered.subject or "(no subject)",
                html=rendered.html,
                text=rendered.text,
            )
            receipt = self.transport.send(email)
        except (NotifyKitError, _SampleError) as exc:
            notice = f'<div class="error" id="send-result">Not sent: {_e(exc)}</div>'
            return self._view(request, name, case.name, notice, status=400)
        notice = (
            f'<div class="ok" id="send-result">Sent to {_e(", ".join(email.to))} via '
            f"{_e(receipt.transport)} (id {_e(receipt.message_id)})</div>"
        )
        return self._view(request, name, case.name, notice)


class _SampleError(Exception):
    """The sample data could not be loaded (shown in the page)."""


CSS = """
:root { color-scheme: light; font: 15px/1.45 system-ui, sans-serif; color: #1d2433; }
body { margin: 0; background: #f3f4f7; }
header { background: #1d2433; color: #fff; padding: 10px 20px; display: flex; gap: 16px; }
header a { color: #fff; }
main { padding: 16px 20px; max-width: 1100px; }
h1 { font-size: 20px; margin: 8px 0; }
.muted { color: #5b6472; }
.error { background: #fdecea; border: 1px solid #e0a39b; color: #7a1d12; padding: 10px 14px;
         border-radius: 6px; margin: 10px 0; }
.ok { background: #e7f6ec; border: 1px solid #9fd4b0; color: #145a2c; padding: 10px 14px;
      border-radius: 6px; margin: 10px 0; }
.excerpt .here { background: #f6c5bd; display: inline-block; width: 100%; }
.inbox { background: #fff; border: 1px solid #d7dbe2; border-radius: 6px; padding: 10px 14px;
         white-space: nowrap; overflow: hidden; text-overflow: ellipsis; margin: 10px 0; }
.inbox .from { font-weight: 600; margin-right: 10px; }
.inbox .subject { font-weight: 600; }
.inbox .preheader { color: #5b6472; }
.inbox .preheader:not(:empty)::before { content: "— "; }
.tabs { display: flex; gap: 4px; border-bottom: 1px solid #c9ced8; margin-top: 12px; }
.tabs button { border: 1px solid transparent; background: none; padding: 6px 12px;
               font: inherit; color: #1d2433; cursor: pointer; border-radius: 6px 6px 0 0; }
.tabs button[aria-selected=true] { border-color: #c9ced8; border-bottom-color: #f3f4f7;
                                   background: #f3f4f7; font-weight: 600; margin-bottom: -1px; }
.panel { padding: 12px 0; }
.panel[hidden] { display: none; }
.toolbar { display: flex; gap: 14px; margin-bottom: 10px; }
.toolbar button { font: inherit; padding: 4px 10px; border: 1px solid #9aa3b2; background: #fff;
                  color: #1d2433; border-radius: 4px; cursor: pointer; }
.toolbar button[aria-pressed=true] { background: #1d2433; color: #fff; }
.stage { background: #e4e7ec; padding: 12px; border-radius: 6px; overflow: auto; }
.stage.dark { background: #2b2f36; }
iframe { display: block; border: 0; background: #fff; margin: 0 auto; }
.stage.dark iframe { background: #121212; color-scheme: dark; }
pre { background: #fff; border: 1px solid #d7dbe2; padding: 10px; border-radius: 6px;
      white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d7dbe2; padding: 4px 8px; text-align: left; }
#templates li { margin: 6px 0; }
a.case { font-size: 13px; margin-left: 6px; }
.cases a[aria-current] { font-weight: 600; }
#reload { font-size: 13px; margin-left: auto; }
"""

JS = """
(function () {
  const config = JSON.parse(document.getElementById('nk-config').textContent);
  const docsEl = document.getElementById('nk-docs');
  const docs = docsEl ? JSON.parse(docsEl.textContent) : null;
  const frame = document.getElementById('frame');
  const stage = document.getElementById('stage');
  const state = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  function save() { history.replaceState(null, '', '#' + new URLSearchParams(state)); }
  function press(attr, value) {
    document.querySelectorAll('[' + attr + ']').forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute(attr) === value));
    });
  }
  function setWidth(w) {
    state.width = w; press('data-width', w);
    if (frame) frame.width = w;
    save();
  }
  function setScheme(s) {
    state.scheme = s; press('data-scheme', s);
    if (frame && docs) frame.srcdoc = docs[s];
    if (stage) stage.classList.toggle('dark', s === 'dark');
    save();
  }
  function setTab(t) {
    const panels = document.querySelectorAll('[data-panel]');
    if (!panels.length) return;
    if (!document.querySelector('[data-panel="' + t + '"]')) t = 'html';
    state.tab = t;
    panels.forEach(function (p) { p.hidden = p.getAttribute('data-panel') !== t; });
    document.querySelectorAll('[data-tab]').forEach(function (b) {
      b.setAttribute('aria-selected', String(b.getAttribute('data-tab') === t));
    });
    save();
  }
  document.querySelectorAll('[data-width]').forEach(function (b) {
    b.addEventListener('click', function () { setWidth(b.getAttribute('data-width')); });
  });
  document.querySelectorAll('[data-scheme]').forEach(function (b) {
    b.addEventListener('click', function () { setScheme(b.getAttribute('data-scheme')); });
  });
  document.querySelectorAll('[data-tab]').forEach(function (b) {
    b.addEventListener('click', function () { setTab(b.getAttribute('data-tab')); });
  });
  if (state.width) setWidth(state.width);
  if (state.scheme && state.scheme !== 'light') setScheme(state.scheme);
  setTab(state.tab || 'html');
  const indicator = document.getElementById('reload');
  async function poll() {
    try {
      const r = await fetch(config.state, {cache: 'no-store'});
      const j = await r.json();
      if (j.version !== config.version) {
        indicator.textContent = 'reloading…'; location.reload(); return;
      }
      indicator.textContent = 'live';
    } catch (e) { indicator.textContent = 'offline'; }
    setTimeout(poll, config.interval);
  }
  setTimeout(poll, config.interval);
})();
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · notifykit preview</title>
<style>{css}</style></head>
<body><header><a href="{home}">notifykit preview</a>
<span id="reload" aria-live="polite">live</span></header>
<main>{body}</main>
<script type="application/json" id="nk-config">{config}</script>
<script nonce="{nonce}">{js}</script>
</body></html>
"""
