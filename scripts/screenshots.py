"""Photograph the bundled e-mail for the README: desktop (600 px, light) and phone (375 px, dark).

    python scripts/screenshots.py            # writes docs/images/*.png

Renders ``order_confirmation.html`` with its sample context through notifykit's
real renderer (CSS inlined, as sent), opens it in the system's headless
Chromium (Debian: ``apt-get install chromium chromium-driver``; Selenium from
PyPI, ``pip install selenium``), checks it as ``nox -s browser`` does
(contrast, overflow, link text) and saves full-page PNGs. Nothing is fetched
from the network.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notifykit.templates import TemplateRenderer  # noqa: E402
from tests.browser.chromium import Browser, chromium_browser, missing_browser  # noqa: E402

TEMPLATE = "order_confirmation.html"
#: (file name, width in CSS pixels, dark mode)
SHOTS = [
    ("order_confirmation-desktop.png", 600, False),
    ("order_confirmation-mobile.png", 375, True),
]


def take(browser: Browser, out: Path) -> bool:
    """Render, check and photograph the e-mail into ``out``; False when a check failed."""
    bundled = resources.files("notifykit.templates").joinpath("bundled")
    context = json.loads(bundled.joinpath("order_confirmation.json").read_text("utf-8"))
    renderer = TemplateRenderer.from_package("notifykit", "templates/bundled")
    html = renderer.render(TEMPLATE, context).html
    assert html is not None
    out.mkdir(parents=True, exist_ok=True)
    ok = True
    for name, width, dark in SHOTS:
        # A short viewport: the PNG is as tall as the e-mail, not the window.
        browser.load(html, width=width, dark=dark, height=200)
        problems = browser.check(f"{name} ({width}px, {'dark' if dark else 'light'})")
        if problems:
            print(problems.describe(), file=sys.stderr)
            ok = False
        path = out / name
        browser.screenshot(path)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}  {path.stat().st_size // 1024} KiB")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    reason = missing_browser()
    if reason is not None:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 2
    with chromium_browser() as browser:
        return 0 if take(browser, args.out) else 1


if __name__ == "__main__":
    sys.exit(main())
