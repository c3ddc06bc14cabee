"""The differential test: compiled output equals per-message output, for any context.

For each template of a corpus (static, loops, conditionals, dynamic classes,
structural pseudo-classes, nested layouts, the bundled layout, macros,
includes, and the real-world templates of the shared corpus), hypothesis draws
contexts full of characters that matter to HTML (``<``, ``&``, quotes,
entity look-alikes, no-break and zero-width spaces, markup values, empty and
blank strings) and checks that what the renderer returns equals Jinja's render
followed by per-message inlining (premailer), after the documented
normalisation (:func:`notifykit.templates._inline.normalise`), and that the
derived text equals the text converted per message from the rendered HTML.
Templates expected to compile are also checked to take the compiled path, so
the test exercises it rather than the fallback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from benchmarks.render import corpus_template
from notifykit.templates import TemplateRenderer

from .conftest import CORPUS, assert_equivalent

PIECES = [
    "a", "Zoë", "€5", " ", "  ", "\n", "\t", "\xa0", "\u200b", "<", ">", "&", '"', "'", ";", "#",
    "&amp", "&amp;", "&lt;", "&#39", "&not", "<b>", "</p>", "<!--", "-->", "\x01", "\x00", "http://x.example/?a=1&b=2",
]  # fmt: skip
TEXT = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)
VALUE = st.one_of(
    TEXT, TEXT, TEXT, st.integers(-5, 500), TEXT.map(Markup), st.just(Markup("<i>x</i>"))
)
URL = st.one_of(
    st.sampled_from(["https://x.example/a?b=1&c=2", "", "mailto:a@b.example", "#top"]), TEXT
)
ITEM = st.fixed_dictionaries(
    {"name": VALUE, "qty": st.integers(0, 99), "note": TEXT, "on": st.booleans()}
)
CONTEXT = st.fixed_dictionaries(
    {
        "name": VALUE,
        "title": TEXT,
        "url": URL,
        "cls": st.sampled_from(["", "odd", "even", "odd even", "lead", "x y"]),
        "flag": st.booleans(),
        "level": st.integers(0, 3),
        "items": st.lists(ITEM, max_size=5),
        "note": VALUE,
    }
)

CSS = """
body { margin: 0; background-color: #eeeeee; }
p { margin: 0 0 12px; color: #111111; }
.lead { font-size: 18px; }
.warn { color: #aa0000 !important; }
a { color: #0044cc; }
td { padding: 4px; }
.num { text-align: right; }
th { text-align: left; width: 100px; }
img { float: left; }
@media only screen and (max-width: 600px) { .lead { font-size: 16px; } td { padding: 2px; } }
a:hover { color: red; }
"""

HEAD = f"<head><meta charset='utf-8'><title>{{{{ title }}}}</title><style>{CSS}</style></head>"


def page(body: str) -> str:
    return (
        f"{{% block html %}}<!DOCTYPE html><html>{HEAD}<body>{body}</body></html>{{% endblock %}}"
    )


TEMPLATES: dict[str, str] = {
    "static.html": page('<p class="lead">Hello</p><p>World &amp; all</p><img src="x.png" alt="x">'),
    "variables.html": page(
        '<p class="lead">Hi {{ name }},</p><p>{{ note }}</p>'
        '<p><a href="{{ url }}" title="{{ title }}">{{ name }}</a> &middot; {{ title }}</p>'
    ),
    "loop_table.html": page(
        "<table><tr><th>Item</th><th class='num'>Qty</th></tr>"
        "{% for item in items %}<tr><td>{{ item.name }}</td><td class='num'>{{ item.qty }}</td></tr>"
        "{% else %}<tr><td colspan='2'>Nothing</td></tr>{% endfor %}</table>"
    ),
    "conditionals.html": page(
        "{% if flag %}<p class='warn'>Careful, {{ name }}</p>{% elif level > 1 %}<h2>{{ title }}</h2>"
        "{% else %}<div><p>Fine</p></div>{% endif %}"
        "<p>{% if level %}<b>{{ level }}</b>{% endif %} end</p>"
    ),
    "dynamic_class.html": page(
        "<style>.odd{background-color:#f0f0f0} .even{background-color:#ffffff}</style>"
        '<table>{% for item in items %}<tr class=\'{{ loop.cycle("odd", "even") }} {{ cls }}\'>'
        "<td>{{ item.name }}</td></tr>{% endfor %}</table>"
    ),
    "structural_loop.html": page(
        "<style>li:first-child{font-weight:bold} li:last-child{color:#999999}</style>"
        "<ul>{% for item in items %}<li>{{ item.name }}</li>{% endfor %}</ul>"
    ),
    "structural_static.html": page(
        "<style>td:first-child{font-weight:bold} p:last-child{margin:0}</style>"
        "<table>{% for item in items %}<tr><td>{{ item.name }}</td><td>{{ item.qty }}</td></tr>{% endfor %}</table>"
        "<div><p>one</p><p>two {{ name }}</p></div>"
    ),
    "sibling.html": page(
        "<style>h2 + p{color:#333333} h2 ~ p{font-size:14px}</style>"
        "<div>{% if flag %}<h2>{{ title }}</h2>{% endif %}<p>a</p><p>b</p></div>"
    ),
    "layout_base.html": (
        f"<!DOCTYPE html><html>{HEAD}<body>"
        "<div class='header'>{% block header %}Shop{% endblock %}</div>"
        "{% block html %}{% endblock %}<p class='footer'>{% block footer %}Bye{% endblock %}</p></body></html>"
    ),
    "layout_mid.html": (
        '{% extends "layout_base.html" %}{% block header %}{{ super() }} &raquo; {{ title }}{% endblock %}'
        "{% block html %}<div class='card'>{% block card %}{% endblock %}</div>{% endblock %}"
    ),
    "nested_layouts.html": (
        '{% extends "layout_mid.html" %}{% block subject %}S {{ title }}{% endblock %}'
        "{% block card %}<p class='lead'>Hi {{ name }}</p>"
        "{% for item in items %}<p>{{ item.name }} &times; {{ item.qty }}</p>{% endfor %}{% endblock %}"
        "{% block footer %}{{ super() }} {{ name }}{% endblock %}"
    ),
    "bundled_child.html": (
        '{% extends "notifykit/layouts/base.html" %}{% from "notifykit/layouts/button.html" import button %}'
        "{% block subject %}Order {{ title }}{% endblock %}{% block preheader %}{{ note }}{% endblock %}"
        "{% block html %}<h1 class='nk-title'>Hi {{ name }}</h1>"
        "<table class='nk-table'>{% for item in items %}<tr><td>{{ item.name }}</td>"
        "<td class='nk-num'>{{ item.qty }}</td></tr>{% endfor %}</table>"
        "{{ button(url, title) }}{% endblock %}"
    ),
    "macros_includes.html": (
        "{% macro badge(label, kind='info') %}<span class='badge' title='{{ kind }}'>{{ label }}</span>{% endmacro %}"
        + page(
            "<p>{{ badge(name) }} {{ badge(title, kind='warn') }}</p>"
            "{% for item in items %}{% include 'partial.html' %}{% endfor %}"
        )
    ),
    "partial.html": "<p class='item'>{{ item.name }}{% if item.on %} <b>on</b>{% endif %}</p>",
    "text_features.html": page(
        '<div style="display:none">{{ note }}</div><h1>{{ title }}</h1>'
        "<p>Line one<br>{{ name }}<br><br>after</p>"
        "<ul>{% for item in items %}<li>{{ item.name }}{% if item.on %}<ol><li>{{ item.note }}</li>"
        "<li>x</li></ol>{% endif %}</li>{% endfor %}</ul>"
        "<pre>  {{ note }}\n  code</pre><p><a href='{{ url }}'>{{ name }}</a> <a href='{{ url }}'></a></p>"
    ),
    "trimmed.html": page(
        "<table>\n  {%- for item in items %}\n  <tr>\n    <td>{{ item.name }}</td>\n  </tr>\n  {%- endfor %}\n</table>"
        "\n<p>\n  {{- name -}}\n</p>"
    ),
    # Constructs applications write (issue 17), compiled.
    "choice_class.html": page(
        "<style>.a{color:#111111} .b{color:#222222} .a td{padding:1px} .odd{font-weight:bold}</style>"
        "<table>{% for item in items %}<tr class=\"{{ 'a' if item.on else 'b' }}\">"
        '<td class=\'{{ loop.cycle("odd", "even") }}\'>{{ item.name }}</td><td>{{ item.qty }}</td></tr>'
        "{% endfor %}</table><p class=\"{{ 'lead warn' if flag else ('lead' if level else 'x') }}\">{{ name }}</p>"
    ),
    "branch_tag.html": page(
        "{% if flag %}<p class='warn' title='a&amp;b'>{% elif level > 1 %}<p class='lead' title='a&amp;b'>"
        "{% else %}<p class='' title='a&amp;b'>{% endif %}{{ name }} <b>{{ note }}</b></p>"
        "<table>{% for item in items %}<tr>{% if item.on %}\n<td class='num'>\n{% else %}\n<td class=''>\n{% endif %}"
        "{{ item.qty }}</td></tr>{% endfor %}</table>"
    ),
    "styles.css": ".lead { color: #333333; } p { margin: 0 0 10px; }",
    "self_layout.html": (
        "<!DOCTYPE html><html><head><style>{% include 'styles.css' %}{% block extra_style %}{% endblock %}"
        "</style></head><body>{% block html %}{% endblock %}"
        "{% if self.footer() %}<p class='footer'>{% block footer %}{% endblock %}</p>{% endif %}"
        "{% if self.reason()|trim %}<p class='lead'>{% block reason %} {% endblock %}</p>{% endif %}"
        "</body></html>"
    ),
    "self_child.html": (
        '{% extends "self_layout.html" %}{% block extra_style %}.warn { color: #aa0000; }{% endblock %}'
        "{% block html %}<p class='warn'>{{ name }}</p>{% endblock %}"
        "{% block footer %}{% if flag %}{{ note }}{% endif %}{% endblock %}"
        "{% block reason %}{{ super() }}{% if level %}{{ title }}{% endif %}{% endblock %}"
    ),
    # Jinja where the analysis cannot follow the HTML: html and text both per message.
    "attr_condition.html": page(
        '<p {% if flag %}class="warn"{% endif %}>Hi {{ name }}</p><p class="lead">{{ note }}</p>'
    ),
    "split_element.html": page(
        '{% if flag %}<div class="lead">{% endif %}<p>{{ name }}</p>{% if flag %}</div>{% endif %}'
    ),
    "comment_var.html": page("<!-- {{ note }} --><p>{{ name }}</p>"),
    "entity_var.html": page("<p>&{{ title }}; and {{ name }}</p>"),
}

EXPECTED_STRATEGY = {
    "static.html": "compiled",
    "variables.html": "compiled",
    "loop_table.html": "compiled",
    "conditionals.html": "compiled",
    "dynamic_class.html": "per_message",
    "structural_loop.html": "per_message",
    "structural_static.html": "compiled",
    "sibling.html": "per_message",
    "nested_layouts.html": "compiled",
    "bundled_child.html": "compiled",
    "macros_includes.html": "compiled",
    "text_features.html": "compiled",
    "trimmed.html": "compiled",
    "choice_class.html": "compiled",
    "branch_tag.html": "compiled",
    "self_child.html": "compiled",
    "attr_condition.html": "per_message",
    "split_element.html": "per_message",
    "comment_var.html": "per_message",
    "entity_var.html": "per_message",
}
#: Templates whose text part cannot be compiled either (the rest compile it).
TEXT_PER_MESSAGE = {
    "attr_condition.html",
    "split_element.html",
    "comment_var.html",
    "entity_var.html",
}

RENDERER = TemplateRenderer.from_dict(TEMPLATES, inliner="premailer")


def _markup_in(context: dict[str, Any]) -> bool:
    def has(value: Any) -> bool:
        if isinstance(value, Markup):
            return True
        if isinstance(value, str):
            return "\x01" in value
        if isinstance(value, dict):
            return any(has(v) for v in value.values())
        if isinstance(value, list):
            return any(has(v) for v in value)
        return False

    return has(context)


@pytest.mark.parametrize("name", sorted(EXPECTED_STRATEGY))
def test_each_template_takes_the_expected_strategy(name: str) -> None:
    """The analysis compiles what it can prove and falls back on the rest, as listed."""
    plan = RENDERER.explain(name)
    assert EXPECTED_STRATEGY[name] == plan.strategy, plan.reason
    expected_text = "per_message" if name in TEXT_PER_MESSAGE else "compiled"
    assert expected_text == plan.text_strategy, plan.text_reason


@pytest.mark.parametrize("name", sorted(EXPECTED_STRATEGY))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=CONTEXT)
def test_compiled_output_equals_per_message_output(name: str, context: dict[str, Any]) -> None:
    """For any context, the renderer's html and text equal the per-message reference."""
    assert_equivalent(RENDERER, name, context)
    rendered = RENDERER.render(name, context)
    if EXPECTED_STRATEGY[name] == "compiled" and not _markup_in(context):
        assert "compiled" == rendered.strategy, rendered.reason


# ------------------------------------------------------------------ real-world corpus


def _corpus_files(root: Path) -> list[Path]:
    files = sorted(root.glob("mailgun/templates/*.html")) + sorted(
        root.glob("leemunroe/email.html")
    )
    themes = sorted(p for p in root.glob("sendwithus/templates/*") if p.is_dir())
    if os.environ.get("NOTIFYKIT_FULL_CORPUS"):
        files += sorted(root.glob("sendwithus/templates/*/*.html"))
    else:
        files += [sorted(theme.glob("*.html"))[0] for theme in themes]
    return files


CORPUS_FILES = _corpus_files(CORPUS) if CORPUS.is_dir() else []
CORPUS_RENDERER = TemplateRenderer.from_dict(
    {
        str(p.relative_to(CORPUS)): corpus_template(p.read_text(encoding="utf-8"))
        for p in CORPUS_FILES
    },
    inliner="premailer",
)
CORPUS_CONTEXT = st.fixed_dictionaries({"first_name": VALUE, "greeting": TEXT})


@pytest.mark.skipif(not CORPUS_FILES, reason=f"the template corpus is not at {CORPUS}")
@pytest.mark.parametrize("path", [str(p.relative_to(CORPUS)) for p in CORPUS_FILES])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=CORPUS_CONTEXT)
def test_real_world_templates(path: str, context: dict[str, Any]) -> None:
    """Every real-world template renders equal to per-message premailer (see corpus/README.md for all 116)."""
    assert_equivalent(CORPUS_RENDERER, path, context)


CORPUS_DEFAULT_RENDERER = TemplateRenderer.from_dict(
    {
        str(p.relative_to(CORPUS)): corpus_template(p.read_text(encoding="utf-8"))
        for p in CORPUS_FILES
    }
)


@pytest.mark.skipif(not CORPUS_FILES, reason=f"the template corpus is not at {CORPUS}")
@pytest.mark.parametrize("path", [str(p.relative_to(CORPUS)) for p in CORPUS_FILES])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=CORPUS_CONTEXT)
def test_real_world_templates_with_the_default_engine(path: str, context: dict[str, Any]) -> None:
    """The same with the default engine (css-inline): compiled == css-inline per message."""
    assert_equivalent(CORPUS_DEFAULT_RENDERER, path, context)


def test_most_real_world_templates_compile(corpus: Path) -> None:
    """The analysis is not so conservative that real e-mails never compile."""
    for renderer in (CORPUS_RENDERER, CORPUS_DEFAULT_RENDERER):
        plans = [renderer.explain(str(p.relative_to(corpus))) for p in CORPUS_FILES]
        compiled = sum(plan.strategy == "compiled" for plan in plans)
        assert compiled >= len(plans) * 2 // 3, [plan.reason for plan in plans]


CSS_INLINE_RENDERER = TemplateRenderer.from_dict(TEMPLATES, inliner="auto")


@pytest.mark.parametrize("name", sorted(EXPECTED_STRATEGY))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=CONTEXT)
def test_css_inline_compiled_output_equals_its_per_message_output(
    name: str, context: dict[str, Any]
) -> None:
    """With inliner="css_inline", compiled output equals css-inline per message (normalised)."""
    pytest.importorskip("css_inline")
    assert_equivalent(CSS_INLINE_RENDERER, name, context, engine="css_inline")


# ------------------------------------------------------------ the benchmark application

from benchmarks.templates import NAMES as APP_NAMES  # noqa: E402
from benchmarks.templates import context as app_context  # noqa: E402
from benchmarks.templates import environment as app_environment  # noqa: E402

#: What the analysis must compile (the rest is listed with its reason in explain()).
APP_PER_MESSAGE: set[str] = set()
APP_RENDERERS = {
    (locale, engine): TemplateRenderer(app_environment(locale), inliner=engine)
    for locale in ("en", "fr")
    for engine in ("css_inline", "premailer")
}


def _stir(value: Any, rng: Any, texts: list[str]) -> Any:
    """Replace some strings of a realistic context with hypothesis' nastier ones."""
    if isinstance(value, dict):
        return {k: _stir(v, rng, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_stir(v, rng, texts) for v in value]
    if isinstance(value, str) and texts and rng.random() < 0.3:
        return texts[rng.randrange(len(texts))]
    return value


@pytest.mark.parametrize("key", sorted(APP_RENDERERS), ids=lambda k: f"{k[0]}-{k[1]}")
@pytest.mark.parametrize("name", APP_NAMES)
@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(rng=st.randoms(use_true_random=False), texts=st.lists(TEXT, max_size=4))
def test_benchmark_templates_equal_per_message_inlining(
    name: str, key: tuple[str, str], rng: Any, texts: list[str]
) -> None:
    """Every benchmark template, both locales, both engines: compiled == per message."""
    renderer = APP_RENDERERS[key]
    context = _stir(app_context(name, rng), rng, texts)
    assert_equivalent(renderer, name, context)
    expected = "per_message" if name in APP_PER_MESSAGE else "compiled"
    plan = renderer.explain(name)
    assert expected == plan.strategy, plan.reason
    if expected == "compiled" and not _markup_in(context):
        rendered = renderer.render(name, context)
        assert "compiled" == rendered.strategy, rendered.reason
