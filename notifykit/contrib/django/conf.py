"""The ``NOTIFYKIT`` settings dict and the project's shared :class:`~notifykit.Notifier`.

One dict in ``settings.py`` configures notifykit for a Django project::

    NOTIFYKIT = {
        "EMAIL_URL": "failover(smtp://app:secret@smtp.example.com smtp://backup.example.com)",
        "SMS_URL": "msg91://AUTHKEY@default?sender=SHOPIN",
        "SENDER": "Shop <noreply@shop.example>",   # default: DEFAULT_FROM_EMAIL
        "SMS_SENDER": "SHOPIN",
        "DEFAULT_REGION": "IN",
        "TEMPLATES": True,       # default: every app's templates/ folder plus TEMPLATES DIRS
        "SINKS": ["django"],     # default: the Delivery model, when the app is installed
        "REDACT_RECIPIENTS": False,
    }

:func:`resolve_settings` checks it and says which key is missing or wrong
(the error is both a :class:`~notifykit.errors.ConfigurationError` and
Django's :class:`~django.core.exceptions.ImproperlyConfigured`);
:func:`get_notifier` builds the Notifier once per process and hands out the
same one -- its transports keep their connections and their circuit breakers
between requests. Changing ``NOTIFYKIT`` (``override_settings`` in tests)
closes it and builds a new one on the next call.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from notifykit.errors import ConfigurationError
from notifykit.notifier import Notifier
from notifykit.sinks.base import LogSink
from notifykit.transports.base import Transport

__all__ = [
    "KNOWN_KEYS",
    "NotifyKitSettings",
    "SettingsError",
    "build_notifier",
    "get_notifier",
    "get_transport_notifier",
    "reset_notifier",
    "resolve_settings",
    "template_dirs",
]

#: Every key ``NOTIFYKIT`` may hold.
KNOWN_KEYS = frozenset(
    {
        "EMAIL_URL",
        "SMS_URL",
        "SENDER",
        "SMS_SENDER",
        "DEFAULT_REGION",
        "TEMPLATES",
        "SINKS",
        "REDACT_RECIPIENTS",
    }
)

#: The short name of the Delivery-model sink in ``SINKS``.
MODEL_SINK = "django"
APP_NAME = "notifykit.contrib.django"


class SettingsError(ConfigurationError, ImproperlyConfigured):  # type: ignore[misc]
    """``settings.NOTIFYKIT`` is missing, or one of its keys is wrong; the message names it.

    It is a :class:`~notifykit.errors.ConfigurationError` for notifykit code
    and an :class:`~django.core.exceptions.ImproperlyConfigured` for Django
    code, so either ``except`` catches it.
    """


@dataclass(frozen=True)
class NotifyKitSettings:
    """``settings.NOTIFYKIT``, checked and with its defaults filled in.

    ``templates`` is ``None`` (no templates), a tuple of directories, or a
    renderer object given as is. ``sinks`` holds the raw ``SINKS`` items;
    :func:`build_notifier` turns them into sinks.
    """

    email_url: str | None
    sms_url: str | None
    sender: str | None
    sms_sender: str | None
    default_region: str | None
    templates: tuple[Path, ...] | Any | None
    sinks: tuple[Any, ...]
    redact_recipients: bool


def _where(key: str, index: int | None = None) -> str:
    return f"NOTIFYKIT[{key!r}]" + (f"[{index}]" if index is not None else "")


def _optional_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{_where(key)} must be a string, got {type(value).__name__}")
    return value.strip() or None


def template_dirs() -> tuple[Path, ...]:
    """The directories Django would search for templates, in Django's order.

    Every ``DIRS`` of every ``TEMPLATES`` backend first, then the
    ``templates/`` folder of each installed app, in ``INSTALLED_APPS`` order
    (what Django's app-directories loader searches). Duplicates are dropped.
    """
    from django.template.utils import get_app_template_dirs

    found: dict[Path, None] = {}
    for backend in getattr(settings, "TEMPLATES", ()):
        for directory in backend.get("DIRS", ()):
            found.setdefault(Path(directory), None)
    for directory in get_app_template_dirs("templates"):
        found.setdefault(Path(directory), None)
    return tuple(found)


def _templates(raw: Mapping[str, Any]) -> tuple[Path, ...] | Any | None:
    value = raw.get("TEMPLATES", True)
    if value is True:
        return template_dirs()
    if value is False or value is None:
        return None
    if callable(getattr(value, "render", None)):
        return value  # a ready renderer
    items: Sequence[Any]
    if isinstance(value, (str, os.PathLike)):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise SettingsError(
            f"{_where('TEMPLATES')} must be True (Django's template folders), False, "
            f"a directory, a list of directories or a TemplateRenderer; got {value!r}"
        )
    dirs: list[Path] = []
    for i, item in enumerate(items):
        if not isinstance(item, (str, os.PathLike)):
            raise SettingsError(f"{_where('TEMPLATES', i)} must be a path, got {item!r}")
        path = Path(item)
        if not path.is_dir():
            raise SettingsError(f"{_where('TEMPLATES', i)}: {str(path)!r} is not a directory")
        dirs.append(path)
    return tuple(dirs)


def _sinks(raw: Mapping[str, Any]) -> tuple[Any, ...]:
    from django.apps import apps

    if "SINKS" not in raw:
        return (MODEL_SINK,) if apps.is_installed(APP_NAME) else ()
    value = raw["SINKS"]
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SettingsError(
            f'{_where("SINKS")} must be a list, e.g. ["django", "logging://"]; got {value!r}'
        )
    for i, item in enumerate(value):
        if isinstance(item, str):
            if item == MODEL_SINK and not apps.is_installed(APP_NAME):
                raise SettingsError(
                    f"{_where('SINKS', i)}: the 'django' sink writes the Delivery model; "
                    f"add {APP_NAME!r} to INSTALLED_APPS and run migrate"
                )
        elif not callable(getattr(item, "record", None)):
            raise SettingsError(
                f"{_where('SINKS', i)} must be 'django', a log URL (sqlite:///path, "
                f"jsonl:///path, logging://), a dotted path or a LogSink; got {item!r}"
            )
    return tuple(value)


def resolve_settings(
    raw: Mapping[str, Any] | None = None, *, require_url: bool = True, **overrides: Any
) -> NotifyKitSettings:
    """Check ``settings.NOTIFYKIT`` (or ``raw``) and fill in its defaults.

    ``overrides`` replace keys (``EMAIL_URL="console://"``). Raises
    :class:`SettingsError` naming the missing or wrong key; an unknown key is
    an error too (with the closest known key suggested), because a typo
    would otherwise silently fall back to a default. ``require_url=False``
    accepts settings without ``EMAIL_URL`` and ``SMS_URL`` (the e-mail
    backend then builds its transport from Django's ``EMAIL_*`` settings).
    """
    if raw is None:
        raw = getattr(settings, "NOTIFYKIT", None)
        if raw is None and not overrides:
            raise SettingsError(
                "settings.NOTIFYKIT is missing: add e.g. "
                "NOTIFYKIT = {'EMAIL_URL': 'smtp://user:password@smtp.example.com'} "
                "(or 'console://' in development)"
            )
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"settings.NOTIFYKIT must be a dict, got {type(raw).__name__}")
    merged = {**raw, **overrides}
    for key in merged:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(str(key), sorted(KNOWN_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(
                f"NOTIFYKIT has an unknown key {key!r}{hint}; known keys: "
                f"{', '.join(sorted(KNOWN_KEYS))}"
            )
    email_url = _optional_str(merged, "EMAIL_URL")
    sms_url = _optional_str(merged, "SMS_URL")
    if require_url and email_url is None and sms_url is None:
        raise SettingsError(
            "NOTIFYKIT needs 'EMAIL_URL' and/or 'SMS_URL' "
            "(e.g. 'EMAIL_URL': 'smtp://user:password@smtp.example.com', or 'console://')"
        )
    sender = _optional_str(merged, "SENDER")
    if sender is None and (email_url is not None or not require_url):
        sender = getattr(settings, "DEFAULT_FROM_EMAIL", None) or None
    redact = merged.get("REDACT_RECIPIENTS", False)
    if not isinstance(redact, bool):
        raise SettingsError(f"{_where('REDACT_RECIPIENTS')} must be True or False, got {redact!r}")
    return NotifyKitSettings(
        email_url=email_url,
        sms_url=sms_url,
        sender=sender,
        sms_sender=_optional_str(merged, "SMS_SENDER"),
        default_region=_optional_str(merged, "DEFAULT_REGION"),
        templates=_templates(merged),
        sinks=_sinks(merged),
        redact_recipients=redact,
    )


def _build_sink(item: Any, index: int) -> LogSink:
    if not isinstance(item, str):
        sink: LogSink = item
        return sink
    where = _where("SINKS", index)
    if item == MODEL_SINK:
        from notifykit.contrib.django.sink import DjangoModelSink

        return DjangoModelSink()
    if "://" in item:
        from notifykit.config import sink_from_url

        try:
            return sink_from_url(item)
        except ConfigurationError as exc:
            raise SettingsError(f"{where}: {exc}") from exc
    try:
        factory = import_string(item)
    except ImportError as exc:
        raise SettingsError(f"{where}: cannot import {item!r}: {exc}") from exc
    made = factory() if callable(factory) else factory
    if not callable(getattr(made, "record", None)):
        raise SettingsError(f"{where}: {item!r} did not give a LogSink (no record() method)")
    return made  # type: ignore[no-any-return]


def _renderer(templates: tuple[Path, ...] | Any | None) -> Any:
    if templates is None or not isinstance(templates, tuple):
        return templates  # none, or a renderer given as is
    from notifykit.contrib._folders import FolderRenderer

    # Under DEBUG an edited template shows at the next render, as Django's own do.
    return FolderRenderer(templates, debug=bool(getattr(settings, "DEBUG", False)))


def build_notifier(raw: Mapping[str, Any] | None = None, **overrides: Any) -> Notifier:
    """A new Notifier from ``settings.NOTIFYKIT`` (or ``raw``) with ``overrides`` applied.

    The caller owns it and closes it. Most code wants the shared
    :func:`get_notifier` instead.
    """
    from notifykit.config import from_dsn

    conf = resolve_settings(raw, **overrides)
    transports: dict[str, Any] = {}
    for key, url in (("EMAIL_URL", conf.email_url), ("SMS_URL", conf.sms_url)):
        if url is None:
            continue
        try:
            transports[key] = from_dsn(url)
        except ConfigurationError as exc:
            raise SettingsError(f"{_where(key)}: {exc}") from exc
    sinks = [_build_sink(item, i) for i, item in enumerate(conf.sinks)]
    try:
        return Notifier(
            email=transports.get("EMAIL_URL"),
            sms=transports.get("SMS_URL"),
            templates=_renderer(conf.templates),
            sinks=sinks,
            sender=conf.sender,
            sms_sender=conf.sms_sender,
            default_region=conf.default_region,
            redact_recipients=conf.redact_recipients,
        )
    except ConfigurationError as exc:
        raise SettingsError(f"NOTIFYKIT: {exc}") from exc
    except ValueError as exc:  # InvalidMessage: a malformed SENDER
        raise SettingsError(f"{_where('SENDER')}: {exc}") from exc


_lock = threading.Lock()
_notifiers: dict[str | None, Notifier] = {}


def get_notifier(email_url: str | None = None) -> Notifier:
    """The project's shared Notifier, built from ``settings.NOTIFYKIT`` on first use.

    The same object is returned to every thread, so connections and circuit
    breakers are shared by the whole process. ``email_url`` gives a shared
    Notifier that differs only in its e-mail transport (one per URL; the
    e-mail backend's ``email_url`` option uses it).
    """
    notifier = _notifiers.get(email_url)
    if notifier is not None:
        return notifier
    with _lock:
        notifier = _notifiers.get(email_url)
        if notifier is None:
            overrides = {} if email_url is None else {"EMAIL_URL": email_url}
            notifier = build_notifier(None, **overrides)
            _notifiers[email_url] = notifier
        return notifier


#: Notifiers around transports built from Django's ``EMAIL_*`` settings, by configuration.
_transport_notifiers: dict[Hashable, Notifier] = {}
_MAX_TRANSPORT_NOTIFIERS = 16


def get_transport_notifier(key: Hashable, make_transport: Callable[[], Transport]) -> Notifier:
    """A shared Notifier sending e-mail through ``make_transport()``, built once per ``key``.

    Its sinks, default sender and recipient redaction come from ``NOTIFYKIT``
    when that is set (``EMAIL_URL`` may be absent), else from the defaults
    (the ``Delivery`` model when the app is installed; ``DEFAULT_FROM_EMAIL``).
    The e-mail backend uses it for connections built from Django's
    ``EMAIL_*`` settings and ``get_connection()`` options, so one
    configuration keeps one transport (and its TLS context) per process. At
    most 16 are kept; the oldest is closed when a 17th is built.
    """
    notifier = _transport_notifiers.get(key)
    if notifier is not None:
        return notifier
    with _lock:
        notifier = _transport_notifiers.get(key)
        if notifier is not None:
            return notifier
        raw = getattr(settings, "NOTIFYKIT", None)
        conf = resolve_settings(raw if raw is not None else {}, require_url=False)
        sinks = [_build_sink(item, i) for i, item in enumerate(conf.sinks)]
        try:
            notifier = Notifier(
                email=make_transport(),
                sinks=sinks,
                sender=conf.sender,
                redact_recipients=conf.redact_recipients,
            )
        except ConfigurationError as exc:
            raise SettingsError(str(exc)) from exc
        except ValueError as exc:  # InvalidMessage: a malformed SENDER / DEFAULT_FROM_EMAIL
            raise SettingsError(f"{_where('SENDER')}: {exc}") from exc
        _transport_notifiers[key] = notifier
        evicted = []
        while len(_transport_notifiers) > _MAX_TRANSPORT_NOTIFIERS:
            evicted.append(_transport_notifiers.pop(next(iter(_transport_notifiers))))
    for old in evicted:
        old.close()
    return notifier


def reset_notifier() -> None:
    """Close the shared Notifiers; the next :func:`get_notifier` builds new ones."""
    with _lock:
        old = [*_notifiers.values(), *_transport_notifiers.values()]
        _notifiers.clear()
        _transport_notifiers.clear()
    for notifier in old:
        notifier.close()


_WATCHED = frozenset(
    {
        "NOTIFYKIT",
        "DEFAULT_FROM_EMAIL",
        "INSTALLED_APPS",
        "TEMPLATES",
        # The backend's own SMTP connections: their keys hold these values, so
        # a change only frees the old connections.
        "EMAIL_HOST",
        "EMAIL_PORT",
    }
)


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        reset_notifier()


setting_changed.connect(_on_setting_changed, dispatch_uid="notifykit.contrib.django.conf.reset")
