"""What keeps templates in their place: the confined loader and the limited sandbox.

- :class:`ConfinedFileSystemLoader` is the loader of
  ``TemplateRenderer.from_directory``: a template file (or a stylesheet linked
  from one) whose real path, symlinks resolved, is outside the directory is a
  :class:`~notifykit.errors.TemplateError`, not a file read. A symlink that
  stays inside the directory is fine.
"""

from __future__ import annotations

import contextvars
import os
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, TypeVar, cast

import attrs
import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from notifykit.errors import ConfigurationError, TemplateError
from notifykit.templates._inline import Engine, NaiveElement, SkeletonOutcome

__all__ = ["ConfinedFileSystemLoader", "LimitedSandbox", "TemplateLimits"]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class ConfinedFileSystemLoader(jinja2.FileSystemLoader):
    """A :class:`jinja2.FileSystemLoader` that never reads outside its directories.

    Jinja already refuses ``..`` in a template name; this also refuses a file
    that is a symlink (or sits under a symlinked directory) leading out of the
    search path it was found in, checked before the file is opened.
    """

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for searchpath in self.searchpath:
            filename = posixpath.join(searchpath, *pieces)
            if os.path.isfile(filename):
                real = os.path.realpath(filename)
                root = os.path.realpath(searchpath)
                if not _inside(real, root):
                    raise TemplateError(
                        f"template {template!r} is a symlink to a file outside the template "
                        f"directory {searchpath!r}; refused (pass follow_symlinks=True to "
                        "TemplateRenderer.from_directory to allow it)",
                        template=template,
                    )
                break
        return super().get_source(environment, template)


# ============================================================================ limits


@attrs.frozen
class TemplateLimits:
    """The limits of a sandboxed render (``TemplateRenderer(sandboxed=True)``).

    Every rendering pass (the HTML part; the subject, text and SMS blocks; an
    ``{% include %}`` shares its includer's) has its own budget. Going over any
    limit ends the render in a :class:`~notifykit.errors.TemplateError`.

    Attributes:
        max_output: the most characters the pass may produce: its output, and
            any one string, list or other value an operator, filter or method
            call returns (checked *before* ``*``, ``+``, ``center()`` and the
            like build it). Text a macro or ``{% set %}`` block builds and then
            outputs counts twice. Default: 1,000,000 (Gmail clips a message at
            102 KB, so a real e-mail stays far below).
        max_operations: the most loop iterations, calls, filter calls,
            attribute and item look-ups and output pieces the pass may do.
            Default: 2,000,000 (a 1,000-row order table with 20 look-ups per
            row is 20,000; 2,000,000 run in well under a second).
        timeout: seconds of wall-clock time a pass may take, checked after
            every call and filter and at every 256th other operation.
            Default: 2.0.
        max_css_rules: the most CSS rules (counted as ``}`` in ``<style>``
            elements and linked local stylesheets) a document may ask the
            inliner to apply. premailer costs about a millisecond per rule.
            Default: 1,000.
        max_css_work: the most rules x elements (counted as ``<`` followed
            by a letter) a document may ask the inliner to match. Default:
            2,000,000 (a few seconds of premailer at most; 10,000 rules on
            2,000 elements, minutes of work, is 20,000,000).
    """

    max_output: int = 1_000_000
    max_operations: int = 2_000_000
    timeout: float = 2.0
    max_css_rules: int = 1_000
    max_css_work: int = 2_000_000

    def __attrs_post_init__(self) -> None:
        values = (
            self.max_output,
            self.max_operations,
            self.timeout,
            self.max_css_rules,
            self.max_css_work,
        )
        if not all(value > 0 for value in values):
            raise ConfigurationError("TemplateLimits: every limit must be positive")


_KEY = "__notifykit_budget__"


class _Budget:
    """The counters of one rendering pass. Nothing public: the sandbox hides ``_`` names."""

    __slots__ = ("_deadline", "_limits", "_max_output", "_operations", "_output")

    def __init__(self, limits: TemplateLimits) -> None:
        self._limits = limits
        self._max_output = limits.max_output
        self._operations = 0
        self._output = 0
        self._deadline = time.monotonic() + limits.timeout

    def _tick(self) -> None:
        self._operations += 1
        if not self._operations & 255:
            self._check_work()

    def _check_work(self) -> None:
        """The operation count and the clock (every 256 operations)."""
        if self._operations > self._limits.max_operations:
            raise SecurityError(
                f"the template did more than {self._limits.max_operations:,} operations "
                "(loop iterations, calls, look-ups); see TemplateLimits"
            )
        if time.monotonic() > self._deadline:
            raise SecurityError(
                f"the template took longer than {self._limits.timeout:g} s to render; "
                "see TemplateLimits"
            )

    def _check_size(self, size: int) -> None:
        if size > self._limits.max_output:
            raise SecurityError(
                f"the template would build a value of {size:,} characters or items, over the "
                f"limit of {self._limits.max_output:,}; see TemplateLimits"
            )

    def _add_output(self, size: int) -> None:
        self._output += size
        if self._output > self._limits.max_output:
            raise SecurityError(
                f"the template produced more than {self._limits.max_output:,} characters; "
                "see TemplateLimits"
            )


# The budget of the pass that is calling a macro or a function right now. A
# macro runs with the context of the module it was imported from, which Jinja
# caches for the life of the process: its own budget would add up across
# renders. Calls go through LimitedSandbox.call, which makes the caller's
# budget the active one for the duration of the call.
_active: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "notifykit_template_budget", default=None
)


def _budget(context: Context) -> _Budget:
    active = _active.get()
    if active is not None:
        return active
    budget = getattr(context, "nk_budget", None)
    if not isinstance(budget, _Budget):  # pragma: no cover - set by _LimitedContext
        raise SecurityError("the render budget is missing")
    return budget


class _LimitedContext(Context):
    """A context that carries its pass's budget (shared with the contexts it makes)."""

    def __init__(
        self,
        environment: jinja2.Environment,
        parent: dict[str, Any],
        name: str | None,
        blocks: dict[str, Callable[[Context], Iterator[str]]],
        globals: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(environment, parent, name, blocks, globals)
        budget = self.parent.get(_KEY)
        if budget is None:
            limits = getattr(environment, "limits", None) or TemplateLimits()
            budget = self.parent[_KEY] = _Budget(limits)
        elif not isinstance(budget, _Budget):
            raise SecurityError(f"{_KEY} is a reserved name")
        # Templates cannot reach the context object, so this cannot be replaced.
        self.nk_budget = budget


_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
# Conversion specifiers whose width or precision decide the size of the result.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, _SIZED) else 0


def _deep_size(value: Any, limit: int) -> int:
    """Characters and items in ``value``, every occurrence counted, up to about ``limit``.

    ``[big] * 1000`` holds one string a thousand times: its shallow size is
    1,000, but its text (``|join``, ``|tojson``, ``{{ it }}``) is a thousand
    copies. This is the size that matters; counting stops once past ``limit``.
    """
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, (list, tuple, set, frozenset)):
        return 0
    total = len(value)
    for item in value:
        if total > limit:
            break
        if isinstance(item, _SIZED):
            total += _deep_size(item, limit - total)
    return total


def _check_deep(budget: _Budget, *values: Any) -> None:
    """Refuse containers whose text would be over the limit (before it is made)."""
    limit = budget._max_output
    total = 0
    for value in values:
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            total += _deep_size(value, limit)
            if total > limit:
                budget._check_size(total)
    if total > 10_000:  # a long walk is work too: look at the clock now
        budget._check_work()


def _check_format(budget: _Budget, template: str) -> None:
    """Refuse a format string whose widths or precisions ask for a huge result."""
    if "%" in template:
        for match in _PERCENT_SPEC.finditer(template):
            for group in match.groups():
                if group == "*" or (group and int(group) > budget._limits.max_output):
                    budget._check_size(budget._limits.max_output + 1)
    if "{" in template:
        if _NESTED_SPEC.search(template):  # '{0:{1}}': a width from an argument
            raise SecurityError(
                "a format field whose width comes from an argument; see TemplateLimits"
            )
        for match in _BRACE_SPEC.finditer(template):
            for digits in re.findall(r"\d+", match.group(1)):
                budget._check_size(int(digits))


def _check_arguments(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse integer arguments that ask for a result over the output limit.

    ``'x'.center(10**9)``, ``|indent(10**9)``, ``|slice(10**9)``: any integer
    argument bigger than ``max_output`` is a request for too much.
    """
    for value in (*args, *kwargs.values()):
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if is_int and abs(value) > budget._limits.max_output:
            budget._check_size(abs(value))


def _estimate_join(budget: _Budget, separator: Any, items: Any) -> None:
    if isinstance(separator, str) and isinstance(items, (*_SIZED, range)):
        text = _deep_size(items, budget._max_output) if isinstance(items, _SIZED) else 0
        budget._check_size(text + len(separator) * max(len(items) - 1, 0))


def _estimate_replace(budget: _Budget, text: Any, old: Any, new: Any, count: Any = -1) -> None:
    strings = isinstance(text, str) and isinstance(old, str) and isinstance(new, str)
    if strings and len(new) > len(old):
        hits = len(text) + 1 if not old else text.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        budget._check_size(len(text) + hits * (len(new) - len(old)))


def _limited_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a Jinja filter) with the budget checked around it."""
    kind = _PassArg.from_obj(function)

    @jinja2.pass_context
    def limited(context: Context, *args: Any, **kwargs: Any) -> Any:
        budget = _budget(context)
        budget._tick()
        _check_arguments(budget, args, kwargs)
        if args:  # the filtered value: |tojson, |string, |sum of [big] * 1000
            _check_deep(budget, args[0])
        if name == "join" and args:
            _estimate_join(budget, kwargs.get("d", args[1] if len(args) > 1 else ""), args[0])
        elif name == "replace" and len(args) >= 3:
            _estimate_replace(budget, *args[:4])
        elif name == "format" and args and isinstance(args[0], str):
            _check_format(budget, args[0])
        token = _active.set(budget)
        try:
            if kind is _PassArg.context:
                result = function(context, *args, **kwargs)
            elif kind is _PassArg.eval_context:
                result = function(context.eval_ctx, *args, **kwargs)
            elif kind is _PassArg.environment:
                result = function(context.environment, *args, **kwargs)
            else:
                result = function(*args, **kwargs)
        finally:
            _active.reset(token)
        budget._check_size(_size(result))
        budget._check_work()  # a filter may be one long C-level operation
        return result

    limited.__name__ = getattr(function, "__name__", name)
    return limited


def _counted(context: Context, iterable: Any) -> Iterator[Any]:
    """What a ``{% for %}`` loop iterates over: one operation per item."""
    budget = _budget(context)
    tick = budget._tick
    for item in iterable:
        tick()
        yield item


def _limited_lipsum(lipsum: Callable[..., Any]) -> Callable[..., Any]:
    """Jinja's ``lipsum()`` global, at most 100 paragraphs of at most 1,000 words."""

    def limited(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if n > 100 or max > 1000:
            raise SecurityError(
                "lipsum() is limited to 100 paragraphs of 1,000 words; see TemplateLimits"
            )
        return lipsum(n=n, html=html, min=min, max=max)

    return limited


class _LimitedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with every loop and every output piece counted."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # for x in ITER  ->  for x in environment.nk_loop(context, ITER)
        counted = nodes.Call(
            nodes.EnvironmentAttribute("nk_loop"),
            [nodes.ContextReference(), node.iter],
            [],
            None,
            None,
            lineno=node.iter.lineno,
        )
        copy = nodes.For(
            node.target,
            counted,
            node.body,
            node.else_,
            node.test,
            node.recursive,
            lineno=node.lineno,
        )
        copy.set_environment(self.environment)
        super().visit_For(copy, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.nk_sized(context, ")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.nk_output(context, {super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.nk_output(context, ")
        super()._output_child_pre(node, frame, finalize)
        self.write("environment.nk_value(context, ")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write(")")
        super()._output_child_post(node, frame, finalize)
        self.write(")")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with :class:`TemplateLimits` (``sandboxed=True``)."""

    code_generator_class = _LimitedCodeGenerator
    context_class = _LimitedContext
    # The operators that can build a big value (the others only count as work
    # through the loops and calls around them).
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, *args: Any, limits: TemplateLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or TemplateLimits()
        self.filters = {
            name: _limited_filter(name, function) for name, function in self.filters.items()
        }
        lipsum = self.globals.get("lipsum")
        if callable(lipsum):
            self.globals["lipsum"] = _limited_lipsum(lipsum)

    # -- hooks called by the generated code and by the sandbox ------------------

    def nk_loop(self, context: Context, iterable: Any) -> Iterator[Any]:
        """What a ``{% for %}`` loop iterates over: one operation per item."""
        return _counted(context, iterable)

    def nk_output(self, context: Context, value: Any) -> Any:
        """Count one piece of output (generated code calls it; ``value`` is a str)."""
        budget = _active.get() or context.nk_budget  # type: ignore[attr-defined]
        budget._output += len(value)
        budget._operations += 1
        if budget._output > budget._max_output:
            budget._add_output(0)
        if not budget._operations & 255:
            budget._check_work()
        return value

    def nk_value(self, context: Context, value: Any) -> Any:
        """Check a value about to be output before it becomes text (``{{ [big] * 1000 }}``)."""
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            _check_deep(_budget(context), value)
        return value

    def nk_sized(self, context: Context, value: Any) -> Any:
        """Check the size of a value just built (``a ~ b``)."""
        budget = _budget(context)
        budget._tick()
        budget._check_size(_size(value))
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operator whose result would be over the limits, before computing it."""
        budget = _budget(context)
        budget._tick()
        if operator == "*":
            if isinstance(left, int) and isinstance(right, _SIZED):
                left, right = right, left
            if isinstance(left, _SIZED) and isinstance(right, int):
                budget._check_size(_deep_size(left, budget._max_output) * max(right, 0))
            elif isinstance(left, int) and isinstance(right, int):
                budget._check_size((left.bit_length() + right.bit_length()) // 3)
        elif operator == "+":
            if isinstance(left, _SIZED) and isinstance(right, _SIZED):
                limit = budget._max_output
                budget._check_size(_deep_size(left, limit) + _deep_size(right, limit))
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
                budget._check_size(max(right, 0) * left.bit_length() // 3)
        elif operator == "%" and isinstance(left, str):
            _check_format(budget, left)
        result = super().call_binop(context, operator, left, right)
        budget._check_size(_size(result))
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Count the call; refuse arguments and results over the limits."""
        budget = _budget(__context)
        budget._tick()
        _check_arguments(budget, args, kwargs)
        _check_deep(budget, *args, *kwargs.values())
        # str.format is wrapped by the sandbox (functools.update_wrapper).
        target = getattr(__obj, "__wrapped__", __obj)
        name = getattr(target, "__name__", None)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            if name == "join" and args:
                _estimate_join(budget, owner, args[0])
            elif name == "replace" and len(args) >= 2:
                _estimate_replace(budget, owner, *args[:3])
            elif name in ("format", "format_map"):
                _check_format(budget, owner)
            elif name == "expandtabs":
                size = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(size, int):
                    budget._check_size(len(owner) + owner.count("\t") * size)
            elif name == "translate" and args and isinstance(args[0], dict):
                longest = max((_size(v) for v in args[0].values()), default=1)
                budget._check_size(len(owner) * max(longest, 1))
        token = _active.set(budget)
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            _active.reset(token)
        budget._check_size(_size(result))
        budget._check_work()  # a call may be one long operation
        return result


# ============================================================================ CSS inlining

_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style", re.IGNORECASE | re.DOTALL)
_ELEMENT = re.compile(r"<[A-Za-z]")


def _check_rules(rules: int, limits: TemplateLimits) -> None:
    if rules > limits.max_css_rules:
        raise TemplateError(
            f"the HTML asks to inline {rules:,} CSS rules, over the limit of "
            f"{limits.max_css_rules:,}; see TemplateLimits"
        )


def check_css_work(html: str, limits: TemplateLimits) -> None:
    """Refuse a document whose CSS inlining would take too long (see :class:`TemplateLimits`)."""
    rules = sum(block.count("}") for block in _STYLE.findall(html))
    if not rules:
        return
    _check_rules(rules, limits)
    elements = len(_ELEMENT.findall(html))
    if rules * elements > limits.max_css_work:
        raise TemplateError(
            f"inlining {rules:,} CSS rules into {elements:,} elements is over the limit of "
            f"{limits.max_css_work:,} rules x elements; see TemplateLimits"
        )


class _GuardedEngine(Engine):
    """An inlining engine that checks :func:`check_css_work` before it works."""

    def __init__(self, engine: Engine, limits: TemplateLimits) -> None:
        self._engine = engine
        self._limits = limits
        self.name = engine.name

    def inline(self, html: str) -> str:
        check_css_work(html, self._limits)
        return self._engine.inline(html)

    def skeleton(self, skeleton: str, naive: dict[int, NaiveElement]) -> SkeletonOutcome:
        check_css_work(skeleton, self._limits)
        return self._engine.skeleton(skeleton, naive)

    def selectors(self, css_texts: Iterable[str]) -> list[str]:
        texts = list(css_texts)
        _check_rules(sum(text.count("}") for text in texts), self._limits)
        return self._engine.selectors(texts)

    def normalise(self, html: str) -> str:
        return self._engine.normalise(html)


_E = TypeVar("_E", bound="Engine | None")


def guard_engine(engine: _E, environment: jinja2.Environment) -> _E:
    """``engine``, guarded by the CSS limits of ``environment`` when it is a LimitedSandbox."""
    limits = getattr(environment, "limits", None)
    if engine is None or not isinstance(limits, TemplateLimits):
        return engine
    return cast(_E, _GuardedEngine(engine, limits))
