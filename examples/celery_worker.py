"""Send e-mail from Celery workers: the web process enqueues, a worker delivers and retries.

    celery --workdir examples -A celery_worker worker --loglevel INFO   # the worker
    python examples/celery_worker.py asha@example.com                  # a producer

The broker comes from ``CELERY_BROKER_URL`` (default: a local Redis), the
worker's SMTP server from ``NOTIFYKIT_EMAIL_URL`` and its delivery log from
``NOTIFYKIT_DB``. A send that fails for a transient reason is re-enqueued
with a growing delay (10 s, 30 s, 1.5 min...) instead of holding the worker.
"""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.result import AsyncResult

import notifykit as nk
from notifykit.contrib.celery import make_send_task, send_later

app = Celery(
    "shop",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND"),
)


def build_notifier() -> nk.Notifier:
    """Called once per worker process: its connections and circuit breakers serve every task."""
    return nk.Notifier(
        email=nk.from_dsn(
            os.environ.get("NOTIFYKIT_EMAIL_URL", "smtp://127.0.0.1:1025?security=none")
        ),
        sinks=[nk.SQLiteSink(os.environ.get("NOTIFYKIT_DB", "notifykit.db"))],
        sender="Chai and Co. <orders@shop.example>",
    )


#: The task "notifykit.send": it takes Email.to_dict() and returns the receipt as a dict.
send = make_send_task(app, build_notifier)


def send_welcome(address: str) -> AsyncResult:
    """The producer side, e.g. in a signup view: returns at once, a worker sends the e-mail."""
    welcome = nk.Email(to=address, subject="Welcome to Chai and Co.", text="Thanks for signing up.")
    return send_later(send, welcome)


if __name__ == "__main__":
    print(send_welcome(sys.argv[1] if len(sys.argv) > 1 else "asha@example.com").id)
