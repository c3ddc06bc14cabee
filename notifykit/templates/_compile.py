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

import bisect
import copy
import html as html_module
import itertools
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from types import CodeType
from typing import Any, Union

from jinja2 import Environment, Template, meta, nodes
from markupsafe import escape

from notifykit.templates import _inline, _repair, _text
from notifykit.templates._html import VOID_ELEMENTS
from notifykit.templates._inline import (
    HEAD_TAGS,
    MARK,
    Engine,
    NaiveElement,
    SkeletonOutcome,
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
    "PART_SPLIT",
    "SPLIT",
    "Compiled",
    "compile_document",
    "compiled_filters",
    "html_guard",
    "plain_filters",
]

OUT_OPEN, OUT_CLOSE = "\ue000", "\ue001"
MARK_OPEN, MARK_CLOSE = "\ue002", "\ue003"
_TOKEN_CHARS = re.compile("[\ue000-\ue005\x01]")
_OUT_TOKEN = re.compile("\ue000(\\d+)\ue001")
_ANY_TOKEN = re.compile("\ue000\\d+\ue001|\ue002\\d+\ue003")
# Static text right before a variable must not be able to merge with it.
_UNSAFE_PREFIX = re.compile(r"(&[#A-Za-z0-9]*|<[!/?]?[-A-Za-z0-9]*)\Z")
_PARTIAL_ENTITY = re.compile(r"&[#A-Za-z0-9]*\Z")
_MAX_DEPTH = 20


class Unsupported(Exception):
    """The template cannot be compiled ahead of time; the message says why."""


class NeedsFallback(Exception):
    """Raised while rendering: this message must take the per-message path."""


#: Separates the text stream from the HTML stream in a compiled template's
#: output. The guard refuses values that contain it (a message with one takes
#: the per-message path), static HTML is checked at compile time, and text
#: never contains it (phase 1 drops control characters).
SPLIT = "\x01"
#: Separates the document from the subject/text/sms parts that follow it. Part
#: variables go through ``notifykit_plain``, which refuses \x01.
PART_SPLIT = "\x01\x1f"


class _Ours:
    """Output of notifykit's own filters: already in its final form.

    Not a ``Markup``: escaping it costs one ``Markup`` construction instead of
    two, which matters at a few dozen variables per message.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __html__(self) -> str:
        return self.text


def _refuse_markup(text: str, position: str | None = None) -> None:
    """Refuse markup that could change the document's structure at ``position``.

    ``position``: ``"data"`` (between tags: only a tag or an unfinished entity
    could), a quote character (inside an attribute quoted with it: the quote
    too), or ``None`` (not known: any quote too).
    """
    if "<" in text or _PARTIAL_ENTITY.search(text):
        raise NeedsFallback("a variable holds markup")
    if position is None:
        if '"' in text or "'" in text:
            raise NeedsFallback("a variable holds markup")
    elif position != "data" and position in text:
        raise NeedsFallback("a variable holds markup")
    if SPLIT in text:
        raise NeedsFallback("a variable holds the control character \\x01")


def _position_filter(position: str, plain: bool) -> Callable[[Any], Any]:
    """The filter of a variable whose position in the markup is known (see ``_Analysis``).

    Markup values (a translation from ``_()`` or ``{% trans %}``, ``|safe``)
    are refused only for what could change the structure *there*: a quote
    between tags, or the other quote inside an attribute, is harmless.
    """

    def filter_(value: Any) -> Any:
        if type(value) is str:
            if SPLIT in value:
                raise NeedsFallback("a variable holds the control character \\x01")
            text = _escape_str(value)
        elif hasattr(value, "__html__"):
            text = value.__html__()
            _refuse_markup(text, position)
        else:
            text = str(value)
            if SPLIT in text:
                raise NeedsFallback("a variable holds the control character \\x01")
            text = _escape_str(text)
        return text if plain else _Ours(text)

    return filter_


_POSITIONS = {"data": "data", '"': "dq", "'": "sq"}


def html_guard(value: Any) -> Any:
    """``finalize`` of compiled templates: refuse markup that could add tags.

    Escaped text can only ever be text, which the analysis allowed for. A value
    that is already markup is inserted as is, so if it could open a tag, close
    an attribute or complete an entity, the analysis no longer holds.
    """
    cls = type(value)
    if cls is _Ours or cls is int:
        return value
    if cls is not str:
        if hasattr(value, "__html__"):
            _refuse_markup(value.__html__())
            return value
        value = str(value)
    if SPLIT in value:
        raise NeedsFallback("a variable holds the control character \\x01")
    return value


def _escape_with_replace(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


def _fast_escape() -> Callable[[str], str]:
    """markupsafe's escaping of a ``str``, as a ``str`` (no ``Markup`` object).

    Uses markupsafe's C helper when it exists and agrees with ``escape``; the
    ``Markup`` wrapper costs more than the escaping itself.
    """
    try:
        from markupsafe._speedups import _escape_inner
    except ImportError:
        return _escape_with_replace
    probe = "<a href=\"x\">'&'</a>"
    if _escape_inner(probe) != str(escape(probe)):
        return _escape_with_replace
    return _escape_inner


_escape_str = _fast_escape()


def _both_text(mode: str) -> Callable[[Any, str], str]:
    """``value`` → its escaped HTML, then its phase 1 text between :data:`SPLIT`."""
    special = _text.SPECIAL[mode]
    table = _text.TABLES[mode]
    var_open, var_close = _text.VAR_OPEN, _text.VAR_CLOSE  # see _text.ShapeMemo

    def both(value: Any, prefix: str = "") -> str:
        if type(value) is str:
            text = value
            markup = _escape_str(value)
        elif hasattr(value, "__html__"):
            markup = value.__html__()
            _refuse_markup(markup, "data")
            text = html_module.unescape(markup)
        else:
            text = str(value)
            markup = _escape_str(text)
        if SPLIT in text:
            raise NeedsFallback("a variable holds the control character \\x01")
        if special.search(text) is not None:
            text = text.translate(table)
        return f"{markup}{SPLIT}{prefix}{var_open}{text}{var_close}{SPLIT}"

    both.__name__ = f"notifykit_both_{mode}"
    return both


def _make_both(mode: str) -> Callable[[Any, str], _Ours]:
    """A filter that writes a variable into both streams (evaluated once)."""
    both = _both_text(mode)

    def filter_(value: Any, prefix: str = "") -> _Ours:
        return _Ours(both(value, prefix))

    filter_.__name__ = f"notifykit_both_{mode}"
    return filter_


def _text_only(value: Any) -> _Ours:
    """A filter that writes a variable into the text stream only (link URLs)."""
    if hasattr(value, "__html__"):
        markup = value.__html__()
        _refuse_markup(markup)
        text = html_module.unescape(markup)
    else:
        text = str(value)
    return _Ours(_text.transform(text, "attr"))


def compiled_filters() -> dict[str, Callable[..., Any]]:
    """The filters compiled templates call (templates compiled with autoescape)."""
    filters: dict[str, Callable[..., Any]] = {
        f"notifykit_both_{m}": _make_both(m) for m in ("normal", "pre")
    }
    filters["notifykit_text_attr"] = _text_only
    filters["notifykit_unguarded"] = _unguarded
    filters["notifykit_raw"] = _Ours
    for position, suffix in _POSITIONS.items():
        filters[f"notifykit_at_{suffix}"] = _position_filter(position, plain=False)
    return filters


def _plain_html(value: Any) -> str:
    """Escape one variable as autoescaping would, refusing markup that adds tags."""
    value = html_guard(value)
    if type(value) is str:
        return _escape_str(value)
    return escape(value)


def plain_filters() -> dict[str, Callable[..., Any]]:
    """The filters of templates compiled without autoescape (see :func:`_escape_free`).

    Without autoescape, Jinja writes each variable with a plain ``str()``
    instead of ``escape(finalize(…))``, so every variable goes through one of
    these filters, which escape it themselves: one call instead of three per
    variable, which matters at a few dozen variables per message.
    """
    filters: dict[str, Callable[..., Any]] = {
        f"notifykit_both_{m}": _both_text(m) for m in ("normal", "pre")
    }
    filters["notifykit_text_attr"] = lambda value: _text_only(value).text
    filters["notifykit_html"] = _plain_html
    filters["notifykit_plain"] = _plain_part
    filters["notifykit_raw"] = str
    for position, suffix in _POSITIONS.items():
        filters[f"notifykit_at_{suffix}"] = _position_filter(position, plain=True)
    return filters


def _plain_part(value: Any) -> str:
    """A variable of a subject/text/sms part: as is, but never the separator."""
    text = value if type(value) is str else str(value)
    if SPLIT in text:
        raise NeedsFallback("a variable holds the control character \\x01")
    return text


_EVAL_CONTEXT_NODES = (
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Call,
    nodes.Concat,
    nodes.MarkSafe,
    nodes.MarkSafeIfAutoescape,
    nodes.EvalContextModifier,
)


def _is_loop_cycle(node: nodes.Node) -> bool:
    """``loop.cycle("a", "b")``: returns one of its constant arguments, in any context."""
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and isinstance(node.node.node, nodes.Name)
        and node.node.node.name == "loop"
        and node.node.attr == "cycle"
        and all(isinstance(a, nodes.Const) and isinstance(a.value, str) for a in node.args)
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    )


def _escape_free(body: list[nodes.Node], env: Environment) -> bool:
    """Whether ``body`` renders the same with autoescape off, variables aside.

    Autoescape changes more than how ``{{ x }}`` is written: ``~`` joins,
    ``{% set %}`` blocks, macros and filters that take the eval context
    (``join``, ``replace``…) produce markup instead of text. A document with
    none of them can be compiled without autoescape, each variable escaped by
    :func:`_plain_html` instead.
    """
    from jinja2.utils import _PassArg

    template = nodes.Template(body)
    for node in template.find_all(_EVAL_CONTEXT_NODES):
        if not _is_loop_cycle(node):
            return False
    for node in template.find_all(nodes.Filter):
        func = env.filters.get(node.name)
        if func is None or _PassArg.from_obj(func) is not None:
            return False
    return True


# --------------------------------------------------------------------- 1. documents


_ATOMIC = (str, int, float, bool, type(None), bytes)


def _clone(value: Any, env: Environment) -> Any:
    """A deep copy of AST nodes that shares (does not copy) their environment.

    What ``copy.deepcopy(value, {id(env): env})`` gives, at a fraction of its
    cost (a third of the analysis' copying time went into deepcopy's generic
    machinery): nodes and lists are copied, strings and numbers shared, any
    environment shared, anything else deep-copied.
    """
    if isinstance(value, nodes.Node):
        cls = type(value)
        new = cls.__new__(cls)
        new.__dict__.update({k: _clone(v, env) for k, v in value.__dict__.items()})
        return new
    if isinstance(value, list):
        return [_clone(v, env) for v in value]
    if isinstance(value, (*_ATOMIC, Environment)):
        return value
    if isinstance(value, tuple) and all(isinstance(v, _ATOMIC) for v in value):
        return value
    return copy.deepcopy(value, {id(env): env})


class Document:
    """The HTML part of one notification as a single Jinja AST."""

    def __init__(
        self,
        body: list[nodes.Node],
        deps: list[str],
        env: Environment,
        parts: dict[str, nodes.Block] | None = None,
    ) -> None:
        self.body = body
        self.deps = deps
        self.env = env
        #: the ``subject``/``text``/``sms`` blocks, resolved like the document's
        self.parts = parts or {}
        #: the blocks ``self.<block>()`` renders: name -> its resolved body
        self.self_blocks: dict[str, nodes.Block] = {}


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
        ast = self.load(name)
        if getattr(ast, "nk_file", None) != name:  # the loader may give the same AST again
            ast.nk_file = name  # type: ignore[attr-defined]
            for node in ast.find_all(nodes.Node):
                node.nk_file = name  # type: ignore[attr-defined]  # for explain(): file and line
        return ast

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
        for param, arg in zip(params, call.args, strict=False):
            values[param] = arg
        for keyword in call.kwargs:
            if keyword.key not in params or keyword.key in values:
                raise Unsupported(f"call of macro {macro.name!r} with a bad keyword")
            values[keyword.key] = keyword.value
        defaults = dict(
            zip(params[len(params) - len(macro.defaults) :], macro.defaults, strict=True)
        )
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
            elif isinstance(node, nodes.Import):
                bound[node.target] = bound.get(node.target, 0) + 1
        for stmt in prelude:
            if isinstance(stmt, nodes.Macro):
                candidates[stmt.name] = stmt
            elif (
                isinstance(stmt, nodes.FromImport)
                and not stmt.with_context
                and isinstance(stmt.template, nodes.Const)
                and isinstance(stmt.template.value, str)
            ):
                try:
                    ast = self.parse(stmt.template.value)
                except Unsupported:
                    continue
                defined = {m.name: m for m in ast.body if isinstance(m, nodes.Macro)}
                for item in stmt.names:
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
    for ast in chain:
        for block in ast.find_all(nodes.Block):
            flattener.defs.setdefault(block.name, []).append(block)
    self_names = _self_blocks(chain, flattener.defs)
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
    self_blocks = {name: flattener.block(name, 0, 0) for name in self_names}
    if flattener.macros:
        body = _drop_unused_imports(body, list(self_blocks.values()))
    body = _fold_static(_merge_tag_branches(body))
    parts: dict[str, nodes.Block] = {}
    for part in ("subject", "text", "sms"):
        if part in flattener.defs:
            try:
                parts[part] = flattener.block(part, 0, 0)
            except Unsupported:
                parts.clear()
                break
    document = Document(body, flattener.deps, env, parts)
    document.self_blocks = self_blocks
    return document


def _is_static(body: list[nodes.Node]) -> bool:
    return all(
        isinstance(node, nodes.Output)
        and all(isinstance(child, nodes.TemplateData) for child in node.nodes)
        for node in body
    )


_LONE_START_TAG = re.compile(
    r"""(?P<lead>\s*)<(?P<tag>[A-Za-z][A-Za-z0-9-]*)"""
    r"""(?P<attrs>(?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*>(?P<trail>\s*)\Z"""
)
_QUOTED_ATTR = re.compile(r"""\s+([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'))?""")


def _lone_start_tag(body: list[nodes.Node]) -> tuple[re.Match[str], list[re.Match[str]]] | None:
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    data = body[0].nodes
    if len(data) != 1 or not isinstance(data[0], nodes.TemplateData):
        return None
    match = _LONE_START_TAG.match(data[0].data)
    if match is None or match.group("tag").lower() in VOID_ELEMENTS:
        return None
    return match, list(_QUOTED_ATTR.finditer(match.group("attrs")))


def _merge_tag_branches(body: list[nodes.Node]) -> list[nodes.Node]:
    """``{% if a %}<td class="x">{% else %}<td class="y">{% endif %}`` → one ``<td>``.

    An ``{% if %}`` whose every branch (an ``{% else %}`` included) is the same
    start tag with different attribute values becomes that start tag with each
    differing value chosen by the same tests, ``{{ "x" if a else "y" }}``: a
    finite choice of literals, which the analysis precomputes the style of
    (see :func:`_variant_tag`). Tests with calls or filters are left alone (they
    would be evaluated once per differing attribute).
    """
    out: list[nodes.Node] = []
    for node in body:
        for field in node.fields:
            value = getattr(node, field)
            if isinstance(value, list) and value and isinstance(value[0], nodes.Stmt):
                setattr(node, field, _merge_tag_branches(value))
        merged = _merged_if(node) if isinstance(node, nodes.If) else None
        out.append(node if merged is None else merged)
    return out


def _merged_if(node: nodes.If) -> nodes.Output | None:
    branches = [node.body] + [b.body for b in node.elif_] + [node.else_]
    tests = [node.test] + [b.test for b in node.elif_]
    if not node.else_:
        return None
    for test in tests:
        if next(test.find_all((nodes.Call, nodes.Filter)), None) is not None:
            return None
    tags = [_lone_start_tag(branch) for branch in branches]
    if any(t is None for t in tags):
        return None
    first, first_attrs = tags[0]  # type: ignore[misc]
    for match, attrs in tags[1:]:  # type: ignore[misc]
        if (match.group("lead"), match.group("trail")) != (
            first.group("lead"),
            first.group("trail"),
        ):
            return None
        if match.group("tag").lower() != first.group("tag").lower():
            return None
        if [a.group(1).lower() for a in attrs] != [a.group(1).lower() for a in first_attrs]:
            return None
    pieces: list[nodes.Expr] = [nodes.TemplateData(f"{first.group('lead')}<{first.group('tag')}")]
    for index, attr in enumerate(first_attrs):
        values = [t[1][index].group(2) for t in tags]  # type: ignore[index]
        if all(v == values[0] for v in values):
            pieces.append(nodes.TemplateData(attr.group(0)))
            continue
        if any(v is None for v in values) or len({v[0] for v in values}) != 1:
            return None  # a value missing, or quoted differently
        quote = values[0][0]
        choice: nodes.Expr = _raw(values[-1][1:-1])
        for test, value in zip(reversed(tests), reversed(values[:-1]), strict=True):
            copied = (
                copy.deepcopy(test) if test.environment is None else _clone(test, test.environment)
            )
            choice = nodes.CondExpr(copied, _raw(value[1:-1]), choice)
        pieces.append(nodes.TemplateData(f" {attr.group(1)}={quote}"))
        pieces.append(choice)
        pieces.append(nodes.TemplateData(quote))
    pieces.append(nodes.TemplateData(f">{first.group('trail')}"))
    merged = nodes.Output(pieces)
    merged.lineno = node.lineno
    for copied in merged.find_all(nodes.Node):
        copied.nk_file = getattr(node, "nk_file", None)  # type: ignore[attr-defined]
    return merged


def _raw(value: str) -> nodes.Expr:
    """An attribute value exactly as written (its entities kept): ``notifykit_raw``."""
    return nodes.Filter(nodes.Const(value), "notifykit_raw", [], [], None, None)


def _fold_static(body: list[nodes.Node]) -> list[nodes.Node]:
    """Splice static blocks and includes into the text around them; merge adjacent outputs.

    ``<style>{% include "mail.css" %}</style>`` and
    ``<style>{% block css %}…{% endblock %}</style>`` become one piece of static
    text, which the analysis can edit as a whole. A block or include without
    variables or tags renders the same wherever it is;
    consecutive ``Output`` nodes write one after the other either way.
    """
    out: list[nodes.Node] = []
    for node in body:
        for field in node.fields:
            value = getattr(node, field)
            if isinstance(value, list) and value and isinstance(value[0], nodes.Stmt):
                setattr(node, field, _fold_static(value))
        pieces: list[nodes.Node] = [node]
        if isinstance(node, (nodes.Scope, nodes.Block)) and _is_static(node.body):
            pieces = list(node.body)
        for piece in pieces:
            if isinstance(piece, nodes.Output) and out and isinstance(out[-1], nodes.Output):
                merged = nodes.Output(list(out[-1].nodes) + list(piece.nodes))
                merged.lineno = out[-1].lineno
                out[-1] = merged
            else:
                out.append(piece)
    return out


def _drop_unused_imports(
    body: list[nodes.Node], extra: list[nodes.Node] | None = None
) -> list[nodes.Node]:
    """Remove top-level ``{% from … import %}`` names no expression reads any more.

    After macro calls are expanded in place, importing the macro is wasted work
    per message (a template lookup and a module fetch). ``extra``: more code
    that will be compiled with ``body`` (the blocks ``self.<block>()`` renders).
    """
    everything = nodes.Template(body + list(extra or []))
    used = {n.name for n in everything.find_all(nodes.Name) if n.ctx == "load"}
    kept: list[nodes.Node] = []
    for node in body:
        if isinstance(node, nodes.FromImport):
            names = [n for n in node.names if (n if isinstance(n, str) else n[1]) in used]
            if not names:
                continue
            node.names = names
        kept.append(node)
    return kept


def _self_blocks(chain: list[nodes.Template], defs: dict[str, list[nodes.Block]]) -> list[str]:
    """The blocks the templates render with ``self.<block>()``, e.g. in ``{% if %}`` tests.

    Every other use of ``self`` (``self[name]``, ``self.x`` not called, or
    called with arguments) is :class:`Unsupported`.
    """
    names: list[str] = []
    for ast in chain:
        uses = sum(1 for n in ast.find_all(nodes.Name) if n.name == "self" and n.ctx == "load")
        if not uses:
            continue
        calls = 0
        for call in ast.find_all(nodes.Call):
            target = call.node
            if (
                isinstance(target, nodes.Getattr)
                and isinstance(target.node, nodes.Name)
                and target.node.name == "self"
            ):
                if call.args or call.kwargs or call.dyn_args or call.dyn_kwargs:
                    raise Unsupported(f"self.{target.attr}() is called with arguments")
                if target.attr not in defs:
                    raise Unsupported(f"self.{target.attr}() names no block")
                if target.attr not in names:
                    names.append(target.attr)
                calls += 1
        if calls != uses:
            raise Unsupported("the template uses self other than as self.<block>()")
    return names


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

    def _marker(self, region: int, kind: str, node: nodes.Node | None = None) -> None:
        marker_id = len(self.markers)
        self.markers[marker_id] = (region, kind)
        text = f"{MARK_OPEN}{marker_id}{MARK_CLOSE}"
        self._add(_Piece(kind, text, self._pos, node=node))

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
                self._marker(region, "open", node)
                self._walk(node.body)
                for branch in node.elif_:
                    self._marker(region, "sep", branch)
                    self._walk(branch.body)
                self._marker(region, "sep", node)
                self._walk(node.else_)
                self._marker(region, "close", node)
            elif isinstance(node, nodes.For):
                if node.recursive:
                    raise Unsupported("recursive loops")
                region = self.regions
                self.regions += 1
                self._marker(region, "open", node)
                self._walk(node.body)
                self._marker(region, "sep", node)
                self._walk(node.else_)
                self._marker(region, "close", node)
            elif isinstance(node, (nodes.With, nodes.Scope, nodes.Block)):
                self._walk(node.body)
            elif isinstance(node, _NO_OUTPUT):
                continue
            else:
                raise Unsupported(f"{{% {type(node).__name__.lower()} %}} is not supported")

    def where(self, offset: int) -> str:
        """`` (file, line N)`` for a skeleton offset, or ``""`` when not known."""
        if not self.pieces:
            return ""
        piece = self.piece_at(min(offset, len(self.text) - 1) if self.text else 0)
        node = piece.node if piece.node is not None else piece.owner
        if node is None:
            return ""
        line = getattr(node, "lineno", None)
        if not line:
            return ""
        if piece.kind == "static":
            line += piece.text.count("\n", 0, max(0, offset - piece.start))
        name = getattr(node, "nk_file", None) or getattr(piece.owner, "nk_file", None)
        return f" ({name}, line {line})" if name else f" (line {line})"

    def piece_at(self, offset: int) -> _Piece:
        """The piece holding the skeleton character at ``offset``."""
        return self.pieces[self.piece_index(offset)]

    def piece_index(self, offset: int) -> int:
        """The index in ``pieces`` of :meth:`piece_at`."""
        i = bisect.bisect_right(self._starts, offset) - 1
        while i > 0 and self.pieces[i].start == self.pieces[i].end:
            i -= 1
        return max(i, 0)


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

    def handle_pi(self, data: str) -> None:
        self.handle_decl(data)

    def unknown_decl(self, data: str) -> None:
        self.handle_decl(data)

    def run(self) -> list[_Event]:
        self.feed(self.source)
        self.close()
        for i, event in enumerate(self.events):
            following = self.events[i + 1].start if i + 1 < len(self.events) else len(self.source)
            if event.kind == "end":
                close = self.source.find(">", event.start)
                event.end = following if close < 0 else min(close + 1, following)
            elif event.kind != "start" and event.kind != "startend":
                event.end = following
            event.raw = self.source[event.start : event.end]
        return self.events


_ATTR = re.compile(r"""\s*(?P<name>[^\s"'>/=]+)(?:\s*=\s*(?P<value>'[^']*'|"[^"]*"|[^'"\s>]*))?""")


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
        #: where each variable is: "data" (between tags) or the quote of its attribute
        self.positions: dict[int, str] = {}
        #: every name the document binds ({% set %}, loops, macro parameters…)
        self.stored: set[str] = set()
        self._at = 0  # the skeleton offset being looked at (for the failure's location)
        self._check_prefixes()
        self._walk()

    def where(self, offset: int) -> str:
        """`` (file, line N)`` for a skeleton offset: where the user wrote it."""
        return self.sk.where(offset)

    def _fail(self, reason: str, *, text: bool = True) -> None:
        reason += self.where(self._at)
        if self.html_problem is None:
            self.html_problem = reason
        if text and self.text_problem is None:
            self.text_problem = reason

    def _check_prefixes(self) -> None:
        source = self.sk.text
        for match in _ANY_TOKEN.finditer(source):
            before = source[max(0, match.start() - 64) : match.start()]
            if _UNSAFE_PREFIX.search(before):
                self._at = match.start()
                self._fail("a variable or tag directly follows '<' or an unfinished entity")
                return

    def _walk(self) -> None:
        stack: list[int] = []  # open element ids
        region_stack: list[tuple[int, tuple[int, ...], int | None]] = []
        body_started: set[int | None] = set()
        cdata: str | None = None
        for index, event in enumerate(self.events):
            self._at = event.start
            parent = stack[-1] if stack else None
            if event.kind in ("start", "startend"):
                if _TOKEN_CHARS.search(event.tag) or not _tokens_only_in_quoted_values(event.raw):
                    self._fail(f"a variable or tag inside <{event.tag}> outside a quoted value")
                    continue
                element_id = len(self.elements)
                attrs = event.attrs
                for attr_match in _ATTR.finditer(event.raw, len(event.tag) + 1):
                    value = attr_match.group("value") or ""
                    if value[:1] in ("'", '"'):
                        for out_match in _OUT_TOKEN.finditer(value):
                            self.positions[int(out_match.group(1))] = value[0]
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
                if event.tag not in VOID_ELEMENTS and event.kind == "start":
                    stack.append(element_id)
                if event.tag in ("style", "link") and (region_stack or dynamic):
                    self._fail(
                        "a stylesheet inside {% if %} or {% for %}, or with a variable", text=False
                    )
            elif event.kind == "end":
                cdata = None
                if event.tag in VOID_ELEMENTS:
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
                    if token.startswith(OUT_OPEN):
                        self.positions[int(token[1:-1])] = "data"
                    if token[0] == MARK_OPEN:
                        self._at = event.start + match.start()
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


# ------------------------------------------------------------------ 3/4. editing


def _escape_value(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


_EXTRA_OPEN, _EXTRA_CLOSE = "\ue004", "\ue005"


def _extra_token(index: int) -> str:
    """Where an edit puts an expression (negative: the n-th of ``replace(exprs=)``)."""
    if index >= 0:
        return f"{_EXTRA_OPEN}{index}{_EXTRA_CLOSE}"
    return f"{_EXTRA_OPEN}n{-index}{_EXTRA_CLOSE}"


_SPLIT_TOKENS = re.compile("\ue000(\\d+)\ue001|\ue004(\\d+)\ue005")
TextItem = Union[str, nodes.Expr]  # noqa: UP007 (a runtime alias on 3.10)


class _Editor:
    """Edits of the skeleton, written back into the AST's Output nodes.

    Replacements rewrite HTML (start tags, ``<style>`` elements); insertions
    add text-stream output (between :data:`SPLIT` delimiters); wraps route a
    variable into both streams. Only the order within each stream matters, so
    an insertion that falls inside a replacement moves to its end.
    """

    def __init__(self, skeleton: _Skeleton) -> None:
        self.sk = skeleton
        self.replacements: list[tuple[int, int, str]] = []
        self.insertions: list[tuple[int, list[TextItem]]] = []
        self.wraps: dict[int, str] = {}
        #: variables' positions (see ``_Analysis.positions``): their guard filter
        self.positions: dict[int, str] = {}
        #: expressions that edits insert (placed by :func:`_extra_token`)
        self.extras: list[nodes.Expr] = []

    def replace(
        self, start: int, end: int, text: str, exprs: list[nodes.Expr] | None = None
    ) -> None:
        """Replace skeleton characters ``start:end`` (static text of one output) by ``text``.

        ``exprs``: expressions ``text`` places with :func:`_extra_token`.
        """
        if exprs:
            for index, expr in enumerate(exprs):
                text = text.replace(_extra_token(-1 - index), _extra_token(len(self.extras)))
                self.extras.append(expr)
        i, j = self.sk.piece_index(start), self.sk.piece_index(max(end - 1, start))
        first, last = self.sk.pieces[i], self.sk.pieces[j]
        if first.kind != "static" or last.kind != "static":
            raise Unsupported("an edit would cross a Jinja tag")
        if any(p.owner is not first.owner for p in self.sk.pieces[i : j + 1]):
            raise Unsupported("an edit would cross a Jinja tag")
        self.replacements.append((start, end, text))

    def insert(self, offset: int, items: list[TextItem]) -> None:
        """Text-stream output right after the skeleton character at ``offset - 1``."""
        items = [i for i in items if not (isinstance(i, str) and not i)]
        if items:
            self.insertions.append((offset, items))

    def clear_html(self) -> None:
        self.replacements.clear()
        self.extras.clear()

    def clear_text(self) -> None:
        self.insertions.clear()
        self.wraps.clear()

    def _merged_insertions(self) -> list[tuple[int, list[TextItem]]]:
        """Insertions moved out of replacements, merged where nothing separates them.

        Consecutive insertions in one Output node with no text-stream variable
        between them become one, at the later position: fewer pieces to split
        per message. Static pre-text is squeezed (see :func:`_text.squeeze`).
        """
        moved: list[tuple[int, int, list[TextItem]]] = []
        for seq, (offset, items) in enumerate(self.insertions):
            for start, end, _new in self.replacements:
                if start < offset < end:
                    offset = end
            moved.append((offset, seq, items))
        moved.sort(key=lambda m: (m[0], m[1]))
        barriers = sorted(self.sk.outs[o].start for o in self.wraps)
        merged: list[tuple[int, list[TextItem]]] = []
        last_owner: nodes.Output | None = None
        for offset, _seq, items in moved:
            owner = self.sk.piece_at(offset - 1).owner
            if merged and owner is last_owner:
                previous = merged[-1][0]
                lo = bisect.bisect_left(barriers, previous)
                if lo >= len(barriers) or barriers[lo] >= offset:
                    merged[-1] = (offset, merged[-1][1] + items)
                    continue
            merged.append((offset, list(items)))
            last_owner = owner
        result: list[tuple[int, list[TextItem]]] = []
        for offset, items in merged:
            squeezed: list[TextItem] = []
            for item in items:
                if isinstance(item, str) and squeezed and isinstance(squeezed[-1], str):
                    squeezed[-1] = squeezed[-1] + item
                else:
                    squeezed.append(item)
            squeezed = [
                _text.presolve(_text.squeeze(i)) if isinstance(i, str) else i for i in squeezed
            ]
            squeezed = [i for i in squeezed if not (isinstance(i, str) and not i)]
            if squeezed:
                result.append((offset, squeezed))
        return result

    def apply(self, filters: dict[str, str], default: str | None = None) -> None:
        owners: dict[int, nodes.Output] = {}
        mods: dict[int, list[tuple[int, int, int, int, str, list[TextItem]]]] = {}
        for seq, (start, end, text) in enumerate(self.replacements):
            owner = self.sk.piece_at(start).owner
            assert owner is not None
            owners[id(owner)] = owner
            mods.setdefault(id(owner), []).append((start, 1, seq, end, text, []))
        merged = self._merged_insertions()
        prefixes: dict[int, str] = {}
        if self.wraps:
            # A static insertion right before a variable's text (in text order)
            # travels inside that variable's filter call: fewer pieces to split.
            tokens = sorted((self.sk.outs[o].start, o) for o in self.wraps)
            starts = [t[0] for t in tokens]
            kept: list[tuple[int, list[TextItem]]] = []
            for offset, items in merged:
                i = bisect.bisect_left(starts, offset)
                if (
                    i < len(tokens)
                    and all(isinstance(item, str) for item in items)
                    and self.sk.outs[tokens[i][1]].owner is self.sk.piece_at(offset - 1).owner
                    and tokens[i][1] not in prefixes
                ):
                    prefixes[tokens[i][1]] = "".join(str(item) for item in items)
                else:
                    kept.append((offset, items))
            merged = kept
        for seq, (offset, items) in enumerate(merged):
            owner = self.sk.piece_at(offset - 1).owner
            assert owner is not None
            owners[id(owner)] = owner
            mods.setdefault(id(owner), []).append((offset, 0, seq, offset, "", items))
        wrapped = self.sk.outs if default is not None else set(self.wraps) | set(self.positions)
        wrapped_owners = {id(self.sk.outs[o].owner): self.sk.outs[o].owner for o in wrapped}
        for key, owner in wrapped_owners.items():
            assert owner is not None
            owners[key] = owner
        results: dict[int, list[nodes.Node]] = {}
        by_owner: dict[int, list[_Piece]] = {}
        for piece in self.sk.pieces:
            if piece.owner is not None:
                by_owner.setdefault(id(piece.owner), []).append(piece)
        for key in owners:
            pieces = by_owner[key]
            base = pieces[0].start
            text = "".join(p.text for p in pieces)
            exprs: dict[int, nodes.Node | None] = {
                int(p.text[1:-1]): p.node for p in pieces if p.kind == "out"
            }
            extras = self.extras
            ordered = sorted(mods.get(key, []), key=lambda m: (m[0], m[1], m[2]), reverse=True)
            last_start = len(text) + base + 1
            for start, kind, _seq, end, new, items in ordered:
                if kind == 1:
                    if end > last_start:
                        raise Unsupported("overlapping edits")
                    last_start = start
                    text = text[: start - base] + new + text[end - base :]
                else:
                    parts = [SPLIT]
                    for item in items:
                        if isinstance(item, str):
                            parts.append(item)
                        else:
                            parts.append(f"{_EXTRA_OPEN}{len(extras)}{_EXTRA_CLOSE}")
                            extras.append(item)
                    parts.append(SPLIT)
                    text = text[: start - base] + "".join(parts) + text[start - base :]
            new_nodes: list[nodes.Node] = []
            pos = 0
            for match in _SPLIT_TOKENS.finditer(text):
                if match.start() > pos:
                    new_nodes.append(nodes.TemplateData(text[pos : match.start()]))
                if match.group(1) is not None:
                    out_id = int(match.group(1))
                    node = exprs.pop(out_id)
                    assert isinstance(node, nodes.Expr)
                    mode = self.wraps.get(out_id)
                    if mode is not None:
                        prefix = [nodes.Const(prefixes[out_id])] if out_id in prefixes else []
                        node = nodes.Filter(node, filters[mode], prefix, [], None, None)
                    elif out_id in self.positions:
                        suffix = _POSITIONS[self.positions[out_id]]
                        node = nodes.Filter(node, f"notifykit_at_{suffix}", [], [], None, None)
                    elif default is not None:
                        node = nodes.Filter(node, default, [], [], None, None)
                    new_nodes.append(node)
                else:
                    new_nodes.append(extras[int(match.group(2))])
                pos = match.end()
            if pos < len(text):
                new_nodes.append(nodes.TemplateData(text[pos:]))
            if exprs:
                raise Unsupported("an edit would drop a variable")
            results[key] = new_nodes
        for key, new_nodes in results.items():
            owners[key].nodes = new_nodes  # type: ignore[assignment]


def _start_tag(raw: str, attrs: list[tuple[str, str]]) -> str:
    name = re.match(r"<([^\s/>]+)", raw)
    assert name is not None
    closing = "/>" if raw.endswith("/>") else ">"
    body = "".join(f' {k}="{_escape_value(v)}"' for k, v in attrs)
    return f"<{name.group(1)}{body}{closing}"


def _expand_stylesheets(body: list[nodes.Node], load_css: Callable[[str], str] | None) -> bool:
    """Replace static links to local stylesheets by their CSS; whether there were any.

    With ``load_css=None`` only report whether there are links.
    """
    skeleton = _Skeleton(body)
    links = find_local_links(skeleton.text)
    if not links or load_css is None:
        return bool(links)
    editor = _Editor(skeleton)
    for start, end, attrs in links:
        if _TOKEN_CHARS.search(skeleton.text[start:end]):
            raise Unsupported("a stylesheet link with a variable in it")
        editor.replace(start, end, style_for_link(attrs, load_css(attrs.get("href") or "")))
    editor.apply({})
    return True


def _plan_html(analysis: _Analysis, engine: Engine, editor: _Editor) -> None:
    """Step 3 and 4 for the HTML stream: checks, engine run, replacements."""
    if analysis.html_problem:
        raise Unsupported(analysis.html_problem)
    skeleton = analysis.sk
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
    dynamic_names: set[str] = set()
    for names in analysis.dynamic_attrs.values():
        dynamic_names |= names
    if MARK in facts.attributes:
        raise Unsupported(f"a selector reads {MARK}")
    choices: dict[int, list[str]] = {}  # variable -> the values it can render
    for element_id, names in analysis.dynamic_attrs.items():
        for key in sorted(names & facts.attributes):
            value = next((v for k, v in elements[element_id].attrs if k == key), None) or ""
            found = _choice_tokens(value, skeleton)
            if found is None:
                raise Unsupported(
                    f"a selector reads the attribute {key!r}, which holds a variable"
                    + analysis.where(analysis.element_events[element_id].start)
                )
            choices.update(found)
    combos = list(itertools.product(*choices.values()))
    if len(combos) > _MAX_VARIANTS:
        raise Unsupported(
            f"{len(combos)} combinations of classes chosen by Jinja (at most {_MAX_VARIANTS})"
        )
    if facts.content_dependent and (skeleton.outs or skeleton.regions):
        raise Unsupported("a selector depends on content (:empty, :has…)")
    dynamic_siblings = {i for i, e in elements.items() if e.parent in analysis.dynamic_parents}
    if facts.structural and dynamic_siblings:
        conflict = structural_conflict(elements, facts.structural, dynamic_siblings)
        if conflict:
            raise Unsupported(f"a structural selector ({conflict}) meets a loop or condition")
    if engine.name == "premailer":
        for element_id, names in analysis.dynamic_attrs.items():
            if "style" in names and elements[element_id].tag == "img":
                raise Unsupported("an <img> with a variable in its style")
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
    outcomes: list[SkeletonOutcome] = []
    for combo in combos:
        chosen = dict(zip(choices, combo, strict=True))
        text = _OUT_TOKEN.sub(
            lambda m, c=chosen: c.get(int(m.group(1)), m.group(0)),  # type: ignore[misc]
            engine_input,
        )
        result = engine.skeleton(text, elements)
        if result.problem:
            problem, at = _inline.problem_at(result.problem)
            located = None if at is None else analysis.element_events.get(at)
            raise Unsupported(problem + ("" if located is None else analysis.where(located.start)))
        outcomes.append(result)
    outcome = outcomes[0]
    for other in outcomes[1:]:
        if (other.styles, other.head_style, other.drops_tail, other.tbody) != (
            outcome.styles,
            outcome.head_style,
            outcome.drops_tail,
            outcome.tbody,
        ):
            raise Unsupported("a class chosen by Jinja changes what stays in <style>")
    if outcome.head_style is not None:
        # inserted first (a zero-length edit), so that it composes with an edit
        # of the start tag it follows or of the element it precedes
        start, end, after_edge = _head_insertion(analysis)
        at = end if after_edge else start
        editor.replace(at, at, f"<style>{outcome.head_style}</style>")
    handled: set[int] = set()
    for element_id, new_text in outcome.styles.items():
        start_event = analysis.element_events[element_id]
        end_event = analysis.end_events[element_id]
        end = end_event.start + len(end_event.raw.split(">", 1)[0]) + 1
        handled.add(element_id)
        if new_text is None:
            if outcome.drops_tail:
                following = analysis.events.index(end_event) + 1
                events = analysis.events
                while following < len(events) and events[following].kind == "data":
                    if _TOKEN_CHARS.search(events[following].raw):
                        raise Unsupported("a variable right after a <style> element")
                    end = events[following].end
                    following += 1
            editor.replace(start_event.start, end, "")
        else:
            attrs = outcome.after.get(element_id)
            tag = start_event.raw if attrs is None else _start_tag(start_event.raw, attrs)
            editor.replace(start_event.start, end, f"{tag}{new_text}</style>")
    for table_id, tbody_attrs in outcome.tbody.items():
        _write_implied_tbody(analysis, editor, table_id, tbody_attrs)
    for element_id in outcome.after:
        if element_id in handled:
            continue
        dynamic = analysis.dynamic_attrs.get(element_id, set())
        original = {k: v or "" for k, v in elements[element_id].attrs if k in dynamic}
        afters: list[list[tuple[str, str]]] = []
        changed = False
        for result in outcomes:
            before, after = result.before[element_id], result.after[element_id]
            changed = changed or after != before
            old, new = dict(before), dict(after)
            for key in dynamic:
                if old.get(key) != new.get(key):
                    raise Unsupported(
                        f"the engine rewrites the attribute {key!r}, which holds a variable"
                    )
            # the chosen values back to the template's own (with its variables)
            afters.append([(k, original.get(k, v)) for k, v in after])
        if not changed:
            continue
        event = analysis.element_events[element_id]
        if all(a == afters[0] for a in afters[1:]):
            editor.replace(event.start, event.end, _start_tag(event.raw, afters[0]))
            continue
        tag, expr = _variant_tag(analysis, element_id, choices, combos, afters)
        editor.replace(event.start, event.end, tag, [expr])


def _write_implied_tbody(
    analysis: _Analysis, editor: _Editor, table_id: int, attrs: list[tuple[str, str]]
) -> None:
    """Write out the ``<tbody>`` css-inline's parser adds to a table, with its style.

    Per message, css-inline parses ``<table><tr>…`` as ``<table><tbody><tr>…``
    and a ``*`` rule styles that ``<tbody>``. The compiled template writes the
    same element: ``<tbody style=…>`` right before the first row and
    ``</tbody>`` right before ``</table>``, when every child of the table is a row
    and no ``{% if %}``/``{% for %}`` boundary lies between the table's edges
    and its rows (so the rows stay together in one ``<tbody>``).
    """
    table = analysis.elements[table_id]
    rows = [e for e in analysis.elements.values() if e.parent == table_id]
    source = analysis.sk.text
    where = analysis.where(analysis.element_events[table_id].start)
    problem = Unsupported(f"css-inline styles the <tbody> its parser adds to <table>{where}")
    if table.tag != "table" or not rows or any(r.tag != "tr" for r in rows):
        raise problem
    first, last = analysis.element_events[rows[0].id], analysis.end_events.get(rows[-1].id)
    table_end = analysis.end_events.get(table_id)
    if last is None or table_end is None:
        raise problem
    table_start = analysis.element_events[table_id]
    last_close = last.start + len(last.raw.split(">", 1)[0]) + 1
    if MARK_OPEN in source[table_start.end : first.start] + source[last_close : table_end.start]:
        raise problem
    if _TOKEN_CHARS.search(source[table_start.end : first.start]):
        raise problem
    if _TOKEN_CHARS.search(source[last_close : table_end.start]):
        raise problem
    editor.replace(first.start, first.start, _start_tag("<tbody>", attrs))
    # the parser keeps the whitespace after the last row inside the <tbody>
    editor.replace(table_end.start, table_end.start, "</tbody>")


#: At most this many engine runs over one skeleton (combinations of chosen classes).
_MAX_VARIANTS = 32


def _choices(node: nodes.Node) -> list[str] | None:
    """The HTML each value of a finite choice of literals renders as, or ``None``.

    A choice: a string literal, ``a if test else b`` of choices (``test``
    without calls, so evaluating it twice gives the same), or
    ``loop.cycle("a", "b")``.
    """
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return [str(escape(node.value))]
    if isinstance(node, nodes.Filter) and node.name == "notifykit_raw":
        inner = node.node
        if isinstance(inner, nodes.Const) and isinstance(inner.value, str):
            return [inner.value]
        return None
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        if next(node.test.find_all((nodes.Call, nodes.Filter)), None) is not None:
            return None
        first, second = _choices(node.expr1), _choices(node.expr2)
        if first is None or second is None:
            return None
        return list(dict.fromkeys(first + second))
    if _is_loop_cycle(node):
        assert isinstance(node, nodes.Call)
        return list(dict.fromkeys(str(escape(a.value)) for a in node.args))  # type: ignore[attr-defined]
    return None


def _map_choices(node: nodes.Node, leaf: Callable[[str], nodes.Expr]) -> nodes.Expr:
    """``node`` (a choice) with each literal replaced by ``leaf(its HTML)``."""
    if isinstance(node, nodes.Const):
        return leaf(str(escape(node.value)))
    if isinstance(node, nodes.Filter):
        assert isinstance(node.node, nodes.Const)
        return leaf(node.node.value)
    if isinstance(node, nodes.CondExpr):
        assert node.expr2 is not None
        test = (
            copy.deepcopy(node.test)
            if node.test.environment is None
            else _clone(node.test, node.test.environment)
        )
        return nodes.CondExpr(test, _map_choices(node.expr1, leaf), _map_choices(node.expr2, leaf))
    assert isinstance(node, nodes.Call)
    callee = (
        copy.deepcopy(node.node)
        if node.node.environment is None
        else _clone(node.node, node.node.environment)
    )
    args: list[nodes.Expr] = [leaf(str(escape(a.value))) for a in node.args]  # type: ignore[attr-defined]
    return nodes.Call(callee, args, [], None, None)


def _choice_tokens(value: str, skeleton: _Skeleton) -> dict[int, list[str]] | None:
    """The choice variables of an attribute value, or ``None`` if it holds anything else."""
    if MARK_OPEN in value:
        return None
    found: dict[int, list[str]] = {}
    for match in _OUT_TOKEN.finditer(value):
        out_id = int(match.group(1))
        options = _choices(skeleton.outs[out_id].node)  # type: ignore[arg-type]
        if options is None:
            return None
        found[out_id] = options
    return found


def _variant_tag(
    analysis: _Analysis,
    element_id: int,
    choices: dict[int, list[str]],
    combos: list[tuple[str, ...]],
    afters: list[list[tuple[str, str]]],
) -> tuple[str, nodes.Expr]:
    """The start tag of an element whose inlined attributes depend on its own chosen class.

    Attributes the same in every variant are written out; the others are one
    expression that makes the same choice as the element's variable and writes
    that variant's attributes. Styles that depend on another element's choice
    (``.sale td``) are :class:`Unsupported`.
    """
    event = analysis.element_events[element_id]
    tag_name = analysis.elements[element_id].tag
    problem = Unsupported(
        f"the inlined style of <{tag_name}> depends on more than 3 classes chosen by Jinja, "
        "or on one chosen in another loop or scope" + analysis.where(event.start)
    )
    tokens = list(choices)
    usable = [i for i, t in enumerate(tokens) if _same_choice_here(analysis, t, event.start)]
    found: tuple[tuple[int, ...], dict[tuple[str, ...], list[tuple[str, str]]]] | None = None
    for size in (1, 2, 3):
        for subset in itertools.combinations(usable, size):
            table: dict[tuple[str, ...], list[tuple[str, str]]] = {}
            if all(
                table.setdefault(tuple(combo[i] for i in subset), after) == after
                for combo, after in zip(combos, afters, strict=True)
            ):
                found = (subset, table)
                break
        if found is not None:
            break
    if found is None:
        raise problem
    subset, table = found
    variants = list(table.values())
    common = [item for item in variants[0] if all(item in v for v in variants[1:])]
    varying = {
        key: "".join(f' {k}="{_escape_value(v)}"' for k, v in attrs if (k, v) not in common)
        for key, attrs in table.items()
    }

    def build(level: int, prefix: tuple[str, ...]) -> nodes.Expr:
        if level == len(subset):
            return nodes.Const(varying[prefix])
        node = analysis.sk.outs[tokens[subset[level]]].node
        assert node is not None
        return _map_choices(node, lambda value: build(level + 1, (*prefix, value)))

    expr = nodes.Filter(build(0, ()), "notifykit_raw", [], [], None, None)
    start = _start_tag(event.raw, common)
    closing = "/>" if start.endswith("/>") else ">"
    return start[: -len(closing)] + _extra_token(-1) + closing, expr


def _same_choice_here(analysis: _Analysis, token: int, offset: int) -> bool:
    """Whether variable ``token``'s choice, evaluated again at ``offset``, is the same.

    True in the variable's own start tag; and at a later element when no
    ``{% if %}``/``{% for %}`` boundary lies between them (the same loop
    iteration, so the loop variables are the same) and the document never
    rebinds a name the choice reads otherwise (``{% set %}``, ``{% with %}``,
    macro parameters).
    """
    piece = analysis.sk.outs[token]
    if offset <= piece.start < analysis.sk.text.find(">", offset):  # its own start tag
        return True
    if piece.start > offset:
        return False
    if MARK_OPEN in analysis.sk.text[piece.start : offset]:
        return False
    node = piece.node
    assert node is not None
    read = {n.name for n in node.find_all(nodes.Name) if n.ctx == "load"}
    if isinstance(node, nodes.Name):
        read.add(node.name)
    return not (read & analysis.stored)


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


def _plan_text(analysis: _Analysis, editor: _Editor) -> str:
    """Phase 1 ahead of time: insertions and wraps for the text stream.

    Returns what the end of the document writes (open elements closing).
    """
    if analysis.text_problem:
        raise Unsupported(analysis.text_problem)
    skeleton = analysis.sk
    source = skeleton.text
    state = _text.TextState()
    regions: list[tuple[tuple[tuple[str, str, bool], ...], int]] = []
    for event in analysis.events:
        if event.kind in ("start", "startend"):
            for key, value in event.attrs:
                if key in ("style", "hidden") and value and _TOKEN_CHARS.search(value):
                    raise Unsupported(f"a variable in the {key!r} attribute")
            items: list[TextItem] = []
            for item in state.start(event.tag, event.attrs):
                if isinstance(item, str):
                    items.append(item)
                    continue
                if MARK_OPEN in item.value:
                    raise Unsupported("{% if %} or {% for %} inside a link's href")
                for part in _split_out_tokens(item.value):
                    if isinstance(part, str):
                        items.append(_text.transform(part, "attr"))
                    else:
                        node = skeleton.outs[part].node
                        assert isinstance(node, nodes.Expr)
                        copied = (
                            copy.deepcopy(node)
                            if node.environment is None
                            else _clone(node, node.environment)
                        )
                        items.append(
                            nodes.Filter(copied, "notifykit_text_attr", [], [], None, None)
                        )
            if event.kind == "startend" and event.tag not in VOID_ELEMENTS:
                items.append(state.end(event.tag))
            editor.insert(event.end, items)
        elif event.kind == "end":
            editor.insert(event.end, [state.end(event.tag)])
        elif event.kind == "data":
            mode = state.mode
            pos = event.start
            for match in _ANY_TOKEN.finditer(event.raw):
                start = event.start + match.start()
                if start > pos:
                    static = html_module.unescape(source[pos:start])
                    editor.insert(start, [_text.transform(static, mode)])
                token = match.group(0)
                if token[0] == OUT_OPEN:
                    if mode != "drop":
                        editor.wraps[int(token[1:-1])] = mode
                else:
                    region, kind = skeleton.markers[int(token[1:-1])]
                    if kind == "open":
                        regions.append((state.snapshot(), region))
                    elif not regions or regions[-1][0] != state.snapshot():
                        raise Unsupported("a loop body or a branch changes the text layout")
                    elif kind == "close":
                        regions.pop()
                pos = event.start + match.end()
            if pos < event.end:
                static = html_module.unescape(source[pos : event.end])
                editor.insert(event.end, [_text.transform(static, mode)])
    return state.close_all()


def _split_out_tokens(value: str) -> Iterator[str | int]:
    pos = 0
    for match in _OUT_TOKEN.finditer(value):
        if match.start() > pos:
            yield value[pos : match.start()]
        yield int(match.group(1))
        pos = match.end()
    if pos < len(value):
        yield value[pos:]


class Compiled:
    """A compiled template and what it does ahead of time.

    Rendering it yields the HTML stream — inlined when ``html_inlined`` — and,
    when ``text_included``, the text stream's phase 1 between :data:`SPLIT`
    delimiters.
    """

    def __init__(
        self,
        template: Template,
        html_inlined: bool,
        text_included: bool,
        html_reason: str | None,
        text_reason: str | None,
        parts: tuple[str, ...] = (),
    ) -> None:
        self.template = template
        self.html_inlined = html_inlined
        self.text_included = text_included
        self.html_reason = html_reason
        self.text_reason = text_reason
        #: block parts rendered by the same pass, after :data:`PART_SPLIT`
        self.parts = parts
        #: whether the HTML links local stylesheets (to expand per message)
        self.local_links = True
        #: messages the plan does not hold for (a translation that holds a tag)
        self.caveat: str | None = None
        #: whether ``template`` was compiled without autoescape (see :func:`_escape_free`)
        self.plain = False
        #: the code object of ``template`` (stored by the compile cache)
        self.code: CodeType | None = None


def compile_document(
    document: Document,
    engine: Engine | None,
    env: Environment,
    name: str,
    load_css: Callable[[str], str],
    plain_env: Environment | None = None,
    *,
    derive_text: bool = True,
) -> Compiled:
    """Compile a document: CSS inlined and/or text phase 1 done ahead of time.

    Raises :class:`Unsupported` when neither can be done. The document is
    edited in place (it is built for this one call; copying it cost a few
    milliseconds of a template's first render).
    """
    body: list[nodes.Node] = document.body
    caveat = _translation_caveat(body)
    html_reason: str | None = None
    links = _expand_stylesheets(body, None)
    if engine is None:
        html_reason = "no inliner"
    else:
        try:
            _expand_stylesheets(body, load_css)
        except Unsupported as exc:
            html_reason = str(exc)
    skeleton = _Skeleton(body)
    if SPLIT in skeleton.text:
        raise Unsupported("the template contains the control character \\x01")
    analysis = _Analysis(skeleton)
    if engine is not None and html_reason is None and _repair.worth_trying(analysis):
        parse = _repair.engine_parser(engine)
        if _repair.repair_static_markup(skeleton, analysis.events, parse):
            skeleton = _Skeleton(body)  # the static markup was repaired: analyse that
            analysis = _Analysis(skeleton)
    loop_targets: set[int] = set()
    names: list[nodes.Name] = []
    for node in nodes.Template(body).find_all((nodes.For, nodes.Name)):  # one walk, in order
        if isinstance(node, nodes.For):
            loop_targets.add(id(node.target))
            loop_targets.update(id(n) for n in node.target.find_all(nodes.Name))
        elif isinstance(node, nodes.Name):
            names.append(node)
    analysis.stored = {
        n.name for n in names if n.ctx in ("store", "param") and id(n) not in loop_targets
    }
    editor = _Editor(skeleton)
    editor.positions = analysis.positions
    if engine is not None and html_reason is None:
        try:
            _plan_html(analysis, engine, editor)
        except Unsupported as exc:
            html_reason = str(exc)
            editor.clear_html()
    text_reason: str | None = None
    closing = ""
    if not derive_text:
        text_reason = "the template has a text block"
    else:
        try:
            closing = _plan_text(analysis, editor)
        except Unsupported as exc:
            text_reason = str(exc)
            editor.clear_text()
    if html_reason is not None and text_reason is not None and derive_text:
        raise Unsupported(html_reason)
    filters = {m: f"notifykit_both_{m}" for m in ("normal", "pre")}
    plain = plain_env is not None and _escape_free(body, env)
    editor.apply(filters, "notifykit_html" if plain else None)
    if text_reason is None:
        body.append(nodes.Output([nodes.TemplateData(f"{SPLIT}{closing}{SPLIT}")]))
    extra: tuple[str, ...] = ()
    if plain and document.parts and _parts_mergeable(body, document.parts):
        for part_block in document.parts.values():
            block = _clone(part_block, document.env)
            for output in block.find_all(nodes.Output):
                output.nodes = [
                    n
                    if isinstance(n, nodes.TemplateData)
                    else nodes.Filter(n, "notifykit_plain", [], [], None, None)
                    for n in output.nodes
                ]
            body.append(nodes.Output([nodes.TemplateData(PART_SPLIT)]))
            body.append(block)
        extra = tuple(document.parts)
    if document.self_blocks:
        body.append(_unreached_blocks(document))
    template, code = _compile_code(
        plain_env if plain and plain_env else env, body, f"{name}#compiled"
    )
    compiled = Compiled(
        template, html_reason is None, text_reason is None, html_reason, text_reason, extra
    )
    compiled.local_links = links
    compiled.caveat = caveat
    compiled.plain = bool(plain and plain_env)
    compiled.code = code
    return compiled


_GETTEXT = frozenset(["_", "gettext", "ngettext", "pgettext", "npgettext"])


def _translation_caveat(body: list[nodes.Node]) -> str | None:
    """What :meth:`explain` must add when the template prints translations.

    A translation is markup the template itself produces (``_()`` and
    ``{% trans %}`` return ``Markup``): quotes in it are harmless, but a tag in
    it adds an element the analysis never saw, so such a message is inlined
    per message — which the plan then says.
    """
    for output in nodes.Template(body).find_all(nodes.Output):
        for call in output.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in _GETTEXT:
                where = ""
                if getattr(call, "nk_file", None):
                    where = f" ({call.nk_file}, line {call.lineno})"  # type: ignore[attr-defined]
                return (
                    f"a message in which a translation{where} holds a tag or an unfinished "
                    "entity is inlined per message"
                )
    return None


def _unreached_blocks(document: Document) -> nodes.Node:
    """``{% if false %}`` around the blocks ``self.<block>()`` renders, under their own names.

    They are the template's own blocks (layout, ``super()``, includes and macros
    resolved as in the document), not edited by the analysis: ``self.footer()``
    gives what it gives per message. Jinja makes each a block function of the
    compiled template; the ``if`` is never true, so they never render in place.
    Their variables skip the compiled path's markup guard (the value is only
    ever tested or trimmed here, never part of the document).
    """
    blocks: list[nodes.Node] = []
    for name, resolved in document.self_blocks.items():
        copied = _clone(resolved, document.env)
        for output in copied.find_all(nodes.Output):
            output.nodes = [
                n
                if isinstance(n, nodes.TemplateData)
                else nodes.Filter(n, "notifykit_unguarded", [], [], None, None)
                for n in output.nodes
            ]
        block = nodes.Block(name, [copied], False, False)
        blocks.append(block)
    return nodes.If(nodes.Const(False), blocks, [], [])


def _unguarded(value: Any) -> _Ours:
    """Autoescaping of one value, without :func:`html_guard` (see :func:`_unreached_blocks`)."""
    if hasattr(value, "__html__"):
        return _Ours(value.__html__())
    return _Ours(_escape_str(value if type(value) is str else str(value)))


def _parts_mergeable(body: list[nodes.Node], parts: dict[str, nodes.Block]) -> bool:
    """Whether the subject/text/sms blocks can render inside the compiled template.

    Rendered alone they see the context and the top-level statements of the
    notification's file; inside the document they would also see the
    layout's. Merge only when no name they read is bound at the top level,
    and when their static text cannot be confused with the part separator.
    """
    bound: set[str] = set()
    for node in body:
        if isinstance(node, nodes.Macro):
            bound.add(node.name)
        elif isinstance(node, nodes.Import):
            bound.add(node.target)
        elif isinstance(node, nodes.FromImport):
            bound |= {n if isinstance(n, str) else n[1] for n in node.names}
        elif isinstance(node, (nodes.Assign, nodes.AssignBlock)):
            bound |= {n.name for n in node.find_all(nodes.Name) if n.ctx == "store"}
    for block in parts.values():
        if any(n.name in bound for n in block.find_all(nodes.Name) if n.ctx == "load"):
            return False
        if any(SPLIT in d.data for d in block.find_all(nodes.TemplateData)):
            return False
        if next(block.find_all(_EVAL_CONTEXT_NODES), None) is not None:
            return False
    return True


def _compile(
    env: Environment, body: list[nodes.Node], name: str, filename: str | None = None
) -> Template:
    return _compile_code(env, body, name, filename)[0]


def _compile_code(
    env: Environment, body: list[nodes.Node], name: str, filename: str | None = None
) -> tuple[Template, CodeType]:
    """A template from an AST, and its code object (what the compile cache stores)."""
    template = nodes.Template(body, lineno=1)
    template.set_environment(env)
    code = env.compile(template, name=name, filename=filename)
    return env.template_class.from_code(env, code, env.globals), code
