"""CSS inlining: what is inlined, what stays in <head>, and when the work is done once."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifykit.templates import TemplateRenderer
from notifykit.templates._inline import normalise

from .conftest import assert_equivalent

DOC = "{{% block html %}}<html><head>{head}</head><body>{body}</body></html>{{% endblock %}}"


def doc(body: str, css: str = "", head: str = "") -> str:
    style = f"<style>{css}</style>" if css else ""
    return DOC.format(head=head + style, body=body)


def test_rules_are_inlined_and_the_style_block_removed() -> None:
    """A <style> rule becomes a style attribute; a block with nothing left is removed."""
    renderer = TemplateRenderer.from_dict(
        {"t": doc("<p class='lead'>{{ x }}</p>", ".lead{color:red}")}, inliner="premailer"
    )
    rendered = renderer.render("t", {"x": "hi"})
    assert "compiled" == rendered.strategy
    assert '<p class="lead" style="color:red">hi</p>' in (rendered.html or "")
    assert "<style" not in (rendered.html or "")


def test_media_queries_stay_in_the_head_and_become_important() -> None:
    """@media rules are kept in a <style> in <head>, made !important so they beat inline styles."""
    css = "p{color:red} @media (max-width: 600px){p{color:blue}}"
    renderer = TemplateRenderer.from_dict({"t": doc("<p>{{ x }}</p>", css)}, inliner="premailer")
    html = renderer.render("t", {"x": "hi"}).html or ""
    head = html[: html.index("</head>")]
    assert "@media (max-width: 600px)" in head
    assert "color: blue !important" in head
    assert '<p style="color:red">hi</p>' in html


def test_important_declarations_win_over_more_specific_ones() -> None:
    """!important is respected: it beats a more specific selector and stays in the inline style."""
    css = "p{color:red !important} p.x{color:blue} p.x{font-weight:bold}"
    html = (
        TemplateRenderer.from_dict({"t": doc('<p class="x">{{ x }}</p>', css)}, inliner="premailer")
        .render("t", {"x": 1})
        .html
        or ""
    )
    assert "color:red !important" in html
    assert "color:blue" not in html
    assert "font-weight:bold" in html


def test_linked_local_stylesheets_are_inlined(tmp_path: Path) -> None:
    """<link rel=stylesheet> to a local file is read relative to the template's directory."""
    (tmp_path / "mail" / "css").mkdir(parents=True)
    (tmp_path / "mail" / "css" / "mail.css").write_text(
        ".box{padding:4px} @media print{.box{display:none}}", encoding="utf-8"
    )
    template = doc(
        '<div class="box">{{ x }}</div>', head='<link rel="stylesheet" href="css/mail.css">'
    )
    (tmp_path / "mail" / "welcome.html").write_text(template, encoding="utf-8")
    renderer = TemplateRenderer.from_directory(tmp_path, inliner="premailer")
    rendered = renderer.render("mail/welcome.html", {"x": "hi"})
    html = rendered.html or ""
    assert "compiled" == rendered.strategy
    assert '<div class="box" style="padding:4px">hi</div>' in html
    assert "@media print" in html
    assert "<link" not in html
    assert_equivalent(renderer, "mail/welcome.html", {"x": "<b>&"})


def test_remote_stylesheets_are_left_alone() -> None:
    """A link to a remote stylesheet (web fonts) stays as it is and is never fetched."""
    link = '<link rel="stylesheet" href="https://fonts.example/css?family=Roboto">'
    renderer = TemplateRenderer.from_dict(
        {"t": doc("<p>{{ x }}</p>", "p{margin:0}", head=link)}, inliner="premailer"
    )
    html = renderer.render("t", {"x": 1}).html or ""
    assert link.replace(">", "") in html
    assert '<p style="margin:0">1</p>' in html


def test_variables_in_attributes_no_selector_reads_are_compiled() -> None:
    """href="{{ url }}" is fine: no selector reads href, so the template inlines once."""
    template = doc('<a class="btn" href="{{ url }}">{{ label }}</a>', ".btn{color:red}")
    renderer = TemplateRenderer.from_dict({"t": template})
    context = {"url": 'https://x.example/?a=1&b="2"', "label": "Go"}
    assert "compiled" == renderer.render("t", context).strategy
    assert_equivalent(renderer, "t", context)


@pytest.mark.parametrize(
    ("body", "css", "reason"),
    [
        ('<p class="{{ c }}">x</p>', ".a{color:red}", "class"),
        ('<p id="{{ c }}">x</p>', "#a{color:red}", "'id'"),
        ('<a href="{{ c }}">x</a>', "a[href^=http]{color:red}", "href"),
        ('<p style="{{ c }}">x</p>', "p{color:red}", "style"),
        (
            "<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>",
            "li:first-child{color:red}",
            "structural",
        ),
        ("{% if c %}<p>a</p>{% endif %}<p>b</p>", "p:last-child{color:red}", "structural"),
        (
            "<div>{% for i in items %}<p>{{ i }}</p>{% endfor %}</div>",
            "p + p{color:red}",
            "structural",
        ),
        ('<td {% if c %}class="a"{% endif %}>x</td>', "td{color:red}", "inside <td>"),
        ("<p>{% if c %}<b>{% endif %}x{% if c %}</b>{% endif %}</p>", "b{color:red}", "close"),
        ("<p>a<div>b</div></p>", "div{color:red}", "nested"),
        ("<p>{% include 'part' %}</p>", "p{color:red}", None),
    ],
)
def test_templates_that_cannot_be_inlined_once_fall_back_per_message(
    body: str, css: str, reason: str | None
) -> None:
    """Dynamic classes, structural selectors over loops, tags inside tags, bad nesting: per message, same output."""
    templates = {"t": doc(body, css), "part": "<i>{{ c }}</i>{% block x %}{% endblock %}"}
    renderer = TemplateRenderer.from_dict(templates, inliner="premailer")
    plan = renderer.explain("t")
    assert "per_message" == plan.strategy
    if reason is not None:
        assert reason in (plan.reason or "")
    # (premailer's shared cache confuses an inline style "a" with the selector "a")
    for context in ({"c": "color:blue", "items": ["1", "2", "3"]}, {"c": "", "items": []}):
        rendered = renderer.render("t", context)
        assert "per_message" == rendered.strategy
        assert_equivalent(renderer, "t", context)


@pytest.mark.parametrize(
    ("body", "css"),
    [
        (
            "<table>{% for i in items %}<tr><td>{{ i }}</td><td>x</td></tr>{% endfor %}</table>",
            "td:first-child{color:red}",
        ),
        (
            "<div><p>a</p><p>b</p></div>{% for i in items %}<i>{{ i }}</i>{% endfor %}",
            "p:first-child{color:red}",
        ),
        ('<p class="{{ c }}">x</p>', "p{color:red}"),
        ("{% if c %}<b>yes</b>{% else %}<i>no</i>{% endif %}", "b{color:red} i{color:blue}"),
    ],
)
def test_structural_selectors_that_cannot_see_a_loop_are_compiled(body: str, css: str) -> None:
    """td:first-child with a loop of rows, or classes no selector reads, still inline once."""
    renderer = TemplateRenderer.from_dict({"t": doc(body, css)})
    assert "compiled" == renderer.explain("t").strategy
    for context in ({"c": "a", "items": ["1", "2", "3"]}, {"c": "", "items": []}):
        assert_equivalent(renderer, "t", context)


def test_css_inline_engine_gives_the_same_result_as_its_per_message_path() -> None:
    """inliner="css_inline" also compiles ahead of time, equal to css-inline per message."""
    pytest.importorskip("css_inline")
    body = "<table>{% for i in items %}<tr><td class='n'>{{ i }}</td></tr>{% endfor %}</table>"
    css = ".n{color:red} @media (max-width:600px){.n{color:blue}}"
    renderer = TemplateRenderer.from_dict({"t": doc(body, css)}, inliner="css_inline")
    rendered = renderer.render("t", {"items": ["a", "<b>"]})
    assert ("compiled", "css_inline") == (rendered.strategy, renderer.inliner)
    assert "@media" in (rendered.html or "")
    assert_equivalent(renderer, "t", {"items": ["a", "<b>"]}, engine="css_inline")


def test_auto_picks_css_inline_when_installed() -> None:
    """inliner="auto" uses css-inline when it is importable."""
    pytest.importorskip("css_inline")
    assert "css_inline" == TemplateRenderer.from_dict({}, inliner="auto").inliner


def test_normalise_ignores_spelling_but_not_content() -> None:
    """The documented normalisation: attribute order, quoting and entities do not count; text does."""
    a = "<p class='x' id=\"y\">it&#39;s</p>"
    b = '<html><body><p id="y" class="x">it\'s</p></body></html>'
    assert normalise(a) == normalise(b)
    assert normalise(a) != normalise(b.replace("it's", "its"))


def test_linked_stylesheets_are_also_inlined_per_message(tmp_path: Path) -> None:
    """A template that must be inlined per message still gets its linked stylesheet inlined."""
    (tmp_path / "mail.css").write_text(".a{color:red} p{margin:0}", encoding="utf-8")
    body = '<p class="{{ c }}">{{ x }}</p>'
    (tmp_path / "t.html").write_text(
        doc(body, head='<link rel="stylesheet" href="mail.css">'), "utf-8"
    )
    renderer = TemplateRenderer.from_directory(tmp_path, inliner="premailer")
    rendered = renderer.render("t.html", {"c": "a", "x": "hi"})
    assert "per_message" == rendered.strategy
    assert '<p class="a" style="margin:0; color:red">hi</p>' in (rendered.html or "")
    assert_equivalent(renderer, "t.html", {"c": "b", "x": "<i>"})


def test_premailer_gives_the_same_outputs_under_eight_threads() -> None:
    """premailer (and cssutils) keep module state: notifykit serialises them, so 8 threads agree.

    Without the lock, a dozen or more of these 400 outputs differed from the serial ones.
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor

    renderer = TemplateRenderer.from_dict({"t": doc("")}, inliner="premailer")
    documents = []
    for i in range(400):
        css = (
            f"p{{color:#{i % 50:06d};margin:{i % 9}px}} .c{i % 13}{{font-size:{i % 20}px}} "
            f"a{{color:red}} td.n{{text-align:right}} @media (max-width:600px){{.c{i % 13}{{font-size:1px}}}}"
        )
        documents.append(
            f"<html><head><style>{css}</style></head><body><p class='c{i % 13}' "
            f"style='padding:{i % 5}px'>x{i}</p><a href='#' style='color:blue'>a</a>"
            "<table><tr><td class='n'>1</td></tr></table></body></html>"
        )
    serial = [renderer.inline("t", d) for d in documents]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            threaded = list(pool.map(lambda d: renderer.inline("t", d), documents))
    finally:
        sys.setswitchinterval(interval)
    assert serial == threaded
