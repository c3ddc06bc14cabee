"""The Django app: ``"notifykit.contrib.django"`` in ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyKitConfig(AppConfig):  # type: ignore[misc]
    """The delivery log (models, admin, migrations) and the management commands.

    The label is ``notifykit`` (tables ``notifykit_delivery`` and
    ``notifykit_deliveryattempt``), not the module's last part, ``django``.
    """

    name = "notifykit.contrib.django"
    label = "notifykit"
    verbose_name = _("notifykit")
    default_auto_field = "django.db.models.BigAutoField"
