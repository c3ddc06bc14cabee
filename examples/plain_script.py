"""A cron job that e-mails today's shipping notices: failover, templates, a delivery log.

    python -m aiosmtpd -n -l 127.0.0.1:1025 &     # a local SMTP server that prints what it gets
    python examples/plain_script.py

Nothing listens on the primary's address (127.0.0.1:2525), so the first
message is retried once and then goes out through the backup; the primary
then rests for five minutes and later messages skip it at no cost. Every
attempt is written to a SQLite log, whose stats are printed at the end.

Use your own servers with ``--primary``/``--backup`` or ``PRIMARY_SMTP_URL``/
``BACKUP_SMTP_URL`` (``smtp://user:password@smtp.example.com:587``, see
docs/configuration.md). The exit status is 1 when a message was not sent.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import notifykit as nk

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: What a real job would read from its database.
SHIPPED_TODAY: list[dict[str, Any]] = [
    {
        "customer": {"name": "Asha", "email": "asha@example.com"},
        "order": {"number": "A-1042", "carrier": "BlueDart", "tracking_url": "https://t.example/1"},
    },
    {
        "customer": {"name": "Ravi", "email": "ravi@example.com"},
        "order": {"number": "A-1043", "carrier": "DTDC", "tracking_url": "https://t.example/2"},
    },
    {
        "customer": {"name": "Meera", "email": "meera@example.com"},
        "order": {"number": "A-1044", "carrier": "BlueDart", "tracking_url": "https://t.example/3"},
    },
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="E-mail today's shipping notices.")
    parser.add_argument(
        "--primary",
        default=os.environ.get("PRIMARY_SMTP_URL", "smtp://127.0.0.1:2525?security=none"),
    )
    parser.add_argument(
        "--backup",
        default=os.environ.get("BACKUP_SMTP_URL", "smtp://127.0.0.1:1025?security=none"),
    )
    parser.add_argument("--db", default="notifykit.db", help="the SQLite delivery log")
    args = parser.parse_args(argv)

    transport = nk.FailoverTransport(
        [nk.from_dsn(args.primary), nk.from_dsn(args.backup)],
        retry=nk.Retry(attempts=2, initial=0.5, deadline=30),  # one quick retry, then the backup
        cooldown=300,  # a failed server is skipped for five minutes
    )
    log = nk.SQLiteSink(args.db)
    failed = 0
    with nk.Notifier(
        email=transport,
        templates=nk.TemplateRenderer.from_directory(TEMPLATES),
        sinks=[log],
        sender="Chai and Co. <orders@shop.example>",
    ) as notifier:
        for row in SHIPPED_TODAY:
            number = row["order"]["number"]
            try:
                receipt = notifier.send_email(
                    "order_shipped.html",
                    to=row["customer"]["email"],
                    context={"shop": "Chai and Co.", **row},
                )
            except nk.NotifyKitError as exc:  # one failure must not stop the others
                failed += 1
                print(f"not sent {number}: {exc}")
            else:
                path = ", ".join(f"{a.transport} {a.outcome}" for a in receipt.attempts)
                print(f"sent     {number}: {path}")

    # Closing the Notifier flushed the log; it can still be read.
    for group in ("template", "transport"):
        print(f"\nby {group}:")
        for stat in log.stats(group_by=group):
            rate = "-" if stat.success_rate is None else f"{stat.success_rate:.0%}"
            print(f"  {stat.key}: {stat.sent} sent, {stat.failed} failed, success {rate}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
