"""notifykit for Django (``pip install "notifykit-py[django]"``).

- ``EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"`` sends Django's
  ``send_mail``/``EmailMessage`` through notifykit's transports and sinks
  (also usable as a ``MAILERS`` backend on Django 6.1+);
- ``settings.NOTIFYKIT`` configures the shared Notifier that
  :func:`get_notifier` returns (see :mod:`notifykit.contrib.django.conf`);
- with ``"notifykit.contrib.django"`` in ``INSTALLED_APPS``: the
  ``Delivery``/``DeliveryAttempt`` models, a read-only admin, the
  :class:`DjangoModelSink`, and the ``notifykit_check``,
  ``notifykit_cleanup`` and ``notifykit_stats`` management commands.

Names are imported on first use, so listing the app in ``INSTALLED_APPS``
does not import models before Django's app registry is ready.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifykit.contrib.django.backend import EmailBackend, email_from_django
    from notifykit.contrib.django.conf import (
        SettingsError,
        build_notifier,
        get_notifier,
        reset_notifier,
        resolve_settings,
    )
    from notifykit.contrib.django.errors import BadHeaderError
    from notifykit.contrib.django.sink import DjangoModelSink

_EXPORTS = {
    "BadHeaderError": "notifykit.contrib.django.errors",
    "EmailBackend": "notifykit.contrib.django.backend",
    "email_from_django": "notifykit.contrib.django.backend",
    "SettingsError": "notifykit.contrib.django.conf",
    "build_notifier": "notifykit.contrib.django.conf",
    "get_notifier": "notifykit.contrib.django.conf",
    "reset_notifier": "notifykit.contrib.django.conf",
    "resolve_settings": "notifykit.contrib.django.conf",
    "DjangoModelSink": "notifykit.contrib.django.sink",
}

__all__ = [
    "BadHeaderError",
    "DjangoModelSink",
    "EmailBackend",
    "SettingsError",
    "build_notifier",
    "email_from_django",
    "get_notifier",
    "reset_notifier",
    "resolve_settings",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
