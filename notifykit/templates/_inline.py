"""CSS inlining engines: css-inline (default) and premailer (both core dependencies).

This is the only module that imports premailer (and with it lxml, cssutils and
requests) or css_inline, and it does so lazily, inside functions: ``import
notifykit.templates`` stays cheap and an application that never inlines never
loads them.

An engine does three things:

- :meth:`Engine.inline` — inline one rendered message (the per-message
  strategy, and the reference the compile-time strategy must equal);
- :meth:`Engine.selectors` — list the selectors the engine would apply inline,
  so the compiler can tell whether they could match differently in different
  messages;
- :meth:`Engine.skeleton` — inline a template *skeleton* (static markup, with
  variables replaced by placeholders and every element marked with an id) and
  report, per marked element, its attributes before and after, and what became
  of each ``<style>`` element. The compiler turns that into edits of the
  template's static text.

Both engines run with the network off: a ``<link>`` to a remote stylesheet is
left in the document untouched (never fetched); links to local stylesheets are
replaced by their CSS before the engine runs (:func:`expand_links`).
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any

from notifykit.errors import ConfigurationError, MissingDependency, TemplateError
from notifykit.templates._html import VOID_ELEMENTS

__all__ = [
    "MARK",
    "Engine",
    "NaiveElement",
    "SkeletonOutcome",
    "expand_links",
    "get_engine",
    "normalise",
]

#: The attribute that marks each static element of a skeleton with its id.
MARK = "data-notifykit-node"
#: Elements that belong in <head>; the HTML parsers move them there.
HEAD_TAGS = frozenset(["base", "link", "meta", "noscript", "script", "style", "template", "title"])
_ALLOWED_IMPLIED = {"premailer": frozenset({"html", "head", "body"})}
_ALLOWED_IMPLIED["css_inline"] = frozenset({"html", "head", "body", "tbody"})


class NaiveElement:
    """One static element of a skeleton, as the template's markup nests it."""

    __slots__ = ("attrs", "id", "parent", "tag")

    def __init__(
        self, id: int, tag: str, parent: int | None, attrs: list[tuple[str, str | None]]
    ) -> None:
        self.id = id
        self.tag = tag
        self.parent = parent
        self.attrs = attrs


class SkeletonOutcome:
    """What an engine did to a skeleton.

    ``before``/``after`` map element ids to their attributes (without the mark)
    before and after inlining. ``styles`` maps the id of each ``<style>``
    element the engine consumed to its new text, or ``None`` when it removed the
    element. ``drops_tail`` says that removing an element also removes the text
    after it (premailer does, through lxml). ``head_style`` is a ``<style>``
    the engine adds at the top of ``<head>`` (css-inline puts at-rules there).
    ``problem`` is why the skeleton cannot be inlined at compile time, if it
    cannot.
    """

    def __init__(self) -> None:
        self.before: dict[int, list[tuple[str, str]]] = {}
        self.after: dict[int, list[tuple[str, str]]] = {}
        self.styles: dict[int, str | None] = {}
        self.drops_tail = False
        self.head_style: str | None = None
        #: the attributes the engine gives the ``<tbody>`` its parser adds to a
        #: marked ``<table>`` (css-inline, for a ``*`` rule): table id -> attributes
        self.tbody: dict[int, list[tuple[str, str]]] = {}
        self.problem: str | None = None


def is_local_href(href: str) -> bool:
    """A stylesheet URL that names a file next to the templates (no scheme, no host)."""
    href = href.strip()
    return bool(href) and not re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)", href)


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, int, dict[str, str | None]]] = []
        self._lines: list[int] = [0]

    def index(self, source: str) -> None:
        pos = 0
        for line in source.splitlines(keepends=True):
            pos += len(line)
            self._lines.append(pos)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = dict(attrs)
        rel = (values.get("rel") or "").lower().split()
        href = values.get("href")
        if "stylesheet" in rel and href is not None and is_local_href(href):
            line, col = self.getpos()
            start = self._lines[line - 1] + col
            text = self.get_starttag_text() or ""
            self.found.append((start, start + len(text), values))

    handle_startendtag = handle_starttag


_LINK_TAG = re.compile("<link", re.IGNORECASE)


def find_local_links(source: str) -> list[tuple[int, int, dict[str, str | None]]]:
    """Spans and attributes of the ``<link rel=stylesheet>`` tags to local files."""
    if _LINK_TAG.search(source) is None:
        return []
    finder = _LinkFinder()
    finder.index(source)
    finder.feed(source)
    finder.close()
    return finder.found


def style_for_link(attrs: dict[str, str | None], css: str) -> str:
    """The ``<style>`` element that replaces a local stylesheet link."""
    if re.search(r"</style", css, re.IGNORECASE):
        raise TemplateError(f"stylesheet {attrs.get('href')!r} contains '</style'")
    media = attrs.get("media")
    media_attr = "" if media is None else f' media="{_escape_attr(media)}"'
    return f'<style type="text/css"{media_attr}>{css}</style>'


def expand_links(source: str, load: Callable[[str], str]) -> str:
    """Replace each link to a local stylesheet by a ``<style>`` with its CSS.

    ``load(href)`` returns the stylesheet's text (the renderer resolves it
    through the template loader, relative to the template's directory).
    """
    links = find_local_links(source)
    if not links:
        return source
    out: list[str] = []
    last = 0
    for start, end, attrs in links:
        out.append(source[last:start])
        out.append(style_for_link(attrs, load(attrs.get("href") or "")))
        last = end
    out.append(source[last:])
    return "".join(out)


_CSS_TOKEN = re.compile(
    r"""/\*.*?(?:\*/|\Z)|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|\\.|[{};()\[\],]""", re.S
)


def top_level_selectors(css: str) -> list[str]:
    """The selectors of the top-level style rules of ``css``, as written.

    At-rules (``@media``, ``@font-face``…) and their blocks are skipped,
    comments dropped; a selector list is split at the commas outside
    parentheses, brackets and strings. Anything odd is kept rather than
    dropped: the analysis refuses selectors it cannot read, which only costs
    the compiled path, never correctness.
    """
    found: list[str] = []
    depth = 0  # braces
    nesting = 0  # parentheses and brackets, in a prelude
    prelude: list[str] = []
    pieces: list[str] = []
    skipping = False  # inside an at-rule's prelude or any block
    pos = 0
    for match in _CSS_TOKEN.finditer(css):
        text = css[pos : match.start()]
        token = match.group(0)
        pos = match.end()
        if depth == 0 and not skipping:
            prelude.append(text)
        if token.startswith("/*"):
            continue
        if depth > 0:
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
            continue
        if skipping:  # an at-rule's prelude, up to its ';' or block
            if token == ";":
                skipping = False
            elif token == "{":
                depth = 1
                skipping = False
            continue
        if "".join(prelude).lstrip().startswith("@") and nesting == 0 and not pieces:
            prelude.clear()
            skipping = token not in (";", "{")
            if token == "{":
                depth = 1
            continue
        if token in ("(", "["):
            nesting += 1
        elif token in (")", "]"):
            nesting = max(0, nesting - 1)
        if token == "," and nesting == 0:
            pieces.append("".join(prelude))
            prelude.clear()
            continue
        if token == "{" and nesting == 0:
            pieces.append("".join(prelude))
            found.extend(p.strip() for p in pieces if p.strip())
            pieces.clear()
            prelude.clear()
            depth = 1
            continue
        if token in (";", "}") and nesting == 0:
            pieces.clear()
            prelude.clear()
            continue
        prelude.append(token)
    return found


def _escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


# --------------------------------------------------------------------------- engines


class Engine:
    """Base class of the two inlining engines."""

    name = "engine"

    def inline(self, html: str) -> str:
        """Inline the CSS of one rendered document."""
        raise NotImplementedError

    def selectors(self, css_texts: Iterable[str]) -> list[str]:
        """The selectors of ``css_texts`` that the engine would apply inline."""
        raise NotImplementedError

    def skeleton(self, skeleton: str, naive: dict[int, NaiveElement]) -> SkeletonOutcome:
        """Inline a marked skeleton and report what changed (see the module doc)."""
        raise NotImplementedError

    def normalise(self, html: str) -> str:
        """The canonical form two equivalent outputs of this engine share."""
        raise NotImplementedError


_ENGINES: dict[str, Engine] = {}

#: premailer and cssutils keep module-level state (cssutils' parser and
#: serialiser preferences, premailer's caches): under 8 threads, 1-2 % of
#: outputs differed. Every call into them holds this lock. css-inline is
#: thread-safe and runs without it.
_CSSUTILS_LOCK = threading.RLock()


def get_engine(name: str) -> Engine:
    """The engine for ``inliner=`` (``"premailer"``, ``"css_inline"`` or ``"auto"``)."""
    if name == "auto":
        try:
            import css_inline
        except ImportError:
            name = "premailer"
        else:
            name = "css_inline"
    engine = _ENGINES.get(name)
    if engine is not None:
        return engine
    if name == "premailer":
        engine = PremailerEngine()
    elif name == "css_inline":
        try:
            import css_inline  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("css-inline", "fast", "inliner='css_inline'") from exc
        engine = CSSInlineEngine()
    else:
        raise ConfigurationError(
            f"unknown inliner {name!r}: use 'premailer', 'css_inline', 'auto' or None"
        )
    _ENGINES[name] = engine
    return engine


def _check_correspondence(
    found: list[tuple[int, str, int | None, list[str]]],
    naive: dict[int, NaiveElement],
    allowed_implied: frozenset[str],
) -> str | None:
    """Compare the engine's tree with the template's own nesting.

    ``found`` lists, for each marked element of the engine's tree, its id, tag,
    the id of its nearest marked ancestor and the tags of the unmarked
    ancestors in between. They must match the naive tree exactly: the same
    elements, the same parents, and no invented element other than the
    document wrappers the parser always adds.
    """
    seen: set[int] = set()
    for node_id, tag, parent, implied in found:
        element = naive.get(node_id)
        if element is None or node_id in seen:
            return "the HTML parser duplicated an element"
        seen.add(node_id)
        if element.tag != tag:
            return f"the HTML parser changed <{element.tag}> into <{tag}>{_AT}{node_id}"
        if element.parent != parent:
            return f"the HTML parser moved <{tag}> (the markup is not well nested){_AT}{node_id}"
        bad = [t for t in implied if t not in allowed_implied]
        if bad:
            return f"the HTML parser added <{bad[0]}> around <{tag}>{_AT}{node_id}"
    if len(seen) != len(naive):
        missing = next(i for i in naive if i not in seen)
        return f"the HTML parser dropped <{naive[missing].tag}>{_AT}{missing}"
    return None


#: Ends a problem of :func:`_check_correspondence` with the id of its element;
#: the compiler replaces it with the element's file and line (see ``problem_at``).
_AT = "\x00at element "


def problem_at(problem: str) -> tuple[str, int | None]:
    """A skeleton problem without its element id, and the id (``None``: none given)."""
    text, _sep, element = problem.partition(_AT)
    return text, int(element) if element.isdigit() else None


#: libxml2's HTML parser stops nesting at this depth (without XML_PARSE_HUGE)
#: and silently drops what is deeper; premailer parses with it.
_LXML_MAX_DEPTH = 255


class HTMLTooDeep(ValueError):
    """The HTML nests deeper than premailer (lxml) can keep; it is not inlined."""


def _check_depth(html: str) -> None:
    """Raise :class:`HTMLTooDeep` when lxml would truncate ``html``."""
    etree = importlib.import_module("lxml.etree")
    parser = etree.HTMLParser()
    etree.fromstring(html.strip(), parser)
    if any("Excessive depth" in entry.message for entry in parser.error_log):
        raise HTMLTooDeep(
            f"the HTML nests elements more than {_LXML_MAX_DEPTH} deep, and premailer (lxml) "
            "would silently drop everything deeper; flatten the markup, or use "
            "inliner='css_inline', which keeps it"
        )


class PremailerEngine(Engine):
    """premailer (lxml + cssutils), a core dependency; serialised by a lock (not thread-safe)."""

    name = "premailer"

    def __init__(self) -> None:
        import cssutils

        # cssutils logs every vendor property (mso-*, -webkit-*) it does not know,
        # to stderr. Quiet it, unless the host application set its level itself.
        if logging.getLogger("CSSUTILS").level == logging.INFO:  # cssutils' own default
            cssutils.log.setLevel(logging.CRITICAL)

    def _premailer(self) -> Any:
        from premailer import Premailer

        return Premailer(
            disable_link_rewrites=True,
            strip_important=False,
            allow_network=False,
            allow_loading_external_files=False,
        )

    def inline(self, html: str) -> str:
        """premailer's output for ``html``; an empty document stays empty.

        Raises:
            HTMLTooDeep: ``html`` nests elements deeper than lxml's HTML parser
                keeps (255): premailer would silently drop everything deeper.
        """
        if not html.strip():
            return html
        if html.count("<") >= _LXML_MAX_DEPTH:  # fewer tags cannot nest that deep
            _check_depth(html)
        with _CSSUTILS_LOCK:
            return str(self._premailer().transform(html, pretty_print=False))

    def selectors(self, css_texts: Iterable[str]) -> list[str]:
        """The selectors premailer inlines: its own rule parser decides."""
        found: list[str] = []
        with _CSSUTILS_LOCK:
            premailer = self._premailer()
            for index, css in enumerate(css_texts):
                rules, _leftover = premailer._parse_style_rules(css, index)
                found.extend(selector for _spec, selector, _bulk in rules)
        return found

    def skeleton(self, skeleton: str, naive: dict[int, NaiveElement]) -> SkeletonOutcome:
        """Parse with lxml, check the tree, run premailer on it, diff attributes."""
        etree = importlib.import_module("lxml.etree")

        outcome = SkeletonOutcome()
        outcome.drops_tail = True
        parser = etree.HTMLParser()
        root = etree.fromstring(skeleton.strip() or "<html></html>", parser)
        if root is None:
            outcome.problem = "the HTML parser found no document"
            return outcome
        found: list[tuple[int, str, int | None, list[str]]] = []
        by_id: dict[int, Any] = {}
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            mark = element.get(MARK)
            if mark is None:
                if element.tag not in _ALLOWED_IMPLIED["premailer"]:
                    outcome.problem = f"the HTML parser added <{element.tag}>"
                    return outcome
                continue
            implied: list[str] = []
            parent = element.getparent()
            while parent is not None and parent.get(MARK) is None:
                implied.append(parent.tag)
                parent = parent.getparent()
            node_id = int(mark)
            by_id[node_id] = element
            found.append(
                (node_id, element.tag, None if parent is None else int(parent.get(MARK)), implied)
            )
        problem = _check_correspondence(found, naive, _ALLOWED_IMPLIED["premailer"])
        if problem:
            outcome.problem = problem
            return outcome
        wrappers = {
            e: dict(e.attrib) for e in root.iter() if isinstance(e.tag, str) and e.get(MARK) is None
        }
        for node_id, element in by_id.items():
            outcome.before[node_id] = [(k, v) for k, v in element.attrib.items() if k != MARK]
        styles = {i: e for i, e in by_id.items() if e.tag == "style"}
        with _CSSUTILS_LOCK:
            self._premailer().transform(root)
        for node_id, element in by_id.items():
            if element.tag == "style":
                continue
            outcome.after[node_id] = [(k, v) for k, v in element.attrib.items() if k != MARK]
        for node_id, element in styles.items():
            if element.getparent() is None:
                outcome.styles[node_id] = None
            else:
                outcome.styles[node_id] = element.text or ""
                after = [(k, v) for k, v in element.attrib.items() if k != MARK]
                if after != outcome.before[node_id]:
                    outcome.styles[node_id] = element.text or ""
                    outcome.after[node_id] = after
        for element, attrs in wrappers.items():
            if dict(element.attrib) != attrs:
                outcome.problem = f"premailer styles the implied <{element.tag}>"
        return outcome

    def normalise(self, html: str) -> str:
        """lxml's reading of ``html``, serialised canonically (see :func:`normalise`)."""
        return _canonical_lxml(html)


class CSSInlineEngine(Engine):
    """css-inline (Rust, html5ever): the default engine, a core dependency."""

    name = "css_inline"

    def __init__(self) -> None:
        import css_inline

        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, keep_link_tags=True, load_remote_stylesheets=False
        )
        self._identity = css_inline.CSSInliner(
            inline_style_tags=False,
            keep_style_tags=True,
            keep_link_tags=True,
            keep_at_rules=True,
            load_remote_stylesheets=False,
        )

    def inline(self, html: str) -> str:
        """css-inline's output for ``html``."""
        if not html.strip():
            return html
        return str(self._inliner.inline(html))

    def selectors(self, css_texts: Iterable[str]) -> list[str]:
        """Every selector of every top-level style rule (css-inline inlines them all).

        Read with :func:`top_level_selectors` (a few regular expressions), not
        cssutils: importing and running cssutils cost 0.1-0.2 s of the first
        render of a template.
        """
        found: list[str] = []
        for css in css_texts:
            found.extend(top_level_selectors(css))
        return found

    def skeleton(self, skeleton: str, naive: dict[int, NaiveElement]) -> SkeletonOutcome:
        """Inline with css-inline, read its output back with html.parser, diff."""
        outcome = SkeletonOutcome()
        output = str(self._inliner.inline(skeleton))
        before = str(self._identity.inline(skeleton))
        tree_after = _read_tree(output)
        tree_before = _read_tree(before)
        if tree_after is None or tree_before is None:
            outcome.problem = "css-inline's output could not be read back"
            return outcome
        problem = _check_correspondence(tree_before.found, naive, _ALLOWED_IMPLIED["css_inline"])
        if problem:
            outcome.problem = problem
            return outcome
        for node_id, attrs in tree_before.attrs.items():
            outcome.before[node_id] = attrs
        for node_id, element in naive.items():
            if element.tag == "style":
                outcome.styles[node_id] = None
                continue
            if node_id not in tree_after.attrs:
                outcome.problem = f"css-inline removed <{element.tag}>"
                return outcome
            outcome.after[node_id] = tree_after.attrs[node_id]
        if tree_after.unmarked_styles:
            outcome.head_style = tree_after.unmarked_styles[0]
            if len(tree_after.unmarked_styles) > 1:
                outcome.problem = "css-inline produced several <style> elements"
        if tree_after.unmarked_changed:
            outcome.problem = "css-inline styles an implied element"
        for table, bodies in tree_after.implied_tbody.items():
            if any(bodies):
                if len(bodies) != 1 or table is None:
                    outcome.problem = "css-inline styles the <tbody> its parser adds"
                else:
                    outcome.tbody[table] = bodies[0]
        return outcome

    def normalise(self, html: str) -> str:
        """html5ever's reading of ``html`` (as css-inline parses), then canonical."""
        return _canonical_lxml(str(self._identity.inline(html)))


class _Tree(HTMLParser):
    """Reads a serialised document back: marked elements, parents, attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int | None, list[str]]] = []
        self.found: list[tuple[int, str, int | None, list[str]]] = []
        self.attrs: dict[int, list[tuple[str, str]]] = {}
        self.unmarked_styles: list[str] = []
        self.unmarked_changed = False
        #: the <tbody> elements the parser added: marked parent -> their attributes
        self.implied_tbody: dict[int | None, list[list[tuple[str, str]]]] = {}
        self._style_text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        mark = dict(attrs).get(MARK)
        parent: int | None = None
        implied: list[str] = []
        for stag, sid, _ in reversed(self.stack):
            if sid is not None:
                parent = sid
                break
            implied.append(stag)
        if mark is None:
            if tag == "style":
                self._style_text = []
            elif tag == "tbody":
                bodies = self.implied_tbody.setdefault(parent, [])
                bodies.append([(k, v or "") for k, v in attrs])
            elif any(k for k, _ in attrs) and tag in ("html", "head", "body"):
                self.unmarked_changed = True
        else:
            node_id = int(mark)
            self.found.append((node_id, tag, parent, implied))
            self.attrs[node_id] = [(k, v or "") for k, v in attrs if k != MARK]
        if tag not in VOID_ELEMENTS:
            self.stack.append((tag, None if mark is None else int(mark), []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style_text is not None:
            self.unmarked_styles.append("".join(self._style_text))
            self._style_text = None
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._style_text is not None:
            self._style_text.append(data)


def _read_tree(source: str) -> _Tree | None:
    tree = _Tree()
    try:
        tree.feed(source)
        tree.close()
    except Exception:  # html.parser does not raise on bad markup; be safe anyway
        return None
    return tree


def _canonical_lxml(html: str) -> str:
    etree = importlib.import_module("lxml.etree")
    if not html.strip():
        return ""
    root = etree.fromstring(html.strip(), etree.HTMLParser())
    if root is None:
        return ""
    # Once through lxml's serialiser, as premailer's output has been: it spells
    # some attribute values its own way (URLs are %-escaped).
    again = etree.tostring(root, method="html", encoding="unicode")
    root = etree.fromstring(again, etree.HTMLParser())
    out: list[str] = []

    def walk(node: Any) -> None:
        if not isinstance(node.tag, str):  # comment or processing instruction
            out.append(f"<!--{node.text or ''}-->")
        elif node.tag == "head" and len(node) == 0 and not (node.text or "").strip():
            pass  # premailer adds an empty <head> to documents without one
        else:
            attrs = "".join(f" {k}={v!r}" for k, v in sorted(node.attrib.items()))
            out.append(f"<{node.tag}{attrs}>{node.text or ''}")
            for child in node:
                walk(child)
            out.append(f"</{node.tag}>")
        out.append(node.tail or "")

    walk(root)
    return "".join(out)


def normalise(html: str, engine: str = "premailer") -> str:
    """The documented normalisation under which compile-time == per-message.

    Both documents are parsed by the engine's own HTML parser (libxml2 for
    premailer, html5ever for css-inline), passed once through lxml's
    serialiser (premailer's output already was: it %-escapes URLs), parsed
    again, and written out as a canonical tree: doctype left out, attributes
    sorted, an empty ``<head>`` dropped. That is: two outputs are equal when
    the parser that matters builds the same elements, attributes and text from
    them; how a character is spelt (``'`` or ``&#39;``, ``é`` or ``%C3%A9``
    in a URL), attribute order and quoting do not count.
    """
    return get_engine(engine).normalise(html)


# ------------------------------------------------------------------ selector facts

_STRUCTURAL_PSEUDO = frozenset(
    ["first-child", "last-child", "only-child", "first-of-type", "last-of-type", "only-of-type"]
)
_STRUCTURAL_FUNCTIONS = frozenset(
    ["nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type"]
)
# Pseudo-classes of user interaction: they never match a document at rest.
_STATE_PSEUDO = frozenset(
    ["hover", "active", "focus", "focus-within", "focus-visible", "target", "visited", "root"]
)
_ATTRIBUTE_PSEUDO = {
    "link": "href",
    "any-link": "href",
    "checked": "checked",
    "disabled": "disabled",
    "enabled": "disabled",
}


class SelectorFacts:
    """What the inlined selectors depend on, for the compile-time analysis.

    ``attributes``: every attribute a selector reads (``class`` for ``.x``,
    ``id`` for ``#x``). ``structural``: XPath expressions, one per compound
    selector that looks at siblings (``:nth-child``, ``+``…), with the
    structural parts removed — any element they match must have a fixed set of
    siblings. ``content_dependent``: a selector reads an element's content
    (``:empty``, ``:has``). ``problem``: a selector the analysis cannot read.
    """

    def __init__(self) -> None:
        self.attributes: set[str] = set()
        self.structural: list[str] = []
        self.content_dependent = False
        self.problem: str | None = None


# Selectors made only of type, class and id selectors (``td``, ``.items .qty``,
# ``table.kv > tr``, ``#main``) joined by descendant or child combinators: they
# read ``class`` (a ``.``) and ``id`` (a ``#``), and nothing structural. Most
# stylesheets are made of nothing else; they are read without cssselect (whose
# import alone costs a few milliseconds of a template's first render).
_SIMPLE_IDENT = r"-?[_a-zA-Z][_a-zA-Z0-9-]*"
_SIMPLE_COMPOUND = rf"(?:(?:{_SIMPLE_IDENT}|\*)(?:[.#]{_SIMPLE_IDENT})*|(?:[.#]{_SIMPLE_IDENT})+)"
_SPACE = r"[ \t\r\n\f]"
_SIMPLE_SELECTOR = re.compile(
    rf"{_SPACE}*{_SIMPLE_COMPOUND}(?:(?:{_SPACE}*>{_SPACE}*|{_SPACE}+){_SIMPLE_COMPOUND})*{_SPACE}*\Z"
)
_FACTS_MEMO: dict[str, SelectorFacts] = {}


def _one_selector_facts(text: str) -> SelectorFacts:
    """The facts of one selector as written, memoised for the process."""
    facts = _FACTS_MEMO.get(text)
    if facts is not None:
        return facts
    if _SIMPLE_SELECTOR.match(text):
        facts = SelectorFacts()
        if "." in text:
            facts.attributes.add("class")
        if "#" in text:
            facts.attributes.add("id")
    else:
        facts = _cssselect_facts(text)
    if len(_FACTS_MEMO) >= 8192:  # many stylesheets: start again
        _FACTS_MEMO.clear()
    _FACTS_MEMO[text] = facts
    return facts


def selector_facts(selectors: Iterable[str]) -> SelectorFacts:
    """The :class:`SelectorFacts` of ``selectors`` (read with cssselect unless simple).

    Each selector's facts are computed once per process (templates share
    their stylesheets); the result is a new object, which the caller may change.
    """
    facts = SelectorFacts()
    for text in selectors:
        one = _one_selector_facts(text)
        facts.attributes |= one.attributes
        facts.structural.extend(one.structural)
        facts.content_dependent = facts.content_dependent or one.content_dependent
        facts.problem = facts.problem or one.problem
    return facts


def _cssselect_facts(text: str) -> SelectorFacts:
    """The :class:`SelectorFacts` of one selector (list), read with cssselect."""
    import cssselect
    from cssselect import parser as css

    facts = SelectorFacts()
    translator = cssselect.GenericTranslator()

    def compound(node: Any) -> tuple[Any, bool]:
        """The node without its structural parts, and whether it had any."""
        kind = type(node).__name__
        if kind == "Element":
            return node, False
        inner, structural = compound(node.selector)
        if kind == "Class":
            facts.attributes.add("class")
            return css.Class(inner, node.class_name), structural
        if kind == "Hash":
            facts.attributes.add("id")
            return css.Hash(inner, node.id), structural
        if kind == "Attrib":
            facts.attributes.add(str(node.attrib).lower())
            return (
                css.Attrib(inner, node.namespace, node.attrib, node.operator, node.value),
                structural,
            )
        if kind == "Pseudo":
            ident = str(node.ident).lower()
            if ident in _STRUCTURAL_PSEUDO:
                return inner, True
            if ident == "empty":
                facts.content_dependent = True
                return inner, structural
            if ident in _ATTRIBUTE_PSEUDO:
                facts.attributes.add(_ATTRIBUTE_PSEUDO[ident])
                return inner, structural
            if ident in _STATE_PSEUDO:
                return inner, structural
            facts.problem = facts.problem or f"unknown pseudo-class :{ident}"
            return inner, structural
        if kind == "Function":
            name = str(node.name).lower()
            if name in _STRUCTURAL_FUNCTIONS:
                return inner, True
            if name == "lang":
                facts.attributes.add("lang")
                return inner, structural
            if name == "contains":
                facts.content_dependent = True
                return inner, structural
            facts.problem = facts.problem or f"unknown function :{name}()"
            return inner, structural
        if kind == "Negation":
            _sub, sub_structural = compound(node.subselector)
            return inner, structural or sub_structural
        if kind in ("Matching", "SpecificityAdjustment"):
            for alternative in node.selector_list:
                _sub, sub_structural = compound(alternative)
                structural = structural or sub_structural
            return inner, structural
        if kind == "Relation":
            facts.content_dependent = True
            return inner, structural
        facts.problem = facts.problem or f"unknown selector part {kind}"
        return inner, structural

    def walk(node: Any, sibling: bool) -> None:
        if type(node).__name__ == "CombinedSelector":
            by_sibling = node.combinator in ("+", "~")
            walk(node.selector, by_sibling)
            walk(node.subselector, by_sibling or sibling)
            return
        stripped, structural = compound(node)
        if structural or sibling:
            facts.structural.append("descendant-or-self::" + str(translator.xpath(stripped)))

    try:
        parsed = cssselect.parse(text)
    except Exception:
        facts.problem = f"cannot read the selector {text!r}"
        return facts
    for selector in parsed:
        walk(selector.parsed_tree, False)
    return facts


def structural_conflict(
    elements: dict[int, NaiveElement], xpaths: list[str], dynamic: set[int]
) -> str | None:
    """The first structural selector that matches an element with varying siblings."""
    etree = importlib.import_module("lxml.etree")

    root = etree.Element("notifykit-root")
    made: dict[int, Any] = {}
    for element_id in sorted(elements):
        element = elements[element_id]
        parent = root if element.parent is None else made[element.parent]
        try:
            node = etree.SubElement(parent, element.tag)
        except ValueError:
            node = etree.SubElement(parent, "notifykit-unknown")
        for key, value in element.attrs:
            try:
                node.set(key, value or "")
            except ValueError:
                continue
        node.set(MARK, str(element_id))
        made[element_id] = node
    for xpath in xpaths:
        for match in root.xpath(xpath):
            mark = match.get(MARK)
            if mark is not None and int(mark) in dynamic:
                return xpath
            if match.tag == "notifykit-unknown":
                return xpath
    return None
