"""The page checker itself catches what it is meant to catch (else the layout tests prove nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.browser.chromium import Browser

# The bug of the first bundled layout: the content's generic link colour outranks
# the button's white text, so the button is an empty blue box.
OLD_BUTTON = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>.c a { color: #1d4ed8; } .b { color: #ffffff; background: #1d4ed8; padding: 12px; }
@media (prefers-color-scheme: dark) { body { background: #111827; color: #f9fafb; }
  .c a { color: #93c5fd !important; } }</style></head>
<body><div class="c"><p>Hello there, this text is fine.</p>
<a class="b" href="https://example.com/">View your order</a></div></body></html>"""

WIDE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><table width="500"><tr><td>A table 500 pixels wide</td></tr></table>
<p>Some text</p></body></html>"""

EMPTY_LINK = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body><p>Text</p><a href="https://example.com/"></a>
<a href="https://example.com/x"><img src="x.png" alt=""></a></body></html>"""

GOOD = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="background:#ffffff;color:#111111"><p>Fine text</p>
<a href="https://example.com/" style="color:#1d4ed8">A link</a>
<a href="https://example.com/y" aria-label="Home"><img src="y.png" alt="Home"></a></body></html>"""


def test_a_button_coloured_like_its_background_is_reported(browser: Browser) -> None:
    browser.load(OLD_BUTTON, width=600, dark=False)
    light = browser.check("light")
    browser.load(OLD_BUTTON, width=600, dark=True)
    dark = browser.check("dark")

    assert ["View your order"] == [c["text"] for c in light.contrast]
    assert 1.0 == light.contrast[0]["ratio"]
    assert ["View your order"] == [c["text"] for c in dark.contrast]
    assert 3.5 < dark.contrast[0]["ratio"] < 4.5  # light blue on blue: 3.7:1


def test_horizontal_overflow_at_375_is_reported(browser: Browser) -> None:
    browser.load(WIDE, width=375, dark=False)
    problems = browser.check("375")

    assert problems.overflow
    assert "document" == problems.overflow[0]["where"]
    browser.load(WIDE, width=600, dark=False)
    assert not browser.check("600").overflow


def test_links_without_visible_text_are_reported(browser: Browser) -> None:
    browser.load(EMPTY_LINK, width=600, dark=False)
    problems = browser.check("empty")

    assert ["https://example.com/", "https://example.com/x"] == [
        e["href"] for e in problems.empty_links
    ]


def test_a_good_page_passes(browser: Browser) -> None:
    browser.load(GOOD, width=375, dark=True)
    problems = browser.check("good")

    assert not problems, problems.describe()
    assert problems.texts >= 2


def test_the_page_cannot_reach_the_network(browser: Browser) -> None:
    """Remote images are blocked: a check never waits on (or leaks to) the network.

    The image is served on 127.0.0.1, which the browser could reach: only the
    blocked URLs (and the host-resolver rule; either suffices, neither fails
    this test) keep the request from being made.
    """
    import http.server
    import threading

    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c6360f8cf000000030101001827bd3a0000000049454e44ae426082"
    )
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/logo.png"
        page = f'<!DOCTYPE html><html><body><p>Text</p><img id="remote" src="{url}" alt="Logo"></body></html>'
        browser.load(page, width=600, dark=False)
        loaded = browser.driver.execute_script(
            "const i = document.getElementById('remote'); return i.complete && i.naturalWidth > 0;"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert loaded is False
    assert [] == requests
