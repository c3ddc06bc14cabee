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


#: Django's SMTP settings; notifykit's backend reads them unless NOTIFYKIT names a transport.
EMAIL_SETTINGS = (
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
    "EMAIL_SSL_CERTFILE",
    "EMAIL_SSL_KEYFILE",
)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """System check (``manage.py check``, ``runserver``): is ``NOTIFYKIT`` valid?

    Resolves the settings and parses the transport URLs -- without connecting
    (``manage.py notifykit_check`` does that) -- so a typo shows at start-up,
    not at the first e-mail. With notifykit's ``EMAIL_BACKEND``, a missing
    ``NOTIFYKIT`` (or one without ``EMAIL_URL``) is fine: the backend uses
    Django's ``EMAIL_*`` settings, as Django's SMTP backend does. When
    ``NOTIFYKIT["EMAIL_URL"]`` is set, ``EMAIL_*`` settings changed from
    Django's defaults are reported (``notifykit.W001``): they would be
    silently unused otherwise.
    """
    from django.conf import global_settings, settings

    from notifykit.config import from_dsn
    from notifykit.contrib.django.conf import resolve_settings
    from notifykit.errors import ConfigurationError

    uses_backend = getattr(settings, "EMAIL_BACKEND", None) == BACKEND
    if getattr(settings, "NOTIFYKIT", None) is None:
        return []
    try:
        conf = resolve_settings(require_url=not uses_backend)
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
    unused = [
        name
        for name in EMAIL_SETTINGS
        if getattr(settings, name, None) != getattr(global_settings, name, None)
    ]
    if uses_backend and conf.email_url is not None and unused:
        return [
            checks.Warning(
                f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used: "
                "notifykit's EmailBackend sends through NOTIFYKIT['EMAIL_URL']",
                hint="Put the server in NOTIFYKIT['EMAIL_URL'] and remove the EMAIL_* "
                "settings, or remove EMAIL_URL to use them. get_connection(host=...) "
                "still builds an SMTP connection from them.",
                id="notifykit.W001",
            )
        ]
    return []
