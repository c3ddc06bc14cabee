"""Phase 2 memoized per shape (``_text.ShapeMemo``) equals phase 2 of the whole pre-text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifykit.templates import TemplateRenderer, _text
from notifykit.templates._text import VAR_CLOSE, VAR_OPEN, ShapeMemo, finish

# Everything phase 2 acts on, plus plain text, whitespace of several kinds and
# the memo's own placeholder characters.
_STATIC_ALPHABET = st.sampled_from(
    list("ab (1)|.-") * 3
    + [" ", "  ", "\t", "\n", "\xa0", "\u2003", "\ue000", "\ue001", "0"]
    + [_text.PARAGRAPH, _text.BREAK, _text.BLOCK, _text.CELL, _text.HARD_NEWLINE] * 3
    + [
        _text.LINK_OPEN,
        _text.LINK_LABEL,
        _text.LINK_CLOSE,
        _text.LINK_OPEN + "http://x" + _text.LINK_LABEL,
        _text.LINK_OPEN + "#top" + _text.LINK_LABEL,
        _text.HARD_SPACE,
        _text.HARD_NEWLINE,
        _text.PARAGRAPH,
        _text.BREAK,
        _text.BLOCK,
        _text.OL_ITEM,
        _text.OL_OPEN,
        _text.OL_CLOSE,
        _text.CELL,
    ]
)
_VALUE_ALPHABET = st.sampled_from(
    [
        *"xyZ.:/@",
        *[" ", "  ", "\t", "\n", "\r\n", "\xa0", "http://x", "mailto:y", "#", "0"],
        *[_text.HARD_SPACE, _text.HARD_NEWLINE, "\ue000", "\ue001"],
    ]
)
STATIC = st.lists(_STATIC_ALPHABET, max_size=12).map("".join)
VALUE = st.lists(_VALUE_ALPHABET, max_size=6).map("".join)


def _pre(statics: list[str], values: list[str]) -> str:
    pieces = [statics[0]]
    for value, static in zip(values, statics[1:], strict=True):
        pieces += [VAR_OPEN, value, VAR_CLOSE, static]
    return "".join(pieces)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    statics=st.lists(STATIC, min_size=1, max_size=5),
    data=st.data(),
)
def test_the_memo_equals_phase_2_of_the_whole_pre_text(
    statics: list[str], data: st.DataObject
) -> None:
    """For one shape, every message's values give what finish() gives (miss, then hits)."""
    memo = ShapeMemo()
    for _ in range(3):
        values = data.draw(st.lists(VALUE, min_size=len(statics) - 1, max_size=len(statics) - 1))
        pre = _pre(statics, values)
        assert memo.finish(pre) == finish(pre), repr(pre)


def test_a_value_is_filled_in_without_finishing_again() -> None:
    """The memo is used: after the first message, the shape's phase 2 is not run again."""
    memo = ShapeMemo()
    statics = [_text.BLOCK + "Hello ", _text.PARAGRAPH + "Total:" + _text.CELL + "x" + _text.BLOCK]
    assert memo.finish(_pre(statics, ["Ann"])) == "Hello Ann\n\nTotal: | x"
    calls: list[str] = []
    original = _text.finish

    def counting(pre: str) -> str:
        calls.append(pre)
        return original(pre)

    _text.finish = counting  # type: ignore[assignment]
    try:
        assert memo.finish(_pre(statics, ["Bob  B."])) == "Hello Bob B.\n\nTotal: | x"
        assert memo.finish(_pre(statics, [" Bob"])) == "Hello Bob\n\nTotal: | x"
    finally:
        _text.finish = original  # type: ignore[assignment]
    assert len(calls) == 1, "only the value with a space at its edge is finished in full"


def test_a_variable_inside_a_link_is_never_filled_in() -> None:
    """A link's label and URL are compared by phase 2: such a shape is finished in full."""
    memo = ShapeMemo()
    statics = [_text.LINK_OPEN + "http://a" + _text.LINK_LABEL, _text.LINK_CLOSE]
    for value in ("http://a", "other"):
        pre = _pre(statics, [value])
        assert memo.finish(pre) == finish(pre)
    assert memo.finish(_pre(statics, ["http://a"])) == "http://a"


def test_the_memo_keeps_a_bounded_number_of_shapes() -> None:
    """At most LIMIT shapes; and a memo that keeps seeing new shapes stops looking."""
    memo = ShapeMemo()
    for i in range(ShapeMemo.LIMIT + 50):
        pre = _pre([f"row {i}" + _text.BLOCK, ""], ["v"])
        assert memo.finish(pre) == finish(pre)
    assert len(memo._shapes) == ShapeMemo.GIVE_UP
    busy = ShapeMemo()
    for i in range(ShapeMemo.LIMIT + 50):
        for value in ("v", "w", "x"):  # each shape used twice after it is made
            pre = _pre([f"row {i}" + _text.BLOCK, ""], [value])
            assert busy.finish(pre) == finish(pre)
    assert len(busy._shapes) == ShapeMemo.LIMIT


def test_the_renderer_fills_values_into_the_memoized_text() -> None:
    """Two messages of one compiled template: the second text has its own values."""
    renderer = TemplateRenderer.from_dict(
        {
            "t.html": "{% block subject %}Hi{% endblock %}{% block html %}<html><body>"
            "<p>Hello {{ name }}</p><p>Your code: {{ code }}</p></body></html>{% endblock %}"
        },
        cache_dir=False,
    )
    first = renderer.render("t.html", name="Ann", code="A 1")
    second = renderer.render("t.html", name="Bob\nSmith", code="<b>")
    assert "compiled" == first.text_strategy == second.text_strategy
    assert "Hello Ann\n\nYour code: A 1" == first.text
    assert "Hello Bob Smith\n\nYour code: <b>" == second.text


@settings(
    derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(name=st.text(max_size=8), code=st.text(max_size=8))
def test_the_renderer_text_equals_the_per_message_text(name: str, code: str) -> None:
    """Any values, one memo across examples: the text equals the text derived per message."""
    renderer = _RENDERER
    rendered = renderer.render("t.html", name=name, code=code)
    plain = renderer.plain_html("t.html", {"name": name, "code": code})
    assert plain is not None
    assert _text.html_to_text(plain) == rendered.text


_RENDERER = TemplateRenderer.from_dict(
    {
        "t.html": "{% block html %}<html><body><p>Hello {{ name }}</p>"
        "<ul><li>{{ code }}</li><li><a href='http://x/{{ code }}'>{{ name }}</a></li></ul>"
        "<pre>{{ code }}</pre></body></html>{% endblock %}"
    },
    cache_dir=False,
)


_SMALL_STATICS = [
    "",
    "a",
    " ",
    " a",
    "a ",
    _text.BLOCK,
    "a" + _text.PARAGRAPH,
    _text.CELL + "a",
    _text.HARD_NEWLINE,
    _text.LINK_OPEN + "u" + _text.LINK_LABEL,
    _text.LINK_CLOSE + "a",
    _text.OL_OPEN + _text.OL_ITEM,
]
_SMALL_VALUES = ["", "x", "x ", " x", "\tx", "x\n", "x  y", "x\ty", " ", _text.HARD_SPACE, "u"]


def test_every_small_shape_and_value_equals_phase_2() -> None:
    """Exhaustive over small pieces: each edge case phase 2 treats specially, next to each value.

    The memo is first filled by another value, so the value checked is filled in.
    """
    for before in _SMALL_STATICS:
        for after in _SMALL_STATICS:
            for second in (None, "y"):
                statics = [before, after] if second is None else [before, "b", after]
                memo = ShapeMemo()
                memo.finish(_pre(statics, ["v"] * (len(statics) - 1)))
                for value in _SMALL_VALUES:
                    cases = [[value]] if second is None else [[value, "v"], ["v", value]]
                    for values in cases:
                        pre = _pre(statics, values)
                        assert memo.finish(pre) == finish(pre), repr(pre)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    output=st.lists(st.sampled_from(["a", "bc", "\x01", "\x1f", "\x01\x1f"]), max_size=80).map(
        "".join
    ),
    count=st.integers(min_value=0, max_value=3),
)
def test_the_streams_are_cut_as_rsplit_and_split_cut_them(output: str, count: int) -> None:
    """The renderer's copy-saving cuts of a compiled output equal rsplit()/split()."""
    from notifykit.templates import _compile, renderer

    expected = output.rsplit(_compile.PART_SPLIT, count)
    found = renderer._parts_after(output, count) if count else (len(output), [])
    if len(expected) != count + 1:
        assert found is None
        return
    assert found is not None
    end, parts = found
    assert expected[1:] == parts
    assert expected[0] == output[:end]
    streams = expected[0].split(_compile.SPLIT)
    for probe in (0, 1, 12):
        html, text, _many = renderer._two_streams(output, end, probe)
        assert ("".join(streams[0::2]), "".join(streams[1::2])) == (html, text)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["a", "b c", " ", "  ", "\t", "\n", "\r\n", "\x0c", "\xa0", "\u2028"]),
        max_size=30,
    ).map("".join)
)
def test_the_text_block_is_cleaned_as_dedent_cleans_it(text: str) -> None:
    """_clean_text skips textwrap.dedent only where dedent would change nothing."""
    import textwrap

    from notifykit.templates import renderer

    lines = [line.rstrip() for line in text.splitlines()]
    assert textwrap.dedent("\n".join(lines)).strip("\n") == renderer._clean_text(text)
