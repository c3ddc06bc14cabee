"""``TemplateRenderer``: one Jinja file per notification → :class:`Rendered`.

A notification template has up to four blocks — ``subject``, ``html``,
``text``, ``sms`` — and may extend a layout. :meth:`TemplateRenderer.render`
returns the parts as a frozen :class:`Rendered`, with the CSS of the HTML part
inlined and a text part derived from the HTML when the template has no
``text`` block. The expensive work (inlining, HTML → text) is done once per
template when that is provably equivalent to doing it per message (see
:mod:`notifykit.templates._compile`) and per message otherwise; ``Rendered``
says which.

Semantics, in one place:

- ``html`` is the whole template rendered when it extends a layout (the
  layout's markup around the child's blocks), else the ``html`` block alone;
  ``None`` when the template has neither. It is always autoescaped.
- ``subject``, ``text`` and ``sms`` are their blocks rendered alone, without
  HTML escaping (they are not HTML). The subject is put on one line; ``text``
  is dedented and stripped; ``sms`` is stripped. No ``subject`` block gives
  ``""`` (an SMS-only template needs none); no ``sms`` block gives ``None``;
  no ``text`` block gives the text derived from the HTML (``None`` without
  HTML).
- Blocks rendered alone see the context, the globals, and the imports,
  macros and ``{% set %}`` at the top level of the notification's own file.
- Undefined variables are errors (``StrictUndefined``), whatever the
  environment says: a missing variable is a :class:`~notifykit.errors.TemplateError`
  naming the template, the line and the variable, never a blank e-mail.
- The bundled layouts are reachable from every loader as
  ``notifykit/layouts/base.html`` (and, unless your own templates have one, as
  ``layouts/base.html``); the bundled button macro is
  ``notifykit/layouts/button.html``.
"""

from __future__ import annotations

import logging
import posixpath
import re
import textwrap
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import attrs
import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from notifykit.errors import ConfigurationError, NotifyKitError, TemplateError
from notifykit.templates import _compile, _inline, _limits, _text, i18n

__all__ = ["Rendered", "TemplatePlan", "TemplateRenderer"]

_log = logging.getLogger("notifykit.templates")

#: Strategies reported by :class:`Rendered` and :class:`TemplatePlan`.
COMPILED = "compiled"
PER_MESSAGE = "per_message"
NONE = "none"
BLOCK = "block"

_PARTS = ("subject", "html", "text", "sms")
_TOP_LEVEL = (nodes.Assign, nodes.AssignBlock, nodes.Import, nodes.FromImport, nodes.Macro)


@attrs.frozen
class Rendered:
    """The parts of one rendered notification.

    Attributes:
        subject: the ``subject`` block on one line (``""`` when there is none).
        html: the HTML document with its CSS inlined, or ``None``.
        text: the ``text`` block, or the text derived from ``html``, or ``None``.
        sms: the ``sms`` block, or ``None``.
        template: the template's name.
        strategy: how the CSS was inlined: ``"compiled"`` (once per template,
            ahead of time), ``"per_message"``, or ``"none"`` (no HTML, or
            ``inliner=None``).
        text_strategy: where ``text`` came from: ``"block"``, ``"compiled"``
            (derived from the HTML ahead of time), ``"per_message"`` or ``"none"``.
        reason: why a part took the per-message path, when one did (for logs).
    """

    subject: str
    html: str | None
    text: str | None
    sms: str | None
    template: str
    strategy: str = NONE
    text_strategy: str = NONE
    reason: str | None = None


@attrs.frozen
class TemplatePlan:
    """What :meth:`TemplateRenderer.explain` found out about one template."""

    template: str
    parts: tuple[str, ...]
    strategy: str
    reason: str | None
    text_strategy: str
    text_reason: str | None


def _bundled_loader() -> jinja2.BaseLoader:
    layouts = jinja2.PackageLoader("notifykit", "templates/layouts")
    bundled = jinja2.PackageLoader("notifykit", "templates/bundled")
    return jinja2.PrefixLoader(
        {
            "notifykit": jinja2.PrefixLoader({"layouts": layouts, "bundled": bundled}),
            "layouts": layouts,
        }
    )


class _Entry:
    """Everything prepared for one template name, built once and cached."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.checks: list[Callable[[], bool]] = []
        self.parts: set[str] = set()
        self.has_layout = False
        self.html_chain: list[jinja2.Template] = []
        self.plain_chain: list[jinja2.Template] = []
        self.html_prelude: jinja2.Template | None = None
        self.plain_prelude: jinja2.Template | None = None
        self.compiled: _compile.Compiled | None = None
        self.html_reason: str | None = None
        self.text_reason: str | None = None
        self.blocks_need_prelude = False
        self.block_parts: tuple[str, ...] = ()
        self.checked_at = time.monotonic()

    def uptodate(self, interval: float) -> bool:
        """Whether no source changed; looks at the files at most every ``interval`` s."""
        now = time.monotonic()
        if now - self.checked_at < interval:
            return True
        self.checked_at = now
        return all(check() for check in self.checks)


class TemplateRenderer:
    """Renders notification templates into :class:`Rendered` parts.

    Args:
        environment: an existing :class:`jinja2.Environment` to render with (its
            loader, filters, globals and tests). notifykit works on overlays of
            it: autoescaping on for HTML and off for the other parts,
            ``StrictUndefined``, and the bundled layouts added to the loader.
        loader: a Jinja loader, when no environment is given.
        sandboxed: render in Jinja's immutable sandbox, for templates your
            users edit, with :class:`~notifykit.templates.TemplateLimits` on
            the work and output of each render; a sandbox violation or a limit
            reached is a :class:`~notifykit.errors.TemplateError`. With
            ``environment=``, that environment must be sandboxed, and it
            keeps its own behaviour (Jinja's, without the limits).
        limits: the :class:`~notifykit.templates.TemplateLimits` of
            ``sandboxed=True`` (default: ``TemplateLimits()``).
        inliner: the CSS inliner: ``"premailer"`` (default), ``"css_inline"``
            (faster, ``pip install "notifykit-py[fast]"``), ``"auto"`` (css_inline
            when installed) or ``None`` (no inlining).
        auto_reload: re-read templates whose source changed (Jinja's option).
        reload_interval: with ``auto_reload``, look at a template's files (a
            ``stat`` each) at most this often, in seconds, not at every render.
        compile: do the CSS and text work once per template where provably
            equivalent (the default). ``False`` forces the per-message path.
        translations: gettext catalogues for ``{% trans %}``: a folder of
            ``<locale>/LC_MESSAGES/<domain>.mo`` files, or a callable taking a
            locale and returning a :class:`gettext.NullTranslations`. Used when
            :meth:`render` is given a ``locale`` (see ``docs/i18n.md``).
        domain: the gettext domain of the ``.mo`` files (``"messages"``).

    A renderer is thread-safe; it caches what it prepares per template name.
    """

    def __init__(
        self,
        environment: jinja2.Environment | None = None,
        *,
        loader: jinja2.BaseLoader | None = None,
        sandboxed: bool = False,
        inliner: str | None = "premailer",
        auto_reload: bool = True,
        reload_interval: float = 1.0,
        compile: bool = True,
        translations: i18n.TranslationsSource | None = None,
        domain: str = "messages",
        limits: _limits.TemplateLimits | None = None,
    ) -> None:
        if environment is not None and loader is not None:
            raise ConfigurationError("pass either environment= or loader=, not both")
        if limits is not None and (not sandboxed or environment is not None):
            raise ConfigurationError("limits= applies to sandboxed=True without environment=")
        if environment is None and sandboxed:
            environment = _limits.LimitedSandbox(
                loader=loader, autoescape=True, auto_reload=auto_reload, limits=limits
            )
        elif environment is None:
            environment = jinja2.Environment(
                loader=loader, autoescape=True, auto_reload=auto_reload
            )
        elif sandboxed and not isinstance(environment, SandboxedEnvironment):
            raise ConfigurationError("sandboxed=True needs a jinja2.sandbox.SandboxedEnvironment")
        if inliner not in (None, "premailer", "css_inline", "auto"):
            raise ConfigurationError(
                f"unknown inliner {inliner!r}: use 'premailer', 'css_inline', 'auto' or None"
            )
        if inliner is not None:
            _inline.get_engine(inliner)  # fail now if css_inline is missing
        self._inliner = inliner
        self._compile_enabled = compile
        self._auto_reload = environment.auto_reload
        self._interval = reload_interval
        user_loader = environment.loader
        bundled = _bundled_loader()
        full_loader = (
            bundled if user_loader is None else jinja2.ChoiceLoader([user_loader, bundled])
        )
        undefined = environment.undefined
        if not issubclass(undefined, jinja2.StrictUndefined):
            undefined = jinja2.StrictUndefined
        self._base = environment
        self._html_env = environment.overlay(
            loader=full_loader,
            autoescape=True,
            undefined=undefined,
            extensions=["jinja2.ext.i18n"],  # {% trans %}; gettext comes with each render
        )
        self._html_env.filters = ChainMap(  # type: ignore[assignment]
            environment.filters, i18n.filters()
        )
        self._translations = translations
        self._domain = domain
        self._localized: dict[tuple[str, str], str] = {}
        self._plain_env = self._html_env.overlay(autoescape=False)
        self._compile_blocker: str | None = None
        if environment.finalize is not None:
            self._compile_blocker = "the environment has its own finalize"
        self._fast_env = self._html_env.overlay(finalize=_compile.html_guard)
        self._fast_env.filters = ChainMap(  # type: ignore[assignment]
            _compile.compiled_filters(), self._html_env.filters
        )
        self._plain_fast_env = self._html_env.overlay(autoescape=False, finalize=None)
        self._plain_fast_env.filters = ChainMap(  # type: ignore[assignment]
            _compile.plain_filters(), self._html_env.filters
        )
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_directory(
        cls, path: str | Any, *, follow_symlinks: bool = False, **options: Any
    ) -> TemplateRenderer:
        """Templates from a directory (``orders/shipped.html`` is ``path/orders/shipped.html``).

        A template (or linked stylesheet) that is a symlink to a file outside
        ``path`` is a :class:`~notifykit.errors.TemplateError` unless
        ``follow_symlinks=True``; symlinks that stay inside ``path`` always work.
        """
        if follow_symlinks:
            return cls(loader=jinja2.FileSystemLoader(str(path)), **options)
        return cls(loader=_limits.ConfinedFileSystemLoader(str(path)), **options)

    @classmethod
    def from_package(
        cls, package: str, subdir: str = "templates", **options: Any
    ) -> TemplateRenderer:
        """Templates shipped inside a Python package (``from_package("myapp", "templates")``)."""
        return cls(loader=jinja2.PackageLoader(package, subdir), **options)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, str], **options: Any) -> TemplateRenderer:
        """Templates held in memory, by name: handy in tests and for generated templates."""
        return cls(loader=jinja2.DictLoader(dict(mapping)), **options)

    @property
    def environment(self) -> jinja2.Environment:
        """The Jinja environment given or made; add filters and globals here."""
        return self._base

    @property
    def inliner(self) -> str | None:
        """The inlining engine in use (``"auto"`` resolved)."""
        if self._inliner is None:
            return None
        return _inline.get_engine(self._inliner).name

    # ---------------------------------------------------------------- rendering
    def render(
        self,
        name: str,
        context: Mapping[str, Any] | None = None,
        /,
        *,
        locale: str | None = None,
        **extra: Any,
    ) -> Rendered:
        """Render template ``name`` with ``context`` (and keyword variables).

        With ``locale`` (``"hi"``, ``"ta_IN"``): the per-locale file
        ``welcome.hi.html`` is used when it exists (else ``welcome.html``),
        ``{% trans %}`` reads that locale's catalogue, and the context gets
        ``locale``, ``lang`` (``"hi-IN"``) and ``dir`` (``"rtl"`` or ``"ltr"``)
        unless it has them.

        Raises :class:`~notifykit.errors.TemplateError` for an unknown or broken
        template, a missing variable, a bad locale name, or a sandbox violation.
        """
        if context is not None and not isinstance(context, Mapping):
            raise TemplateError(
                f"template {name!r}: the context must be a mapping, not {type(context).__name__}",
                template=name,
            )
        variables = dict(context or {})
        variables.update(extra)
        if locale is not None:
            name = self._localized_name(name, locale)
            variables.setdefault("locale", i18n.normalize_locale(locale))
            variables.setdefault("lang", i18n.language_tag(locale))
            variables.setdefault("dir", i18n.text_direction(locale))
        for key, value in i18n.gettext_callables(self._translations, self._domain, locale).items():
            variables.setdefault(key, value)
        entry = self._entry(name)
        reason: str | None = None
        html: str | None = None
        plain_html: str | None = None
        pre: str | None = None
        parts: dict[str, str] = {}
        strategy = NONE
        if "html" in entry.parts:
            compiled = entry.compiled
            if compiled is not None:
                try:
                    output = _concat(
                        compiled.template.root_render_func(
                            self._context(compiled.template, variables)
                        )
                    )
                except _compile.NeedsFallback as exc:
                    reason = str(exc)
                    compiled = None
                except Exception:  # the plain path reports the error precisely
                    reason = "the compiled template failed"
                    compiled = None
                if compiled is None:
                    parts = {}
            if compiled is not None:
                if compiled.parts:
                    output, *rendered_parts = output.rsplit(
                        _compile.PART_SPLIT, len(compiled.parts)
                    )
                    parts = dict(zip(compiled.parts, rendered_parts, strict=True))
                if compiled.text_included:
                    streams = output.split(_compile.SPLIT)
                    output = "".join(streams[0::2])
                    pre = "".join(streams[1::2])
                if compiled.html_inlined or self._inliner is None:
                    html = output
                    strategy = COMPILED
                else:
                    plain_html = output
                    html = self._inline_per_message(entry, output, compiled.local_links)
                    strategy = PER_MESSAGE
                    reason = entry.html_reason
            if html is None:
                if plain_html is None:
                    plain_html = self._plain_html(entry, variables)
                html = self._inline_per_message(entry, plain_html)
                strategy = PER_MESSAGE
                reason = reason or entry.html_reason
            if self._inliner is None:
                strategy = NONE
        text: str | None = None
        text_strategy = NONE
        missing = [p for p in entry.block_parts if p not in parts]
        if missing:
            blocks = self._block_context(entry, variables)
            for part in missing:
                parts[part] = self._block(entry, blocks, part)
        if "text" in parts:
            text = _clean_text(parts["text"])
            text_strategy = BLOCK
        elif html is not None:
            if pre is not None:
                text = _text.finish(pre)
                text_strategy = COMPILED
            else:
                if plain_html is None:
                    plain_html = self._plain_html(entry, variables)
                text = _text.html_to_text(plain_html)
                text_strategy = PER_MESSAGE
                reason = reason or entry.text_reason
        subject = _one_line(parts["subject"]) if "subject" in parts else ""
        sms = parts["sms"].strip() if "sms" in parts else None
        return Rendered(
            subject=subject,
            html=html,
            text=text,
            sms=sms,
            template=name,
            strategy=strategy,
            text_strategy=text_strategy,
            reason=reason,
        )

    def _localized_name(self, name: str, locale: str) -> str:
        """``welcome.hi.html`` when the loader has it, else ``name`` (looked up once)."""
        key = (name, locale)
        found = self._localized.get(key)
        if found is not None:
            return found
        found = name
        loader = self._html_env.loader
        if loader is not None:
            for candidate in i18n.locale_candidates(name, locale):
                try:
                    loader.get_source(self._html_env, candidate)
                except jinja2.TemplateNotFound:
                    continue
                except Exception:  # an unreadable file: render() reports it
                    pass
                found = candidate
                break
        with self._lock:
            if len(self._localized) >= 4096:  # many made-up locales: start again
                self._localized.clear()
            self._localized[key] = found
        return found

    def explain(self, name: str) -> TemplatePlan:
        """How ``name`` will be rendered, and why a part goes per message."""
        entry = self._entry(name)
        compiled = entry.compiled
        if "html" not in entry.parts or self._inliner is None:
            strategy, why = NONE, None
        elif compiled is not None and compiled.html_inlined:
            strategy, why = COMPILED, None
        else:
            strategy, why = PER_MESSAGE, entry.html_reason
        if "text" in entry.parts:
            text_strategy, text_why = BLOCK, None
        elif "html" not in entry.parts:
            text_strategy, text_why = NONE, None
        elif compiled is not None and compiled.text_included:
            text_strategy, text_why = COMPILED, None
        else:
            text_strategy, text_why = PER_MESSAGE, entry.text_reason
        return TemplatePlan(
            template=name,
            parts=tuple(p for p in _PARTS if p in entry.parts),
            strategy=strategy,
            reason=why,
            text_strategy=text_strategy,
            text_reason=text_why,
        )

    def inline(self, name: str, html: str) -> str:
        """Inline ``html`` per message, as the renderer would for template ``name``.

        This is the reference the compile-time path is tested against.
        """
        entry = self._entry(name)
        return self._inline_per_message(entry, html)

    def plain_html(self, name: str, context: Mapping[str, Any] | None = None) -> str | None:
        """The HTML part rendered by Jinja, before inlining (``None``: no HTML)."""
        entry = self._entry(name)
        if "html" not in entry.parts:
            return None
        return self._plain_html(entry, dict(context or {}))

    # ---------------------------------------------------------------- internals
    def _context(
        self, template: jinja2.Template, variables: dict[str, Any]
    ) -> jinja2.runtime.Context:
        """``template.new_context(variables)``, without copying a ChainMap per call."""
        environment = template.environment
        parent = dict(environment.globals)
        parent.update(variables)
        return environment.context_class(
            environment, parent, template.name, template.blocks, globals=environment.globals
        )

    def _plain_html(self, entry: _Entry, variables: dict[str, Any]) -> str:
        with _errors(entry.name):
            if entry.has_layout:
                template = entry.html_chain[0]
                return _concat(template.root_render_func(self._context(template, variables)))
            context = self._chain_context(entry.html_chain, entry.html_prelude, variables)
            return _concat(context.blocks["html"][0](context))

    def _block_context(self, entry: _Entry, variables: dict[str, Any]) -> jinja2.runtime.Context:
        prelude = entry.plain_prelude if entry.blocks_need_prelude else None
        with _errors(entry.name):
            return self._chain_context(entry.plain_chain, prelude, variables)

    def _chain_context(
        self,
        chain: list[jinja2.Template],
        prelude: jinja2.Template | None,
        variables: dict[str, Any],
    ) -> jinja2.runtime.Context:
        context = self._context(chain[0], variables)
        for parent in chain[1:]:
            for block_name, block in parent.blocks.items():
                context.blocks.setdefault(block_name, []).append(block)
        if prelude is not None:
            for _ in prelude.root_render_func(context):
                pass
        return context

    def _block(self, entry: _Entry, context: jinja2.runtime.Context, part: str) -> str:
        with _errors(entry.name):
            return _concat(context.blocks[part][0](context))

    def _inline_per_message(self, entry: _Entry, html: str, links: bool = True) -> str:
        if self._inliner is None:
            return html
        engine = _limits.guard_engine(_inline.get_engine(self._inliner), self._base)
        with _errors(entry.name):
            if links:
                html = _inline.expand_links(html, self._css_loader(entry.name, None))
            try:
                return engine.inline(html)
            except NotifyKitError:
                raise
            except Exception as exc:
                raise TemplateError(
                    f"CSS inlining of template {entry.name!r} failed ({engine.name}): {exc}",
                    template=entry.name,
                ) from exc

    def _css_loader(
        self, name: str, checks: list[Callable[[], bool]] | None
    ) -> Callable[[str], str]:
        def load(href: str) -> str:
            href = href.split("?", 1)[0].split("#", 1)[0]
            relative = posixpath.normpath(posixpath.join(posixpath.dirname(name), href))
            for candidate in (relative, posixpath.normpath(href.lstrip("/"))):
                if candidate.startswith("../"):
                    continue
                try:
                    source, _filename, uptodate = self._html_env.loader.get_source(  # type: ignore[union-attr]
                        self._html_env, candidate
                    )
                except jinja2.TemplateNotFound:
                    continue
                if checks is not None and uptodate is not None:
                    checks.append(uptodate)
                return source
            raise TemplateError(
                f"stylesheet {href!r} linked from template {name!r} was not found", template=name
            )

        return load

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is not None and (not self._auto_reload or entry.uptodate(self._interval)):
            return entry
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and (not self._auto_reload or entry.uptodate(self._interval)):
                return entry
            entry = self._build(name)
            self._entries[name] = entry
            return entry

    def _load_ast(self, name: str, checks: list[Callable[[], bool]]) -> nodes.Template:
        source, filename, uptodate = self._html_env.loader.get_source(  # type: ignore[union-attr]
            self._html_env, name
        )
        if uptodate is not None:
            checks.append(uptodate)
        return self._html_env.parse(source, name, filename)

    def _build(self, name: str) -> _Entry:
        entry = _Entry(name)
        with _errors(name):
            ast = self._load_ast(name, entry.checks)
            html_template = self._html_env.get_template(name)
            plain_template = self._plain_env.get_template(name)
            entry.html_chain = [html_template]
            entry.plain_chain = [plain_template]
            entry.has_layout = ast.find(nodes.Extends) is not None
            block_names = {b.name for b in ast.find_all(nodes.Block)}
            current = ast
            seen = {name}
            while True:
                extends = [n for n in current.body if isinstance(n, nodes.Extends)]
                parent = extends[0].template if len(extends) == 1 else None
                if not (isinstance(parent, nodes.Const) and isinstance(parent.value, str)):
                    break
                if parent.value in seen or len(seen) > 20:
                    break
                seen.add(parent.value)
                current = self._load_ast(parent.value, entry.checks)
                block_names |= {b.name for b in current.find_all(nodes.Block)}
                entry.html_chain.append(self._html_env.get_template(parent.value))
                entry.plain_chain.append(self._plain_env.get_template(parent.value))
            entry.parts = {p for p in ("subject", "text", "sms") if p in block_names}
            entry.block_parts = tuple(p for p in ("subject", "text", "sms") if p in entry.parts)
            if entry.has_layout or "html" in block_names:
                entry.parts.add("html")
            if not entry.parts:
                raise TemplateError(
                    f"template {name!r} defines none of the blocks subject, html, text, sms: "
                    "write its parts as {% block html %}...{% endblock %} (see docs/templates.md)",
                    template=name,
                )
            top = [n for n in ast.body if isinstance(n, _TOP_LEVEL)]
            if top:
                entry.plain_prelude = _compile._compile(self._plain_env, list(top), name)
                entry.html_prelude = _compile._compile(self._html_env, list(top), name)
                bound = _bound_names(top)
                used: set[str] = set()
                for block in _blocks_named(ast, ("subject", "text", "sms")):
                    used |= {n.name for n in block.find_all(nodes.Name) if n.ctx == "load"}
                entry.blocks_need_prelude = bool(bound & used)
        if "html" in entry.parts:
            self._prepare_fast_path(entry)
        return entry

    def _prepare_fast_path(self, entry: _Entry) -> None:
        if not self._compile_enabled:
            entry.html_reason = entry.text_reason = "compile=False"
            return
        if self._compile_blocker:
            entry.html_reason = entry.text_reason = self._compile_blocker
            return

        def load(template_name: str) -> nodes.Template:
            try:
                return self._load_ast(template_name, entry.checks)
            except jinja2.TemplateError as exc:
                raise _compile.Unsupported(f"template {template_name!r}: {exc}") from exc

        engine = None if self._inliner is None else _inline.get_engine(self._inliner)
        engine = _limits.guard_engine(engine, self._base)
        try:
            document = _compile.build_document(self._html_env, entry.name, load, inline_macros=True)
            if document is None:
                return
            entry.compiled = _compile.compile_document(
                document,
                engine,
                self._fast_env,
                entry.name,
                self._css_loader(entry.name, entry.checks),
                self._plain_fast_env,
                derive_text="text" not in entry.parts,
            )
        except _compile.Unsupported as exc:
            entry.html_reason = entry.text_reason = str(exc)
            return
        except (TemplateError, jinja2.TemplateError) as exc:
            entry.html_reason = entry.text_reason = f"compiling failed: {exc}"
            return
        except Exception as exc:  # a bug in the analysis must not cost a message
            _log.warning(
                "notifykit could not compile template %r ahead of time; it is rendered "
                "per message (please report this)",
                entry.name,
                exc_info=True,
            )
            entry.html_reason = entry.text_reason = f"internal error: {exc!r}"
            return
        entry.html_reason = entry.compiled.html_reason
        entry.text_reason = entry.compiled.text_reason


# ------------------------------------------------------------------------ helpers


def _concat(parts: Iterator[str]) -> str:
    return "".join(parts)


def _one_line(subject: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", subject).strip()


def _clean_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def _bound_names(statements: Sequence[nodes.Node]) -> set[str]:
    """Names the top-level statements of a template bind."""
    names: set[str] = set()
    for node in statements:
        if isinstance(node, nodes.Macro):
            names.add(node.name)
        elif isinstance(node, nodes.Import):
            names.add(node.target)
        elif isinstance(node, nodes.FromImport):
            names |= {n if isinstance(n, str) else n[1] for n in node.names}
        else:
            names |= {n.name for n in node.find_all(nodes.Name) if n.ctx == "store"}
    return names


def _blocks_named(ast: nodes.Template, names: tuple[str, ...]) -> Iterator[nodes.Block]:
    for block in ast.find_all(nodes.Block):
        if block.name in names:
            yield block


_UNDEFINED = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")


def _locate(tb: TracebackType | None) -> tuple[str | None, int | None]:
    """The innermost template frame of a traceback: (template name, line)."""
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            found = (template.name, template.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    return found


class _errors:
    """Map every Jinja (and template-code) error to :class:`TemplateError`.

    A class rather than ``@contextmanager``: it is entered a few times per
    message, and a generator-based context manager costs several times more.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, NotifyKitError):
            return
        raise _translate(exc, self.name) from exc


def _translate(exc: Exception, name: str) -> TemplateError:
    if isinstance(exc, jinja2.TemplateNotFound):
        missing = exc.name if exc.name else name
        where = "" if missing == name else f" (needed by {name!r})"
        return TemplateError(f"unknown template {missing!r}{where}", template=name)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        template = exc.name or name
        return TemplateError(
            f"syntax error in template {template!r}, line {exc.lineno}: {exc.message}",
            template=template,
            lineno=exc.lineno,
        )
    located, lineno = _locate(exc.__traceback__)
    template = located or name
    if isinstance(exc, jinja2.exceptions.SecurityError):
        what = f"the sandbox refused an operation: {exc}"
    elif isinstance(exc, jinja2.UndefinedError):
        match = _UNDEFINED.search(str(exc))
        variable = (match.group(1) or match.group(2)) if match else None
        what = f"undefined variable {variable!r} ({exc})" if variable else str(exc)
    else:
        what = f"{type(exc).__name__}: {exc}"
    line = f", line {lineno}" if lineno else ""
    return TemplateError(f"template {template!r}{line}: {what}", template=template, lineno=lineno)
