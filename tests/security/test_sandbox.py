"""The template sandbox: a fixed Jinja, an immutable sandbox, no symlink out of the folder.

Limits on the work and output of a sandboxed render, and the premailer depth
check, are tested further down in this file.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit.errors import ConfigurationError, TemplateError
from notifykit.templates import TemplateLimits, TemplateRenderer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


# --------------------------------------------------------------------------- Jinja version


def test_pyproject_requires_a_jinja_without_the_attr_format_escape() -> None:
    """Jinja 3.1.5 lets ``|attr("format")`` out of the sandbox: 3.1.6 is the floor."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["dependencies"] if d.lower().startswith("jinja2")]
    assert 1 == len(pins), pins
    floor = pins[0].split(">=", 1)[1].split(",")[0].strip()
    assert _version(floor) >= (3, 1, 6), pins[0]


def test_the_attr_format_escape_is_refused() -> None:
    """The 3.1.5 escape (str.format reached through |attr) ends in a TemplateError."""
    assert _version(jinja2.__version__) >= (3, 1, 6)
    payload = (
        "{% block subject %}"
        "{{ '{0.__class__.__init__.__globals__}' | attr('format') }}"
        "{% endblock %}"
    )
    renderer = TemplateRenderer.from_dict({"t": payload}, sandboxed=True)
    try:
        rendered = renderer.render("t", {})
    except TemplateError:
        return
    assert "environ" not in rendered.subject
    assert "__builtins__" not in rendered.subject


# --------------------------------------------------------------------------- immutable


@pytest.mark.parametrize(
    "method",
    [
        "cfg.update({'admin': True})",
        "items.append(9)",
        "items.pop()",
        "cfg.clear()",
        "cfg.setdefault('a', 1)",
    ],
)
def test_the_sandbox_cannot_change_the_callers_objects(method: str) -> None:
    """sandboxed=True is Jinja's immutable sandbox: no mutating method of a list or dict."""
    cfg = {"admin": False}
    items = [1, 2]
    template = f"{{% block subject %}}{{{{ {method} }}}}{{% endblock %}}"
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True)
    with pytest.raises(TemplateError, match="sandbox"):
        renderer.render("t", {"cfg": cfg, "items": items})
    assert {"admin": False} == cfg
    assert [1, 2] == items


def test_the_html_part_is_immutable_too() -> None:
    """The compiled HTML path renders in the same immutable sandbox."""
    cfg = {"admin": False}
    template = "{% block html %}<p>{{ cfg.update({'admin': True}) }}</p>{% endblock %}"
    with pytest.raises(TemplateError):
        TemplateRenderer.from_dict({"t": template}, sandboxed=True).render("t", {"cfg": cfg})
    assert {"admin": False} == cfg


# --------------------------------------------------------------------------- symlinks


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("{% block subject %}TOP-SECRET{% endblock %}", encoding="utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "ok.html").write_text("{% block subject %}fine{% endblock %}", encoding="utf-8")
    (templates / "leak.html").symlink_to(secret)
    (templates / "inside.html").symlink_to(templates / "ok.html")
    (templates / "sub").symlink_to(tmp_path, target_is_directory=True)
    (templates / "mail.html").write_text(
        '{% block html %}<link rel="stylesheet" href="evil.css"><p>x</p>{% endblock %}',
        encoding="utf-8",
    )
    (tmp_path / "outside.css").write_text("p { color: red }", encoding="utf-8")
    (templates / "evil.css").symlink_to(tmp_path / "outside.css")
    return templates


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
@pytest.mark.parametrize("sandboxed", [False, True])
def test_a_symlink_out_of_the_folder_is_refused(folder: Path, sandboxed: bool) -> None:
    """A template that is a symlink to a file outside the folder is a TemplateError."""
    renderer = TemplateRenderer.from_directory(folder, sandboxed=sandboxed)
    with pytest.raises(TemplateError, match="outside the template directory"):
        renderer.render("leak.html")
    with pytest.raises(TemplateError, match="outside the template directory"):
        renderer.render("sub/secret.txt")
    assert "fine" == renderer.render("inside.html").subject  # a symlink inside is fine


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_an_include_or_a_stylesheet_through_a_symlink_is_refused(folder: Path) -> None:
    """Includes and linked stylesheets go through the same check."""
    (folder / "inc.html").write_text(
        "{% block subject %}{% include 'leak.html' %}{% endblock %}", encoding="utf-8"
    )
    renderer = TemplateRenderer.from_directory(folder, sandboxed=True)
    with pytest.raises(TemplateError, match="outside"):
        renderer.render("inc.html")
    with pytest.raises(TemplateError, match="outside"):
        renderer.render("mail.html")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_follow_symlinks_opts_in(folder: Path) -> None:
    """``follow_symlinks=True`` restores Jinja's plain loader."""
    renderer = TemplateRenderer.from_directory(folder, follow_symlinks=True)
    assert "TOP-SECRET" == renderer.render("leak.html").subject


# --------------------------------------------------------------------------- deep HTML

DEEP_TEMPLATE = (
    "{% block subject %}s{% endblock %}"
    "{% block html %}<style>p { color: red }</style><p>before</p>{{ body|safe }}"
    "<p>THE-END</p>{% endblock %}"
)


def _nested(depth: int) -> str:
    return "<div>" * depth + "DEEPEST" + "</div>" * depth + "<p>AFTER</p>"


@pytest.mark.parametrize("compile", [True, False])
def test_premailer_never_sends_html_it_would_truncate(compile: bool) -> None:
    """A |safe body 300 <div>s deep: premailer would drop its end, so the render fails."""
    renderer = TemplateRenderer.from_dict(
        {"t": DEEP_TEMPLATE}, compile=compile, inliner="premailer"
    )
    with pytest.raises(TemplateError, match="more than 255 deep"):
        renderer.render("t", body=_nested(300))


def test_premailer_keeps_html_just_under_the_limit() -> None:
    """200 deep is inlined whole, every element and the text after it kept."""
    rendered = TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}, inliner="premailer").render(
        "t", body=_nested(200)
    )
    html = rendered.html or ""
    assert 200 == html.count("<div")
    assert "DEEPEST" in html
    assert "AFTER" in html
    assert "THE-END" in html
    assert 'style="color:red"' in html


def test_a_failed_deep_message_is_not_sent() -> None:
    """Through the Notifier: the message fails with a TemplateError; nothing goes out."""
    import notifykit as nk

    memory = nk.MemoryTransport()
    notifier = nk.Notifier(
        email=memory,
        templates=TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}, inliner="premailer"),
        sender="shop@example.com",
    )
    with pytest.raises(TemplateError):
        notifier.send_email("t", "a@example.com", {"body": _nested(300)})
    assert [] == memory.outbox


def test_css_inline_keeps_deep_html() -> None:
    """css-inline (html5ever) has no such limit: the 300-deep body is sent whole."""
    pytest.importorskip("css_inline")
    renderer = TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}, inliner="css_inline")
    html = renderer.render("t", body=_nested(300)).html or ""
    assert 300 == html.count("<div")
    assert "AFTER" in html
    assert "THE-END" in html


# --------------------------------------------------------------------------- limits

HOSTILE = {
    "string times a number": "{{ 'y' * 1000 * 100000 }}",
    "a number times a list": "{{ (100000 * [1, 2, 3] * 100)|length }}",
    "two nested range loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "nested loops over a string": (
        "{% set s = 'x' * 900000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    ),
    "doubling with ~": (
        "{% set ns = namespace(x='ab') %}{% for i in range(60) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}"
    ),
    "doubling with +": (
        "{% set ns = namespace(x=[1]) %}{% for i in range(60) %}"
        "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}"
    ),
    "center filter": "{{ 'x'|center(1000000000) }}",
    "str.center": "{{ 'x'.center(1000000000) }}",
    "percent width": "{{ '%1000000000d' % 1 }}",
    "format filter width": "{{ '%1000000000d'|format(1) }}",
    "str.format width": "{{ '{:>1000000000}'.format(1) }}",
    "join amplification": "{{ range(100000)|join('y' * 900000) }}",
    "str.join amplification": "{{ ('y' * 900000).join(range(100000)|map('string')|list) }}",
    "replace amplification": "{{ ('x' * 900000)|replace('x', 'yyyyyyyyyy') }}",
    "str.replace amplification": "{{ ('x' * 900000).replace('x', 'yyyyyyyyyy') }}",
    "a huge power": "{{ 2 ** 100000000 }}",
    "a width from an argument": "{{ '{0:{1}}'.format(1, '999999999') }}",
    "expandtabs": "{{ ('\t' * 1000).expandtabs(999999) }}",
    "translate": "{{ ('x' * 900000).translate({120: 'y' * 900000}) }}",
    "lipsum": "{{ lipsum(1000000) }}",
    "one string shared 8,000 times, joined": (
        "{% set big = 'x' * 999999 %}{{ ''.join([big] * 8000) }}"
    ),
    "one string shared 8,000 times, as JSON": (
        "{% set big = 'x' * 999999 %}{{ ([big] * 8000)|tojson }}"
    ),
    "one string shared 8,000 times, output": "{% set big = 'x' * 999999 %}{{ [big] * 8000 }}",
    "a list shared 1,000 times, joined": (
        "{% set big = ['x' * 999999] %}{% set more = [big] %}{{ (more * 1000)|join }}"
    ),
    "a recursive loop": (
        "{% for x in range(1000) recursive %}{% if loop.depth < 5 %}"
        "{{ loop(range(1000)) }}{% endif %}{% endfor %}"
    ),
    "an include in a loop": "{% for i in range(100000) %}{% include 'loop.txt' %}{% endfor %}",
}
INCLUDED = {"loop.txt": "{% for j in range(100000) %}{% endfor %}"}


# The subject, text and sms blocks render alike; the HTML part takes other paths.
@pytest.mark.parametrize("part", ["subject", "html"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_sandboxed_template_ends_in_a_template_error(name: str, part: str) -> None:
    """Work and size bombs, in the blocks and the HTML, end in a TemplateError naming the limit."""
    template = f"{{% block {part} %}}{HOSTILE[name]}{{% endblock %}}"
    renderer = TemplateRenderer.from_dict({"t": template, **INCLUDED}, sandboxed=True)
    with pytest.raises(TemplateError, match="TemplateLimits"):
        renderer.render("t", {})


def test_the_output_of_a_part_is_bounded() -> None:
    """A loop that outputs 10 MB stops at max_output characters."""
    template = "{% block html %}{% for i in range(10000) %}{{ big }}{% endfor %}{% endblock %}"
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True)
    with pytest.raises(TemplateError, match=r"produced more than 1,000,000 characters"):
        renderer.render("t", {"big": "z" * 1000})


def test_the_wall_clock_budget_ends_a_slow_render() -> None:
    """A template calling a slow (but allowed) function stops at the timeout."""
    template = "{% block subject %}{% for i in range(1000) %}{{ nap() }}{% endfor %}{% endblock %}"
    limits = TemplateLimits(timeout=0.2)
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True, limits=limits)
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"longer than 0.2 s"):
        renderer.render("t", {"nap": lambda: time.sleep(0.002) or ""})
    assert time.monotonic() - started < 10  # a bound, not a benchmark: it stopped


def test_limits_can_be_raised_and_lowered() -> None:
    """TemplateLimits(max_output=...) moves the line; values are checked."""
    template = "{% block subject %}{{ 'y' * n }}{% endblock %}"
    small = TemplateRenderer.from_dict(
        {"t": template}, sandboxed=True, limits=TemplateLimits(max_output=10)
    )
    assert "yyyyyyyyyy" == small.render("t", {"n": 10}).subject
    with pytest.raises(TemplateError, match="over the limit of 10"):
        small.render("t", {"n": 11})
    with pytest.raises(ConfigurationError):
        TemplateLimits(max_operations=0)
    with pytest.raises(ConfigurationError):
        TemplateRenderer.from_dict({"t": template}, limits=TemplateLimits())  # not sandboxed


def test_imported_macros_use_each_renders_own_budget() -> None:
    """A macro module Jinja caches for the process does not add up work across renders."""
    templates = {
        "macros.html": "{% macro m() %}{% for i in range(300) %}x{% endfor %}{% endmacro %}",
        "t": (
            "{% from 'macros.html' import m %}"
            "{% block subject %}{{ m()|length }}{% endblock %}"
            "{% block html %}<p>{{ m() }}</p>{% endblock %}"
        ),
    }
    limits = TemplateLimits(max_operations=5_000, timeout=0.3)
    renderer = TemplateRenderer.from_dict(templates, sandboxed=True, limits=limits)
    for _ in range(30):  # 30 x ~1,200 operations: far over 5,000 in total
        assert "300" == renderer.render("t").subject
    time.sleep(0.4)  # past the timeout of the pass that imported the macros
    assert "300" == renderer.render("t").subject
    heavy = {**templates, "macros.html": templates["macros.html"].replace("300", "99999")}
    renderer = TemplateRenderer.from_dict(heavy, sandboxed=True, limits=limits)
    with pytest.raises(TemplateError, match="5,000 operations"):
        renderer.render("t")  # the work inside a macro counts for its caller


def test_the_budget_name_cannot_be_overwritten() -> None:
    """A context variable cannot replace the budget (it would reset the limits)."""
    template = "{% block subject %}{{ 1 }}{% endblock %}"
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True)
    with pytest.raises(TemplateError):
        renderer.render("t", {"__notifykit_budget__": 0})


def test_real_templates_render_the_same_in_the_limited_sandbox() -> None:
    """Loops, macros, includes, layouts and the real-world corpus: limits change no byte."""
    from benchmarks.render import corpus_template
    from tests.templates.conftest import CORPUS
    from tests.templates.test_differential import CORPUS_FILES, TEMPLATES

    items = [{"name": f"item {i}", "qty": i, "note": "<b>", "on": i % 2 == 0} for i in range(30)]
    context = {
        "name": "Zoë & <Co>",
        "title": "Hello",
        "url": "https://x.example/a?b=1&c=2",
        "cls": "odd",
        "flag": True,
        "level": 2,
        "items": items,
        "note": "n",
        "first_name": "Asha",
        "greeting": "Hi",
    }
    sources = dict(TEMPLATES)
    sources.update(
        {
            str(p.relative_to(CORPUS)): corpus_template(p.read_text(encoding="utf-8"))
            for p in CORPUS_FILES[:4]
        }
    )
    names = [n for n in sources if not n.startswith("_") and "{% block" in sources[n]]
    plain = TemplateRenderer.from_dict(sources)
    limited = TemplateRenderer.from_dict(sources, sandboxed=True)
    checked = 0
    for name in names:
        try:
            expected = plain.render(name, context)
        except TemplateError:
            continue  # a partial (a layout, an include) or a template needing other variables
        assert expected == limited.render(name, context), name
        checked += 1
    assert checked >= 15


def _css_bomb(rules: int, elements: int) -> str:
    css = "".join(f".c{i} {{ color: red }}\n" for i in range(rules))
    body = "".join(f'<p class="c{i % rules}">x</p>' for i in range(elements))
    return f"{{% block html %}}<style>{css}</style>{body}{{% endblock %}}"


@pytest.mark.parametrize("compile", [True, False])
def test_css_inlining_work_is_bounded(compile: bool) -> None:
    """10,000 CSS rules x 2,000 elements (minutes of premailer) is refused at once."""
    renderer = TemplateRenderer.from_dict(
        {"t": _css_bomb(10_000, 2_000)}, sandboxed=True, compile=compile
    )
    started = time.monotonic()
    with pytest.raises(TemplateError, match="CSS rules"):
        renderer.render("t", {})
    assert time.monotonic() - started < 30  # a bound, not a benchmark: it did not inline


def test_css_work_through_a_variable_is_bounded() -> None:
    """The same bomb arriving in a |safe variable is refused per message."""
    template = "{% block html %}{{ body|safe }}{% endblock %}"
    bomb = _css_bomb(300, 10_000).removeprefix("{% block html %}").removesuffix("{% endblock %}")
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True)
    with pytest.raises(TemplateError, match="rules x elements"):
        renderer.render("t", {"body": bomb})


def test_css_within_the_limits_is_inlined() -> None:
    """200 rules on 200 elements is inlined as usual in the sandbox."""
    rendered = TemplateRenderer.from_dict(
        {"t": _css_bomb(200, 200)}, sandboxed=True, inliner="premailer"
    ).render("t")
    assert 'style="color:red"' in (rendered.html or "")


# --------------------------------------------------------------------------- property

_SMALL = TemplateLimits(max_output=1_000)
_EXPRESSIONS = [
    "a * n",
    "n * a",
    "a + b",
    "(a * n) ~ b",
    "a|center(n)",
    "a.ljust(n)",
    "a|indent(n)",
    "b.join([a] * n)",
    "a|replace(b, a)",
    "a.replace(b, a * n)",
    "(a * n)|wordwrap(3)",
    "'%*s' % (n, a)",
    "('{:>' ~ n ~ '}').format(a)",
    "range(n)|join(a)",
    "(a * n)|list|join(b)",
    "[a] * n",
]


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    expression=st.sampled_from(_EXPRESSIONS),
    a=st.text(alphabet="xy\t", min_size=0, max_size=40),
    b=st.text(alphabet="xyz", min_size=0, max_size=40),
    n=st.integers(min_value=-5, max_value=100_000),
)
def test_no_expression_builds_more_than_max_output(expression: str, a: str, b: str, n: int) -> None:
    """Whatever the sizes: the subject stays within max_output, or the render is refused."""
    template = f"{{% block subject %}}{{{{ {expression} }}}}{{% endblock %}}"
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True, limits=_SMALL)
    try:
        subject = renderer.render("t", {"a": a, "b": b, "n": n}).subject
    except TemplateError:
        return  # refused (a limit, or a plain error such as a negative width)
    assert len(subject) <= _SMALL.max_output
