"""Compile-time inlining and text derivation: the analysis behind the fast path.

Per-message CSS inlining costs tens of times a Jinja render, and deriving the
text part with an HTML parser costs several times more. This module does both
once per template, when that is provably equivalent to doing it per message,
and says why not otherwise. The steps:

1. **Document.** The HTML part of a notification is one Jinja AST: a template
   that extends a layout is flattened (each ``{% block %}`` replaced by its
   most derived definition, ``{{ super() }}`` by the parent's, every block
   renamed so they can live in one template); ``{% include "const" %}`` is
   spliced in a scope; calls of simple macros (``{{ button(url, label) }}``)
   are expanded in a ``{% with %}``. Anything the analysis does not model
   (``{% call %}``, ``{% filter %}``, ``{% autoescape %}``, dynamic extends or
   includes, recursive loops, ``self.block()``…) makes the template
   per-message.
2. **Skeleton.** The document is written out as HTML with each ``{{ … }}``
   replaced by a placeholder and each ``{% if %}``/``{% for %}`` boundary by a
   marker: every static element appears exactly once, with all branches.
3. **Checks** (any failure → per message): placeholders only in text or in
   quoted attribute values (never in tag or attribute names, comments,
   ``<style>`` or ``<script>``); no static text that could merge with a value
   into an entity or a tag (``&amp`` or ``<`` right before a variable); every
   element explicitly closed and every loop body or branch balanced; nothing
   dynamic directly in ``<head>``, or at the top level before ``<body>``
   starts; ``<style>`` and stylesheet ``<link>`` elements static and
   unconditional; the engine's own parser (libxml2 or html5ever) builds exactly
   the template's nesting; no selector the engine inlines reads an attribute
   that has a variable in it (``class="{{ … }}"`` with any class selector, an
   ``[href^=…]`` with a variable ``href``…); no structural selector
   (``:first-child``, ``:nth-child``, ``+``, ``~``, ``:empty``…) could see
   an element whose siblings a loop or a condition changes; the engine does
   not rewrite an attribute that holds a variable (a variable ``style`` on an
   element a rule matches).
4. **Edit.** The engine inlines the skeleton; each element's new attributes
   (``style``, and premailer's ``width``/``bgcolor``/``align``…) are written
   into the template's static text, ``<style>`` elements are replaced by what
   the engine left of them. The result is compiled as a Jinja template.
5. **At render time** a variable whose value is markup (``Markup``, ``|safe``,
   an un-expanded macro call) could add elements the analysis never saw: a
   ``finalize`` guard detects it and that one message is inlined per message.

The text part is compiled the same way: phase 1 of :mod:`._text` is a
per-token function of the stack of open elements, so each static piece is
converted ahead of time and each variable is converted when it is rendered;
phase 2 runs per message on the short result.
"""

from __future__ import annotations

import copy
import html as html_module
import itertools
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any, Union

from jinja2 import Environment, Template, meta, nodes

from notifykit.templates import _text
from notifykit.templates._inline import (
    HEAD_TAGS,
    MARK,
    Engine,
    NaiveElement,
    find_local_links,
    selector_facts,
    structural_conflict,
    style_for_link,
)

__all__ = [
    "Document",
    "NeedsFallback",
    "Unsupported",
    "build_document",
    "compile_html",
    "compile_text",
    "html_guard",
    "text_filters",
]

OUT_OPEN, OUT_CLOSE = "\ue000", "\ue001"
MARK_OPEN, MARK_CLOSE = "\ue002", "\ue003"
_TOKEN_CHARS = re.compile("[\ue000-\ue003]")
_OUT_TOKEN = re.compile("\ue000(\\d+)\ue001")
_ANY_TOKEN = re.compile("\ue000\\d+\ue001|\ue002\\d+\ue003")
# Static text right before a variable must not be able to merge with it.
_UNSAFE_PREFIX = re.compile(r"(&[#A-Za-z0-9]*|<[!/?]?[-A-Za-z0-9]*)\Z")
_PARTIAL_ENTITY = re.compile(r"&[#A-Za-z0-9]*\Z")
_VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)
_MAX_DEPTH = 20


class Unsupported(Exception):
    """The template cannot be compiled ahead of time; the message says why."""


class NeedsFallback(Exception):
    """Raised while rendering: this message must take the per-message path."""


def html_guard(value: Any) -> Any:
    """``finalize`` of compile-time HTML templates: refuse markup that adds tags.

    Escaped text can only ever be text, which the analysis allowed for. A value
    that is already markup is inserted as is, so if it could open a tag, close
    an attribute or complete an entity, the analysis no longer holds.
    """
    if hasattr(value, "__html__"):
        text = value.__html__()
        if "<" in text or '"' in text or "'" in text or _PARTIAL_ENTITY.search(text):
            raise NeedsFallback("a variable holds markup")
    return value


def _make_text_filter(mode: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if hasattr(value, "__html__"):
            text = value.__html__()
            if "<" in text or _PARTIAL_ENTITY.search(text):
                raise NeedsFallback("a variable holds markup")
            return _text.transform(html_module.unescape(text), mode)
        return _text.transform(str(value), mode)

    convert.__name__ = f"notifykit_text_{mode}"
    return convert


def text_filters() -> dict[str, Callable[[Any], str]]:
    """The filters compile-time text templates call on each variable."""
    return {f"notifykit_text_{m}": _make_text_filter(m) for m in ("normal", "pre", "attr")}


# --------------------------------------------------------------------- 1. documents


def _clone(value: Any, env: Environment) -> Any:
    """A deep copy of AST nodes that shares (does not copy) their environment."""
    return copy.deepcopy(value, {id(env): env})


class Document:
    """The HTML part of one notification as a single Jinja AST."""

    def __init__(self, body: list[nodes.Node], deps: list[str], env: Environment) -> None:
        self.body = body
        self.deps = deps
        self.env = env


class _Flattener:
    def __init__(
        self, env: Environment, load: Callable[[str], nodes.Template], inline_macros: bool
    ) -> None:
        self.env = env
        self.load = load
        self.inline_macros = inline_macros
        self.counter = itertools.count()
        self.defs: dict[str, list[nodes.Block]] = {}
        self.deps: list[str] = []
        self.macros: dict[str, nodes.Macro] = {}

    def parse(self, name: str) -> nodes.Template:
        if name not in self.deps:
            self.deps.append(name)
        return self.load(name)

    # -- blocks, super(), includes, macro calls
    def block(self, name: str, level: int, depth: int) -> nodes.Block:
        definitions = self.defs.get(name, [])
        if level >= len(definitions):
            raise Unsupported(f"block {name!r} calls super() but has no parent")
        definition = definitions[level]
        if definition.required:
            raise Unsupported(f"block {name!r} is required")
        body = self.statements(_clone(definition.body, self.env), (name, level), depth + 1)
        new = nodes.Block(f"notifykit_{next(self.counter)}", body, definition.scoped, False)
        new.lineno = definition.lineno
        return new

    def statements(
        self, body: list[nodes.Node], block: tuple[str, int] | None, depth: int
    ) -> list[nodes.Node]:
        if depth > _MAX_DEPTH:
            raise Unsupported("blocks, includes or macros nest too deeply")
        out: list[nodes.Node] = []
        for node in body:
            if isinstance(node, nodes.Block):
                out.append(self.block(node.name, 0, depth))
            elif isinstance(node, nodes.Output):
                out.extend(self.output(node, block, depth))
            elif isinstance(node, nodes.Include):
                out.append(self.include(node, depth))
            elif isinstance(node, nodes.Extends):
                raise Unsupported("{% extends %} is not at the top of the template")
            else:
                for field in node.fields:
                    value = getattr(node, field)
                    if isinstance(value, list) and value and isinstance(value[0], nodes.Stmt):
                        setattr(node, field, self.statements(value, block, depth))
                out.append(node)
        return out

    def output(
        self, node: nodes.Output, block: tuple[str, int] | None, depth: int
    ) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        current: list[nodes.Expr] = []

        def flush() -> None:
            if current:
                out.append(nodes.Output(list(current), lineno=node.lineno))
                current.clear()

        for child in node.nodes:
            if _is_call_of(child, "super"):
                if block is None:
                    raise Unsupported("super() outside a block")
                flush()
                out.append(self.block(block[0], block[1] + 1, depth))
            elif isinstance(child, nodes.Call) and self._macro_for(child) is not None:
                flush()
                out.append(self.expand(child, depth))
            else:
                current.append(child)
        flush()
        return out

    def include(self, node: nodes.Include, depth: int) -> nodes.Node:
        template = node.template
        if not (isinstance(template, nodes.Const) and isinstance(template.value, str)):
            raise Unsupported("{% include %} of a computed template name")
        if not node.with_context or node.ignore_missing:
            raise Unsupported("{% include %} without context or with 'ignore missing'")
        ast = self.parse(template.value)
        if ast.find(nodes.Extends) is not None or ast.find(nodes.Block) is not None:
            raise Unsupported(f"included template {template.value!r} has blocks")
        return nodes.Scope(self.statements(_clone(ast.body, self.env), None, depth + 1))

    def _macro_for(self, call: nodes.Call) -> nodes.Macro | None:
        if not isinstance(call.node, nodes.Name):
            return None
        return self.macros.get(call.node.name)

    def expand(self, call: nodes.Call, depth: int) -> nodes.Node:
        macro = self._macro_for(call)
        assert macro is not None
        params = [a.name for a in macro.args]
        values: dict[str, nodes.Expr] = {}
        if call.dyn_args is not None or call.dyn_kwargs is not None or len(call.args) > len(params):
            raise Unsupported(f"call of macro {macro.name!r} with */** or too many arguments")
        for param, arg in zip(params, call.args):
            values[param] = arg
        for keyword in call.kwargs:
            if keyword.key not in params or keyword.key in values:
                raise Unsupported(f"call of macro {macro.name!r} with a bad keyword")
            values[keyword.key] = keyword.value
        defaults = dict(zip(params[len(params) - len(macro.defaults) :], macro.defaults))
        for param in params:
            if param not in values:
                default = defaults.get(param)
                if not isinstance(default, nodes.Const):
                    raise Unsupported(f"call of macro {macro.name!r} misses {param!r}")
                values[param] = default
        body = self.statements(_clone(macro.body, self.env), None, depth + 1)
        return nodes.With(
            [nodes.Name(p, "store") for p in params], [values[p] for p in params], body
        )

    def collect_macros(self, prelude: list[nodes.Node], body: list[nodes.Node]) -> None:
        """Find the macros calls to which can be expanded in place."""
        if not self.inline_macros:
            return
        candidates: dict[str, nodes.Macro] = {}
        bound: dict[str, int] = {}
        everything = nodes.Template(prelude + body)
        for name_node in everything.find_all(nodes.Name):
            if name_node.ctx in ("store", "param"):
                bound[name_node.name] = bound.get(name_node.name, 0) + 1
        for node in everything.find_all((nodes.Macro, nodes.FromImport, nodes.Import)):
            if isinstance(node, nodes.Macro):
                bound[node.name] = bound.get(node.name, 0) + 1
            elif isinstance(node, nodes.FromImport):
                for item in node.names:
                    alias = item if isinstance(item, str) else item[1]
                    bound[alias] = bound.get(alias, 0) + 1
            else:
                bound[node.target] = bound.get(node.target, 0) + 1
        for node in prelude:
            if isinstance(node, nodes.Macro):
                candidates[node.name] = node
            elif (
                isinstance(node, nodes.FromImport)
                and not node.with_context
                and isinstance(node.template, nodes.Const)
                and isinstance(node.template.value, str)
            ):
                try:
                    ast = self.parse(node.template.value)
                except Unsupported:
                    continue
                defined = {m.name: m for m in ast.body if isinstance(m, nodes.Macro)}
                for item in node.names:
                    name, alias = (item, item) if isinstance(item, str) else item
                    if name in defined:
                        candidates[alias] = defined[name]
        for alias, macro in candidates.items():
            if bound.get(alias) == 1 and _simple_macro(self.env, macro):
                self.macros[alias] = macro


def _is_call_of(node: nodes.Node, name: str) -> bool:
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == name
        and not node.args
        and not node.kwargs
    )


def _simple_macro(env: Environment, macro: nodes.Macro) -> bool:
    """A macro whose body only reads its own parameters: safe to expand in place."""
    params = {a.name for a in macro.args}
    template = nodes.Template(_clone(macro.body, env))
    template.set_environment(env)
    try:
        free = meta.find_undeclared_variables(template)
    except Exception:
        return False
    if free - params:
        return False
    return all(isinstance(d, nodes.Const) for d in macro.defaults)


def build_document(
    env: Environment,
    name: str,
    load: Callable[[str], nodes.Template],
    *,
    inline_macros: bool,
) -> Document | None:
    """The HTML document AST of template ``name`` (``None``: it has no HTML part).

    Raises :class:`Unsupported` when the template uses something the compiler
    does not model; the renderer then renders it per message.
    """
    flattener = _Flattener(env, load, inline_macros)
    chain = [flattener.parse(name)]
    while True:
        extends = [n for n in chain[-1].body if isinstance(n, nodes.Extends)]
        if chain[-1].find(nodes.Extends) is not None and not extends:
            raise Unsupported("{% extends %} is not at the top level")
        if not extends:
            break
        if len(extends) > 1:
            raise Unsupported("several {% extends %}")
        parent = extends[0].template
        if not (isinstance(parent, nodes.Const) and isinstance(parent.value, str)):
            raise Unsupported("{% extends %} of a computed template name")
        if len(chain) > _MAX_DEPTH or parent.value in flattener.deps:
            raise Unsupported("{% extends %} loops or nests too deeply")
        chain.append(flattener.parse(parent.value))
    if any(n.find(nodes.Name) is not None and _uses_self(n) for n in chain):
        raise Unsupported("the template calls self.<block>()")
    for ast in chain:
        for block in ast.find_all(nodes.Block):
            flattener.defs.setdefault(block.name, []).append(block)
    prelude: list[nodes.Node] = []
    _ok = (nodes.Assign, nodes.AssignBlock, nodes.Import, nodes.FromImport, nodes.Macro)
    for ast in chain[:-1]:
        seen_extends = False
        for node in ast.body:
            if isinstance(node, nodes.Extends):
                seen_extends = True
            elif isinstance(node, nodes.Block):
                continue
            elif isinstance(node, nodes.Output):
                if not seen_extends:
                    prelude.append(_clone(node, env))
            elif isinstance(node, _ok):
                prelude.append(_clone(node, env))
            else:
                raise Unsupported(f"{type(node).__name__} at the top level of a child template")
    if len(chain) == 1:
        if "html" not in flattener.defs:
            return None
        base_body: list[nodes.Node] = [nodes.Block("html", [], False, False)]
        for node in chain[0].body:
            if isinstance(node, _ok):
                prelude.append(_clone(node, env))
    else:
        base_body = _clone(chain[-1].body, env)
    flattener.collect_macros(prelude, base_body)
    body = flattener.statements(prelude, None, 0) + flattener.statements(base_body, None, 0)
    return Document(body, flattener.deps, env)


def _uses_self(ast: nodes.Template) -> bool:
    return any(n.name == "self" and n.ctx == "load" for n in ast.find_all(nodes.Name))


# ------------------------------------------------------------------- 2. skeletons


class _Piece:
    __slots__ = ("end", "index", "kind", "node", "owner", "start", "text")

    def __init__(
        self,
        kind: str,
        text: str,
        start: int,
        owner: nodes.Output | None = None,
        index: int = -1,
        node: nodes.Node | None = None,
    ) -> None:
        self.kind = kind  # "static", "out", "open", "sep", "close"
        self.text = text
        self.start = start
        self.end = start + len(text)
        self.owner = owner
        self.index = index
        self.node = node


_NO_OUTPUT = (
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Import,
    nodes.FromImport,
    nodes.Macro,
    nodes.ExprStmt,
)


class _Skeleton:
    """The linear form of a document: pieces, tokens and the skeleton string."""

    def __init__(self, body: list[nodes.Node]) -> None:
        self.pieces: list[_Piece] = []
        self.outs: dict[int, _Piece] = {}
        self.markers: dict[int, tuple[int, str]] = {}  # marker id -> (region, kind)
        self.regions = 0
        self._parts: list[str] = []
        self._pos = 0
        self._walk(body)
        self.text = "".join(self._parts)
        starts = [p.start for p in self.pieces]
        self._starts = starts

    def _add(self, piece: _Piece) -> None:
        self.pieces.append(piece)
        self._parts.append(piece.text)
        self._pos = piece.end

    def _marker(self, region: int, kind: str) -> None:
        marker_id = len(self.markers)
        self.markers[marker_id] = (region, kind)
        self._add(_Piece(kind, f"{MARK_OPEN}{marker_id}{MARK_CLOSE}", self._pos))

    def _walk(self, body: list[nodes.Node]) -> None:
        for node in body:
            if isinstance(node, nodes.Output):
                for index, child in enumerate(node.nodes):
                    if isinstance(child, nodes.TemplateData):
                        if _TOKEN_CHARS.search(child.data):
                            raise Unsupported("the template contains private-use characters")
                        self._add(_Piece("static", child.data, self._pos, node, index, child))
                    else:
                        out_id = len(self.outs)
                        piece = _Piece(
                            "out", f"{OUT_OPEN}{out_id}{OUT_CLOSE}", self._pos, node, index, child
                        )
                        self.outs[out_id] = piece
                        self._add(piece)
            elif isinstance(node, nodes.If):
                region = self.regions
                self.regions += 1
                self._marker(region, "open")
                self._walk(node.body)
                for branch in node.elif_:
                    self._marker(region, "sep")
                    self._walk(branch.body)
                self._marker(region, "sep")
                self._walk(node.else_)
                self._marker(region, "close")
            elif isinstance(node, nodes.For):
                if node.recursive:
                    raise Unsupported("recursive loops")
                region = self.regions
                self.regions += 1
                self._marker(region, "open")
                self._walk(node.body)
                self._marker(region, "sep")
                self._walk(node.else_)
                self._marker(region, "close")
            elif isinstance(node, (nodes.With, nodes.Scope, nodes.Block)):
                self._walk(node.body)
            elif isinstance(node, _NO_OUTPUT):
                continue
            else:
                raise Unsupported(f"{{% {type(node).__name__.lower()} %}} is not supported")

    def piece_at(self, offset: int) -> _Piece:
        """The piece holding the skeleton character at ``offset``."""
        import bisect

        i = bisect.bisect_right(self._starts, offset) - 1
        while i > 0 and self.pieces[i].start == self.pieces[i].end:
            i -= 1
        return self.pieces[max(i, 0)]


class _Event:
    __slots__ = ("attrs", "end", "kind", "raw", "start", "tag", "text")

    def __init__(self, kind: str, start: int) -> None:
        self.kind = kind  # start, startend, end, data, comment, other
        self.start = start
        self.end = start
        self.tag = ""
        self.attrs: list[tuple[str, str | None]] = []
        self.raw = ""
        self.text = ""


class _Tokenizer(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.events: list[_Event] = []
        self._lines = [0]
        pos = 0
        for line in source.splitlines(keepends=True):
            pos += len(line)
            self._lines.append(pos)

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._lines[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        event = _Event("start", self._offset())
        event.tag, event.attrs = tag, attrs
        event.raw = self.get_starttag_text() or ""
        event.end = event.start + len(event.raw)
        self.events.append(event)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.events[-1].kind = "startend"

    def handle_endtag(self, tag: str) -> None:
        event = _Event("end", self._offset())
        event.tag = tag
        self.events.append(event)

    def handle_data(self, data: str) -> None:
        event = _Event("data", self._offset())
        event.text = data
        self.events.append(event)

    def handle_comment(self, data: str) -> None:
        event = _Event("comment", self._offset())
        event.text = data
        self.events.append(event)

    def handle_decl(self, decl: str) -> None:
        event = _Event("other", self._offset())
        event.text = decl
        self.events.append(event)

    handle_pi = handle_decl
    unknown_decl = handle_decl

    def run(self) -> list[_Event]:
        self.feed(self.source)
        self.close()
        for i, event in enumerate(self.events):
            following = self.events[i + 1].start if i + 1 < len(self.events) else len(self.source)
            if event.kind not in ("start", "startend"):
                event.end = following
            event.raw = self.source[event.start : event.end]
        return self.events


_ATTR = re.compile(
    r"""\s*(?P<name>[^\s"'>/=]+)(?:\s*=\s*(?P<value>'[^']*'|"[^"]*"|[^'"\s>]*))?"""
)


def _tokens_only_in_quoted_values(raw: str) -> bool:
    body = re.sub(r"^<[^\s/>]+", "", raw)
    body = re.sub(r"/?>\Z", "", body)
    pos = 0
    while pos < len(body):
        match = _ATTR.match(body, pos)
        if match is None or match.end() == pos:
            rest = body[pos:].strip().strip("/")
            return not _TOKEN_CHARS.search(rest)
        if _TOKEN_CHARS.search(match.group("name")):
            return False
        value = match.group("value") or ""
        if _TOKEN_CHARS.search(value) and value[:1] not in ("'", '"'):
            return False
        pos = match.end()
    return True


class _Analysis:
    """Tokens, the naive element tree, regions and the checks of step 3."""

    def __init__(self, skeleton: _Skeleton) -> None:
        self.sk = skeleton
        self.events = _Tokenizer(skeleton.text).run()
        self.html_problem: str | None = None
        self.text_problem: str | None = None
        self.elements: dict[int, NaiveElement] = {}
        self.element_events: dict[int, _Event] = {}
        self.end_events: dict[int, _Event] = {}
        self.event_element: dict[int, int] = {}  # event index -> element id
        self.dynamic_parents: set[int | None] = set()
        self.dynamic_attrs: dict[int, set[str]] = {}
        self.in_region: set[int] = set()  # elements inside some region
        self._check_prefixes()
        self._walk()

    def _fail(self, reason: str, *, text: bool = True) -> None:
        if self.html_problem is None:
            self.html_problem = reason
        if text and self.text_problem is None:
            self.text_problem = reason

    def _check_prefixes(self) -> None:
        source = self.sk.text
        for match in _ANY_TOKEN.finditer(source):
            before = source[max(0, match.start() - 64) : match.start()]
            if _UNSAFE_PREFIX.search(before):
                self._fail("a variable or tag directly follows '<' or an unfinished entity")
                return

    def _walk(self) -> None:
        stack: list[int] = []  # open element ids
        region_stack: list[tuple[int, tuple[int, ...], int | None]] = []
        body_started: set[int | None] = set()
        cdata: str | None = None
        for index, event in enumerate(self.events):
            parent = stack[-1] if stack else None
            if event.kind in ("start", "startend"):
                if _TOKEN_CHARS.search(event.tag) or not _tokens_only_in_quoted_values(event.raw):
                    self._fail(f"a variable or tag inside <{event.tag}> outside a quoted value")
                    continue
                element_id = len(self.elements)
                attrs = event.attrs
                dynamic = {k for k, v in attrs if v is not None and _TOKEN_CHARS.search(v)}
                if dynamic:
                    self.dynamic_attrs[element_id] = dynamic
                self.elements[element_id] = NaiveElement(element_id, event.tag, parent, attrs)
                self.element_events[element_id] = event
                self.event_element[index] = element_id
                if any(r[2] == parent for r in region_stack):
                    self.dynamic_parents.add(parent)
                if region_stack:
                    self.in_region.add(element_id)
                elif event.tag not in HEAD_TAGS:
                    body_started.add(parent)
                if event.tag in ("style", "script"):
                    cdata = event.tag
                if event.tag not in _VOID and event.kind == "start":
                    stack.append(element_id)
                if event.tag in ("style", "link") and (region_stack or dynamic):
                    self._fail("a stylesheet inside {% if %} or {% for %}, or with a variable", text=False)
            elif event.kind == "end":
                cdata = None
                if event.tag in _VOID:
                    continue
                if not stack or self.elements[stack[-1]].tag != event.tag:
                    self._fail(f"</{event.tag}> does not close the element open there", text=False)
                    continue
                self.end_events[stack.pop()] = event
            elif event.kind == "data":
                tokens = list(_ANY_TOKEN.finditer(event.raw))
                if not tokens:
                    continue
                if cdata is not None:
                    self._fail(f"a variable or tag inside <{cdata}>")
                    continue
                for match in tokens:
                    token = match.group(0)
                    if token[0] == MARK_OPEN:
                        self._region_marker(int(token[1:-1]), stack, region_stack)
                    if parent is None or self.elements[parent].tag in ("html", "head"):
                        if parent is not None and self.elements[parent].tag == "head":
                            self._fail("a variable or tag directly inside <head>", text=False)
                        elif parent not in body_started:
                            self._fail(
                                "a variable or tag at the top level before <body> starts",
                                text=False,
                            )
            elif _TOKEN_CHARS.search(event.raw):
                self._fail("a variable or tag inside a comment or declaration")
        if region_stack:
            self._fail("unbalanced {% if %} or {% for %}")

    def _region_marker(
        self,
        marker_id: int,
        stack: list[int],
        region_stack: list[tuple[int, tuple[int, ...], int | None]],
    ) -> None:
        region, kind = self.sk.markers[marker_id]
        snapshot = tuple(stack)
        if kind == "open":
            region_stack.append((region, snapshot, stack[-1] if stack else None))
            return
        if not region_stack or region_stack[-1][0] != region:
            self._fail("a tag is opened in one branch and closed in another")
            return
        if region_stack[-1][1] != snapshot:
            self._fail("a loop body or a branch does not close the elements it opens", text=False)
        if kind == "close":
            region_stack.pop()


# --------------------------------------------------------------------- 3/4. HTML


def _escape_value(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


class _Editor:
    """Span edits on the skeleton, written back into the AST's Output nodes."""

    def __init__(self, skeleton: _Skeleton) -> None:
        self.sk = skeleton
        self.edits: list[tuple[int, int, str]] = []

    def replace(self, start: int, end: int, text: str) -> None:
        first = self.sk.piece_at(start)
        last = self.sk.piece_at(max(end - 1, start))
        if first.kind != "static" or last.kind != "static" or first.owner is not last.owner:
            raise Unsupported("an edit would cross a Jinja tag")
        for piece in self.sk.pieces[self.sk.pieces.index(first) : self.sk.pieces.index(last) + 1]:
            if piece.owner is not first.owner:
                raise Unsupported("an edit would cross a Jinja tag")
        self.edits.append((start, end, text))

    def apply(self) -> None:
        by_owner: dict[int, list[tuple[int, int, str]]] = {}
        owners: dict[int, nodes.Output] = {}
        for start, end, text in self.edits:
            owner = self.sk.piece_at(start).owner
            assert owner is not None
            by_owner.setdefault(id(owner), []).append((start, end, text))
            owners[id(owner)] = owner
        for key, edits in by_owner.items():
            owner = owners[key]
            pieces = [p for p in self.sk.pieces if p.owner is owner]
            base = pieces[0].start
            text = "".join(p.text for p in pieces)
            exprs = {int(p.text[1:-1]): p.node for p in pieces if p.kind == "out"}
            edits.sort()
            for (s1, e1, _), (s2, _e2, _) in zip(edits, edits[1:]):
                if s2 < e1:
                    raise Unsupported("overlapping edits")
            for start, end, new in reversed(edits):
                text = text[: start - base] + new + text[end - base :]
            new_nodes: list[nodes.Node] = []
            pos = 0
            for match in _OUT_TOKEN.finditer(text):
                if match.start() > pos:
                    new_nodes.append(nodes.TemplateData(text[pos : match.start()]))
                node = exprs.pop(int(match.group(1)))
                assert node is not None
                new_nodes.append(node)
                pos = match.end()
            if pos < len(text):
                new_nodes.append(nodes.TemplateData(text[pos:]))
            if exprs:
                raise Unsupported("an edit would drop a variable")
            owner.nodes = new_nodes


def _start_tag(raw: str, attrs: list[tuple[str, str]]) -> str:
    name = re.match(r"<([^\s/>]+)", raw)
    assert name is not None
    closing = "/>" if raw.endswith("/>") else ">"
    body = "".join(f' {k}="{_escape_value(v)}"' for k, v in attrs)
    return f"<{name.group(1)}{body}{closing}"


def _expand_stylesheets(
    body: list[nodes.Node], load_css: Callable[[str], str]
) -> list[nodes.Node]:
    skeleton = _Skeleton(body)
    links = find_local_links(skeleton.text)
    if not links:
        return body
    editor = _Editor(skeleton)
    for start, end, attrs in links:
        if _TOKEN_CHARS.search(skeleton.text[start:end]):
            raise Unsupported("a stylesheet link with a variable in it")
        editor.replace(start, end, style_for_link(attrs, load_css(attrs.get("href") or "")))
    editor.apply()
    return body


def compile_html(
    document: Document,
    engine: Engine,
    env: Environment,
    name: str,
    load_css: Callable[[str], str],
) -> Template:
    """The compile-time inlined HTML template, or :class:`Unsupported`."""
    body = _clone(document.body, document.env)
    body = _expand_stylesheets(body, load_css)
    skeleton = _Skeleton(body)
    analysis = _Analysis(skeleton)
    if analysis.html_problem:
        raise Unsupported(analysis.html_problem)
    elements = analysis.elements
    css_texts = []
    for element_id, element in elements.items():
        if element.tag == "style":
            start = analysis.element_events[element_id].end
            end_event = analysis.end_events.get(element_id)
            if end_event is None:
                raise Unsupported("a <style> element is not closed")
            css_texts.append(html_module.unescape(skeleton.text[start : end_event.start]))
    facts = selector_facts(engine.selectors(css_texts))
    if facts.problem:
        raise Unsupported(facts.problem)
    dynamic_names = set().union(*analysis.dynamic_attrs.values()) if analysis.dynamic_attrs else set()
    if MARK in facts.attributes:
        raise Unsupported(f"a selector reads {MARK}")
    clash = dynamic_names & facts.attributes
    if clash:
        raise Unsupported(f"a selector reads the attribute {sorted(clash)[0]!r}, which holds a variable")
    if facts.content_dependent and (skeleton.outs or skeleton.regions):
        raise Unsupported("a selector depends on content (:empty, :has…)")
    dynamic_siblings = {
        i for i, e in elements.items() if e.parent in analysis.dynamic_parents
    }
    if facts.structural and dynamic_siblings:
        conflict = structural_conflict(elements, facts.structural, dynamic_siblings)
        if conflict:
            raise Unsupported(f"structural selector {conflict!r} over a loop or condition")
    if engine.name == "premailer":
        for element_id, names in analysis.dynamic_attrs.items():
            if "style" in names and elements[element_id].tag == "img":
                raise Unsupported("an <img> with a variable in its style")
    # the engine's skeleton: marks in, region markers out
    marked: list[str] = []
    last = 0
    source = skeleton.text
    for element_id, event in analysis.element_events.items():
        name_match = re.match(r"<[^\s/>]+", event.raw)
        assert name_match is not None
        cut = event.start + name_match.end()
        marked.append(source[last:cut])
        marked.append(f' {MARK}="{element_id}"')
        last = cut
    marked.append(source[last:])
    engine_input = re.sub("\ue002\\d+\ue003", "", "".join(marked))
    outcome = engine.skeleton(engine_input, elements)
    if outcome.problem:
        raise Unsupported(outcome.problem)
    editor = _Editor(skeleton)
    removed: set[int] = set()
    for element_id, new_text in outcome.styles.items():
        start_event = analysis.element_events[element_id]
        end_event = analysis.end_events[element_id]
        end = end_event.start + len(end_event.raw.split(">", 1)[0]) + 1
        if new_text is None:
            if outcome.drops_tail:
                following = analysis.events.index(end_event) + 1
                while following < len(analysis.events) and analysis.events[following].kind == "data":
                    if _TOKEN_CHARS.search(analysis.events[following].raw):
                        raise Unsupported("a variable right after a <style> element")
                    end = analysis.events[following].end
                    following += 1
            editor.replace(start_event.start, end, "")
            removed.add(element_id)
        else:
            attrs = outcome.after.get(element_id)
            tag = start_event.raw if attrs is None else _start_tag(start_event.raw, attrs)
            editor.replace(start_event.start, end, f"{tag}{new_text}</style>")
            removed.add(element_id)
    for element_id, after in outcome.after.items():
        if element_id in removed:
            continue
        before = outcome.before[element_id]
        if after == before:
            continue
        dynamic = analysis.dynamic_attrs.get(element_id, set())
        old, new = dict(before), dict(after)
        for key in dynamic:
            if old.get(key) != new.get(key):
                raise Unsupported(f"the engine rewrites the attribute {key!r}, which holds a variable")
        event = analysis.element_events[element_id]
        editor.replace(event.start, event.end, _start_tag(event.raw, after))
    if outcome.head_style is not None:
        start, end, after = _head_insertion(analysis)
        style = f"<style>{outcome.head_style}</style>"
        edge = skeleton.text[start:end]
        editor.replace(start, end, edge + style if after else style + edge)
    editor.apply()
    return _compile(env, body, f"{name}#html")


def _head_insertion(analysis: _Analysis) -> tuple[int, int, bool]:
    """Where a new first child of ``<head>`` goes: a one-character span to extend.

    Returns ``(start, end, after)``: insert after the ``>`` of the ``<head>`` (or
    ``<html>``) start tag, or before the ``<`` of the first element.
    """
    for tag in ("head", "html"):
        for element_id, element in analysis.elements.items():
            if element.tag == tag:
                end = analysis.element_events[element_id].end
                return end - 1, end, True
    for event in analysis.events:
        if event.kind in ("start", "startend"):
            return event.start, event.start + 1, False
    raise Unsupported("no element to put the at-rules before")


def _compile(env: Environment, body: list[nodes.Node], name: str) -> Template:
    template = nodes.Template(body, lineno=1)
    template.set_environment(env)
    code = env.compile(template, name=name)
    return env.template_class.from_code(env, code, env.make_globals(None))


# --------------------------------------------------------------------------- text


def compile_text(document: Document, env: Environment, name: str) -> Template:
    """The compile-time pre-text template (phase 1 done ahead of time)."""
    body = _clone(document.body, document.env)
    skeleton = _Skeleton(body)
    analysis = _Analysis(skeleton)
    if analysis.text_problem:
        raise Unsupported(analysis.text_problem)
    emitted: dict[int, list[Union[str, nodes.Expr]]] = {}

    def emit(piece: _Piece, item: Union[str, nodes.Expr]) -> None:
        if isinstance(item, str) and not item:
            return
        emitted.setdefault(id(piece), []).append(item)

    state = _text.TextState()
    region_states: list[tuple[tuple[tuple[str, str, bool], ...], int]] = []
    source = skeleton.text
    for event in analysis.events:
        if event.kind in ("start", "startend"):
            anchor = skeleton.piece_at(event.start)
            attrs = event.attrs
            for key, value in attrs:
                if key in ("style", "hidden") and value and _TOKEN_CHARS.search(value):
                    raise Unsupported(f"a variable in the {key!r} attribute")
            for item in state.start(event.tag, attrs):
                if isinstance(item, str):
                    emit(anchor, item)
                    continue
                if "\ue002" in item.value:
                    raise Unsupported("{% if %} or {% for %} inside a link's href")
                for part in _split_out_tokens(item.value):
                    if isinstance(part, str):
                        emit(anchor, _text.transform(part, "attr"))
                    else:
                        out = skeleton.outs[part]
                        if out.owner is not anchor.owner:
                            raise Unsupported("a link's start tag crosses a Jinja tag")
                        emit(anchor, _text_filter_node(out.node, "attr"))
            if event.kind == "startend" and event.tag not in _VOID:
                emit(anchor, state.end(event.tag))
        elif event.kind == "end":
            emit(skeleton.piece_at(event.start), state.end(event.tag))
        elif event.kind == "data":
            mode = state.mode
            pos = event.start
            for match in _ANY_TOKEN.finditer(event.raw):
                start = event.start + match.start()
                if start > pos:
                    static = html_module.unescape(source[pos:start])
                    emit(skeleton.piece_at(pos), _text.transform(static, mode))
                token = match.group(0)
                if token[0] == OUT_OPEN:
                    out = skeleton.outs[int(token[1:-1])]
                    if mode != "drop":
                        emit(out, _text_filter_node(out.node, mode))
                else:
                    marker = int(token[1:-1])
                    region, kind = skeleton.markers[marker]
                    if kind == "open":
                        region_states.append((state.snapshot(), region))
                    elif region_states[-1][0] != state.snapshot():
                        raise Unsupported("a loop body or a branch changes the text layout")
                    elif kind == "close":
                        region_states.pop()
                pos = event.start + match.end()
            if pos < event.end:
                static = html_module.unescape(source[pos : event.end])
                emit(skeleton.piece_at(pos), _text.transform(static, mode))
    for piece in skeleton.pieces:
        if piece.kind in ("static", "out"):
            assert piece.owner is not None
    owners: dict[int, nodes.Output] = {}
    for piece in skeleton.pieces:
        if piece.owner is not None:
            owners[id(piece.owner)] = piece.owner
    for owner in owners.values():
        items: list[nodes.Expr] = []
        for piece in skeleton.pieces:
            if piece.owner is owner:
                for item in emitted.get(id(piece), []):
                    items.append(nodes.TemplateData(item) if isinstance(item, str) else item)
        owner.nodes = items
    body.append(nodes.Output([nodes.TemplateData(state.close_all())]))
    return _compile(env, body, f"{name}#text")


def _split_out_tokens(value: str) -> Iterator[Union[str, int]]:
    pos = 0
    for match in _OUT_TOKEN.finditer(value):
        if match.start() > pos:
            yield value[pos : match.start()]
        yield int(match.group(1))
        pos = match.end()
    if pos < len(value):
        yield value[pos:]


def _text_filter_node(node: nodes.Node | None, mode: str) -> nodes.Expr:
    assert isinstance(node, nodes.Expr)
    return nodes.Filter(node, f"notifykit_text_{mode}", [], [], None, None)
