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

import hashlib
import json
import logging
import os
import posixpath
import re
import textwrap
import threading
import time
import weakref
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import CodeType, TracebackType
from typing import Any

import attrs
import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from notifykit.errors import ConfigurationError, NotifyKitError, TemplateError
from notifykit.templates import _cache, _compile, _inline, _limits, _text, i18n

__all__ = ["Rendered", "TemplatePlan", "TemplateRenderer"]

_log = logging.getLogger("notifykit.templates")

#: Strategies reported by :class:`Rendered` and :class:`TemplatePlan`.
COMPILED = "compiled"
PER_MESSAGE = "per_message"
NONE = "none"
BLOCK = "block"

_PARTS = ("subject", "html", "text", "sms")
_NO_PARTS = "defines none of the blocks subject, html, text, sms"
#: What ``warm()`` never takes for a template when it lists a loader's files.
_NOT_TEMPLATES = frozenset(
    [
        ".css",
        ".js",
        ".json",
        ".map",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".ico",
        ".webp",
        ".woff",
        ".woff2",
        ".ttf",
        ".po",
        ".mo",
        ".pot",
        ".md",
        ".py",
        ".pyc",
    ]
)
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
    #: when ``strategy`` is ``"compiled"``: the messages it does not hold for,
    #: e.g. those in which a translation holds a tag (inlined per message)
    caveat: str | None = None


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
        #: the template and the layouts it extends, most derived first
        self.chain_names: list[str] = [name]
        #: whether the template has top-level imports, macros or ``{% set %}``
        self.has_top = False
        #: html_chain, plain_chain and the preludes are compiled on first need
        self.html_ready = False
        self.plain_ready = False
        #: every source read while preparing: name -> digest (None: looked for, absent)
        self.deps: dict[str, str | None] = {}
        #: whether this entry was loaded from the persistent compile cache
        self.from_disk = False
        #: the code of plain_chain and plain_prelude, when reduced to the part blocks
        #: (what the compile cache stores of them)
        self.plain_codes: list[Any] | None = None
        #: the files of the templates plain_codes was compiled from
        self.plain_files: list[str | None] = []
        self.plain_prelude_code: Any = None
        #: sources parsed while preparing, kept until the chains are compiled from
        #: them (each source is parsed once): name -> (AST, filename, uptodate)
        self.asts: dict[str, tuple[nodes.Template, str | None, Callable[[], bool] | None]] = {}
        #: phase 2 of the compiled text part, per shape of its pre-text
        self.text_memo = _text.ShapeMemo()
        #: how the compiled output is cut into its streams (see _two_streams)
        self.stream_probe = _FIND_STREAMS

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
        inliner: the CSS inliner: ``"auto"`` (the default: css-inline, a core
            dependency, or premailer if css-inline cannot be imported on this
            platform), ``"css_inline"``, ``"premailer"`` or ``None`` (no
            inlining).
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
        cache_dir: the folder of the persistent compile cache, which spares
            later processes the analysis of each template. ``None`` (default):
            the folder in ``$NOTIFYKIT_TEMPLATE_CACHE``, else the platform's
            cache folder; ``False``: no persistent cache.
            ``NOTIFYKIT_TEMPLATE_CACHE=off`` turns it off everywhere.

    A renderer is thread-safe; it caches what it prepares per template name.
    """

    def __init__(
        self,
        environment: jinja2.Environment | None = None,
        *,
        loader: jinja2.BaseLoader | None = None,
        sandboxed: bool = False,
        inliner: str | None = "auto",
        auto_reload: bool = True,
        reload_interval: float = 1.0,
        compile: bool = True,
        translations: i18n.TranslationsSource | None = None,
        domain: str = "messages",
        limits: _limits.TemplateLimits | None = None,
        cache_dir: str | os.PathLike[str] | bool | None = None,
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
        # An environment that installed its own gettext (install_gettext_translations,
        # possibly newstyle) keeps it, unless translations= asks notifykit to supply them.
        self._supply_gettext = translations is not None or "gettext" not in environment.globals
        #: the engine of the per-message path (see _inline_per_message)
        self._message_engine: _inline.Engine | None = None
        #: the callables without a catalogue (no translations= or no locale), made once
        self._null_gettext = tuple(i18n.gettext_callables(None, domain, None).items())
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
        self._chain_lock = threading.RLock()
        folder = _cache.resolve_folder(cache_dir)
        self._disk = None if folder is None else _cache.CompileCache(folder)

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
        if self._supply_gettext:
            if self._translations is None or locale is None:
                callables: Iterable[tuple[str, Any]] = self._null_gettext
            else:
                callables = i18n.gettext_callables(self._translations, self._domain, locale).items()
            for key, value in callables:
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
                end = len(output)
                if compiled.parts:
                    found = _parts_after(output, len(compiled.parts))
                    if found is None:  # cannot happen; rsplit says what is wrong
                        output, *rendered_parts = output.rsplit(
                            _compile.PART_SPLIT, len(compiled.parts)
                        )
                        end = len(output)
                    else:
                        end, rendered_parts = found
                    parts = dict(zip(compiled.parts, rendered_parts, strict=True))
                if compiled.text_included:
                    output, pre, many = _two_streams(output, end, entry.stream_probe)
                    if many:
                        entry.stream_probe = 0
                elif end != len(output):
                    output = output[:end]
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
                text = entry.text_memo.finish(pre)
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
            caveat=compiled.caveat if compiled is not None and strategy == COMPILED else None,
        )

    def warm(self, names: Iterable[str] | None = None) -> list[TemplatePlan]:
        """Prepare templates now, at start-up, rather than at their first message.

        Compiles each template (the analysis of the compiled path, or its
        result from the persistent compile cache, and Jinja's own compile of
        the template and its layouts), so that no request pays for it.

        Args:
            names: the templates to prepare; by default every template the
                loader lists (``list_templates()``) except stylesheets, scripts,
                images and other files that are not templates, and partials and
                layouts, which are recognised as defining none of the blocks
                ``subject``, ``html``, ``text``, ``sms``, or as extended by
                another template.

        Returns:
            the :class:`TemplatePlan` of each notification template prepared,
            which says whether it takes the compiled path and why not.

        Raises:
            TemplateError: after trying every template, when any failed (a
                syntax error, an unknown layout or filter…): the message lists
                each failure with its template and line; ``.template`` and
                ``.lineno`` are those of the first.
            ConfigurationError: ``names`` is not given and the loader cannot
                list its templates.
        """
        if names is None:
            loader = self._base.loader
            if loader is None:
                return []
            try:
                listed = loader.list_templates()
            except TypeError as exc:
                raise ConfigurationError(
                    f"{type(loader).__name__} cannot list its templates: "
                    "pass the names to warm(names=[...])"
                ) from exc
            candidates = [
                n for n in listed if posixpath.splitext(n)[1].lower() not in _NOT_TEMPLATES
            ]
            explicit = False
        else:
            candidates = list(names)
            explicit = True
        plans: list[TemplatePlan] = []
        failures: list[TemplateError] = []
        for name in candidates:
            try:
                entry = self._entry(name)
                self._chains(entry)
            except TemplateError as exc:
                if not explicit and _NO_PARTS in str(exc):
                    continue  # a partial or a layout: prepared with the templates using it
                failures.append(exc)
                continue
            plans.append(self.explain(name))
        if not explicit:  # a layout another template extends is not a notification
            layouts = {n for p in plans for n in self._entries[p.template].chain_names[1:]}
            plans = [p for p in plans if p.template not in layouts]
        compiled = sum(p.strategy == COMPILED for p in plans)
        _log.info(
            "notifykit prepared %d template(s): %d compiled, %d per message, %d failed",
            len(plans),
            compiled,
            len(plans) - compiled,
            len(failures),
        )
        if failures:
            first = failures[0]
            listing = "; ".join(str(f) for f in failures)
            raise TemplateError(
                f"{len(failures)} template(s) failed to compile: {listing}",
                template=first.template,
                lineno=first.lineno,
            ) from first
        return plans

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
        self._chains(entry, plain=False)
        with _errors(entry.name):
            if entry.has_layout:
                template = entry.html_chain[0]
                return _concat(template.root_render_func(self._context(template, variables)))
            context = self._chain_context(entry.html_chain, entry.html_prelude, variables)
            return _concat(context.blocks["html"][0](context))

    def _block_context(self, entry: _Entry, variables: dict[str, Any]) -> jinja2.runtime.Context:
        self._chains(entry, html=False)
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
        engine = self._message_engine
        if engine is None:  # looked up once: get_engine("auto") tries an import
            engine = _limits.guard_engine(_inline.get_engine(self._inliner), self._base)
            self._message_engine = engine
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
        self,
        name: str,
        checks: list[Callable[[], bool]] | None,
        deps: dict[str, str | None] | None = None,
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
                    if deps is not None:
                        deps.setdefault(candidate, None)
                    continue
                if checks is not None and uptodate is not None:
                    checks.append(uptodate)
                if deps is not None:
                    deps[candidate] = _cache.source_digest(source)
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

    def _load_ast(
        self,
        name: str,
        checks: list[Callable[[], bool]],
        deps: dict[str, str | None] | None = None,
        memo: dict[str, tuple[nodes.Template, str | None, Callable[[], bool] | None]] | None = None,
    ) -> nodes.Template:
        """The AST of ``name``; with ``memo``, each source is read and parsed once.

        The analysis never changes the ASTs it reads (it works on copies), so
        one parse serves the analysis and then Jinja's compile of the chain.
        """
        if memo is not None and name in memo:
            return memo[name][0]
        source, filename, uptodate = self._html_env.loader.get_source(  # type: ignore[union-attr]
            self._html_env, name
        )
        if uptodate is not None:
            checks.append(uptodate)
        if deps is not None:
            deps[name] = _cache.source_digest(source)
        ast = self._html_env.parse(source, name, filename)
        if memo is not None:
            memo[name] = (ast, filename, uptodate)
        return ast

    def _build(self, name: str) -> _Entry:
        entry = _Entry(name)
        with _errors(name):
            source, filename, uptodate = self._html_env.loader.get_source(  # type: ignore[union-attr]
                self._html_env, name
            )
            if uptodate is not None:
                entry.checks.append(uptodate)
            key = None if self._disk is None else self._cache_key(name, source)
            if key is not None and self._load_cached(entry, key, filename, uptodate):
                return entry
            entry.deps[name] = _cache.source_digest(source)
            ast = self._html_env.parse(source, name, filename)
            entry.asts[name] = (ast, filename, uptodate)
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
                current = self._load_ast(parent.value, entry.checks, entry.deps, entry.asts)
                block_names |= {b.name for b in current.find_all(nodes.Block)}
                entry.chain_names.append(parent.value)
            entry.parts = {p for p in ("subject", "text", "sms") if p in block_names}
            entry.block_parts = tuple(p for p in ("subject", "text", "sms") if p in entry.parts)
            if entry.has_layout or "html" in block_names:
                entry.parts.add("html")
            if not entry.parts:
                raise TemplateError(
                    f"template {name!r} {_NO_PARTS}: "
                    "write its parts as {% block html %}...{% endblock %} (see docs/templates.md)",
                    template=name,
                )
            top = [n for n in ast.body if isinstance(n, _TOP_LEVEL)]
            if top:
                entry.has_top = True
                bound = _bound_names(top)
                used: set[str] = set()
                for block in _blocks_named(ast, ("subject", "text", "sms")):
                    used |= {n.name for n in block.find_all(nodes.Name) if n.ctx == "load"}
                entry.blocks_need_prelude = bool(bound & used)
        if "html" in entry.parts:
            self._prepare_fast_path(entry)
        if key is not None:
            compiled = entry.compiled
            if set(entry.block_parts) - set(compiled.parts if compiled is not None else ()):
                # the first render compiles the block path anyway: now, so that
                # the cache keeps its code too (an error waits for that render)
                try:
                    self._chains(entry, html=False)
                except TemplateError:
                    pass
            self._store_cached(entry, key)
        return entry

    def _chains(self, entry: _Entry, html: bool = True, plain: bool = True) -> None:
        """Compile what the per-message (``html``) and block (``plain``) paths need, once.

        The block path renders the ``subject``/``text``/``sms`` blocks alone:
        its chain holds only the blocks they can reach (see :meth:`_block_chain`),
        a fraction of the templates' code to compile on a first render.
        """
        if (not html or entry.html_ready) and (not plain or entry.plain_ready):
            return
        with self._chain_lock, _errors(entry.name):
            top: list[nodes.Node] | None = None
            if entry.has_top:
                ast = self._parsed(entry, entry.name)[0]
                top = [n for n in ast.body if isinstance(n, _TOP_LEVEL)]
            if plain and not entry.plain_ready:
                chain = self._block_chain(entry)
                if chain is None:
                    chain = [
                        self._chain_template(self._plain_env, n, {}) for n in entry.chain_names
                    ]
                    entry.plain_codes = None
                if top is not None and entry.blocks_need_prelude:
                    prelude, code = _compile._compile_code(
                        self._plain_env,
                        _compile._clone(top, self._html_env),
                        entry.name,
                        chain[0].filename,
                    )
                    entry.plain_prelude = prelude
                    entry.plain_prelude_code = code
                entry.plain_chain = chain
                entry.plain_ready = True
            if html and not entry.html_ready:
                tops = None if top is None else _compile._clone(top, self._html_env)
                env = self._html_env
                chain = [self._chain_template(env, n, entry.asts) for n in entry.chain_names]
                if tops is not None:
                    entry.html_prelude = _compile._compile(env, tops, entry.name, chain[0].filename)
                entry.html_chain = chain
                entry.html_ready = True
            entry.asts = {}

    def _parsed(
        self, entry: _Entry, name: str
    ) -> tuple[nodes.Template, str | None, Callable[[], bool] | None]:
        """The AST of ``name`` the analysis parsed, else parsed now (the cache spared it)."""
        found = entry.asts.get(name)
        if found is not None:
            return found
        memo: dict[str, tuple[nodes.Template, str | None, Callable[[], bool] | None]] = {}
        self._load_ast(name, [], None, memo)
        entry.asts[name] = memo[name]
        return memo[name]

    def _block_chain(self, entry: _Entry) -> list[jinja2.Template] | None:
        """The chain of the block path, each template reduced to the blocks the parts reach.

        The ``subject``/``text``/``sms`` blocks are rendered alone, from a
        context whose blocks come from the chain; what they reach is the blocks
        of those names in every template of the chain (``super()``), the blocks
        nested in them, and the blocks they render with ``self.<name>()`` — and
        so on. Each block compiles to the same function whatever surrounds it,
        so a template of only those blocks renders them exactly as the whole
        template would. ``None`` (compile the whole chain) when a block uses
        ``self`` any other way. The code objects are kept for the compile cache.
        """
        parsed = [self._parsed(entry, n) for n in entry.chain_names]
        needed = _reachable_blocks([p[0] for p in parsed], entry.block_parts)
        if needed is None:
            return None
        env = self._plain_env
        chain: list[jinja2.Template] = []
        codes: list[Any] = []
        for name, (ast, filename, uptodate) in zip(entry.chain_names, parsed, strict=True):
            reduced = nodes.Template(
                _compile._clone(_outermost_blocks(ast, needed), self._html_env), lineno=1
            )
            reduced.set_environment(env)
            code = env.compile(reduced, name, filename)
            template = env.template_class.from_code(env, code, env.make_globals(None), uptodate)
            chain.append(template)
            codes.append(code)
        entry.plain_codes = codes
        entry.plain_files = [p[1] for p in parsed]
        return chain

    def _chain_template(
        self,
        env: jinja2.Environment,
        name: str,
        asts: dict[str, tuple[nodes.Template, str | None, Callable[[], bool] | None]],
    ) -> jinja2.Template:
        """``env.get_template(name)``, compiled from the AST the analysis parsed if there is one.

        Jinja's own path would read and parse the source again. The template
        goes into ``env``'s cache exactly as ``get_template`` would put it.
        Loaders that compile their own way (a ``load`` of their own, a bytecode
        cache) keep Jinja's path.
        """
        parsed = asts.pop(name, None)
        loader = self._base.loader
        if (
            parsed is None
            or env.bytecode_cache is not None
            or (loader is not None and type(loader).load is not jinja2.BaseLoader.load)
            or env.loader is None
        ):
            return env.get_template(name)
        cache_key = (weakref.ref(env.loader), name)
        cache = env.cache
        if cache is not None:
            found = cache.get(cache_key)
            if found is not None and (not env.auto_reload or found.is_up_to_date):
                return found
        ast, filename, uptodate = parsed
        ast.set_environment(env)
        code = env.compile(ast, name, filename)
        template = env.template_class.from_code(env, code, env.make_globals(None), uptodate)
        if cache is not None:
            cache[cache_key] = template
        return template

    # ------------------------------------------------------ the persistent compile cache
    def _cache_key(self, name: str, source: str) -> str:
        env = self._html_env
        settings = [
            _cache.code_fingerprint(),
            type(self._base).__module__ + "." + type(self._base).__qualname__,
            repr(getattr(self._base, "limits", None)),
            self.inliner,
            self._compile_enabled,
            self._compile_blocker,
            [
                env.block_start_string,
                env.block_end_string,
                env.variable_start_string,
                env.variable_end_string,
                env.comment_start_string,
                env.comment_end_string,
                env.line_statement_prefix,
                env.line_comment_prefix,
                env.trim_blocks,
                env.lstrip_blocks,
                env.newline_sequence,
                env.keep_trailing_newline,
                env.optimized,
                env.undefined.__qualname__,
            ],
            sorted(env.extensions),
            sorted((n, _pass_arg(f)) for n, f in env.filters.items()),
            sorted(env.tests),
            name,
            source,
        ]
        return hashlib.sha256(json.dumps(settings, default=repr).encode("utf-8")).hexdigest()

    def _load_cached(
        self,
        entry: _Entry,
        key: str,
        filename: str | None = None,
        own_uptodate: Callable[[], bool] | None = None,
    ) -> bool:
        assert self._disk is not None
        found = self._disk.load(key)
        if found is None:
            return False
        meta, codes = found
        try:
            if not isinstance(codes, dict):
                return False
            code = codes.get("compiled")
            checks: list[Callable[[], bool]] = []
            files: dict[str, tuple[str | None, Callable[[], bool] | None]] = {
                entry.name: (filename, own_uptodate)
            }
            loader = self._html_env.loader
            assert loader is not None
            for dep, digest in meta["deps"].items():
                if dep == entry.name:
                    continue
                try:
                    source, dep_filename, uptodate = loader.get_source(self._html_env, dep)
                except jinja2.TemplateNotFound:
                    if digest is None:
                        continue
                    return False
                if digest is None or _cache.source_digest(source) != digest:
                    return False
                if uptodate is not None:
                    checks.append(uptodate)
                files[dep] = (dep_filename, uptodate)
            compiled_meta = meta["compiled"]
            if (compiled_meta is None) != (code is None):
                return False
            entry.chain_names = list(meta["chain"])
            entry.parts = set(meta["parts"])
            entry.has_layout = bool(meta["has_layout"])
            entry.block_parts = tuple(meta["block_parts"])
            entry.blocks_need_prelude = bool(meta["blocks_need_prelude"])
            entry.has_top = bool(meta["has_top"])
            entry.html_reason = meta["html_reason"]
            entry.text_reason = meta["text_reason"]
            entry.deps = dict(meta["deps"])
            if compiled_meta is not None:
                if not isinstance(code, CodeType):
                    return False
                env = self._plain_fast_env if compiled_meta["plain"] else self._fast_env
                template = env.template_class.from_code(env, code, env.globals)
                compiled = _compile.Compiled(
                    template,
                    bool(compiled_meta["html_inlined"]),
                    bool(compiled_meta["text_included"]),
                    compiled_meta["html_reason"],
                    compiled_meta["text_reason"],
                    tuple(compiled_meta["parts"]),
                )
                compiled.local_links = bool(compiled_meta["local_links"])
                compiled.caveat = compiled_meta["caveat"]
                compiled.plain = bool(compiled_meta["plain"])
                compiled.code = code
                entry.compiled = compiled
            self._load_block_chain(entry, meta, codes, files)
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        entry.checks.extend(checks)
        entry.from_disk = True
        return True

    def _load_block_chain(
        self,
        entry: _Entry,
        meta: dict[str, Any],
        codes: dict[str, Any],
        files: dict[str, tuple[str | None, Callable[[], bool] | None]],
    ) -> None:
        """The block path's chain from the cache: no Jinja compile at all on a first render.

        Only when every template of the chain is still the file it was compiled
        from (a traceback shows that file): otherwise it is compiled on first need.
        """
        plain = codes.get("plain")
        if not isinstance(plain, list) or len(plain) != len(entry.chain_names):
            return
        if not all(isinstance(code, CodeType) for code in plain):
            return
        if [files.get(n, (None, None))[0] for n in entry.chain_names] != meta["chain_files"]:
            return
        prelude_code = codes.get("prelude")
        if entry.has_top and entry.blocks_need_prelude and prelude_code is None:
            return
        env = self._plain_env
        chain = [
            env.template_class.from_code(
                env, code, env.make_globals(None), files.get(n, (None, None))[1]
            )
            for n, code in zip(entry.chain_names, plain, strict=True)
        ]
        if entry.has_top and entry.blocks_need_prelude:
            if not isinstance(prelude_code, CodeType):
                return
            entry.plain_prelude = env.template_class.from_code(env, prelude_code, env.globals)
            entry.plain_prelude_code = prelude_code
        entry.plain_chain = chain
        entry.plain_codes = plain
        entry.plain_files = list(meta["chain_files"])
        entry.plain_ready = True

    def _store_cached(self, entry: _Entry, key: str) -> None:
        assert self._disk is not None
        compiled = entry.compiled
        if compiled is not None and compiled.code is None:
            return
        codes: dict[str, Any] = {"compiled": None if compiled is None else compiled.code}
        chain_files: list[str | None] = []
        prelude_ok = not (entry.has_top and entry.blocks_need_prelude) or entry.plain_prelude_code
        if entry.plain_ready and entry.plain_codes is not None and prelude_ok:
            codes["plain"] = entry.plain_codes
            codes["prelude"] = entry.plain_prelude_code
            chain_files = list(entry.plain_files)
        meta: dict[str, Any] = {
            "deps": entry.deps,
            "chain": entry.chain_names,
            "parts": sorted(entry.parts),
            "has_layout": entry.has_layout,
            "block_parts": list(entry.block_parts),
            "blocks_need_prelude": entry.blocks_need_prelude,
            "has_top": entry.has_top,
            "html_reason": entry.html_reason,
            "text_reason": entry.text_reason,
            "chain_files": chain_files,
            "compiled": None
            if compiled is None
            else {
                "html_inlined": compiled.html_inlined,
                "text_included": compiled.text_included,
                "html_reason": compiled.html_reason,
                "text_reason": compiled.text_reason,
                "parts": list(compiled.parts),
                "local_links": compiled.local_links,
                "caveat": compiled.caveat,
                "plain": compiled.plain,
            },
        }
        self._disk.store(key, meta, codes)

    def _prepare_fast_path(self, entry: _Entry) -> None:
        if not self._compile_enabled:
            entry.html_reason = entry.text_reason = "compile=False"
            return
        if self._compile_blocker:
            entry.html_reason = entry.text_reason = self._compile_blocker
            return

        def load(template_name: str) -> nodes.Template:
            try:
                return self._load_ast(template_name, entry.checks, entry.deps, entry.asts)
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
                self._css_loader(entry.name, entry.checks, entry.deps),
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


def _parts_after(output: str, count: int) -> tuple[int, list[str]] | None:
    """``output.rsplit(PART_SPLIT, count)`` without copying the document: its end, the parts."""
    cuts = [len(output)]
    for _ in range(count):
        cut = output.rfind(_compile.PART_SPLIT, 0, cuts[-1])
        if cut < 0:
            return None
        cuts.append(cut)
    width = len(_compile.PART_SPLIT)
    return cuts[-1], [output[cuts[i] + width : cuts[i - 1]] for i in range(count, 0, -1)]


#: SPLIT pairs looked for one by one (``str.find`` is a memchr) before the rest
#: of the output is split at once (one pass, cheaper when there are many)
_FIND_STREAMS = 12


def _two_streams(output: str, end: int, probe: int = _FIND_STREAMS) -> tuple[str, str, bool]:
    """The HTML and the text stream of ``output[:end]``: its pieces between
    :data:`~notifykit.templates._compile.SPLIT` alternate, HTML first.

    The first ``probe`` pairs are looked for with ``find``; the third value
    says whether there were more (then ``probe=0``, one ``split``, is cheaper).
    """
    split = _compile.SPLIT
    find = output.find
    html: list[str] = []
    text: list[str] = []
    start = 0
    for _ in range(probe):
        opening = find(split, start, end)
        if opening < 0:
            html.append(output[start:end])
            return "".join(html), "".join(text), False
        html.append(output[start:opening])
        closing = find(split, opening + 1, end)
        if closing < 0:
            text.append(output[opening + 1 : end])
            return "".join(html), "".join(text), False
        text.append(output[opening + 1 : closing])
        start = closing + 1
    streams = output[start:end].split(split)
    html += streams[0::2]
    text += streams[1::2]
    return "".join(html), "".join(text), True


_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _one_line(subject: str) -> str:
    if "\n" not in subject and "\r" not in subject:  # what _LINE_BREAKS needs
        return subject.strip()
    return _LINE_BREAKS.sub(" ", subject).strip()


def _clean_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    joined = "\n".join(lines)
    # dedent() removes the margin common to the lines that are not blank (those
    # are empty already): without an indented line there is none.
    if any(line.startswith((" ", "\t")) for line in lines):
        joined = textwrap.dedent(joined)
    return joined.strip("\n")


def _pass_arg(func: Any) -> str | None:
    """How Jinja passes context to a filter (part of the compile cache key)."""
    from jinja2.utils import _PassArg

    kind = _PassArg.from_obj(func)
    return None if kind is None else kind.name


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


def _reachable_blocks(chain: Sequence[nodes.Template], parts: Iterable[str]) -> set[str] | None:
    """The names of the blocks rendering ``parts`` alone can reach (see ``_block_chain``).

    ``None`` when a reached block uses ``self`` other than as ``self.<name>``.
    """
    defs: dict[str, list[nodes.Block]] = {}
    for ast in chain:
        for block in ast.find_all(nodes.Block):
            defs.setdefault(block.name, []).append(block)
    needed: set[str] = set()
    todo = list(parts)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for block in defs.get(name, []):
            todo.extend(inner.name for inner in block.find_all(nodes.Block))
            uses = sum(1 for n in block.find_all(nodes.Name) if n.name == "self")
            if not uses:
                continue
            attrs = [
                g.attr
                for g in block.find_all(nodes.Getattr)
                if isinstance(g.node, nodes.Name) and g.node.name == "self"
            ]
            if len(attrs) != uses:
                return None
            todo.extend(attrs)
    return needed


def _outermost_blocks(ast: nodes.Node, names: set[str]) -> list[nodes.Node]:
    """The blocks of ``ast`` named in ``names`` that no such block encloses."""
    found: list[nodes.Node] = []
    for child in ast.iter_child_nodes():
        if isinstance(child, nodes.Block) and child.name in names:
            found.append(child)
        else:
            found.extend(_outermost_blocks(child, names))
    return found


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
        raise _translate(exc, self.name) from _template_traceback(exc)


def _template_traceback(exc: Exception) -> Exception:
    """``exc`` with each frame of template code shown at its template's file and line.

    Jinja does this in ``Template.render``; notifykit calls the render functions
    itself, so without this a traceback would show the line of the Python code
    Jinja generated ("line 61" of an 11-line template).
    """
    try:
        from jinja2.debug import fake_traceback
    except ImportError:  # pragma: no cover - a Jinja without it: keep the raw traceback
        return exc
    stack: list[TracebackType] = []
    tb = exc.__traceback__
    try:
        while tb is not None:
            template = tb.tb_frame.f_globals.get("__jinja_template__")
            if template is not None:
                lineno = template.get_corresponding_lineno(tb.tb_lineno)
                filename = template.filename or template.name or "<template>"
                stack.append(fake_traceback(exc, tb, filename, lineno))
            else:
                stack.append(tb)
            tb = tb.tb_next
    except Exception:  # pragma: no cover - never let the rewrite hide the error
        return exc
    following: TracebackType | None = None
    for frame in reversed(stack):
        frame.tb_next = following
        following = frame
    return exc.with_traceback(following)


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
