"""``manage.py notifykit_stats``: what was sent, what failed, by template and by transport."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from notifykit.contrib.django.models import Delivery

_SENT = Q(status=Delivery.Status.SENT)
_FAILED = Q(status=Delivery.Status.FAILED)
_QUEUED = Q(status=Delivery.Status.QUEUED)


def _rate(sent: int, failed: int) -> float | None:
    done = sent + failed
    return None if done == 0 else sent / done


def _group(rows: QuerySet[Delivery], field: str) -> list[dict[str, Any]]:
    grouped = (
        rows.values(field)
        .annotate(
            total=Count("pk"),
            sent=Count("pk", filter=_SENT),
            failed=Count("pk", filter=_FAILED),
            queued=Count("pk", filter=_QUEUED),
        )
        .order_by("-total", field)
    )
    return [
        {
            field: row[field] or "-",
            "total": row["total"],
            "sent": row["sent"],
            "failed": row["failed"],
            "queued": row["queued"],
            "success_rate": _rate(row["sent"], row["failed"]),
        }
        for row in grouped
    ]


def stats(rows: QuerySet[Delivery]) -> dict[str, Any]:
    """Counts and success rates of ``rows``, overall, by template and by transport."""
    totals = rows.aggregate(
        total=Count("pk"),
        sent=Count("pk", filter=_SENT),
        failed=Count("pk", filter=_FAILED),
        queued=Count("pk", filter=_QUEUED),
    )
    totals["success_rate"] = _rate(totals["sent"], totals["failed"])
    return {
        "totals": totals,
        "by_template": _group(rows, "template"),
        "by_transport": _group(rows, "transport"),
    }


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


class Command(BaseCommand):  # type: ignore[misc]
    help = "Print delivery counts and success rates, by template and by transport."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="only the last N days (default: all)")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--database", help="the database alias (default: the router's)")

    def handle(self, *args: Any, **options: Any) -> None:
        db = options.get("database") or router.db_for_read(Delivery) or "default"
        rows = Delivery.objects.using(db).all()
        days = options.get("days")
        if days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1")
            rows = rows.filter(created_at__gte=timezone.now() - timedelta(days=days))
        result = stats(rows)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        t = result["totals"]
        self.stdout.write(
            f"total {t['total']}  sent {t['sent']}  failed {t['failed']}  "
            f"queued {t['queued']}  success {_percent(t['success_rate'])}"
        )
        for field in ("template", "transport"):
            self.stdout.write("")
            self.stdout.write(
                f"{field:40} {'total':>7} {'sent':>7} {'failed':>7} {'queued':>7} {'success':>8}"
            )
            for row in result[f"by_{field}"]:
                self.stdout.write(
                    f"{str(row[field])[:40]:40} {row['total']:>7} {row['sent']:>7} "
                    f"{row['failed']:>7} {row['queued']:>7} {_percent(row['success_rate']):>8}"
                )
