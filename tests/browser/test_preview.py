"""The preview app in headless Chromium: index, templates, widths, dark mode, tabs, errors, reload.

The screenshots of this run go to ``$NOTIFYKIT_PREVIEW_SCREENSHOTS`` when set
(``docs/images`` makes the pictures of docs/preview.md), else to a temporary
folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from notifykit.preview import PreviewApp, make_preview_server, serve_in_thread
from tests.browser.chromium import BLOCKED_URLS
from tests.preview.samples import write_templates

if TYPE_CHECKING:
    from tests.browser.chromium import Browser

DARK_BODY = "rgb(17, 24, 39)"  # the bundled layout's dark background


@pytest.fixture
def site(browser: Browser, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A preview server on 127.0.0.1 over a fresh folder; the browser may load loopback http."""
    (tmp_path / "templates").mkdir()
    folder = write_templates(tmp_path / "templates")
    app = PreviewApp(folder, poll_interval=0.3)
    server = make_preview_server(app, "127.0.0.1", 0)
    serve_in_thread(server)
    driver = browser.driver
    # The shared browser blocks every http:// request; this test talks to its own
    # loopback server (other hosts still fail: the browser resolves no name).
    driver.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": [u for u in BLOCKED_URLS if u != "http://*"]}
    )
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"media": "screen", "features": [{"name": "prefers-color-scheme", "value": "light"}]},
    )
    try:
        # "localhost": the browser resolves no other name (its --host-resolver-rules).
        yield f"http://localhost:{server.server_address[1]}", folder
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED_URLS})
        server.shutdown()
        server.server_close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = os.environ.get("NOTIFYKIT_PREVIEW_SCREENSHOTS")
    path = Path(where) if where else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # the page is reloading
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def text_of(driver: Any, css: str) -> str:
    return str(
        driver.execute_script(
            "const e = document.querySelector(arguments[0]);return e ? e.innerText : null;", css
        )
    )


def shows_name(driver: Any, name: str) -> bool:
    return text_of(driver, "#template-name") == name


def click(driver: Any, css: str) -> None:
    driver.execute_script("document.querySelector(arguments[0]).click()", css)


def frame_body(driver: Any, script: str) -> Any:
    """Run ``script`` inside the e-mail's iframe (the srcdoc document)."""
    from selenium.webdriver.common.by import By

    driver.switch_to.frame(driver.find_element(By.ID, "frame"))
    try:
        return driver.execute_script(script)
    finally:
        driver.switch_to.default_content()


def visible_panel(driver: Any) -> str:
    return str(
        driver.execute_script(
            "return [...document.querySelectorAll('[data-panel]')]"
            ".filter(p => !p.hidden).map(p => p.dataset.panel).join(',')"
        )
    )


def test_the_preview_in_a_browser(browser: Browser, site: tuple[str, Path], shots: Path) -> None:
    """Index, each template, widths, dark mode, tabs, an error shown, an edit reloaded."""
    base, folder = site
    driver = browser.driver

    driver.get(base + "/")
    names = driver.execute_script(
        "return [...document.querySelectorAll('a.template')].map(a => a.textContent)"
    )
    assert ["invoice.html", "otp.txt", "promo.html", "receipt.html", "welcome.html"] == names
    browser.screenshot(shots / "preview-index.png")

    # Each template opens from the index and shows its name.
    for name in names:
        driver.get(base + "/")
        click(driver, f'a.template[href$="/view/{name}"]')
        wait_for(partial(shows_name, driver, str(name)), f"page of {name}")

    # welcome.html: the e-mail in the iframe, at 600 then 375, light then dark.
    driver.get(base + "/view/welcome.html")
    assert "Welcome to Chai & Co., Asha" == text_of(driver, "#subject")
    assert "html" == visible_panel(driver)
    assert "600" == driver.find_element("id", "frame").get_attribute("width")
    assert "Namaste Asha" in frame_body(driver, "return document.body.innerText")
    assert DARK_BODY != frame_body(driver, "return getComputedStyle(document.body).backgroundColor")
    browser.screenshot(shots / "preview-desktop-light.png")
    click(driver, 'button[data-width="375"]')
    assert "375" == driver.find_element("id", "frame").get_attribute("width")
    width = frame_body(driver, "return document.documentElement.clientWidth")
    assert 375 == width
    click(driver, 'button[data-scheme="dark"]')
    wait_for(
        lambda: (
            frame_body(driver, "return getComputedStyle(document.body).backgroundColor")
            == DARK_BODY
        ),
        "the dark e-mail",
    )
    assert "true" == driver.find_element(
        "css selector", 'button[data-scheme="dark"]'
    ).get_attribute("aria-pressed")
    browser.screenshot(shots / "preview-mobile-dark.png")
    click(driver, 'button[data-scheme="light"]')
    click(driver, 'button[data-width="600"]')

    # Tabs: text, SMS, source, explain, checks.
    click(driver, '[data-tab="text"]')
    assert "text" == visible_panel(driver)
    assert "Namaste Asha" in text_of(driver, "#text")
    click(driver, '[data-tab="sms"]')
    assert "GSM-7" == text_of(driver, "#sms-encoding")
    click(driver, '[data-tab="source"]')
    assert "multipart/alternative" in text_of(driver, "#source")
    click(driver, '[data-tab="explain"]')
    assert "compiled" in text_of(driver, "#explain")

    # The Hindi OTP: UCS-2 in the SMS tab.
    driver.get(base + "/view/otp.txt#tab=sms")
    assert "sms" == visible_panel(driver)
    assert "UCS-2" == text_of(driver, "#sms-encoding")
    browser.screenshot(shots / "preview-sms.png")

    # Marketing warnings in the checks tab.
    driver.get(base + "/view/promo.html?case=no+unsubscribe+link#tab=checks")
    assert "marketing template without an unsubscribe link" in text_of(driver, "#warnings")
    browser.screenshot(shots / "preview-checks.png")

    # A missing variable: shown in the page, with the template and the line.
    driver.get(base + "/view/invoice.html")
    assert "invoice.html" == text_of(driver, "#error-template")
    assert ", line 4" == text_of(driver, "#error-line")
    browser.screenshot(shots / "preview-error.png")

    # Live reload: break welcome.html while its page is open (text tab), then fix it.
    driver.get(base + "/view/welcome.html#tab=text")
    wait_for(lambda: text_of(driver, "#reload") == "live", "the first poll")
    template = folder / "welcome.html"
    original = template.read_text(encoding="utf-8")
    template.write_text(original.replace("{% endblock %}\n{% block sms %}", "{% block sms %}", 1))
    wait_for(lambda: text_of(driver, "#error-template") == "welcome.html", "the syntax error")
    assert "syntax error" in text_of(driver, "#error-message")
    template.write_text(original.replace("Namaste", "Vanakkam"), encoding="utf-8")
    wait_for(lambda: "Vanakkam Asha" in text_of(driver, "#text"), "the edited template")
    assert "text" == visible_panel(driver)  # the tab survived the reload
