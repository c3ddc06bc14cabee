"""The Django app: ``"notifykit.contrib.django"`` in ``INSTALLED_APPS``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _

__all__ = ["NotifyKitConfig", "check_settings"]

BACKEND = "notifykit.contrib.django.EmailBackend"


class NotifyKitConfig(AppConfig):  # type: ignore[misc]
    """The delivery log (models, admin, migrations) and the management commands.

    The label is ``notifykit`` (tables ``notifykit_delivery`` and
    ``notifykit_deliveryattempt``), not the module's last part, ``django``.
    """

    name = "notifykit.contrib.django"
    label = "notifykit"
    verbose_name = _("notifykit")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_settings, "notifykit")


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """System check (``manage.py check``, ``runserver``): is ``NOTIFYKIT`` valid?

    Resolves the settings and parses the transport URLs -- without connecting
    (``manage.py notifykit_check`` does that) -- so a typo shows at start-up,
    not at the first e-mail.
    """
    from django.conf import settings

    from notifykit.config import from_dsn
    from notifykit.contrib.django.conf import resolve_settings
    from notifykit.errors import ConfigurationError

    uses_backend = getattr(settings, "EMAIL_BACKEND", None) == BACKEND
    if getattr(settings, "NOTIFYKIT", None) is None and not uses_backend:
        return []
    try:
        conf = resolve_settings()
        for key, url in (("EMAIL_URL", conf.email_url), ("SMS_URL", conf.sms_url)):
            if url is None:
                continue
            try:
                from_dsn(url).close()
            except ConfigurationError as exc:
                raise ConfigurationError(f"NOTIFYKIT[{key!r}]: {exc}") from exc
    except ConfigurationError as exc:
        return [
            checks.Error(
                str(exc),
                hint="See https://notifykit.readthedocs.io/en/latest/django/",
                id="notifykit.E001",
            )
        ]
    return []
