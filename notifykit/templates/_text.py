"""HTML → plain text, in two phases, with only the stdlib ``html.parser``.

Why two phases: the text part of an e-mail is derived from its HTML, and
notifykit wants to do that once per template, not once per message. Phase 1
walks the HTML tokens and writes a *pre-text*: the visible characters plus a
few control characters that stand for layout ("a paragraph ends here", "a
table cell starts here", "this is a link to …"). Phase 1 is local: what it
writes for a tag depends only on the tag and on the stack of open elements,
and what it writes for text is a per-character function of the text. So the
pre-text of a rendered template is the concatenation of the pre-texts of its
static pieces and of its variables, which lets :mod:`notifykit.templates._compile`
turn a template into a "pre-text template" ahead of time. Phase 2
(:func:`finish`) is a few regular expressions over the short pre-text that
resolve whitespace, line breaks, links and list numbers; it runs per message
and costs little.

What the text looks like: paragraphs separated by a blank line, ``<br>`` kept,
links as ``label (url)`` (just the URL when the label is the URL or empty),
list items as ``- item`` or ``1. item``, table rows on their own line with
cells separated by `` | ``; nothing from ``<head>``, ``<style>``, ``<script>``,
comments, or elements hidden with an inline ``display:none`` or ``hidden``;
entities decoded; whitespace collapsed as a browser would (except in
``<pre>``).
"""

from __future__ import annotations

import html
import re
import threading
from html.parser import HTMLParser

from notifykit.templates._html import VOID_ELEMENTS

__all__ = ["Href", "ShapeMemo", "TextState", "finish", "html_to_text", "transform"]

# Control characters of the pre-text. The variables' own control characters are
# removed (see ``TABLES``), so none of these can come from user data.
LINK_OPEN = "\x02"  # followed by the URL, then LINK_LABEL
LINK_LABEL = "\x03"
LINK_CLOSE = "\x04"
HARD_SPACE = "\x11"  # a space phase 2 must keep (<pre>, list indentation)
HARD_NEWLINE = "\x12"  # a newline phase 2 must keep (<pre>)
PARAGRAPH = "\x13"  # a blank line here
BREAK = "\x14"  # <br>: one line break
BLOCK = "\x15"  # a block boundary: start a new line if not at one
OL_ITEM = "\x16"  # replaced by "N. "
OL_OPEN = "\x17"
OL_CLOSE = "\x18"
CELL = "\x19"  # a table cell starts: " | " between cells of one row
# Around the text of each variable in the pre-text of a compiled template (see
# :class:`ShapeMemo`); phase 1 removes both from every text, so only the
# compiled template's own filters write them.
VAR_OPEN = "\x05"
VAR_CLOSE = "\x06"

# Elements whose content is never part of the text.
_DROP = frozenset(["head", "title", "style", "script", "template"])
_PARAGRAPH_TAGS = frozenset(["p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "dl"])
_BLOCK_TAGS = frozenset(
    [
        "div",
        "table",
        "tr",
        "section",
        "article",
        "header",
        "footer",
        "center",
        "address",
        "main",
        "nav",
        "aside",
        "form",
        "fieldset",
        "figure",
        "figcaption",
        "dt",
        "dd",
        "caption",
        "tbody",
        "thead",
        "tfoot",
    ]
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.IGNORECASE)

_REMOVED = dict.fromkeys([*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
_INVISIBLE = dict.fromkeys([0x00AD, 0x034F, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF])
TABLES: dict[str, dict[int, str | None]] = {
    "normal": {**_REMOVED, **_INVISIBLE, 0xA0: " "},
    "pre": {
        **_REMOVED,
        **_INVISIBLE,
        0x20: HARD_SPACE,
        0xA0: HARD_SPACE,
        0x09: HARD_SPACE * 4,
        0x0A: HARD_NEWLINE,
        0x0C: HARD_NEWLINE,
        0x0D: None,
    },
    "attr": {**_REMOVED, 0x09: " ", 0x0A: " ", 0x0D: " ", 0x0C: " "},
    "drop": {},
}
#: Characters that :data:`TABLES` changes, per mode: most text needs no translation.
SPECIAL: dict[str, re.Pattern[str]] = {
    mode: re.compile("[" + "".join(re.escape(chr(c)) for c in table) + "]" if table else "(?!)")
    for mode, table in TABLES.items()
}


def transform(text: str, mode: str) -> str:
    """The phase 1 text of ``text`` (already entity-decoded) in ``mode``.

    ``mode`` is ``"normal"``, ``"pre"``, ``"attr"`` (a link's URL) or ``"drop"``
    (hidden content: nothing). The function works character by character, so
    the pre-text of a concatenation is the concatenation of the pre-texts.
    """
    if mode == "drop":
        return ""
    if SPECIAL[mode].search(text) is None:
        return text
    return text.translate(TABLES[mode])


class Href:
    """A link's URL in phase 1 output, to be transformed by whoever has its value.

    The per-message converter has the value; the template compiler may have a
    value with variables in it, which it splits and transforms piece by piece.
    """

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


Emission = list[str | Href]


class _Entry:
    __slots__ = ("close", "drop", "tag")

    def __init__(self, tag: str, close: str, drop: bool) -> None:
        self.tag = tag
        self.close = close
        self.drop = drop


class TextState:
    """Phase 1: the stack of open elements and what each token writes.

    All state is the stack, so the compiler can check that a loop body or a
    branch leaves it as it found it (:meth:`snapshot`).
    """

    def __init__(self) -> None:
        self.stack: list[_Entry] = []

    def snapshot(self) -> tuple[tuple[str, str, bool], ...]:
        """The whole state, comparable: equal snapshots behave the same."""
        return tuple((e.tag, e.close, e.drop) for e in self.stack)

    @property
    def mode(self) -> str:
        """How text at this point is written: ``drop``, ``pre`` or ``normal``."""
        if self.stack and self.stack[-1].drop:
            return "drop"
        for entry in self.stack:
            if entry.tag == "pre":
                return "pre"
        return "normal"

    def _lists(self) -> list[str]:
        return [e.tag for e in self.stack if e.tag in ("ul", "ol")]

    def start(self, tag: str, attrs: list[tuple[str, str | None]]) -> Emission:
        """What a start tag writes; pushes the element unless it is void."""
        dropping = bool(self.stack) and self.stack[-1].drop
        if tag == "body":
            # A missing </head> must not hide the whole body.
            for i, entry in enumerate(self.stack):
                if entry.tag == "head":
                    del self.stack[i:]
                    dropping = bool(self.stack) and self.stack[-1].drop
                    break
        out: Emission = []
        close = ""
        attr = dict(attrs)
        hidden = tag in _DROP or "hidden" in attr
        style = attr.get("style")
        if style and _HIDDEN_STYLE.search(style):
            hidden = True
        if not dropping:
            if tag in _PARAGRAPH_TAGS:
                out.append(PARAGRAPH)
                close = PARAGRAPH
            elif tag in ("ul", "ol"):
                sep = PARAGRAPH if not self._lists() else BLOCK
                out.append(sep + OL_OPEN if tag == "ol" else sep)
                close = OL_CLOSE + sep if tag == "ol" else sep
            elif tag == "li":
                lists = self._lists()
                indent = HARD_SPACE * 2 * max(len(lists) - 1, 0)
                bullet = OL_ITEM if lists and lists[-1] == "ol" else "-" + HARD_SPACE
                out.append(BLOCK + indent + bullet)
                close = BLOCK
            elif tag in _BLOCK_TAGS:
                out.append(BLOCK)
                close = BLOCK
            elif tag in ("td", "th"):
                out.append(CELL)
            elif tag == "br":
                out.append(BREAK)
            elif tag == "hr":
                out.append(PARAGRAPH + "---" + PARAGRAPH)
            elif tag == "a" and attr.get("href") is not None and not hidden:
                out.extend((LINK_OPEN, Href(attr["href"] or ""), LINK_LABEL))
                close = LINK_CLOSE
        if tag not in VOID_ELEMENTS:
            self.stack.append(_Entry(tag, close, dropping or hidden))
        return out

    def end(self, tag: str) -> str:
        """What an end tag writes; pops up to the matching element, if open."""
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                closing = self.stack[i:]
                del self.stack[i:]
                return "".join(e.close for e in reversed(closing) if not e.drop)
        return ""

    def close_all(self) -> str:
        """What the end of the document writes: every open element closes."""
        closing = self.stack
        self.stack = []
        return "".join(e.close for e in reversed(closing) if not e.drop)


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.state = TextState()
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for item in self.state.start(tag, attrs):
            self.out.append(item if isinstance(item, str) else transform(item.value, "attr"))

    def handle_endtag(self, tag: str) -> None:
        self.out.append(self.state.end(tag))

    def handle_data(self, data: str) -> None:
        self.out.append(transform(data, self.state.mode))


def _parsed_pretext(source: str) -> str:
    """Phase 1 with ``html.parser``: any HTML, however malformed."""
    converter = _Converter()
    converter.feed(source)
    converter.close()
    converter.out.append(converter.state.close_all())
    return "".join(converter.out)


# The fast path: one regular expression for the tokens of ordinary, well-formed
# HTML, on which ``html.parser`` (of any supported Python version) produces the
# same events. Anything else — a stray "<", a comment containing "--", an
# unusual attribute, "<?", a raw-text element it would treat specially — sends
# the whole document to ``html.parser`` instead, so the output never changes.
_W = r"[ \t\n\r\f]"
_NAME = r"""[^\s"'>/=]+"""
_VALUE = r"""\"[^\"]*\"|'[^']*'|[^\s"'=<>`/]+(?=[ \t\n\r\f>])"""
_TOKEN = re.compile(
    r"([^<]+)"  # 1: text
    r"|<([a-zA-Z][a-zA-Z0-9-]*)"  # 2: start tag, 3: its attributes, 4: "/" if self-closing
    rf"((?:{_W}+{_NAME}(?:{_W}*={_W}*(?:{_VALUE}))?)*){_W}*(/?)>"
    rf"|</([a-zA-Z][a-zA-Z0-9-]*){_W}*>"  # 5: end tag
    r"|<!--(?![->])(?:[^-]|-(?!-))*-->"  # a comment without "--" inside
    r"|<!doctype[^<>]*>",
    re.IGNORECASE,
)
_ATTR = re.compile(rf"({_NAME})(?:{_W}*={_W}*({_VALUE}))?")
#: Attribute names phase 1 reads; a tag without them needs no attribute parsing.
_ATTR_HINT = re.compile("hidden|style|href", re.IGNORECASE)
#: Elements html.parser reads as raw text (their content is dropped here).
_RAW_TEXT = frozenset(["script", "style"])
#: Elements some html.parser versions treat specially: left to html.parser.
_SPECIAL = frozenset(["textarea", "xmp", "plaintext", "iframe", "noembed", "noframes", "noscript"])
_unescape = html.unescape


def _attributes(text: str) -> list[tuple[str, str | None]]:
    attrs: list[tuple[str, str | None]] = []
    for name, value in _ATTR.findall(text):
        if not value:
            attrs.append((name.lower(), None))
            continue
        if value[0] in "\"'":
            value = value[1:-1]
        attrs.append((name.lower(), _unescape(value) if value else value))
    return attrs


def _tokens(source: str, pos: int, limit: int, state: TextState, out: list[str]) -> int:
    """Phase 1 of the tokens of ``source`` from ``pos`` until ``limit`` is reached.

    Returns where it stopped (past ``limit`` after a raw-text element), or -1
    when ``source`` needs ``html.parser``.
    """
    stack = state.stack
    append = out.append
    match = _TOKEN.match
    while pos < limit:
        m = match(source, pos)
        if m is None:
            return -1
        text, tag, attr_text, slash, closing = m.groups()
        pos = m.end()
        if text is not None:
            if "&" in text:
                text = _unescape(text)
            if not (stack and stack[-1].drop):
                append(transform(text, state.mode))
        elif tag is not None:
            tag = tag.lower()
            if tag in _SPECIAL:
                return -1
            attrs = _attributes(attr_text) if attr_text and _ATTR_HINT.search(attr_text) else []
            for item in state.start(tag, attrs):
                append(item if isinstance(item, str) else transform(item.value, "attr"))
            raw = tag in _RAW_TEXT or tag == "title"
            if slash:
                if raw:
                    return -1
                append(state.end(tag))
            elif raw:
                # raw text up to the first "</", which must close this element
                stop = source.find("</", pos)
                if stop < 0:
                    return -1
                after = _TOKEN.match(source, stop)
                if after is None or (after.group(5) or "").lower() != tag:
                    return -1
                content = source[pos:stop]
                if tag == "title":
                    if "<" in content:
                        return -1
                    if "&" in content:
                        content = _unescape(content)
                if not (stack and stack[-1].drop):
                    append(transform(content, state.mode))
                append(state.end(tag))
                pos = after.end()
        elif closing is not None:
            append(state.end(closing.lower()))
    return pos


Snapshot = tuple[tuple[str, str, bool], ...]


class _Memo:
    """What runs of markup write, per stack of open elements: e-mails of one
    template repeat the same markup around different text, so after the first
    message most of phase 1 is a dictionary lookup.

    Stacks are numbered (``states``); ``runs`` maps (stack number, markup) to
    (what it writes, the stack number after it). Replaced, not cleared, when
    full, so a thread holding the old one stays consistent.
    """

    LIMIT = 8192

    def __init__(self) -> None:
        self.states: list[Snapshot] = [()]
        self.modes: list[str] = ["normal"]
        self.ids: dict[Snapshot, int] = {(): 0}
        self.runs: dict[tuple[int, str], tuple[str, int]] = {}
        self.lock = threading.Lock()

    def intern(self, state: TextState) -> int:
        """The number of ``state``'s stack, numbering it if it is new."""
        snapshot = state.snapshot()
        with self.lock:
            number = self.ids.get(snapshot)
            if number is None:
                number = len(self.states)
                self.states.append(snapshot)
                self.modes.append(state.mode)
                self.ids[snapshot] = number
        return number


_MEMO = _Memo()
# text (no "<"), then a run of tags with only whitespace between them
_SEGMENT = re.compile(r"([^<]*)((?:<[^<>]*>[ \t\n\r\f]*)*<[^<>]*>)?")


def _fast_pretext(source: str) -> str | None:
    """Phase 1 with :data:`_TOKEN`, or None when ``source`` needs ``html.parser``."""
    global _MEMO
    memo = _MEMO
    if len(memo.runs) > memo.LIMIT or len(memo.states) > memo.LIMIT:
        memo = _MEMO = _Memo()
    runs = memo.runs
    modes = memo.modes
    out: list[str] = []
    append = out.append
    number = 0
    pos = 0
    end = len(source)
    segment = _SEGMENT.match
    while pos < end:
        m = segment(source, pos)
        assert m is not None  # both groups may be empty
        text, run = m.groups()
        if text:
            mode = modes[number]
            if mode != "drop":
                if "&" in text:
                    text = _unescape(text)
                append(transform(text, mode))
        pos = m.end()
        if run is None:
            if pos >= end:
                break
            # a "<" that starts no simple tag (a comment with "<" in it):
            # one token, not remembered
            start = pos
            limit = pos + 1
        else:
            hit = runs.get((number, run))
            if hit is not None:
                append(hit[0])
                number = hit[1]
                continue
            start = m.start(2)
            limit = pos
        state = TextState()
        state.stack = [_Entry(*entry) for entry in memo.states[number]]
        written: list[str] = []
        stop = _tokens(source, start, limit, state, written)
        if stop < 0:
            return None
        before = number
        number = memo.intern(state)
        piece = "".join(written)
        append(piece)
        if run is not None and stop == pos:
            runs[(before, run)] = (piece, number)
        pos = stop
    state = TextState()
    state.stack = [_Entry(*entry) for entry in memo.states[number]]
    append(state.close_all())
    return "".join(out)


def pretext(source: str) -> str:
    """Phase 1 over a whole document: the pre-text of ``source``."""
    fast = _fast_pretext(source)
    return _parsed_pretext(source) if fast is None else fast


# The same characters as str.split(): phase 2 collapses with split().
_WHITESPACE = re.compile(r"\s+")
_LINK = re.compile("\x02([^\x02\x03\x04]*)\x03([^\x02\x04]*)\x04")
_SPACES = re.compile("  +")
_STRAY_LINK = re.compile("\x02[^\x03]*\x03|\x04|\x02")
_OL = re.compile("[\x16\x17\x18]")
_EDGES = " \x13\x14\x15\x19"
_TRAILING = re.compile(r"[ \t]+\n")


def _link(match: re.Match[str]) -> str:
    url = match.group(1).strip()
    label = match.group(2)
    bare = label.strip(_EDGES)
    if not url or url.startswith(("#", "javascript:")):
        return label
    shown = url[7:] if url.startswith("mailto:") else url
    if not bare:
        return f" {shown} " if label else shown
    if bare in (url, shown):
        return label
    return f"{label} ({shown})"


def _number(text: str) -> str:
    counters: list[int] = []

    def number(match: re.Match[str]) -> str:
        char = match.group(0)
        if char == OL_OPEN:
            counters.append(0)
            return ""
        if char == OL_CLOSE:
            if counters:
                counters.pop()
            return ""
        if not counters:
            return "-" + HARD_SPACE
        counters[-1] += 1
        return f"{counters[-1]}." + HARD_SPACE

    return _OL.sub(number, text)


_MARKS = "\x13\x14\x15\x19"
_MARK_RUNS = re.compile("([\x13-\x15\x19][\x13-\x15\x19 ]*)")


class _Resolved(dict[str, str]):
    """What a run of layout marks becomes: a blank line, a line break, or " | "."""

    def __missing__(self, run: str) -> str:
        if PARAGRAPH in run or run.count(BREAK) >= 2:
            resolved = "\n\n"
        elif BREAK in run or BLOCK in run:
            resolved = "\n"
        else:
            resolved = " | "
        if len(self) < 4096:
            self[run] = resolved
        return resolved


_RESOLVED = _Resolved()
_resolve = _RESOLVED.__getitem__


def squeeze(text: str) -> str:
    """Collapse whitespace and drop spaces next to layout marks.

    Phase 2 starts with this; the compiler also applies it to static pre-text
    ahead of time (it is local, so doing it twice changes nothing).
    """
    text = _WHITESPACE.sub(" ", text)
    for mark in _MARKS:
        if mark in text:
            text = text.replace(" " + mark, mark).replace(mark + " ", mark)
    return text


# A run of marks with a plain character on each side cannot merge with another.
_INTERIOR_RUN = re.compile(
    "(?<=[^\\s\x02-\x04\x13-\x19])[\x13\x14\x15\x19]+(?=[^\\s\x02-\x04\x13-\x19])"
)
_HARD_RESOLVED = {"\n\n": HARD_NEWLINE * 2, "\n": HARD_NEWLINE, " | ": " | "}


def presolve(text: str) -> str:
    """Resolve, ahead of time, the runs of marks of a squeezed static piece that
    nothing can join (a plain character on both sides), as phase 2 would."""
    return _INTERIOR_RUN.sub(lambda m: _HARD_RESOLVED[_resolve(m.group(0))], text)


def finish(pre: str) -> str:
    """Phase 2: resolve whitespace, links, list numbers and line breaks."""
    if VAR_OPEN in pre:
        pre = pre.replace(VAR_OPEN, "").replace(VAR_CLOSE, "")
    text = " ".join(pre.split()).strip(_EDGES)
    if LINK_OPEN in text:
        text = _LINK.sub(_link, text)
        if LINK_OPEN in text or LINK_CLOSE in text:
            text = _STRAY_LINK.sub("", text)
        if "  " in text:
            text = _SPACES.sub(" ", text)
        text = text.strip(_EDGES)
    if OL_OPEN in text or OL_ITEM in text:
        text = _number(text)
    pieces = _MARK_RUNS.split(text)
    if len(pieces) > 1:
        pieces[1::2] = map(_resolve, pieces[1::2])
        # a space before a run belongs to the run (after it, the run absorbs it);
        # after the split() above, " " is the only whitespace left
        pieces[0:-1:2] = map(str.rstrip, pieces[0:-1:2])
        text = "".join(pieces)
    if HARD_SPACE in text:
        text = text.replace(HARD_SPACE, " ").replace(HARD_NEWLINE, "\n")
        if " \n" in text or "\t\n" in text:  # what _TRAILING can match
            text = _TRAILING.sub("\n", text)
    elif HARD_NEWLINE in text:
        text = text.replace(HARD_NEWLINE, "\n")
    return text.strip("\n ")


#: Stands for the i-th variable while a shape is finished (see :class:`ShapeMemo`).
_SLOT_OPEN = "\ue000"
_SLOT_CLOSE = "\ue001"
_SLOT = re.compile("\ue000(\\d+)\ue001")
#: A value the memo cannot stand in for: empty, whitespace at an edge, a
#: character phase 2 acts on other than whitespace (values are joined by
#: VAR_CLOSE for this check, which phase 1 never leaves in a value).
_UNSAFE_VALUES = re.compile(
    "[\x00-\x05\x07\x08\x0b\x0e-\x1f\ue000\ue001]|^(?:\\s|\x06|$)|\\s(?:\x06|$)|\x06(?:\\s|\x06|$)"
)
_COLLAPSIBLE = re.compile("[^\\S ]|  ")


class ShapeMemo:
    """:func:`finish` for the pre-texts of one compiled template, memoized by shape.

    A compiled template writes the text of each variable between
    :data:`VAR_OPEN` and :data:`VAR_CLOSE`. The *shape* of a pre-text is the
    pre-text with those texts left out: for a static e-mail it is the same for
    every message, for others it repeats (the same branches taken, the same
    number of rows). Phase 2 of a shape is computed once, with a placeholder
    standing for each variable, and each message only puts its values in.

    That equals :func:`finish` of the whole pre-text when phase 2 treats each
    value as an opaque word, which :meth:`finish` checks per message: every
    value is non-empty, has no whitespace at either edge and no character
    phase 2 acts on (layout marks, links, list marks, hard spaces and
    newlines), and, checked once per shape, no variable stands inside a link
    (whose URL and label phase 2 compares). Otherwise, and for shapes the
    memo has no room for, the message is finished in full.
    """

    __slots__ = ("_misses", "_shapes", "_size", "_used")

    #: shapes kept per template, and their characters at most; later new
    #: shapes are finished in full
    LIMIT = 64
    LIMIT_CHARS = 1 << 19
    #: after this many messages the memo could not serve, and fewer it could,
    #: it is not consulted any more (each shape new, or with a variable in a link)
    GIVE_UP = 16

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[str, ...] | None] = {}
        self._size = 0
        self._used = 0
        self._misses = 0

    def finish(self, pre: str) -> str:
        """The same as :func:`finish` (``pre`` as written by a compiled template)."""
        if self._misses >= self.GIVE_UP and self._used < self._misses:
            return finish(pre)
        pieces = pre.replace(VAR_CLOSE, VAR_OPEN).split(VAR_OPEN)
        statics = pieces[0::2]
        values = pieces[1::2]
        shape = VAR_OPEN.join(statics)
        seen = shape in self._shapes
        if seen:
            parts = self._shapes[shape]
        elif (
            len(self._shapes) >= self.LIMIT
            or self._size + len(shape) > self.LIMIT_CHARS
            or len(pieces) % 2 == 0
        ):
            parts = None
        else:
            self._size += len(shape)
            parts = self._shapes[shape] = _finish_shape(statics)
        joined = VAR_CLOSE.join(values)
        if (
            parts is None
            or len(parts) != len(values) + 1
            or (values and _UNSAFE_VALUES.search(joined) is not None)
        ):
            self._misses += 1
            return finish(pre)
        if seen:
            self._used += 1
        else:  # a new shape: this message cost more than finish() alone
            self._misses += 1
        if not values:
            return parts[0]
        if _COLLAPSIBLE.search(joined) is not None:
            values = [" ".join(v.split()) for v in values]
        out = [""] * (2 * len(values) + 1)
        out[0::2] = parts
        out[1::2] = values
        return "".join(out)


def _finish_shape(statics: list[str]) -> tuple[str, ...] | None:
    """Phase 2 of a shape, split where the values go (``None``: not possible)."""
    if any(_SLOT_OPEN in s or _SLOT_CLOSE in s for s in statics):
        return None
    in_link = False
    for static in statics[:-1]:
        last = max(static.rfind(LINK_OPEN), static.rfind(LINK_LABEL), static.rfind(LINK_CLOSE))
        if last >= 0:
            in_link = static[last] != LINK_CLOSE
        if in_link:
            return None
    slots = [f"{_SLOT_OPEN}{i}{_SLOT_CLOSE}" for i in range(len(statics) - 1)]
    pieces = [""] * (2 * len(statics) - 1)
    pieces[0::2] = statics
    pieces[1::2] = slots
    split = _SLOT.split(finish("".join(pieces)))
    if split[1::2] != [str(i) for i in range(len(slots))]:
        return None
    return tuple(split[0::2])


def html_to_text(source: str) -> str:
    """The plain-text version of an HTML document (both phases)."""
    return finish(pretext(source))


def unescape_markup(value: str) -> str:
    """The text a parser sees for markup without tags (entities decoded)."""
    return html.unescape(value)
