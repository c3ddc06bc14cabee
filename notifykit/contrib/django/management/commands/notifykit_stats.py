"""``manage.py notifykit_stats``: what was sent, what failed, by template and by transport.

Counted as the SQLite log's ``stats()`` counts: ``sent`` is every message that
went out (``sent`` and each status a provider reported later), ``delivered``
includes complaints (a complaint was delivered), and the delivery, bounce and
complaint rates are over the messages that went out -- ``None`` ("-") when no
provider reported anything for them (unknown, not 0%).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from notifykit.contrib.django.models import Delivery

S = Delivery.Status
_REPORTED = (S.DEFERRED, S.DELIVERED, S.BOUNCED, S.REJECTED_BY_PROVIDER, S.COMPLAINED)
_SENT = Q(status__in=(S.SENT, *_REPORTED))
_WITH_REPORT = Q(status__in=_REPORTED)
_DELIVERED = Q(status__in=(S.DELIVERED, S.COMPLAINED))
_BOUNCED = Q(status=S.BOUNCED)
_COMPLAINED = Q(status=S.COMPLAINED)
_COUNTS = {
    "sent": _SENT,
    "failed": Q(status=S.FAILED),
    "queued": Q(status=S.QUEUED),
    "delivered": _DELIVERED,
    "bounced": _BOUNCED,
    "complained": _COMPLAINED,
    "reported": _WITH_REPORT,
}


def _rate(sent: int, failed: int) -> float | None:
    done = sent + failed
    return None if done == 0 else sent / done


def _counts() -> dict[str, Any]:
    return {"total": Count("pk"), **{k: Count("pk", filter=q) for k, q in _COUNTS.items()}}


def _with_rates(row: dict[str, Any]) -> dict[str, Any]:
    """``row``'s counts plus its success, delivery, bounce and complaint rates."""
    reported = row.pop("reported")
    out = row["sent"]
    row["success_rate"] = _rate(out, row["failed"])
    for count, rate in (
        ("delivered", "delivery_rate"),
        ("bounced", "bounce_rate"),
        ("complained", "complaint_rate"),
    ):
        row[rate] = row[count] / out if reported and out else None
    return row


def _group(rows: QuerySet[Delivery], field: str) -> list[dict[str, Any]]:
    grouped = rows.values(field).annotate(**_counts()).order_by("-total", field)
    return [_with_rates({**row, field: row[field] or "-"}) for row in grouped]


def stats(rows: QuerySet[Delivery]) -> dict[str, Any]:
    """Counts and rates of ``rows``, overall, by template and by transport."""
    totals = _with_rates(rows.aggregate(**_counts()))
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
            f"queued {t['queued']}  success {_percent(t['success_rate'])}  "
            f"delivered {_percent(t['delivery_rate'])}  bounced {_percent(t['bounce_rate'])}  "
            f"complained {_percent(t['complaint_rate'])}"
        )
        for field in ("template", "transport"):
            self.stdout.write("")
            self.stdout.write(
                f"{field:40} {'total':>7} {'sent':>7} {'failed':>7} {'queued':>7} {'success':>8}"
                f" {'deliv.':>7} {'bounce':>7} {'compl.':>7}"
            )
            for row in result[f"by_{field}"]:
                self.stdout.write(
                    f"{str(row[field])[:40]:40} {row['total']:>7} {row['sent']:>7} "
                    f"{row['failed']:>7} {row['queued']:>7} {_percent(row['success_rate']):>8}"
                    f" {_percent(row['delivery_rate']):>7} {_percent(row['bounce_rate']):>7}"
                    f" {_percent(row['complaint_rate']):>7}"
                )
