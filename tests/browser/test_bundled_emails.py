"""Every bundled e-mail, rendered by the real renderer, checked in headless Chromium.

At 600 px (desktop) and 375 px (a phone), light and dark (``prefers-color-scheme``
emulated through the DevTools protocol), the page must have: no text whose colour
has a contrast under 4.5:1 (WCAG AA) against the background it is drawn on, no
horizontal overflow, and no link or button without visible text. Run with
``nox -s browser``; skipped without chromium.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest

from notifykit.templates import TemplateRenderer

if TYPE_CHECKING:
    from tests.browser.chromium import Browser

BUNDLED = resources.files("notifykit.templates").joinpath("bundled")
TEMPLATES = sorted(p.name for p in BUNDLED.iterdir() if p.name.endswith(".html"))
SETTINGS = [(600, False), (600, True), (375, False), (375, True)]

#: A 120x32 logo as a data: URI, so the logo slot renders without the network.
LOGO = (
    "data:image/svg+xml;utf8,"
    "<svg xmlns='http://www.w3.org/2000/svg' width='120' height='32'>"
    "<rect width='120' height='32' rx='6' fill='%23b45309'/></svg>"
)


def sample(name: str) -> dict[str, Any]:
    data = json.loads(BUNDLED.joinpath(name.removesuffix(".html") + ".json").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


#: Values kept as they are: amounts stay on one line (white-space: nowrap), as they should.
AMOUNTS = frozenset({"price", "total", "quantity", "number", "date"})


def stressed(context: dict[str, Any]) -> dict[str, Any]:
    """The sample with a logo and with long unbreakable words wherever text goes."""
    out = copy.deepcopy(context)
    long_word = "Supercalifragilisticexpialidocious" * 3

    def grow(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: grow(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [grow(v) for v in value] * 2
        if key in AMOUNTS:
            return value
        if isinstance(value, str) and not value.startswith("http") and "@" not in value:
            return f"{value} {long_word}"
        return value

    out = grow(out)
    out.setdefault("shop", {})["logo_url"] = LOGO
    return out


#: Both CSS inlining engines: what a client shows must not depend on the choice.
INLINERS = ["premailer", "css_inline"]


def renderer_for(inliner: str) -> TemplateRenderer:
    if inliner == "css_inline":
        pytest.importorskip("css_inline")
    return TemplateRenderer.from_package("notifykit", "templates/bundled", inliner=inliner)


renderer = TemplateRenderer.from_package("notifykit", "templates/bundled")


def check(browser: Browser, html: str, width: int, dark: bool, label: str) -> None:
    browser.load(html, width=width, dark=dark)
    problems = browser.check(f"{label} at {width}px, {'dark' if dark else 'light'}")
    assert problems.texts > 5, "the checker saw (almost) no text: is the page blank?"
    assert not problems, problems.describe()


@pytest.mark.parametrize(("width", "dark"), SETTINGS)
@pytest.mark.parametrize("inliner", INLINERS)
@pytest.mark.parametrize("name", TEMPLATES)
def test_bundled_email_is_readable(
    browser: Browser, name: str, inliner: str, width: int, dark: bool
) -> None:
    """The sample message: contrast >= 4.5:1, no overflow, every link has visible text."""
    html = renderer_for(inliner).render(name, sample(name)).html
    assert html is not None
    check(browser, html, width, dark, name)


@pytest.mark.parametrize(("width", "dark"), [(375, False), (375, True)])
@pytest.mark.parametrize("name", TEMPLATES)
def test_long_words_and_a_logo_do_not_break_the_phone_layout(
    browser: Browser, name: str, width: int, dark: bool
) -> None:
    """Unbreakable 100-character words and twice the rows still fit 375 px; the logo shows."""
    html = renderer.render(name, stressed(sample(name))).html
    assert html is not None
    check(browser, html, width, dark, f"{name} (stressed)")
    size = browser.driver.execute_script(
        "const i = document.querySelector('img.nk-logo');"
        "return i ? [i.getBoundingClientRect().width, i.getBoundingClientRect().height] : null;"
    )
    assert size is not None
    assert size[0] > 0
    assert size[1] > 0


def test_the_button_text_is_white_on_the_button_colour(browser: Browser) -> None:
    """The call-to-action's text is white over the button's blue, light and dark."""
    html = renderer.render("order_confirmation.html", sample("order_confirmation.html")).html
    assert html is not None
    for dark in (False, True):
        browser.load(html, width=600, dark=dark)
        colour, text = browser.driver.execute_script(
            "const a = document.querySelector('a.nk-button-link');"
            "return [getComputedStyle(a).color, a.innerText];"
        )
        assert ("rgb(255, 255, 255)", "View your order") == (colour, text)
