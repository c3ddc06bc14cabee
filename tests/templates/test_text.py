"""HTML → text: the fallback text part derived from the HTML."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import templates as app
from notifykit.templates import TemplateRenderer, _text
from notifykit.templates._text import html_to_text
from tests.templates._text_oracle import oracle_html_to_text, oracle_pretext


def test_paragraphs_are_separated_by_a_blank_line() -> None:
    """Each paragraph or heading is its own block, with a blank line between."""
    assert "Title\n\nFirst.\n\nSecond." == html_to_text("<h1>Title</h1><p>First.</p><p>Second.</p>")


def test_line_breaks_are_kept_and_whitespace_collapsed() -> None:
    """<br> is a line break; source whitespace collapses to one space as in a browser."""
    assert "one two\nthree" == html_to_text("<p>one\n   two<br>three</p>")


def test_two_line_breaks_make_a_blank_line() -> None:
    """<br><br> leaves an empty line."""
    assert "a\n\nb" == html_to_text("a<br><br>b")


def test_links_show_their_url_after_the_label() -> None:
    """A link is written ``label (url)``, entities in the URL decoded."""
    html = '<p>See <a href="https://x.example/?a=1&amp;b=2">the shop</a>.</p>'
    assert "See the shop (https://x.example/?a=1&b=2)." == html_to_text(html)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="https://x.example">https://x.example</a>', "https://x.example"),
        ('<a href="mailto:a@b.example">a@b.example</a>', "a@b.example"),
        ('<a href="mailto:a@b.example">write</a>', "write (a@b.example)"),
        ('<a href="#top">back up</a>', "back up"),
        ('<a href="https://x.example"><img src="logo.png" alt="Logo"></a>', "https://x.example"),
        ("<a>no href</a>", "no href"),
    ],
)
def test_link_forms(html: str, expected: str) -> None:
    """A link's URL is not repeated, mailto: is dropped, anchors show no URL, image links show the URL."""
    assert expected == html_to_text(html)


def test_lists_become_bullets_and_numbers() -> None:
    """<ul> items are ``- item``, <ol> items are numbered, nested lists indented."""
    html = "<p>Items:</p><ul><li>tea</li><li>cups<ol><li>small</li><li>large</li></ol></li></ul><p>End</p>"
    assert "Items:\n\n- tea\n- cups\n  1. small\n  2. large\n\nEnd" == html_to_text(html)


def test_tables_put_rows_on_lines_and_cells_side_by_side() -> None:
    """Each row is a line; its non-empty cells are separated by `` | ``."""
    html = "<table><tr><th>Item</th><th>Qty</th></tr><tr><td>Tea</td><td>2</td></tr><tr><td></td><td>x</td></tr></table>"
    assert "Item | Qty\nTea | 2\nx" == html_to_text(html)


def test_head_style_script_and_comments_are_left_out() -> None:
    """No CSS, script, title or comment text reaches the text part."""
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head>"
        "<body><script>var x = 1;</script><!-- note --><p>Body</p><!--[if mso]><p>Outlook</p><![endif]--></body></html>"
    )
    assert "Body" == html_to_text(html)


def test_hidden_elements_are_left_out() -> None:
    """A preheader hidden with display:none, or an element with hidden, is not text."""
    html = '<div style="display: none; max-height:0">preview</div><p hidden>secret</p><p>Shown</p>'
    assert "Shown" == html_to_text(html)


def test_entities_are_decoded_and_invisible_characters_dropped() -> None:
    """&amp; &lt; &nbsp; decode; zero-width and soft hyphens vanish."""
    assert "Tom & Jerry < 3 ok" == html_to_text("<p>Tom &amp; Jerry &lt; 3&nbsp;o&zwnj;k&shy;</p>")


def test_pre_keeps_its_whitespace() -> None:
    """Text in <pre> keeps its spaces and line breaks."""
    assert "before\n\n  a  b\n    c\n\nafter" == html_to_text(
        "<p>before</p><pre>  a  b\n    c</pre><p>after</p>"
    )


def test_a_missing_head_end_tag_does_not_hide_the_body() -> None:
    """Sloppy HTML: <body> closes a <head> left open."""
    assert "Hi" == html_to_text("<html><head><title>x</title><body><p>Hi</p></body></html>")


def test_the_renderer_derives_text_from_html_without_a_text_block() -> None:
    """A template without text block gets the text of its HTML, variables included."""
    template = (
        "{% block html %}<p>Hi {{ name }},</p><ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>"
        '<p><a href="{{ url }}">Track it</a></p>{% endblock %}'
    )
    rendered = TemplateRenderer.from_dict({"t": template}).render(
        "t", {"name": "Asha & co", "items": ["tea", "cups"], "url": "https://t.example/1?a=b&c=d"}
    )
    assert (
        "Hi Asha & co,\n\n- tea\n- cups\n\nTrack it (https://t.example/1?a=b&c=d)" == rendered.text
    )
    assert "compiled" == rendered.text_strategy


def test_empty_values_merge_layout_breaks_like_the_per_message_path() -> None:
    """An empty variable between two cells does not leave a stray separator."""
    template = "{% block html %}<table><tr><td>{{ a }}</td><td>{{ b }}</td><td>{{ c }}</td></tr></table>{% endblock %}"
    renderer = TemplateRenderer.from_dict({"t": template})
    for a, b, c in [("1", "", "3"), ("", "", "3"), ("1", "  ", ""), ("", "", "")]:
        rendered = renderer.render("t", {"a": a, "b": b, "c": c})
        expected = html_to_text(renderer.plain_html("t", {"a": a, "b": b, "c": c}) or "")
        assert expected == rendered.text
        assert "compiled" == rendered.text_strategy


# --- the fast path (single-pass tokenizer + memo of markup runs) against the old converter

_TAGS = ["p", "div", "td", "tr", "table", "a", "ul", "ol", "li", "br", "hr", "pre", "span", "b"]
_TAGS += [
    "head",
    "body",
    "h1",
    "img",
    "P",
    "Td",
    "BR",
    "style",
    "script",
    "title",
    "textarea",
    "pre",
]
_ATTRS = [
    "",
    ' href="https://x.example/?a=1&amp;b=2"',
    " href=https://x.example/a",
    " href=''",
    " href",
    ' style="display: none"',
    " style='DISPLAY:NONE;color:red'",
    ' style="color:red"',
    " hidden",
    ' class="a b" id=x',
    ' title="a>b"',
    ' title="<"',
    " data-x = 'y'",
    ' a="x"b="y"',
    " href=x/",
    ' href="x"/',
    "\xa0href=x",
]
_TEXT = ["Hello", " ", "\n  ", "a &amp; b", "&lt;p&gt;", "x&nbsp;y", "&amp", "&#65;", "\t", "\xa0"]
_TEXT += ["a < b", "<", ">", "&", "caf\u00e9", "\u200b", "\x01", "\r\n", "1 -- 2", "</", "<<p>"]
_OTHER = ["<!-- c -->", "<!--[if mso]><p>x</p><![endif]-->", "<!---->", "<!-- a -- b -->"]
_OTHER += ["<!DOCTYPE html>", "<!doctype html PUBLIC '-'>", "<?xml x?>", "<![CDATA[x]]>", "<!-->"]
_OTHER += ["<!--<![endif]-->", "</ p>", "</p x>", "<p/>", "<br />", "<style/>", "<a<b>", "<!--"]


# pieces that send a document to html.parser
_UNUSUAL = {' title="a>b"', ' title="<"', ' a="x"b="y"', " href=x/", "\xa0href=x", "<!---->"}
_UNUSUAL |= {
    "<!-- a -- b -->",
    "<?xml x?>",
    "<![CDATA[x]]>",
    "<!-->",
    "</ p>",
    "</p x>",
    "<style/>",
}
_UNUSUAL |= {"<a<b>", "<!--"}


@st.composite
def _html(draw: st.DrawFn) -> str:
    # mostly documents the fast path takes, some it hands to html.parser
    usual = draw(st.integers(0, 3)) > 0

    def pick(options: list[str]) -> str:
        if usual:
            options = [o for o in options if o not in _UNUSUAL]
        return draw(st.sampled_from(options))

    pieces: list[str] = []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.integers(0, 3))
        tag = draw(st.sampled_from(_TAGS[:-5] if usual else _TAGS))
        if kind == 0:
            pieces.append(f"<{tag}{pick(_ATTRS)}>")
        elif kind == 1:
            pieces.append(f"</{tag}>")
        elif kind == 2:
            text = draw(st.sampled_from(_TEXT) | st.text(max_size=6))
            pieces.append(text.replace("<", "") if usual else text)
        else:
            pieces.append(pick(_OTHER))
    return "".join(pieces)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(_html(), _html())
def test_the_fast_converter_equals_the_html_parser_one(first: str, second: str) -> None:
    """On random HTML, text and pre-text equal the html.parser converter's, also on
    a second document that reuses the remembered markup runs of the first."""
    for source in (first, second, first + second, first):
        assert oracle_pretext(source) == _text.pretext(source)
        assert oracle_html_to_text(source) == html_to_text(source)


def test_the_fast_converter_equals_the_old_one_on_real_e_mails(corpus: Path) -> None:
    """Every corpus e-mail and every benchmark e-mail gives the same text both ways,
    and the benchmark e-mails (well-formed) take the fast path."""
    for path in sorted(corpus.rglob("*.html")):
        source = path.read_text(encoding="utf-8", errors="replace")
        for _ in range(2):
            assert oracle_html_to_text(source) == html_to_text(source), path
    fast = 0
    for locale in ("en", "fr"):
        env = app.environment(locale)
        for name in app.NAMES:
            for context in app.contexts(name, 3):
                source = env.get_template(name).render(context)
                assert oracle_html_to_text(source) == html_to_text(source), name
                fast += _text._fast_pretext(source) is not None
    assert fast == 2 * 3 * len(app.NAMES)


def test_the_memo_of_markup_runs_is_bounded() -> None:
    """Many distinct documents replace the memo instead of growing it without end."""
    for i in range(_text._Memo.LIMIT // 4 + 50):
        html_to_text(
            f"<p class=c{i}>x</p><div id=d{i}><b>y</b></div><i n={i}>z</i><u v={i}>w</u><s>"
        )
    assert len(_text._MEMO.runs) <= _text._Memo.LIMIT + 5
