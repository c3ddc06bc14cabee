"""Drive the system's Chromium (Debian's ``chromium`` + ``chromium-driver``) with Selenium.

Nothing is downloaded: Selenium is pointed at ``/usr/bin/chromium`` and
``/usr/bin/chromedriver`` (or ``NOTIFYKIT_CHROMIUM`` / ``NOTIFYKIT_CHROMEDRIVER``),
so Selenium Manager never runs. The browser starts headless with a fresh
profile and with every background service that would reach the network off.

:func:`inspect_page` runs :data:`CHECK_JS` in the page: it reports every piece
of visible text whose colour has a contrast under 4.5:1 against the background
it is drawn on, horizontal overflow, and links or buttons without visible text.
Used by ``tests/browser`` and ``scripts/screenshots.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHECK_JS",
    "Browser",
    "Problems",
    "browser_paths",
    "chromium_browser",
    "missing_browser",
]

#: Flags for a headless browser that talks to nothing but the page it is given.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",  # no DNS look-ups
)

#: Requests the page may not make: an e-mail's remote images or fonts stay unloaded.
BLOCKED_URLS = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]


def browser_paths() -> tuple[str | None, str | None]:
    """The Chromium binary and its driver, from the environment or the usual places."""
    browser = os.environ.get("NOTIFYKIT_CHROMIUM") or shutil.which("chromium")
    browser = browser or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = os.environ.get("NOTIFYKIT_CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (nox -s browser installs it)"
    browser, driver = browser_paths()
    if browser is None or driver is None:
        return "no chromium/chromedriver (apt-get install chromium chromium-driver)"
    return None


#: The page-side check. Returns {"contrast": [...], "overflow": [...], "empty_links": [...]}.
CHECK_JS = r"""
const MIN = arguments[0];
function parse(c) {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 0];
  const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function over(top, bottom) {  // top composited over an opaque bottom
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
}
function background(el) {
  // The colours drawn behind el: walk up to the first opaque background.
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.backgroundImage && cs.backgroundImage !== 'none') layers.push(null);
    const c = parse(cs.backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  // The canvas: white in light mode, the UA's dark canvas when the page allows dark.
  const dark = matchMedia('(prefers-color-scheme: dark)').matches &&
    /dark/.test(getComputedStyle(document.documentElement).colorScheme || '');
  let bg = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) {
    if (layers[i] === null) return null;  // an image: not judged here
    bg = over(layers[i], bg);
  }
  return bg;
}
function lum(c) {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function ratio(a, b) {
  const x = lum(a), y = lum(b);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}
function visible(el) {
  if (!el.getClientRects().length) return false;
  for (let e = el; e; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.visibility === 'hidden' || cs.display === 'none' || Number(cs.opacity) === 0) return false;
  }
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
}
function path(el) {
  const parts = [];
  for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
    let s = e.tagName.toLowerCase();
    if (e.className && typeof e.className === 'string') s += '.' + e.className.trim().split(/\s+/).join('.');
    parts.unshift(s);
  }
  return parts.join(' > ');
}
const result = {contrast: [], overflow: [], empty_links: [], texts: 0};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const text = n.textContent.replace(/[\s\u034f\u200c\u00a0]+/g, ' ').trim();
  const el = n.parentElement;
  if (!text || !el || seen.has(el) || !visible(el)) continue;
  seen.add(el);
  result.texts++;
  const cs = getComputedStyle(el);
  const bg = background(el);
  if (bg === null) continue;
  const fg = over(parse(cs.color), bg);
  const r = ratio(fg, bg);
  if (r < MIN) {
    result.contrast.push({text: text.slice(0, 60), where: path(el), ratio: Math.round(r * 100) / 100,
                          color: cs.color, background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')'});
  }
}
const root = document.documentElement;
const width = root.clientWidth;
if (root.scrollWidth > width || document.body.scrollWidth > width) {
  result.overflow.push({where: 'document', scrollWidth: Math.max(root.scrollWidth, document.body.scrollWidth), clientWidth: width});
}
for (const el of document.body.querySelectorAll('*')) {
  if (result.overflow.length >= 8) break;
  if (!visible(el)) continue;
  const r = el.getBoundingClientRect();
  if (r.right > width + 0.5 || r.left < -0.5) {
    result.overflow.push({where: path(el), left: Math.round(r.left), right: Math.round(r.right), clientWidth: width});
  } else if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 &&
             ['hidden', 'clip', 'auto', 'scroll'].includes(getComputedStyle(el).overflowX)) {
    result.overflow.push({where: path(el), scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
  }
}
for (const el of document.body.querySelectorAll('a[href], button, [role=button]')) {
  const label = (el.innerText || '').trim() || el.getAttribute('aria-label') ||
    Array.from(el.querySelectorAll('img[alt]')).map(i => i.alt.trim()).join(' ');
  const shown = visible(el);
  if (!label || !shown) {
    result.empty_links.push({where: path(el), href: el.getAttribute('href'), text: label || '', visible: shown});
  }
}
return result;
"""


@dataclass
class Problems:
    """What :data:`CHECK_JS` found on one page in one setting."""

    setting: str
    contrast: list[dict[str, Any]] = field(default_factory=list)
    overflow: list[dict[str, Any]] = field(default_factory=list)
    empty_links: list[dict[str, Any]] = field(default_factory=list)
    texts: int = 0

    def __bool__(self) -> bool:
        return bool(self.contrast or self.overflow or self.empty_links)

    def describe(self) -> str:
        lines = [f"{self.setting}:"]
        for c in self.contrast:
            lines.append(
                f"  contrast {c['ratio']}:1 < 4.5:1  {c['text']!r} at {c['where']} "
                f"({c['color']} on {c['background']})"
            )
        for o in self.overflow:
            lines.append(f"  horizontal overflow: {o}")
        for e in self.empty_links:
            lines.append(f"  link/button without visible text: {e}")
        return "\n".join(lines)


class Browser:
    """One headless Chromium: load HTML at a width and colour scheme, check it, screenshot it."""

    def __init__(self, driver: Any, workdir: Path) -> None:
        self.driver = driver
        self.workdir = workdir
        self._pages = 0

    def load(self, html: str, *, width: int, dark: bool, height: int = 900) -> None:
        """Show ``html`` at ``width`` CSS pixels, with ``prefers-color-scheme`` light or dark."""
        mobile = width < 500
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {
                "media": "screen",
                "features": [
                    {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}
                ],
            },
        )
        self._pages += 1
        page = self.workdir / f"page-{self._pages}.html"
        page.write_text(html, encoding="utf-8")
        self.driver.get(page.as_uri())

    def check(self, setting: str, minimum: float = 4.5) -> Problems:
        """Run :data:`CHECK_JS` on the loaded page."""
        found = self.driver.execute_script(CHECK_JS, minimum)
        return Problems(
            setting,
            contrast=found["contrast"],
            overflow=found["overflow"],
            empty_links=found["empty_links"],
            texts=found["texts"],
        )

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (its full height) at the current width."""
        import base64

        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """A headless system Chromium with a fresh profile, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    if binary is None or driver_path is None:
        raise RuntimeError(missing_browser() or "no chromium")
    with tempfile.TemporaryDirectory(prefix="notifykit-browser-") as tmp:
        work = Path(tmp)
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={work / 'profile'}")
        service = Service(executable_path=driver_path)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(30)
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED_URLS})
            yield Browser(driver, work)
        finally:
            driver.quit()
