"""Languages for templates: locale names, per-locale files, gettext catalogues, Babel filters.

Used by ``TemplateRenderer.render(..., locale=...)``; see ``docs/i18n.md``.
Babel (``pip install "notifykit-py[i18n]"``) is needed only by the
``format_*`` filters; gettext catalogues are read with the standard
library's :mod:`gettext`.
"""

from __future__ import annotations

import functools
import gettext
import os
import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import jinja2

from notifykit.errors import MissingDependency, TemplateError

__all__ = [
    "RTL_LANGUAGES",
    "filters",
    "language_tag",
    "locale_candidates",
    "normalize_locale",
    "text_direction",
    "translations_for",
]

#: Languages written right to left (their ISO 639 codes).
RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "ks", "ku", "ps", "sd", "syr", "ug", "ur", "yi"}
)

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8}){0,3}$")
_DEFAULT = "en"


def normalize_locale(locale: str) -> str:
    """``"hi-in"`` → ``"hi_IN"``; anything that is not a locale name is a TemplateError.

    The check matters: the locale becomes part of a template file name
    (``welcome.hi.html``), so ``"../x"`` must never get that far.
    """
    if not isinstance(locale, str) or not _LOCALE.match(locale):
        raise TemplateError(f"{locale!r} is not a locale name (like 'hi', 'ta_IN' or 'ar')")
    parts = re.split(r"[_-]", locale)
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # a script: Latn, Deva
        elif len(part) in (2, 3):
            out.append(part.upper())  # a territory: IN, 419
        else:
            out.append(part)
    return "_".join(out)


def language_tag(locale: str) -> str:
    """The BCP 47 tag for an HTML ``lang`` attribute: ``"hi_IN"`` → ``"hi-IN"``."""
    return normalize_locale(locale).replace("_", "-")


def text_direction(locale: str) -> str:
    """``"rtl"`` for a right-to-left language (Arabic, Hebrew, Urdu…), else ``"ltr"``."""
    return "rtl" if normalize_locale(locale).split("_")[0] in RTL_LANGUAGES else "ltr"


def locale_candidates(name: str, locale: str) -> list[str]:
    """The per-locale file names to try for ``name``, most specific first.

    ``("emails/welcome.html", "hi_IN")`` → ``["emails/welcome.hi_IN.html",
    "emails/welcome.hi.html"]``; the caller falls back to ``name`` itself.
    """
    normalized = normalize_locale(locale)
    head, slash, base = name.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    tags = []
    parts = normalized.split("_")
    for n in range(len(parts), 0, -1):
        tag = "_".join(parts[:n])
        if tag not in tags:
            tags.append(tag)
    return [f"{head}{slash}{stem}.{tag}{dot}{ext}" for tag in tags]


@functools.lru_cache(maxsize=256)
def translations_for(localedir: str, domain: str, locale: str) -> gettext.NullTranslations:
    """The compiled catalogue ``localedir/<locale>/LC_MESSAGES/<domain>.mo`` (cached).

    ``hi_IN`` falls back to ``hi``; no catalogue gives null translations (the
    template's own text).
    """
    normalized = normalize_locale(locale)
    languages = [normalized]
    if "_" in normalized:
        languages.append(normalized.split("_")[0])
    return gettext.translation(domain, localedir, languages=languages, fallback=True)


TranslationsSource = str | os.PathLike[str] | Callable[[str], gettext.NullTranslations]


def gettext_callables(
    source: TranslationsSource | None, domain: str, locale: str | None
) -> dict[str, Any]:
    """``gettext``, ``ngettext`` and ``pgettext`` for the i18n extension's ``{% trans %}``."""
    if source is None or locale is None:
        catalogue: gettext.NullTranslations = _NULL
    elif callable(source):
        catalogue = source(normalize_locale(locale))
    else:
        catalogue = translations_for(os.fspath(source), domain, locale)
    return {
        "gettext": catalogue.gettext,
        "ngettext": catalogue.ngettext,
        "pgettext": catalogue.pgettext,
        "npgettext": catalogue.npgettext,
    }


_NULL = gettext.NullTranslations()


# -------------------------------------------------------------------- Babel filters
def _babel() -> Any:
    try:
        import babel.dates
        import babel.numbers
    except ImportError:
        raise MissingDependency("babel", "i18n", "the format_* template filters") from None
    return babel


def _locale_of(context: Any, locale: str | None) -> str:
    if locale is not None:
        return normalize_locale(locale)
    value = context.get("locale")
    return normalize_locale(value) if isinstance(value, str) else _DEFAULT


@jinja2.pass_context
def format_number(context: Any, value: Any, locale: str | None = None) -> str:
    """``{{ 1640 | format_number }}``: ``1,640`` in en_IN, ``1.640`` in de_DE."""
    return str(_babel().numbers.format_decimal(value, locale=_locale_of(context, locale)))


@jinja2.pass_context
def format_currency(
    context: Any, value: Any, currency: str = "INR", locale: str | None = None
) -> str:
    """``{{ 1640 | format_currency("INR") }}``: ``₹1,640.00`` in en_IN, ``1.640,00 ₹`` in de_DE."""
    if isinstance(value, float):
        value = Decimal(str(value))
    return str(
        _babel().numbers.format_currency(value, currency, locale=_locale_of(context, locale))
    )


@jinja2.pass_context
def format_date(
    context: Any, value: date | datetime, format: str = "medium", locale: str | None = None
) -> str:
    """``{{ order.date | format_date("long") }}``: ``3 March 2025``, ``3 मार्च 2025``…"""
    babel = _babel()
    where = _locale_of(context, locale)
    if isinstance(value, datetime):
        return str(babel.dates.format_datetime(value, format=format, locale=where))
    return str(babel.dates.format_date(value, format=format, locale=where))


@jinja2.pass_context
def format_time(
    context: Any, value: time | datetime, format: str = "short", locale: str | None = None
) -> str:
    """``{{ slot | format_time }}``: ``2:30 PM`` (en_IN), ``14:30`` (de_DE)…"""
    return str(_babel().dates.format_time(value, format=format, locale=_locale_of(context, locale)))


def filters() -> dict[str, Callable[..., str]]:
    """The locale-aware filters every renderer has (``format_number``, ``format_currency``…)."""
    return {
        "format_number": format_number,
        "format_currency": format_currency,
        "format_date": format_date,
        "format_time": format_time,
    }
