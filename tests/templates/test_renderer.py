"""TemplateRenderer: loaders, the parts of a notification, escaping, errors, caching."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from notifykit.errors import ConfigurationError, TemplateError
from notifykit.templates import Rendered, TemplateRenderer

from .conftest import assert_equivalent

FULL = """
{% block subject %}Order {{ order }}
  for {{ name }}{% endblock %}
{% block html %}<p>Hi {{ name }}</p>{% endblock %}
{% block text %}
    Hi {{ name }},
    your order {{ order }}.
{% endblock %}
{% block sms %}  Order {{ order }} shipped  {% endblock %}
"""


def render(
    templates: dict[str, str], name: str, context: dict[str, object], **options: object
) -> Rendered:
    return TemplateRenderer.from_dict(templates, **options).render(name, context)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- parts


def test_all_four_blocks_become_the_four_parts() -> None:
    """subject, html, text and sms are the blocks of the same names."""
    rendered = render({"t": FULL}, "t", {"name": "Asha", "order": "A-1"})
    assert "Order A-1 for Asha" == rendered.subject
    assert "<p>Hi Asha</p>" in (rendered.html or "")
    assert "Hi Asha,\nyour order A-1." == rendered.text
    assert "Order A-1 shipped" == rendered.sms
    assert "block" == rendered.text_strategy


def test_subject_is_put_on_one_line() -> None:
    """Line breaks in the subject block (and the indentation around them) become one space."""
    rendered = render(
        {"t": "{% block subject %}\n  Your\n\n   order {{ n }}\n{% endblock %}"}, "t", {"n": 7}
    )
    assert "Your order 7" == rendered.subject


def test_subject_text_and_sms_are_not_html_escaped() -> None:
    """Only the HTML part is escaped: a subject with & and quotes stays as typed."""
    context = {"name": "Tom & Jerry's <shop>", "order": "1"}
    rendered = render({"t": FULL}, "t", context)
    assert "Order 1 for Tom & Jerry's <shop>" == rendered.subject
    assert "Hi Tom & Jerry's <shop>,\nyour order 1." == rendered.text
    assert "<p>Hi Tom &amp; Jerry&#39;s &lt;shop&gt;</p>" in (rendered.html or "")


def test_html_is_autoescaped_even_when_the_environment_is_not() -> None:
    """An environment with autoescape off still gets an escaped HTML part."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"t": "{% block html %}{{ x }}{% endblock %}"})
    )
    rendered = TemplateRenderer(environment=env).render("t", {"x": "<script>"})
    assert "&lt;script&gt;" in (rendered.html or "")
    assert "<script>" not in (rendered.html or "")


def test_missing_blocks_give_empty_subject_and_no_sms() -> None:
    """No subject block is "", no sms block is None, no text block derives text from the HTML."""
    rendered = render({"t": "{% block html %}<p>Hello <b>you</b></p>{% endblock %}"}, "t", {})
    assert "" == rendered.subject
    assert rendered.sms is None
    assert "Hello you" == rendered.text
    assert "compiled" == rendered.text_strategy


def test_an_sms_only_template_has_no_html_and_no_text() -> None:
    """A template with only an sms block renders an SMS and nothing else."""
    rendered = render(
        {"otp": "{% block sms %}Your code is {{ code }}{% endblock %}"}, "otp", {"code": 123456}
    )
    assert ("", None, None, "Your code is 123456") == (
        rendered.subject,
        rendered.html,
        rendered.text,
        rendered.sms,
    )
    assert "none" == rendered.strategy


def test_without_a_layout_html_is_the_html_block_alone() -> None:
    """The subject, text and sms blocks never leak into the HTML of a template without layout."""
    rendered = render({"t": FULL}, "t", {"name": "Asha", "order": "A-1"})
    html = rendered.html or ""
    assert "shipped" not in html
    assert "Order A-1 for" not in html
    assert "your order" not in html


def test_with_a_layout_html_is_the_whole_template() -> None:
    """A template that extends a layout gets the layout's markup around its html block."""
    templates = {
        "base.html": "<html><body><h1>Shop</h1>{% block html %}{% endblock %}<footer>bye</footer></body></html>",
        "t": '{% extends "base.html" %}{% block subject %}S {{ x }}{% endblock %}{% block html %}<p>{{ x }}</p>{% endblock %}',
    }
    rendered = render(templates, "t", {"x": "hello"})
    html = rendered.html or ""
    assert (
        html.index("<h1>Shop</h1>")
        < html.index("<p>hello</p>")
        < html.index("<footer>bye</footer>")
    )
    assert "S hello" not in html
    assert "S hello" == rendered.subject


def test_a_layout_may_place_the_subject_itself() -> None:
    """The subject reaches the HTML only where the layout puts it (here the <title>)."""
    templates = {
        "base.html": "<html><head><title>{% block subject %}{% endblock %}</title></head><body>{% block html %}{% endblock %}</body></html>",
        "t": '{% extends "base.html" %}{% block subject %}Hi {{ who }}{% endblock %}{% block html %}<p>x</p>{% endblock %}',
    }
    rendered = render(templates, "t", {"who": "A & B"})
    assert "<title>Hi A &amp; B</title>" in (rendered.html or "")
    assert "Hi A & B" == rendered.subject


def test_blocks_see_imports_and_sets_at_the_top_of_the_file() -> None:
    """Top-level {% set %} and imports are visible to blocks rendered alone."""
    templates = {
        "macros.html": "{% macro shout(s) %}{{ s|upper }}!{% endmacro %}",
        "t": '{% from "macros.html" import shout %}{% set shop = "Chai" %}'
        "{% block subject %}{{ shout(shop) }}{% endblock %}{% block html %}<p>{{ shop }}</p>{% endblock %}",
    }
    rendered = render(templates, "t", {})
    assert "CHAI!" == rendered.subject
    assert "<p>Chai</p>" in (rendered.html or "")


def test_super_works_in_blocks_rendered_alone() -> None:
    """A child's subject may extend the layout's with super()."""
    templates = {
        "base.html": "{% block subject %}Shop: {% endblock %}<html><body>{% block html %}{% endblock %}</body></html>",
        "t": '{% extends "base.html" %}{% block subject %}{{ super() }}order{% endblock %}{% block html %}<p>x</p>{% endblock %}',
    }
    assert "Shop: order" == render(templates, "t", {}).subject


def test_rendered_is_frozen() -> None:
    """Rendered is a frozen value."""
    rendered = render({"t": FULL}, "t", {"name": "a", "order": "b"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rendered.subject = "x"  # type: ignore[misc]


def test_keyword_variables_extend_the_context() -> None:
    """render(name, context, **more) merges the keywords into the context."""
    renderer = TemplateRenderer.from_dict({"t": "{% block subject %}{{ a }}{{ b }}{% endblock %}"})
    assert "12" == renderer.render("t", {"a": 1}, b=2).subject


# --------------------------------------------------------------------------- loaders


def test_from_directory_loads_files_and_nested_names(tmp_path: Path) -> None:
    """from_directory finds templates by their path below the directory."""
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "shipped.html").write_text(
        "{% block subject %}Shipped {{ n }}{% endblock %}", encoding="utf-8"
    )
    assert (
        "Shipped 3"
        == TemplateRenderer.from_directory(tmp_path).render("orders/shipped.html", {"n": 3}).subject
    )


def test_from_package_loads_templates_shipped_in_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_package reads templates from a package's data directory."""
    package = tmp_path / "myshop"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "templates" / "welcome.html").write_text(
        "{% block subject %}Welcome{% endblock %}", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert (
        "Welcome"
        == TemplateRenderer.from_package("myshop", "templates").render("welcome.html").subject
    )


def test_an_existing_environment_keeps_its_filters_and_globals() -> None:
    """TemplateRenderer(environment=…) renders with the environment's own filters and globals."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader(
            {"t": "{% block html %}<p>{{ price|money }} {{ shop }}</p>{% endblock %}"}
        )
    )
    env.filters["money"] = lambda v: f"₹{v:,.2f}"
    env.globals["shop"] = "Chai"
    rendered = TemplateRenderer(environment=env).render("t", {"price": 1234.5})
    assert "<p>₹1,234.50 Chai</p>" in (rendered.html or "")
    assert "₹1,234.50 Chai" == rendered.text


def test_filters_added_after_construction_are_seen() -> None:
    """Filters added to renderer.environment later still work (also in compiled templates)."""
    renderer = TemplateRenderer.from_dict(
        {"t": "{% block html %}<p>{{ 3|triple }}</p>{% endblock %}"}
    )
    renderer.environment.filters["triple"] = lambda v: v * 3
    rendered = renderer.render("t")
    assert "<p>9</p>" in (rendered.html or "")
    assert "9" == rendered.text


def test_environment_and_loader_together_are_refused() -> None:
    """Passing both environment= and loader= is a configuration error."""
    with pytest.raises(ConfigurationError):
        TemplateRenderer(environment=jinja2.Environment(), loader=jinja2.DictLoader({}))


@pytest.mark.parametrize("layout", ["notifykit/layouts/base.html", "layouts/base.html"])
def test_bundled_layout_is_reachable_from_every_loader(tmp_path: Path, layout: str) -> None:
    """The bundled layout resolves from a directory loader and from a dict loader."""
    child = f'{{% extends "{layout}" %}}{{% block html %}}<p>hi</p>{{% endblock %}}'
    (tmp_path / "t.html").write_text(child, encoding="utf-8")
    for renderer in (
        TemplateRenderer.from_directory(tmp_path),
        TemplateRenderer.from_dict({"t.html": child}),
    ):
        html = renderer.render("t.html").html or ""
        assert "nk-content" in html
        assert "<p " in html or "<p>" in html


def test_own_layouts_take_precedence_over_the_bundled_ones() -> None:
    """A user's layouts/base.html wins over the bundled layout of the same name."""
    templates = {
        "layouts/base.html": "<html><body>MINE {% block html %}{% endblock %}</body></html>",
        "t": '{% extends "layouts/base.html" %}{% block html %}x{% endblock %}',
    }
    assert "MINE" in (render(templates, "t", {}).html or "")


def test_bundled_order_confirmation_renders_from_its_sample_context() -> None:
    """The bundled order confirmation renders from its JSON sample context, compiled ahead of time."""
    sample = (
        Path(__file__).resolve().parents[2]
        / "notifykit"
        / "templates"
        / "bundled"
        / "order_confirmation.json"
    )
    context = json.loads(sample.read_text(encoding="utf-8"))
    renderer = TemplateRenderer.from_dict({})
    name = "notifykit/bundled/order_confirmation.html"
    rendered = renderer.render(name, context)
    assert "Order A-10042 confirmed" == rendered.subject
    assert ("compiled", "compiled") == (rendered.strategy, rendered.text_strategy)
    assert (
        "View your order (https://shop.example/orders/A-10042?ref=email&utm_source=notifykit)"
        in (rendered.text or "")
    )
    assert rendered.sms is not None
    assert rendered.sms.startswith("Chai & Co.: order A-10042 confirmed")
    assert_equivalent(renderer, name, context)


# ---------------------------------------------------------------------------- errors


def test_a_missing_variable_names_the_template_line_and_variable() -> None:
    """StrictUndefined: a missing variable is a TemplateError with template, line and name."""
    template = "{% block html %}\n<p>ok</p>\n<p>{{ customer.name }}</p>{% endblock %}"
    with pytest.raises(TemplateError) as info:
        render({"mail.html": template}, "mail.html", {})
    assert ("mail.html", 3) == (info.value.template, info.value.lineno)
    assert "'customer'" in str(info.value)
    assert "line 3" in str(info.value)


def test_a_missing_attribute_is_an_error_too() -> None:
    """An attribute missing from a context object is a TemplateError, not a blank."""
    with pytest.raises(TemplateError) as info:
        render({"t": "{% block subject %}{{ order.number }}{% endblock %}"}, "t", {"order": {}})
    assert "'number'" in str(info.value)


def test_strict_undefined_even_with_a_lenient_environment() -> None:
    """An environment configured with the default Undefined still raises on missing variables."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"t": "{% block subject %}{{ nope }}{% endblock %}"})
    )
    with pytest.raises(TemplateError):
        TemplateRenderer(environment=env).render("t", {})


def test_a_missing_variable_in_the_layout_names_the_layout() -> None:
    """The error points at the file where the variable is used."""
    templates = {
        "base.html": "<html><body>\n{{ brand_name }}\n{% block html %}{% endblock %}</body></html>",
        "t": '{% extends "base.html" %}{% block html %}<p>x</p>{% endblock %}',
    }
    with pytest.raises(TemplateError) as info:
        render(templates, "t", {})
    assert ("base.html", 2) == (info.value.template, info.value.lineno)


def test_an_unknown_template_is_a_template_error() -> None:
    """Rendering a name no loader knows is a TemplateError naming it."""
    with pytest.raises(TemplateError, match=r"unknown template 'nope\.html'"):
        render({}, "nope.html", {})


def test_a_template_without_blocks_is_a_template_error() -> None:
    """A file with no subject/html/text/sms block (blocks forgotten) is refused by name."""
    with pytest.raises(TemplateError, match=r"'bare\.html' defines none of the blocks"):
        render({"bare.html": "<p>Hello {{ name }}</p>"}, "bare.html", {"name": "Asha"})


def test_a_context_that_is_not_a_mapping_is_a_template_error() -> None:
    """render(name, [..]) says the context must be a mapping (no TypeError from dict())."""
    with pytest.raises(TemplateError, match="the context must be a mapping, not list"):
        render({"t.html": "{% block html %}x{% endblock %}"}, "t.html", [("a", 1)])  # type: ignore[arg-type]


def test_an_unknown_layout_is_a_template_error() -> None:
    """Extending a layout that does not exist is a TemplateError naming the layout."""
    with pytest.raises(TemplateError, match=r"missing\.html"):
        render({"t": '{% extends "missing.html" %}'}, "t", {})


def test_a_syntax_error_is_a_template_error_with_its_line() -> None:
    """Jinja syntax errors become TemplateError with the template and line."""
    with pytest.raises(TemplateError) as info:
        render({"t": "{% block html %}\n{% if %}{% endblock %}"}, "t", {})
    assert ("t", 2) == (info.value.template, info.value.lineno)
    assert isinstance(info.value.__cause__, jinja2.TemplateSyntaxError)


def test_an_exception_in_template_code_is_a_template_error() -> None:
    """A Python error raised while rendering (a division by zero) is mapped too."""
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render({"t": "{% block subject %}{{ 1 // n }}{% endblock %}"}, "t", {"n": 0})


def test_sandbox_violations_are_template_errors() -> None:
    """sandboxed=True refuses unsafe attribute access with a TemplateError."""
    evil = "{% block subject %}{{ ''.__class__.__mro__ }}{% endblock %}"
    with pytest.raises(TemplateError, match="sandbox"):
        render({"t": evil}, "t", {}, sandboxed=True)


def test_sandbox_violations_in_html_are_template_errors() -> None:
    """A sandbox violation in the HTML part (the compiled path) is a TemplateError too."""
    evil = "{% block html %}<p>{{ x.__class__.__subclasses__() }}</p>{% endblock %}"
    with pytest.raises(TemplateError, match="sandbox"):
        render({"t": evil}, "t", {"x": 1}, sandboxed=True)


def test_sandboxed_with_an_unsandboxed_environment_is_refused() -> None:
    """sandboxed=True needs a SandboxedEnvironment when one is given."""
    with pytest.raises(ConfigurationError):
        TemplateRenderer(environment=jinja2.Environment(), sandboxed=True)
    TemplateRenderer(environment=SandboxedEnvironment(), sandboxed=True)


def test_an_unknown_inliner_is_refused() -> None:
    """inliner= accepts only the documented engines."""
    with pytest.raises(ConfigurationError):
        TemplateRenderer.from_dict({}, inliner="magic")


def test_a_missing_linked_stylesheet_is_a_template_error() -> None:
    """A link to a local stylesheet that does not exist is a TemplateError."""
    template = '{% block html %}<html><head><link rel="stylesheet" href="nope.css"></head><body><p>x</p></body></html>{% endblock %}'
    with pytest.raises(TemplateError, match=r"nope\.css"):
        render({"t": template}, "t", {})


# ----------------------------------------------------------------- cache and threads


def test_changed_files_are_reloaded(tmp_path: Path) -> None:
    """With auto_reload, an edited template is picked up (here checked at every render)."""
    path = tmp_path / "t.html"
    path.write_text("{% block subject %}one{% endblock %}", encoding="utf-8")
    renderer = TemplateRenderer.from_directory(tmp_path, reload_interval=0)
    assert "one" == renderer.render("t.html").subject
    path.write_text("{% block subject %}two, longer{% endblock %}", encoding="utf-8")
    import os

    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert "two, longer" == renderer.render("t.html").subject


def test_concurrent_renders_agree_and_compile_once() -> None:
    """Many threads rendering one template get the same result and share one compiled entry."""
    calls: list[str] = []
    source = "{% block html %}<style>p{color:red}</style><p>{{ n }}</p>{% endblock %}"

    def load(name: str) -> str:
        calls.append(name)
        return source

    renderer = TemplateRenderer(
        loader=jinja2.FunctionLoader(load), auto_reload=False, inliner="premailer"
    )
    barrier = threading.Barrier(8)

    def work(i: int) -> str:
        barrier.wait()
        return renderer.render("t", {"n": i % 2}).html or ""

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(64)))
    assert {results[0], results[1]} == set(results)
    assert 'style="color:red"' in results[0]
    assert 1 == len(renderer._entries)


def test_importing_the_package_does_not_import_premailer() -> None:
    """import notifykit.templates loads neither premailer nor lxml nor css_inline."""
    code = (
        "import sys, notifykit.templates\n"
        "print(sorted(m for m in ('premailer', 'lxml', 'css_inline', 'cssutils') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "[]" == out.stdout.strip()


@pytest.mark.parametrize(("host_level", "expected"), [(None, "50"), ("logging.DEBUG", "10")])
def test_cssutils_noise_is_quieted_unless_the_host_chose_a_level(
    host_level: str | None, expected: str
) -> None:
    """Vendor properties do not spam stderr; a level the application set is left alone."""
    code = (
        "import logging, cssutils, notifykit\n"  # cssutils sets its level when imported
        + (f"logging.getLogger('CSSUTILS').setLevel({host_level})\n" if host_level else "")
        + "r = notifykit.TemplateRenderer.from_dict({'t': '{% block html %}<style>"
        "p{mso-line-height-rule:exactly;-webkit-text-size-adjust:none}</style>"
        '<p class="{{ c }}">x</p>{% endblock %}\'}, inliner="premailer")\n'
        "r.render('t', {'c': 'a'})\n"
        "print(logging.getLogger('CSSUTILS').level)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert expected == out.stdout.strip()
    if host_level is None:
        assert "" == out.stderr


def test_explain_says_why_a_template_goes_per_message() -> None:
    """explain() reports each part's strategy and, when per message, the reason."""
    renderer = TemplateRenderer.from_dict(
        {"t": '{% block html %}<style>.a{color:red}</style><p class="{{ c }}">x</p>{% endblock %}'}
    )
    plan = renderer.explain("t")
    assert ("per_message", "compiled") == (plan.strategy, plan.text_strategy)
    assert "class" in (plan.reason or "")
    assert ("html",) == plan.parts


def test_compile_false_forces_the_per_message_path() -> None:
    """compile=False renders everything per message, with the same result."""
    templates = {"t": "{% block html %}<style>p{color:red}</style><p>{{ n }}</p>{% endblock %}"}
    slow = render(templates, "t", {"n": 1}, compile=False)
    fast = render(templates, "t", {"n": 1})
    assert ("per_message", "per_message") == (slow.strategy, slow.text_strategy)
    assert ("compiled", "compiled") == (fast.strategy, fast.text_strategy)
    assert slow.text == fast.text


def test_markup_values_take_the_per_message_path_for_that_message() -> None:
    """A Markup value could add elements the analysis never saw: that message is inlined per message."""
    templates = {"t": "{% block html %}<style>b{color:red}</style><p>{{ x }}</p>{% endblock %}"}
    renderer = TemplateRenderer.from_dict(templates, inliner="premailer")
    plain = renderer.render("t", {"x": "<b>no</b>"})
    markup = renderer.render("t", {"x": Markup("<b>yes</b>")})
    assert "compiled" == plain.strategy
    assert "per_message" == markup.strategy
    assert "markup" in (markup.reason or "")
    assert '<b style="color:red">yes</b>' in (markup.html or "")
    assert "yes" == markup.text


def test_inliner_none_leaves_css_alone() -> None:
    """inliner=None renders the HTML as written, style block included."""
    templates = {"t": "{% block html %}<style>p{color:red}</style><p>{{ n }}</p>{% endblock %}"}
    rendered = render(templates, "t", {"n": 1}, inliner=None)
    assert "<style>p{color:red}</style><p>1</p>" == rendered.html
    assert ("none", "compiled") == (rendered.strategy, rendered.text_strategy)
