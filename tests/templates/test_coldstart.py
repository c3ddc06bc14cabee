"""Cold start: what the first render of a template in a new process does, and that it is right.

- the block path (``subject``/``text``/``sms`` rendered alone) compiles only
  the blocks those parts reach, and renders them exactly as the whole chain
  of templates would (a differential test against the whole chain);
- the compile cache keeps that code too: a later process compiles nothing,
  unless a template of the chain now lives in another file (tracebacks);
- each source is parsed once per template build;
- simple selectors are read without cssselect, with the same facts.
"""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from notifykit.errors import TemplateError
from notifykit.templates import TemplateRenderer
from notifykit.templates import renderer as renderer_module
from notifykit.templates._inline import _cssselect_facts, _one_selector_facts, selector_facts

from .conftest import assert_equivalent

LAYOUT = (
    "<!DOCTYPE html><html><head><title>{% block subject %}{{ shop|default('Shop') }}{% endblock %}"
    "</title>"
    "<style>p { color: #111111; } .lead { font-size: 18px; }</style></head><body>"
    "{% block html %}{% endblock %}"
    "{% if self.footer() %}<p class='lead'>{% block footer %}{% endblock %}</p>{% endif %}"
    "{% block sms %}{{ shop|default('Shop') }}: {% block sms_body %}hi{% endblock %}{% endblock %}"
    "</body></html>"
)
TEMPLATES = {
    "layout.html": LAYOUT,
    "macros.html": "{% macro shout(x) %}{{ x|upper }}!{% endmacro %}",
    # super(), a nested block the child overrides, self.<block>() in a part
    "child.html": (
        '{% extends "layout.html" %}'
        "{% block subject %}{{ super() }} - {{ title }}{% endblock %}"
        "{% block sms_body %}{{ name }} x{{ items|length }}{% endblock %}"
        "{% block footer %}{% if flag %}{{ note }}{% endif %}{% endblock %}"
        "{% block text %}{{ self.footer() }}|{% for i in items %}{{ i }};{% endfor %}{% endblock %}"
        "{% block html %}<p class='lead'>Hi {{ name }}</p>{% endblock %}"
    ),
    # top-level imports, macros and {% set %} that the parts read (the prelude)
    "prelude.html": (
        '{% from "macros.html" import shout %}{% set greeting = "Hello" %}'
        "{% macro tag(x) %}[{{ x }}]{% endmacro %}"
        "{% block subject %}{{ greeting }} {{ shout(name) }} {{ tag(title) }}{% endblock %}"
        "{% block html %}<html><body><p>{{ name }}</p></body></html>{% endblock %}"
    ),
    # self used other than self.<block>(): the whole chain
    "odd_self.html": (
        '{% extends "layout.html" %}'
        "{% block subject %}{{ self['footer']() }}{{ title }}{% endblock %}"
        "{% block html %}<p>{{ name }}</p>{% endblock %}"
    ),
    # a part block nested in another block of the child
    "nested.html": (
        "{% block html %}<html><body>{% block text %}T {{ name }}{% endblock %}</body></html>"
        "{% endblock %}{% block subject %}{% block inner %}I {{ title }}{% endblock %}{% endblock %}"
    ),
}
PARTS_TEMPLATES = sorted(n for n in TEMPLATES if n not in ("layout.html", "macros.html"))

TEXT = st.lists(
    st.sampled_from(["a", "é", "<", "&", "'", '"', " ", "\n", "{{", "%", "\x01"]), max_size=8
).map("".join)
VALUE = st.one_of(TEXT, TEXT.map(Markup), st.integers(-3, 30))
CONTEXT = st.fixed_dictionaries(
    {
        "name": VALUE,
        "title": VALUE,
        "note": VALUE,
        "flag": st.booleans(),
        "items": st.lists(VALUE, max_size=3),
    }
)


def _whole_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the renderer compile the whole chain for the block path (the reference)."""
    monkeypatch.setattr(renderer_module, "_reachable_blocks", lambda chain, parts: None)


@pytest.mark.parametrize("name", PARTS_TEMPLATES)
@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(context=CONTEXT)
def test_reduced_block_chain_renders_the_parts_as_the_whole_chain(
    name: str, context: dict[str, Any]
) -> None:
    """subject, text and sms from the reduced chain equal those from the whole templates."""
    reduced = TemplateRenderer.from_dict(TEMPLATES, cache_dir=False)
    with pytest.MonkeyPatch.context() as patch:
        _whole_chain(patch)
        whole = TemplateRenderer.from_dict(TEMPLATES, cache_dir=False)
        whole._entry(name)
        whole._chains(whole._entries[name], html=False)
    assert whole._entries[name].plain_codes is None  # really the whole chain
    expected = whole.render(name, context)
    got = reduced.render(name, context)
    assert (expected.subject, expected.text, expected.sms) == (got.subject, got.text, got.sms)
    assert expected == got


def test_reduced_chain_holds_only_the_reached_blocks() -> None:
    """The layout's html block is not compiled for the block path; odd uses of self keep all."""
    renderer = TemplateRenderer.from_dict(TEMPLATES, cache_dir=False)
    renderer.render(
        "child.html", {"name": "A", "title": "T", "note": "", "flag": False, "items": []}
    )
    entry = renderer._entries["child.html"]
    assert entry.plain_codes is not None
    child, layout = entry.plain_chain
    assert {"subject", "sms_body", "footer", "text"} == set(child.blocks)
    assert {"subject", "sms", "sms_body", "footer"} == set(layout.blocks)
    renderer.render("odd_self.html", {"name": "A", "title": "T"})
    odd = renderer._entries["odd_self.html"]
    assert odd.plain_codes is None
    assert "html" in odd.plain_chain[1].blocks


def test_a_later_process_compiles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cache filled, the first render compiles none of the chain, and renders the same."""
    cache = tmp_path / "cache"
    context = {"name": "A", "title": "T", "note": "n", "flag": True, "items": [1, 2]}
    first = TemplateRenderer.from_dict(TEMPLATES, cache_dir=cache)
    expected = {n: first.render(n, context) for n in ("child.html", "prelude.html")}

    original = jinja2.Environment.compile

    def no_compile(self: jinja2.Environment, source: Any, name: Any = None, *a: Any) -> Any:
        # what the templates import at render time is compiled then, as by Jinja
        assert name == "macros.html", f"Jinja compiled {name}"
        return original(self, source, name, *a)

    monkeypatch.setattr(jinja2.Environment, "compile", no_compile)
    second = TemplateRenderer.from_dict(TEMPLATES, cache_dir=cache)
    for name, rendered in expected.items():
        assert rendered == second.render(name, context)
        entry = second._entries[name]
        assert entry.from_disk
        assert entry.plain_ready
    monkeypatch.undo()
    assert_equivalent(second, "child.html", context)


def test_a_cached_chain_from_another_folder_is_compiled_again(tmp_path: Path) -> None:
    """Same sources in another folder: the cached block code (with the old file) is not used."""
    first_site = tmp_path / "one"
    first_site.mkdir()
    for name, source in TEMPLATES.items():
        (first_site / name).write_text(source, encoding="utf-8")
    (first_site / "child.html").write_text(
        TEMPLATES["child.html"].replace("{{ super() }}", "{{ super() }}{{ 1 // zero }}"),
        encoding="utf-8",
    )
    second_site = tmp_path / "two"
    shutil.copytree(first_site, second_site)
    cache = tmp_path / "cache"
    context = {"name": "A", "title": "T", "note": "", "flag": False, "items": [], "zero": 1}
    TemplateRenderer.from_directory(first_site, cache_dir=cache).render("child.html", context)
    moved = TemplateRenderer.from_directory(second_site, cache_dir=cache)
    with pytest.raises(TemplateError) as caught:
        moved.render("child.html", dict(context, zero=0))
    assert moved._entries["child.html"].from_disk  # the analysis came from the cache
    cause = caught.value.__cause__
    assert cause is not None
    files = {f.filename for f in traceback.extract_tb(cause.__traceback__)}
    assert str(second_site / "child.html") in files
    assert str(first_site / "child.html") not in files


def test_each_source_is_parsed_once_per_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis and the block path share one parse of each file."""
    parsed: list[str] = []
    original = jinja2.Environment._parse

    def counting(self: jinja2.Environment, source: str, name: str | None, filename: Any) -> Any:
        parsed.append(str(name))
        return original(self, source, name, filename)

    monkeypatch.setattr(jinja2.Environment, "_parse", counting)
    renderer = TemplateRenderer.from_dict(TEMPLATES, cache_dir=False)
    rendered = renderer.render(
        "child.html", {"name": "A", "title": "T", "note": "", "flag": False, "items": []}
    )
    assert "compiled" == rendered.strategy
    assert sorted(parsed) == sorted(set(parsed)), parsed
    assert {"child.html", "layout.html"} <= set(parsed)


# ------------------------------------------------------------------------ selector facts

IDENT = st.from_regex(r"-?[_a-zA-Z][_a-zA-Z0-9-]{0,6}", fullmatch=True)
COMPOUND = st.one_of(
    IDENT,
    st.just("*"),
    st.tuples(
        st.one_of(IDENT, st.just("*"), st.just("")),
        st.lists(
            st.tuples(st.sampled_from([".", "#"]), IDENT).map("".join), min_size=1, max_size=3
        ).map("".join),
    ).map("".join),
)
SELECTOR = st.lists(
    st.tuples(st.sampled_from([" ", " > ", ">", "\n", "  ", " + ", "~", ","]), COMPOUND),
    min_size=1,
    max_size=4,
).map(lambda parts: "".join(c + s for c, s in parts)[len(parts[0][0]) :])
ODD = st.sampled_from(
    [
        "a:hover", "li:first-child", "td:nth-child(2)", "p:empty", "a[href]", ".a.b > .c",
        "h2 + p", "h2 ~ p", ".1a", "#1", "a > > b", "a >", "> a", "", " ", "a,b", "*|a",
        "a\\:b", ".é", "div:not(.x)", "p::first-line", ".a .b .c .d", "-x", "--x", ".-a",
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.one_of(SELECTOR, ODD))
def test_simple_selectors_have_the_facts_cssselect_finds(text: str) -> None:
    """Selectors read without cssselect get exactly the facts cssselect's reading gives."""
    fast = _one_selector_facts(text)
    slow = _cssselect_facts(text)
    assert (fast.attributes, fast.structural, fast.content_dependent, fast.problem) == (
        slow.attributes,
        slow.structural,
        slow.content_dependent,
        slow.problem,
    )


def test_selector_facts_are_fresh_objects() -> None:
    """The memo is never changed through a result."""
    one = selector_facts([".a", "td"])
    one.attributes.add("x")
    assert {"class"} == selector_facts([".a", "td"]).attributes


# ---------------------------------------------------------------------- AST copies


def test_clone_copies_like_deepcopy() -> None:
    """The analysis' fast copy of an AST equals deepcopy's: same nodes, none shared, env kept."""
    import copy

    from jinja2 import nodes

    from benchmarks.templates import FOLDER
    from benchmarks.templates import environment as app_environment
    from notifykit.templates._compile import _clone

    env = app_environment("fr")
    names = ["_layout.html", "_macros.html", *(f"emails/{p.name}" for p in FOLDER.glob("emails/*"))]
    for name in names:
        ast = env.parse(env.loader.get_source(env, name)[0], name)  # type: ignore[union-attr]
        for node in ast.find_all(nodes.Node):
            node.nk_file = name  # type: ignore[attr-defined]
        expected, got = copy.deepcopy(ast.body, {id(env): env}), _clone(ast.body, env)
        assert expected == got
        old = list(nodes.Template(expected).find_all(nodes.Node))
        new = list(nodes.Template(got).find_all(nodes.Node))
        originals = {id(n) for n in ast.find_all(nodes.Node)}
        assert [vars(n).keys() for n in old] == [vars(n).keys() for n in new]
        assert all(n.environment is env and n.nk_file == name for n in new)  # type: ignore[attr-defined]
        assert not originals & {id(n) for n in new}
