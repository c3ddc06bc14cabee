"""``manage.py notifykit_check``: is notifykit configured and can it reach its transports?

Resolves ``settings.NOTIFYKIT``, then connects (and authenticates) to every
configured transport -- each member of a failover or round-robin too --
without sending anything, and checks that the delivery-log tables exist when
the ``django`` sink is used. Exits non-zero when something is wrong, so it
fits a deployment pipeline or a health check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from notifykit.contrib.django.conf import build_notifier
from notifykit.errors import NotifyKitError


def _members(transport: Any) -> Iterator[Any]:
    """The transport itself, or the members of a composer, depth first."""
    members = getattr(transport, "transports", None)
    if members is None:
        yield transport
        return
    for member in members:
        yield from _members(member)


class Command(BaseCommand):  # type: ignore[misc]
    help = "Check the NOTIFYKIT settings and connect to every configured transport (sends nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--channel",
            choices=("email", "sms"),
            help="check only this channel's transports",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            notifier = build_notifier()
        except NotifyKitError as exc:
            raise CommandError(f"settings: {exc}") from exc
        failures = 0
        try:
            for channel in ("email", "sms"):
                if options.get("channel") not in (None, channel):
                    continue
                transport = getattr(notifier, channel)
                if transport is None:
                    continue
                for member in _members(transport):
                    failures += not self._check(channel, member)
            failures += not self._check_sinks(notifier.sinks)
        finally:
            notifier.close()
        if failures:
            raise CommandError(f"{failures} check(s) failed")

    def _check(self, channel: str, transport: Any) -> bool:
        check = getattr(transport, "check", None)
        if not callable(check):
            self.stdout.write(f"ok      {channel:5}  {transport}  (nothing to connect to)")
            return True
        t0 = time.perf_counter()
        try:
            check()
        except NotifyKitError as exc:
            self.stdout.write(self.style.ERROR(f"FAILED  {channel:5}  {transport}  {exc}"))
            return False
        ms = (time.perf_counter() - t0) * 1000
        self.stdout.write(self.style.SUCCESS(f"ok      {channel:5}  {transport}  ({ms:.0f} ms)"))
        return True

    def _check_sinks(self, sinks: Any) -> bool:
        from notifykit.contrib.django.models import Delivery
        from notifykit.contrib.django.sink import DjangoModelSink

        ok = True
        for sink in sinks:
            if not isinstance(sink, DjangoModelSink):
                self.stdout.write(f"ok      log    {sink!r}")
                continue
            db = sink._db()
            try:
                Delivery.objects.using(db).exists()
            except DatabaseError as exc:
                self.stdout.write(
                    self.style.ERROR(
                        f"FAILED  log    the delivery log table on {db!r} is not usable "
                        f"({exc}); run manage.py migrate notifykit"
                    )
                )
                ok = False
            else:
                self.stdout.write(self.style.SUCCESS(f"ok      log    Delivery model on {db!r}"))
        return ok
