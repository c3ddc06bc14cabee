"""``manage.py notifykit_cleanup --days N``: delete delivery-log rows older than N days.

Rows are deleted in batches (their attempts with them), so a large log is
pruned without one huge transaction or loading every row into memory.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router, transaction
from django.utils import timezone

from notifykit.contrib.django.models import Delivery


class Command(BaseCommand):  # type: ignore[misc]
    help = "Delete delivery-log rows (and their attempts) older than --days N."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, required=True, help="keep the last N days (N >= 1)")
        parser.add_argument(
            "--status",
            action="append",
            choices=list(Delivery.Status.values),
            help="delete only rows with this status (repeatable); default: all",
        )
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--database", help="the database alias (default: the router's)")

    def handle(self, *args: Any, **options: Any) -> None:
        days: int = options["days"]
        batch: int = options["batch_size"]
        if days < 1:
            raise CommandError("--days must be at least 1")
        if batch < 1:
            raise CommandError("--batch-size must be at least 1")
        db = options.get("database") or router.db_for_write(Delivery) or "default"
        cutoff = timezone.now() - timedelta(days=days)
        old = Delivery.objects.using(db).filter(created_at__lt=cutoff)
        if options.get("status"):
            old = old.filter(status__in=options["status"])
        total = old.count()
        if options["dry_run"]:
            self.stdout.write(f"{total} deliveries older than {days} days would be deleted")
            return
        deleted = 0
        for _ in range(total // batch + 1):  # bounded: at most the rows counted above
            ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            with transaction.atomic(using=db):
                Delivery.objects.using(db).filter(pk__in=ids).delete()
            deleted += len(ids)
        self.stdout.write(f"deleted {deleted} deliveries older than {days} days")
