"""Repair of badly nested static markup, once per template, before the analysis.

Real e-mails often close what is not open (``</strong></strong>``, a ``</div>``
too many) or leave an element for an ancestor's end tag to close
(``<td>…</tr>``). Every HTML parser copes, but the analysis of
:mod:`notifykit.templates._compile` needs the template's own nesting to be the
parser's, so such a template used to take the per-message path. This module
rewrites the *static* text of the template, where that provably changes
nothing:

- **drop an end tag that closes nothing**: no element of that name is open
  there (the parser ignores such a tag);
- **write out the end tags an end tag implies**: ``<td>…</tr>`` becomes
  ``<td>…</td></tr>`` (the parser closes the cell there anyway);
- **write out the end tag a start tag implies**: a heading in a heading, a
  row in a row, a cell in a cell, an item in an item, a paragraph in a
  paragraph (``<h4>a<h4>`` becomes ``<h4>a</h4><h4>``);
- **write out the row the parser adds** around a cell straight in a table.

Why the output stays the same, for every message:

- *Text part.* Phase 1 of :mod:`._text` writes, for a tag, what the tag and
  the stack of open elements decide, and for a value what the mode at its
  place (normal, ``<pre>``, hidden) decides; phase 2 resolves each run of
  layout marks by a few facts (a paragraph mark in it? two breaks, one? a
  block mark?). The repaired and the original skeleton must have the same
  phase-1 text once each run is reduced to those facts, the same mode at each
  variable and the same stack at each ``{% if %}``/``{% for %}`` boundary
  (:func:`_text_profile`): then every message has the same text part. The
  first two repairs meet that by construction (they follow
  :class:`._text.TextState`, which pops to the matching element and ignores
  an end tag that matches nothing); the check refuses the others where they
  would not (a heading inside a hidden heading, say).
- *HTML part.* The repaired skeleton must be parsed by the engine's own parser
  (html5ever for css-inline, libxml2 for premailer) into exactly the tree of
  the original skeleton — with the variables' placeholders as they are, and
  with every variable empty. The stack of open elements at a repaired point
  is the same in every message (no repair lies inside an
  ``{% if %}``/``{% for %}``, and the analysis refuses any branch or loop body
  that does not leave it as it found it), so what the parser does there is
  what it does in the skeleton. The analysis then runs on the repaired
  skeleton as on any template (the engine's tree must be the template's
  nesting), and the differential test compares the result with per-message
  inlining of the original template.

A repair is only made inside static text (never across a variable or a Jinja
tag), never inside ``{% if %}``/``{% for %}``, never on tags whose end tag the
parser treats specially (``</p>``, ``</br>``, ``</form>``, ``</body>``…),
and only in a piece of static text the template uses once. It is all or
nothing: when one misnested tag cannot be repaired, nothing is, and
``explain()`` names the original construct. Repairs change no line breaks, so
the lines ``explain()`` gives stay those of the template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from jinja2 import nodes

from notifykit.templates import _text
from notifykit.templates._html import VOID_ELEMENTS

__all__ = ["engine_parser", "plan_repairs", "repair_static_markup", "worth_trying"]

_MARKER = re.compile("\ue002(\\d+)\ue003")
_OUT = re.compile("\ue000\\d+\ue001")
_ANY_TOKEN = re.compile("[\ue000-\ue003]")

#: End tags the parser does not simply ignore when nothing of that name is open
#: (``</p>`` and ``</br>`` insert an element; the others change its state).
_SPECIAL_END = frozenset(
    ["p", "br", "body", "html", "head", "form", "template", "frameset", "select", "option"]
)
#: Elements whose end tag must never be written out by a repair.
_NEVER_CLOSE = (_SPECIAL_END - {"p"}) | frozenset(
    ["applet", "marquee", "object", "script", "style", "title", "textarea"]
)
#: The HTML parser's formatting elements: closing one implicitly may leave it in
#: the list of active formatting elements (reopened by later text).
_FORMATTING = frozenset(
    [
        "a",
        "b",
        "big",
        "code",
        "em",
        "font",
        "i",
        "nobr",
        "s",
        "small",
        "strike",
        "strong",
        "tt",
        "u",
    ]
)
#: End tags that clear the active formatting elements up to their marker: what
#: they close implicitly is gone, as if its end tag were written.
_MARKER_SCOPED = frozenset(["td", "th", "caption"])


class _Event(Protocol):
    kind: str
    start: int
    end: int
    tag: str
    attrs: list[tuple[str, str | None]]
    raw: str


class _Skeleton(Protocol):
    text: str
    pieces: list[Any]
    markers: dict[int, tuple[int, str]]

    def piece_index(self, offset: int) -> int: ...


Edit = tuple[int, int, str]  # skeleton offset, characters removed, text inserted


def worth_trying(analysis: Any) -> bool:
    """Whether the analysis' first walk saw what a repair could fix (cheap).

    An end tag that does not close the element open there, or an element whose
    parent is one the parser would close, or add a row to, first.
    """
    if analysis.html_problem:
        return True
    elements = analysis.elements
    for element in elements.values():
        parent = elements.get(element.parent) if element.parent is not None else None
        if parent is None:
            continue
        if _implied_by_start(element.tag, [parent.tag]) is not None:
            return True
        if element.tag == "table" and (parent.tag in _TABLE_SECTIONS or parent.tag == "tr"):
            return True
    return False


def plan_repairs(skeleton: _Skeleton, events: Sequence[_Event]) -> list[Edit] | None:
    """The edits that make the skeleton's end tags match, or ``None``.

    ``[]``: nothing to repair. ``None``: some end tag is misnested and cannot be
    repaired here (inside a loop or a condition, next to a variable, a tag the
    parser treats specially…).
    """
    state = _text.TextState()
    edits: list[Edit] = []
    depth = 0  # open {% if %}/{% for %} regions
    dropped: list[int] = []  # indexes of the end tags dropped where text is a table's
    for index, event in enumerate(events):
        if event.kind == "data":
            for match in _MARKER.finditer(event.raw):
                kind = skeleton.markers[int(match.group(1))][1]
                depth += {"open": 1, "close": -1}.get(kind, 0)
            continue
        if event.kind in ("start", "startend"):
            fix = _implied_by_start(event.tag, [entry.tag for entry in state.stack])
            if fix is not None:
                closed, opened = fix
                if depth or not _static_at(skeleton, event.start):
                    return None
                edits.append((event.start, 0, "".join(f"</{t}>" for t in closed) + opened))
                for tag in closed:
                    state.end(tag)
                if opened:
                    state.start(opened[1:-1], [])
            state.start(event.tag, event.attrs)
            if event.kind == "startend":
                state.end(event.tag)
            continue
        if event.kind != "end":
            continue
        tag = event.tag
        if tag in VOID_ELEMENTS:
            state.end(tag)
            continue
        open_tags = [entry.tag for entry in state.stack]
        if open_tags and open_tags[-1] == tag:
            state.end(tag)
            continue
        # misnested: drop it or write out what it closes, if that is safe here
        if depth or not _static_tag(skeleton, event):
            return None
        if tag not in open_tags:
            if tag in _SPECIAL_END:
                return None
            edits.append((event.start, _end_tag_length(event), ""))
            if _in_table_text(open_tags) or _after_newline_eater(events, index, edits):
                dropped.append(index)
            continue
        above = open_tags[_last(open_tags, tag) + 1 :]  # what the end tag pops above it
        if any(t in _NEVER_CLOSE for t in above):
            return None
        if any(t in _FORMATTING for t in above) and tag not in _MARKER_SCOPED:
            return None
        edits.append((event.start, 0, "".join(f"</{t}>" for t in reversed(above))))
        state.end(tag)
    if not _text_stays_apart(events, dropped):
        return None
    return edits


def _after_newline_eater(events: Sequence[_Event], index: int, edits: list[Edit]) -> bool:
    """The end tag follows ``<pre>``, ``<listing>`` or ``<textarea>`` (past other
    dropped end tags): the parser drops a newline right after those start tags,
    so a dropped tag could bring a value's newline there."""
    gone = {offset for offset, removed, _text in edits if removed}
    at = index - 1
    while at >= 0 and events[at].kind == "end" and events[at].start in gone:
        at -= 1
    return at >= 0 and events[at].kind == "start" and events[at].tag in _NEWLINE_EATERS


_NEWLINE_EATERS = frozenset(["pre", "listing", "textarea"])


def _in_table_text(open_tags: list[str]) -> bool:
    """Text here could be a table's own (collected, perhaps moved out): in a
    table, row or section, not in one of its cells (with anything in between)."""
    for tag in reversed(open_tags):
        if tag in ("td", "th", "caption"):
            return False
        if tag in _TABLE_SECTIONS or tag == "tr":
            return True
    return False


def _text_stays_apart(events: Sequence[_Event], dropped: list[int]) -> bool:
    """No end tag dropped in a table or after ``<pre>`` brings a variable's text
    next to other text or to the ``<pre>``.

    In a table the parser collects the characters between two tags and moves
    them out of the table (foster parenting) when any is not whitespace: a
    dropped tag would join a blank value to text that is moved, or text to a
    value that is. With no variable or Jinja tag on either side (up to the next
    tag or comment), the characters joined are the same in every message, and
    the engine's parse of the skeleton shows what becomes of them.
    """
    gone = set(dropped)
    for index in dropped:
        for step in (-1, 1):
            at = index + step
            while 0 <= at < len(events) and (events[at].kind == "data" or at in gone):
                if events[at].kind == "data" and _ANY_TOKEN.search(events[at].raw):
                    return False
                at += step
    return True


def _last(items: list[str], value: str) -> int:
    return len(items) - 1 - items[::-1].index(value)


def _end_tag_length(event: _Event) -> int:
    return len(event.raw.split(">", 1)[0]) + 1 if ">" in event.raw else len(event.raw)


def _static_tag(skeleton: _Skeleton, event: _Event) -> bool:
    """The end tag lies whole in one piece of static text."""
    end = event.start + _end_tag_length(event)
    piece = skeleton.pieces[skeleton.piece_index(event.start)]
    return bool(piece.kind == "static" and piece.start <= event.start and end <= piece.end)


def _static_at(skeleton: _Skeleton, offset: int) -> bool:
    """Text inserted at ``offset`` lands in a piece of static text."""
    piece = skeleton.pieces[skeleton.piece_index(offset)]
    return bool(piece.kind == "static" and piece.start <= offset < piece.end)


_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_TABLE_SECTIONS = frozenset(["table", "tbody", "thead", "tfoot"])


def _implied_by_start(tag: str, open_tags: list[str]) -> tuple[list[str], str] | None:
    """What the parser closes (innermost first) and opens before a start tag ``tag``.

    Only the cases e-mails have: a heading in a heading, a row in a row, a cell
    in a cell, an item in an item, a paragraph in a paragraph (the first one
    ends), and a cell straight in a table (the parser adds a row around it).
    ``None``: the start tag nests as written.
    """
    top = open_tags[-1] if open_tags else ""
    if tag in _HEADINGS and top in _HEADINGS:
        return [top], ""
    if tag == top and tag in ("li", "p"):
        return [top], ""
    if tag in ("td", "th") and top in ("td", "th"):
        return [top], ""
    if tag == "tr" and top == "tr":
        return ["tr"], ""
    if tag == "tr" and top in ("td", "th") and open_tags[-2:-1] == ["tr"]:
        return [top, "tr"], ""
    if tag in ("td", "th") and top in _TABLE_SECTIONS:
        return [], "<tr>"
    if tag == "table" and (top in _TABLE_SECTIONS or top == "tr"):
        # a table in a table or a row: the parser ends the outer table first
        outer = _last(open_tags, "table") if "table" in open_tags else -1
        if outer >= 0 and all(t in _TABLE_SECTIONS or t == "tr" for t in open_tags[outer:]):
            return open_tags[outer:][::-1], ""
    return None


def _apply(text: str, edits: Sequence[Edit]) -> str:
    out: list[str] = []
    last = 0
    for offset, removed, inserted in sorted(edits):
        out.append(text[last:offset])
        out.append(inserted)
        last = offset + removed
    out.append(text[last:])
    return "".join(out)


def repair_static_markup(
    skeleton: _Skeleton,
    events: Sequence[_Event],
    parse: Callable[[str], str],
) -> bool:
    """Repair the template's static text in place (see the module doc).

    ``parse`` is the engine's parser: HTML in, its tree serialised out. Returns
    whether the template's ``TemplateData`` nodes were edited (the caller
    rebuilds its skeleton then).
    """
    edits = plan_repairs(skeleton, events)
    if not edits:
        return False
    by_piece: dict[int, list[Edit]] = {}
    for edit in edits:
        by_piece.setdefault(skeleton.piece_index(edit[0]), []).append(edit)
    uses: dict[int, int] = {}
    for piece in skeleton.pieces:
        if piece.kind == "static" and piece.node is not None:
            uses[id(piece.node)] = uses.get(id(piece.node), 0) + 1
    targets: list[tuple[nodes.TemplateData, list[Edit]]] = []
    for index, piece_edits in by_piece.items():
        piece = skeleton.pieces[index]
        node = piece.node
        if not isinstance(node, nodes.TemplateData) or uses.get(id(node)) != 1:
            return False  # a piece of text the template prints twice (or not text)
        if node.data != piece.text:
            return False
        local = [(offset - piece.start, removed, text) for offset, removed, text in piece_edits]
        targets.append((node, local))
    original = skeleton.text
    repaired = _apply(original, edits)
    try:
        for variant in (_strip_markers, _strip_markers_and_values):
            if parse(variant(original)) != parse(variant(repaired)):
                return False
    except Exception:  # the engine refused the skeleton: no repair (the analysis says why)
        return False
    if _text_profile(original) != _text_profile(repaired):
        return False
    for node, local in targets:
        node.data = _apply(node.data, local)
    return True


def _strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def _strip_markers_and_values(text: str) -> str:
    return _OUT.sub("", _MARKER.sub("", text))


def engine_parser(engine: Any) -> Callable[[str], str]:
    """The engine's own HTML parser, as a function from HTML to its serialised tree.

    css-inline: html5ever's tree as css-inline writes it back without inlining
    anything (exact, not normalised). premailer: libxml2's tree, canonical
    (:meth:`._inline.PremailerEngine.normalise`).
    """
    identity = getattr(engine, "_identity", None)
    if identity is not None:
        return lambda html: str(identity.inline(html))
    normalise: Callable[[str], str] = engine.normalise
    return normalise


_RUN = re.compile("[\\s\x13\x14\x15\x19]+")


def _run_class(match: re.Match[str]) -> str:
    """What phase 2 can tell of a run of layout marks and whitespace (see below)."""
    run = match.group(0)
    if not _LAYOUT.search(run):
        return " "
    breaks = min(run.count(_text.BREAK), 2)
    return f"\x00{_text.PARAGRAPH in run:d}{breaks}{_text.BLOCK in run:d}\x00"


_LAYOUT = re.compile("[\x13\x14\x15\x19]")


class _Profile(_text._Converter):
    """Phase 1 of the text part, and the stack of open elements at each variable."""

    def __init__(self) -> None:
        super().__init__()
        self.stacks: list[object] = []

    def handle_data(self, data: str) -> None:
        for token in _TOKEN.finditer(data):
            if token.group(0)[0] == "\ue000":  # a variable: written by the mode alone
                self.stacks.append(self.state.mode)
            else:  # a boundary of {% if %}/{% for %}: what follows sees the whole stack
                self.stacks.append(self.state.snapshot())
        super().handle_data(data)


_TOKEN = re.compile("\ue000\\d+\ue001|\ue002\\d+\ue003")


def _text_profile(source: str) -> tuple[str, list[object]]:
    """What the text part of ``source`` depends on, for any values of its variables.

    Phase 2 (:func:`._text.finish`) collapses whitespace and resolves each run
    of layout marks (paragraph, break, block, cell) by whether it holds a
    paragraph mark, whether it holds two breaks or one, whether a block mark,
    and else a cell; runs that an empty value lets meet resolve by the same
    facts of their union. What phase 1 writes for a tag depends on the stack
    of open elements only, never on a value (values are text), and a value is
    written by the mode at its place (normal, ``<pre>``, hidden). So two
    skeletons whose pre-texts are equal once each run is reduced to those
    facts (the runs at either end left out: phase 2 strips them, and a run an
    empty value brings to an end with them), with the same mode at every
    variable and the same stack at every ``{% if %}``/``{% for %}`` boundary
    (a branch or loop body starts alike), give the same text part for every
    message.
    """
    profile = _Profile()
    profile.feed(source)
    profile.close()
    profile.out.append(profile.state.close_all())
    pre = "".join(profile.out)
    # phase 2 strips the runs at both ends, whatever the values next to them
    start = _EDGE_RUN.match(pre)
    pre = pre[start.end() if start else 0 :]
    end = _EDGE_RUN_END.search(pre)
    pre = pre[: end.start() if end else len(pre)]
    return _RUN.sub(_run_class, pre), profile.stacks


_EDGE_RUN = re.compile("[\\s\x13\x14\x15\x19]+")
_EDGE_RUN_END = re.compile("[\\s\x13\x14\x15\x19]+\\Z")
