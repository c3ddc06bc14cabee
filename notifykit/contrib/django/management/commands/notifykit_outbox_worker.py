"""``manage.py notifykit_outbox_worker``: deliver the Django outbox's due messages.

Sends through the project's shared Notifier (``settings.NOTIFYKIT``) until
SIGTERM or Ctrl-C, then finishes the message in hand. Run as many as you like:
rows are leased to one worker at a time (see :mod:`notifykit.contrib.django.outbox`).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifykit.errors import ConfigurationError


class Command(BaseCommand):  # type: ignore[misc]
    help = "Deliver the outbox's due messages through the project's Notifier."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds (1)")
        parser.add_argument("--lease", type=float, default=60.0, help="seconds (60)")
        parser.add_argument("--batch", type=int, default=10, help="rows per claim (10)")
        parser.add_argument("--max-attempts", type=int, help="dead-letter after N tries")
        parser.add_argument("--database", default="default", help="the database alias")
        parser.add_argument(
            "--once", action="store_true", help="process the due rows once and exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from notifykit.contrib.django.conf import get_notifier
        from notifykit.contrib.django.outbox import DjangoOutbox
        from notifykit.outbox import Backoff, Worker

        try:
            worker = Worker(
                DjangoOutbox(using=options["database"]),
                get_notifier(),
                poll_interval=options["poll_interval"],
                lease=options["lease"],
                batch=options["batch"],
                backoff=Backoff(max_attempts=options.get("max_attempts")),
            )
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        if options["once"]:
            while worker.run_once() >= worker.batch:
                pass
        else:
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            worker.run(stop)
        self.stdout.write(
            f"{worker.sent} sent, {worker.retried} to retry, {worker.dead} dead-lettered"
        )
