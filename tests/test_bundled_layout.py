"""The bundled layout's HTML, as the renderer sends it (the look itself: tests/browser)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pytest

from notifykit.sinks.stdlib import LoggingSink
from notifykit.templates import TemplateRenderer

BUNDLED = resources.files("notifykit.templates").joinpath("bundled")


def sample() -> dict[str, Any]:
    data = json.loads(BUNDLED.joinpath("order_confirmation.json").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture(scope="module")
def rendered() -> Any:
    renderer = TemplateRenderer.from_package("notifykit", "templates/bundled")
    return renderer.render("order_confirmation.html", sample())


def style_of(attrs: dict[str, str]) -> dict[str, str]:
    out = {}
    for decl in attrs.get("style", "").split(";"):
        if ":" in decl:
            key, value = decl.split(":", 1)
            out[key.strip().lower()] = value.strip().lower()
    return out


def test_the_button_link_itself_is_white(rendered: Any) -> None:
    """The <a> carries white text inline, so no client's link colour can win over it."""
    [button] = [a for t, a in tags(rendered.html) if t == "a" and "nk-button-link" in a["class"]]
    style = style_of(button)
    assert style["color"] in ("#fff", "#ffffff")
    assert 1 == len(re.findall(r"(?:^|;)\s*color\s*:", button["style"]))


def test_no_generic_link_colour_outranks_the_button(rendered: Any) -> None:
    """Every rule giving links a colour is less specific than the button's, light and dark."""
    css = " ".join(re.findall(r"<style[^>]*>(.*?)</style>", rendered.html, re.S))
    dark = css[css.index("prefers-color-scheme") :]
    assert re.search(
        r"\.nk-content a\.nk-button-link\s*\{[^}]*color:\s*#fff(?:fff)?\s*!important", dark
    )


def test_data_table_has_header_cells_and_layout_tables_are_presentational(rendered: Any) -> None:
    found = tags(rendered.html)
    tables = [a for t, a in found if t == "table"]
    data = [a for a in tables if "nk-table" in a.get("class", "")]
    assert 1 == len(data)
    assert "role" not in data[0]
    assert all(a.get("role") == "presentation" for a in tables if a not in data)
    headers = [a for t, a in found if t == "th"]
    assert ["col", "col", "col", "row"] == [a.get("scope") for a in headers]
    assert "thead" in [t for t, _ in found]


def test_logo_slot(rendered: Any) -> None:
    """Without a logo the brand is text; with shop.logo_url it is an <img> whose alt is the brand."""
    assert not [a for t, a in tags(rendered.html) if t == "img"]
    assert "Chai &amp; Co." in rendered.html
    context = sample()
    context["shop"]["logo_url"] = "https://shop.example/logo.png"
    renderer = TemplateRenderer.from_package("notifykit", "templates/bundled")
    html = renderer.render("order_confirmation.html", context).html

    [img] = [a for t, a in tags(html) if t == "img"]
    assert "https://shop.example/logo.png" == img["src"]
    assert "Chai & Co." == img["alt"]
    assert "nk-logo" == img["class"]


def test_footer_sentence_ends_once(rendered: Any) -> None:
    """A shop name ending in a full stop does not make the footer end in "Co.." (issue 16)."""
    assert ".." not in rendered.text
    assert "Co.." not in rendered.html
    assert "Chai & Co. sent you this e-mail because you placed an order with us." in rendered.text


def test_logging_url_uses_the_delivery_logger() -> None:
    """configuration.md says logging:// logs on "notifykit.delivery": it does."""
    from notifykit.config import sink_from_url

    sink = sink_from_url("logging://")
    assert isinstance(sink, LoggingSink)
    assert "notifykit.delivery" == sink.logger.name
