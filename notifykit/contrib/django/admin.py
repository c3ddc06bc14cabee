"""A read-only admin for the delivery log.

The log is a record of facts: nobody adds, edits or deletes rows by hand
(``manage.py notifykit_cleanup --days N`` prunes old ones). Staff with the
*view* permission can filter by status, channel, template, transport and
date, and search by message id, recipient, subject or provider message id.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from notifykit.contrib.django.models import Delivery, DeliveryAttempt

__all__ = ["DeliveryAdmin", "DeliveryAttemptInline"]


class _ReadOnly:
    """No add, change or delete permission: only viewing."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryAttemptInline(_ReadOnly, admin.TabularInline):  # type: ignore[misc]
    """The attempts of one delivery, oldest first."""

    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "at",
        "outcome",
        "transport",
        "error_kind",
        "error",
        "provider_message_id",
        "duration",
        "maybe_delivered",
    )
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly, admin.ModelAdmin):  # type: ignore[misc]
    """The delivery log: filters, search, and each delivery's attempts."""

    list_display = (
        "created_at",
        "channel",
        "recipients",
        "subject",
        "template",
        "status",
        "transport",
        "attempts",
    )
    list_filter = (
        "status",
        "channel",
        "template",
        "transport",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("message_id", "recipients", "subject", "provider_message_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over a big log is slow
    inlines = (DeliveryAttemptInline,)
    fieldsets = (
        (None, {"fields": ("message_id", "channel", "recipients", "subject", "template")}),
        (
            "Outcome",
            {
                "fields": (
                    "status",
                    "transport",
                    "provider_message_id",
                    "attempts",
                    "last_error",
                    "error_kind",
                    "maybe_delivered",
                    "created_at",
                    "status_changed_at",
                    "sent_at",
                )
            },
        ),
        (
            "Provider report",
            {"fields": ("report", "report_kind", "report_reason", "report_at")},
        ),
        ("Tags and metadata", {"fields": ("tags", "metadata"), "classes": ("collapse",)}),
    )
    readonly_fields = tuple(f for _, options in fieldsets for f in options["fields"])


# The outbox's admin lives in its own module; importing it registers it.
from notifykit.contrib.django import outbox_admin as outbox_admin  # noqa: E402
