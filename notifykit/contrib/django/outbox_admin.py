"""The outbox in the admin: what is waiting, what was sent, what died and why.

Rows are read-only (a message is never edited by hand); staff with the
*change* permission can re-drive dead-lettered rows with the "Queue again"
action, and staff with *delete* can remove finished rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from notifykit.contrib.django.outbox import DjangoOutbox, OutboxAttempt, OutboxMessage

__all__ = ["OutboxAttemptInline", "OutboxMessageAdmin"]


class OutboxAttemptInline(admin.TabularInline):  # type: ignore[misc]
    """The recorded attempts of one outbox message, in order."""

    model = OutboxAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "worker",
        "started_at",
        "finished_at",
        "outcome",
        "maybe_delivered",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """The outbox: filter by state, search, see each message's attempts, re-drive dead ones."""

    list_display = (
        "created_at",
        "state",
        "priority",
        "due_at",
        "recipients",
        "subject",
        "template",
        "attempts",
        "maybe_delivered",
        "last_error",
    )
    list_filter = ("state", "channel", "maybe_delivered", "template")
    search_fields = ("message_id", "recipients", "subject", "idempotency_key", "last_error")
    ordering = ("-id",)
    list_per_page = 50
    show_full_result_count = False
    inlines = (OutboxAttemptInline,)
    actions = ("queue_again",)
    readonly_fields = tuple(
        f.name for f in OutboxMessage._meta.get_fields() if f.concrete and not f.auto_created
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(  # type: ignore[untyped-decorator]
        description=_("Queue again (dead-lettered messages only)"), permissions=("change",)
    )
    def queue_again(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = list(queryset.filter(state="dead").values_list("message_id", flat=True))
        count = DjangoOutbox(using=queryset.db).retry(ids)
        self.message_user(
            request,
            _("%(count)d dead message(s) queued again.") % {"count": count},
            messages.SUCCESS,
        )
