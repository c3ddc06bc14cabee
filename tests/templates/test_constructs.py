"""Constructs applications write, compiled once and equal to per-message inlining (issue 17)."""

from __future__ import annotations

import gettext
from typing import Any

import jinja2
import pytest

from notifykit.templates import TemplateRenderer

from .conftest import assert_equivalent

LAYOUT = (
    "<!DOCTYPE html><html><head><style>{% include 'mail.css' %}\n{% block extra_style %}{% endblock %}"
    "</style></head><body><table><tr><td class='content'>{% block html %}{% endblock %}</td></tr>"
    "{% if self.footer() %}<tr><td class='footer'>{% block footer %}{% endblock %}</td></tr>{% endif %}"
    "</table>{% if self.reason()|trim %}<p class='reason'>{% block reason %}{% endblock %}</p>{% endif %}"
    "</body></html>"
)
CSS = (
    ".content{padding:8px} .footer{color:#666666} .reason{font-size:11px} "
    ".price{text-align:right} .price.sale{color:#aa0000} .row-odd td{background-color:#fafafa} "
    ".status{font-weight:bold} .status.late{color:#9a3412} p{margin:0}"
)


def renderer_for(child: str, engine: str, **extra: str) -> TemplateRenderer:
    templates = {"layout.html": LAYOUT, "mail.css": CSS, "t.html": child, **extra}
    return TemplateRenderer.from_dict(templates, inliner=engine, cache_dir=False)


ENGINES = ["css_inline", "premailer"]


@pytest.mark.parametrize("engine", ENGINES)
def test_css_from_includes_and_blocks_inside_style_is_compiled(engine: str) -> None:
    """<style>{% include %}{% block extra_style %}</style> is static CSS: inlined once."""
    child = (
        '{% extends "layout.html" %}{% block extra_style %}.hi{color:#123456}{% endblock %}'
        "{% block html %}<p class='hi'>{{ name }}</p>{% endblock %}"
    )
    renderer = renderer_for(child, engine)
    assert "compiled" == renderer.explain("t.html").strategy
    rendered = renderer.render("t.html", {"name": "Asha"})
    assert "compiled" == rendered.strategy
    assert "#123456" in (rendered.html or "")
    assert "padding" in (rendered.html or "")
    assert_equivalent(renderer, "t.html", {"name": "<b>Asha</b>"})


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("footer", "reason"),
    [
        ("", ""),
        ("Help", ""),
        ("", "   "),
        ("{{ name }}", "{{ name }}"),
        ("{% if name %}x{% endif %}", " "),
    ],
)
def test_self_block_in_conditions_is_compiled(engine: str, footer: str, reason: str) -> None:
    """{% if self.footer() %} / {% if self.reason()|trim %}: compiled, same result as per message."""
    child = (
        '{% extends "layout.html" %}{% block html %}<p>{{ name }}</p>{% endblock %}'
        f"{{% block footer %}}{footer}{{% endblock %}}{{% block reason %}}{reason}{{% endblock %}}"
    )
    renderer = renderer_for(child, engine)
    assert "compiled" == renderer.explain("t.html").strategy, renderer.explain("t.html").reason
    for name in ("", "Zoë", "<i>"):
        rendered = renderer.render("t.html", {"name": name})
        assert "compiled" == rendered.strategy
        assert_equivalent(renderer, "t.html", {"name": name})
    html = renderer.render("t.html", {"name": ""}).html or ""
    assert ('class="footer"' in html) == (footer == "Help")


@pytest.mark.parametrize("engine", ENGINES)
def test_classes_chosen_by_jinja_get_each_variants_style(engine: str) -> None:
    """class="{{ 'price sale' if … else 'price' }}", loop.cycle and {% if %} between two tags."""
    child = (
        '{% extends "layout.html" %}{% block html %}<table>{% for item in items %}'
        "<tr class=\"{{ loop.cycle('row-odd', 'row-even') }}\"><td>{{ item.name }}</td>"
        "<td class=\"{{ 'price sale' if item.sale else 'price' }}\">{{ item.price }}</td></tr>"
        "{% endfor %}</table><table><tr>{% if late %}\n<td class='status late'>\n{% else %}\n"
        "<td class='status'>\n{% endif %}{{ status }}</td></tr></table>{% endblock %}"
    )
    renderer = renderer_for(child, engine)
    plan = renderer.explain("t.html")
    assert "compiled" == plan.strategy, plan.reason
    items = [
        {"name": "a", "price": "£1", "sale": True},
        {"name": "b", "price": "£2", "sale": False},
    ]
    for late in (True, False):
        context = {"items": items, "late": late, "status": "Out for delivery"}
        rendered = renderer.render("t.html", context)
        assert "compiled" == rendered.strategy
        assert_equivalent(renderer, "t.html", context)
    html = renderer.render("t.html", {"items": items, "late": True, "status": "x"}).html or ""
    assert "#fafafa" in html
    assert "#9a3412" in html


def _i18n_renderer(catalogue: dict[str, str], engine: str) -> TemplateRenderer:
    class Catalogue(gettext.NullTranslations):
        def gettext(self, message: str) -> str:
            return catalogue.get(message, message)

    env = jinja2.Environment(
        loader=jinja2.DictLoader(
            {
                "layout.html": LAYOUT,
                "mail.css": CSS,
                "t.html": '{% extends "layout.html" %}{% block html %}<p>{{ _("Welcome back") }}</p>'
                "<p title=\"{{ _('Your account') }}\">{% trans name=name %}Hello {{ name }}!{% endtrans %}</p>"
                "{% endblock %}",
            }
        ),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(Catalogue(), newstyle=True)  # type: ignore[attr-defined]
    return TemplateRenderer(env, inliner=engine, cache_dir=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_translations_with_quotes_stay_compiled(engine: str) -> None:
    """_() and {% trans %} return Markup: quotes in them are harmless where they are printed."""
    renderer = _i18n_renderer(
        {
            "Welcome back": 'Ravi de vous revoir, l\'équipe "Chai"',
            "Hello %(name)s!": "Salut %(name)s, ça va ?",
        },
        engine,
    )
    plan = renderer.explain("t.html")
    assert "compiled" == plan.strategy
    assert plan.caveat is not None
    assert "translation (t.html, line 1)" in plan.caveat
    for name in ("Zoë", "O'Brien", '"x"', "<b>"):
        rendered = renderer.render("t.html", {"name": name})
        assert "compiled" == rendered.strategy, rendered.reason
        assert_equivalent(renderer, "t.html", {"name": name})


@pytest.mark.parametrize("engine", ENGINES)
def test_a_translation_with_a_tag_takes_the_per_message_path_as_explain_says(engine: str) -> None:
    """A tag in a translation adds an element: that message is inlined per message (the caveat)."""
    renderer = _i18n_renderer(
        {"Welcome back": "Welcome <b>back</b>", "Your account": 'Say "hi"'}, engine
    )
    assert renderer.explain("t.html").caveat
    rendered = renderer.render("t.html", {"name": "A"})
    assert "per_message" == rendered.strategy
    assert "markup" in (rendered.reason or "")
    assert_equivalent(renderer, "t.html", {"name": "A"})


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        (
            '{% extends "layout.html" %}{% block html %}\n\n{% if x %}<div>{% endif %}<p>a</p>'
            "{% if x %}</div>{% endif %}{% endblock %}",
            "(t.html, line 3)",
        ),
        (
            '{% extends "layout.html" %}{% block html %}\n<p class="{{ cls }}">{{ x }}</p>{% endblock %}',
            "which holds a variable (t.html, line 2)",
        ),
        (
            '{% extends "layout.html" %}{% block html %}\n\n\n<p>&{{ x }};</p>{% endblock %}',
            "(t.html, line 4)",
        ),
    ],
)
def test_explain_names_the_file_and_line_of_what_forces_the_fallback(
    child: str, expected: str
) -> None:
    """explain() says where the construct that forces the per-message path is."""
    renderer = renderer_for(child, "css_inline")
    plan = renderer.explain("t.html")
    assert "per_message" == plan.strategy
    assert expected in (plan.reason or ""), plan.reason
    context: dict[str, Any] = {"x": 1, "cls": "price"}
    assert_equivalent(renderer, "t.html", context)


def test_a_universal_rule_on_the_tbody_css_inline_adds_is_compiled() -> None:
    """`* {…}` styles the <tbody> html5ever adds: the compiled template writes it out too."""
    page = (
        "{% block html %}<html><head><meta charset='utf-8'><style>* { margin: 0; padding: 0; } "
        "td { color: #111111; } @media (max-width: 600px) { td { padding: 2px; } }</style></head>"
        "<body><table><tr><td>{{ a }}</td></tr>\n<tr><td>b</td></tr></table>"
        "<table>{% for i in items %}<tr><td>{{ i }}</td></tr>{% endfor %}</table></body></html>"
        "{% endblock %}"
    )
    renderer = TemplateRenderer.from_dict({"t": page}, inliner="css_inline", cache_dir=False)
    plan = renderer.explain("t")
    assert "per_message" == plan.strategy  # the rows of the second table are in a loop
    assert "<tbody> its parser adds to <table> (t, line 2)" in (plan.reason or "")
    static = TemplateRenderer.from_dict(
        {"t": page.replace("{% for i in items %}<tr><td>{{ i }}</td></tr>{% endfor %}", "")},
        inliner="css_inline",
        cache_dir=False,
    )
    assert "compiled" == static.explain("t").strategy, static.explain("t").reason
    for value in ("x", "<b>", ""):
        rendered = static.render("t", {"a": value})
        assert "compiled" == rendered.strategy
        assert "<tbody style=" in (rendered.html or "")
        assert_equivalent(static, "t", {"a": value})
