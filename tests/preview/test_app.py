"""The preview app, called through WSGI directly (no server, no browser)."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from notifykit.errors import ConfigurationError
from notifykit.preview import GMAIL_CLIP_BYTES, PreviewApp, make_preview_server
from notifykit.preview.app import dark_variant
from notifykit.transports.memory import MemoryTransport
from tests.preview.samples import write_templates


def call(
    app: PreviewApp,
    path: str,
    *,
    method: str = "GET",
    query: str = "",
    form: dict[str, str] | None = None,
    host: str = "127.0.0.1:8025",
) -> tuple[int, dict[str, str], str]:
    """One request through the WSGI interface: (status, headers, body)."""
    from urllib.parse import urlencode

    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": host,
    }
    if form is not None:
        body = urlencode(form).encode()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    chunks = app(environ, start_response)
    return seen["status"], seen["headers"], b"".join(chunks).decode("utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_templates(tmp_path)


@pytest.fixture
def app(folder: Path) -> PreviewApp:
    return PreviewApp(folder)


def panel(page: str, key: str) -> str:
    match = re.search(rf'<section class="panel" id="panel-{key}"[^>]*>(.*?)</section>', page, re.S)
    assert match is not None, f"no {key} panel"
    return match.group(1)


def test_the_index_lists_templates_and_cases_but_not_layouts_or_samples(app: PreviewApp) -> None:
    """Every template is listed with its cases; layouts, _partials and sample files are not."""
    status, _, page = call(app, "/")
    assert 200 == status
    names = re.findall(r'class="template" href="[^"]*">([^<]+)</a>', page)
    assert ["invoice.html", "otp.txt", "promo.html", "receipt.html", "welcome.html"] == names
    assert "no unsubscribe link" in page
    assert "with unsubscribe link" in page
    assert "refunded" in page


def test_a_template_page_shows_every_part(app: PreviewApp) -> None:
    """Inbox line, HTML in a sandboxed srcdoc iframe, text, SMS facts, MIME source, explain."""
    status, headers, page = call(app, "/view/welcome.html")
    assert 200 == status
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert 'id="subject">Welcome to Chai &amp; Co., Asha</span>' in page
    assert 'id="preheader">Your account is ready: start with Masala chai.</span>' in page
    frame = re.search(r"<iframe [^>]*>", page)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "srcdoc=" in frame.group(0)
    assert 'width="600"' in frame.group(0)
    assert "Namaste Asha" in panel(page, "text")
    sms = panel(page, "sms")
    assert 'id="sms-encoding">GSM-7<' in sms
    assert 'id="sms-segments">1<' in sms
    source = panel(page, "source")
    assert "Content-Type: multipart/alternative" in source
    assert "Subject: Welcome to Chai &amp; Co., Asha" in source
    explain = panel(page, "explain")
    assert "CSS (plan)</th><td>compiled</td>" in explain
    assert 'id="size">HTML: ' in panel(page, "checks")


def test_sample_values_are_escaped_everywhere(app: PreviewApp, folder: Path) -> None:
    """A sample's <script> appears only as text: never as markup in the preview page."""
    hostile = {"shop": "S", "name": "A", "product": "P", "note": "<script>alert(1)</script>"}
    (folder / "welcome.preview.json").write_text(json.dumps(hostile), encoding="utf-8")
    _, _, page = call(app, "/view/welcome.html")
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel(page, "text")
    docs = re.search(r'<script type="application/json" id="nk-docs">(.*?)</script>', page, re.S)
    assert docs is not None
    light = json.loads(docs.group(1))["light"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in light  # escaped by the template itself


def test_a_hindi_sms_is_ucs2_and_counted_in_utf16_units(app: PreviewApp) -> None:
    """The Hindi OTP travels as UCS-2: its characters and 70/67 segments are shown."""
    _, _, page = call(app, "/view/otp.txt")
    sms = panel(page, "sms")
    body = "आपका OTP 482913 है। इसे किसी के साथ साझा न करें। - Chai & Co."
    assert 'id="sms-encoding">UCS-2<' in sms
    assert f'id="sms-chars">{len(body)}<' in sms
    assert 'id="sms-segments">1<' in sms
    assert "This template has no HTML part." in page
    distinct = {ch for ch in body if ord(ch) > 0x7F}
    assert f"and {len(distinct) - 6} more" in panel(page, "sms")  # six named, the rest counted
    assert "<li>none</li>" in panel(page, "checks")  # an SMS needs no text part


def test_a_missing_variable_is_shown_with_the_template_and_line(app: PreviewApp) -> None:
    """invoice.preview.json lacks invoice.total: the page names the template and line 4."""
    status, _, page = call(app, "/view/invoice.html")
    assert 200 == status
    assert 'id="error-template">invoice.html<' in page
    assert 'id="error-line">, line 4<' in page
    assert "total" in page
    assert '<span class="here">   4  &lt;p&gt;Total {{ invoice.total }}&lt;/p&gt;</span>' in page


def test_a_syntax_error_is_shown_not_a_500(app: PreviewApp, folder: Path) -> None:
    """An unclosed tag: 200, the error box, the line."""
    (folder / "welcome.html").write_text("{% block subject %}Hi\n{% if x %}\n", encoding="utf-8")
    status, _, page = call(app, "/view/welcome.html")
    assert 200 == status
    assert 'id="error-template">welcome.html<' in page
    assert "syntax error" in page


def test_marketing_templates_need_an_unsubscribe_link(app: PreviewApp) -> None:
    """Warnings: missing unsubscribe (marketing only), http:// link, image without alt/width."""
    _, _, page = call(app, "/view/promo.html", query="case=no+unsubscribe+link")
    warnings = panel(page, "checks")
    assert "marketing template without an unsubscribe link" in warnings
    assert "link over plain http://: http://shop.example/sale" in warnings
    assert "image without alt text: https://cdn.example/banner.png" in warnings
    assert "image without a width" in warnings
    _, _, page = call(app, "/view/promo.html", query="case=with+unsubscribe+link")
    assert "unsubscribe link" not in panel(page, "checks")
    _, _, page = call(app, "/view/welcome.html")
    assert "<li>none</li>" in panel(page, "checks")  # not marketing, no problems


def test_an_html_part_over_gmails_clip_is_flagged(app: PreviewApp, folder: Path) -> None:
    """Over 102 KB of HTML: the checks say Gmail clips it."""
    big = {"shop": "S", "name": "A", "product": "P", "note": "x" * (GMAIL_CLIP_BYTES + 10)}
    (folder / "welcome.preview.json").write_text(json.dumps(big), encoding="utf-8")
    _, _, page = call(app, "/view/welcome.html")
    assert "Gmail clips messages over 102 KB" in panel(page, "checks")


def test_toml_cases_share_top_level_values(app: PreviewApp) -> None:
    """receipt.preview.toml: two cases under _cases, the shop shared by both."""
    _, _, page = call(app, "/view/receipt.html", query="case=refunded")
    assert 'id="subject">Receipt R-2 from Chai &amp; Co.</span>' in page


def test_a_broken_previews_module_is_reported(app: PreviewApp, folder: Path) -> None:
    """previews.py raising on import: the index says so, the other templates still work."""
    (folder / "previews.py").write_text("raise RuntimeError('oops')\n", encoding="utf-8")
    _, _, page = call(app, "/")
    assert "previews.py: RuntimeError: oops" in page
    assert 200 == call(app, "/view/welcome.html")[0]


def test_a_broken_sample_file_is_shown_in_the_page(app: PreviewApp, folder: Path) -> None:
    """Invalid JSON in the sample: the page names the file, no 500."""
    (folder / "welcome.preview.json").write_text("{not json", encoding="utf-8")
    status, _, page = call(app, "/view/welcome.html")
    assert 200 == status
    assert "welcome.preview.json: JSONDecodeError" in page


def test_the_state_changes_when_a_template_changes(app: PreviewApp, folder: Path) -> None:
    """/api/state's version moves when a template is edited (the page then reloads)."""
    _, headers, body = call(app, "/api/state")
    before = json.loads(body)["version"]
    assert "application/json" == headers["Content-Type"]
    assert before == json.loads(call(app, "/api/state")[2])["version"]
    path = folder / "welcome.html"
    stat = path.stat()
    path.write_text(path.read_text() + "\n", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert before != json.loads(call(app, "/api/state")[2])["version"]


def test_sending_is_off_by_default(app: PreviewApp) -> None:
    """No transport: no form, and /send refuses."""
    _, _, page = call(app, "/view/welcome.html")
    assert 'id="send-off"' in page
    assert 'id="send"' not in page
    form = {"csrf": app.csrf_token, "template": "welcome.html", "to": "a@example.com"}
    assert 403 == call(app, "/send", method="POST", form=form)[0]


def test_send_a_test_needs_the_csrf_token(folder: Path) -> None:
    """With a transport: a wrong or missing token is refused; the page's token sends."""
    outbox = MemoryTransport()
    app = PreviewApp(folder, send_via=outbox)
    _, _, page = call(app, "/view/welcome.html")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = {"template": "welcome.html", "case": "default", "to": "asha@example.com"}
    assert 403 == call(app, "/send", method="POST", form={**form, "csrf": "nope"})[0]
    assert 403 == call(app, "/send", method="POST", form=form)[0]
    assert 0 == len(outbox)
    status, _, page = call(app, "/send", method="POST", form={**form, "csrf": token.group(1)})
    assert 200 == status
    assert 'id="send-result">Sent to asha@example.com via memory' in page
    assert 1 == len(outbox)
    sent = outbox.outbox[0]
    assert "Welcome to Chai & Co., Asha" == sent.subject  # type: ignore[union-attr]


def test_send_a_test_reports_a_bad_address(folder: Path) -> None:
    """A bad recipient: the page says why, nothing is sent."""
    outbox = MemoryTransport()
    app = PreviewApp(folder, send_via=outbox)
    form = {"csrf": app.csrf_token, "template": "welcome.html", "to": "not an address"}
    status, _, page = call(app, "/send", method="POST", form=form)
    assert 400 == status
    assert 'id="send-result">Not sent:' in page
    assert 0 == len(outbox)


def test_unknown_pages_and_methods(app: PreviewApp) -> None:
    """404 for an unknown template or path (no file outside the list is read), 405 for POST."""
    assert 404 == call(app, "/view/../../etc/passwd")[0]
    assert 404 == call(app, "/view/layouts/shop.html")[0]
    assert 404 == call(app, "/nope")[0]
    assert 405 == call(app, "/", method="POST", form={})[0]


def test_the_loopback_server_refuses_other_host_names(app: PreviewApp) -> None:
    """DNS-rebinding guard: Host must be a loopback name once bound to 127.0.0.1."""
    server = make_preview_server(app, "127.0.0.1", 0)
    try:
        assert 200 == call(app, "/", host="127.0.0.1:8025")[0]
        assert 200 == call(app, "/", host="localhost")[0]
        assert 400 == call(app, "/", host="attacker.example")[0]
    finally:
        server.server_close()


def test_the_bundled_templates_by_default() -> None:
    """No folder: notifykit's bundled order confirmation, with its sample data."""
    app = PreviewApp()
    _, _, page = call(app, "/view/order_confirmation.html")
    assert "Order A-10042 confirmed" in page
    assert 'id="sms-encoding">UCS-2<' in page  # the rupee sign


def test_a_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    """PreviewApp on a folder that does not exist: ConfigurationError."""
    with pytest.raises(ConfigurationError, match="not a directory"):
        PreviewApp(tmp_path / "missing")


def test_dark_variant_turns_on_the_dark_media_queries() -> None:
    """The dark view's queries always (dark) or never (light) match."""
    css = "@media (prefers-color-scheme: dark) { a {} } @media (prefers-color-scheme:light) {}"
    assert "@media (min-width: 0px) { a {} } @media (min-width: 100000px) {}" == dark_variant(css)


def test_a_locale_renders_the_languages_file(app: PreviewApp, folder: Path) -> None:
    """?locale=hi picks welcome.hi.html and sets lang/dir; a bad locale is shown, not a 500."""
    hindi = (folder / "welcome.html").read_text().replace("Namaste", "नमस्ते")
    (folder / "welcome.hi.html").write_text(hindi, encoding="utf-8")
    _, _, page = call(app, "/view/welcome.html", query="locale=hi")
    assert "नमस्ते Asha" in panel(page, "text")
    assert 'value="hi"' in page
    assert "lang=&quot;hi&quot; dir=&quot;ltr&quot;" in page
    status, _, page = call(app, "/view/welcome.html", query="locale=../x")
    assert 200 == status
    assert "not a locale name" in page
