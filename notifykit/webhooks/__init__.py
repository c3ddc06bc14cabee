"""Delivery reports from providers, back into the delivery log and the suppression list.

One :class:`Receiver` per provider turns a webhook request into
:class:`~notifykit.sinks.base.DeliveryEvent` facts (``delivered``,
``bounced``, ``complained``...) with ``handle(body, headers)``, records them in
your sinks and updates your suppression list. Mount it with :func:`wsgi_app`,
:func:`asgi_app`, the Django view or the Flask blueprint. See
docs/delivery-status.md.

- :class:`SESReceiver`: Amazon SES through SNS, signature verified;
- :class:`MSG91Receiver`, :class:`Fast2SMSReceiver`: SMS delivery reports,
  shared secret in the URL.
"""

from __future__ import annotations

from notifykit.webhooks._base import (
    MAX_BODY,
    Receiver,
    SeenStore,
    SQLiteSeenStore,
    WebhookError,
)
from notifykit.webhooks.apps import asgi_app, wsgi_app
from notifykit.webhooks.ses import SESReceiver
from notifykit.webhooks.sms import Fast2SMSReceiver, MSG91Receiver
from notifykit.webhooks.sns import SNSVerifier

__all__ = [
    "MAX_BODY",
    "Fast2SMSReceiver",
    "MSG91Receiver",
    "Receiver",
    "SESReceiver",
    "SNSVerifier",
    "SQLiteSeenStore",
    "SeenStore",
    "WebhookError",
    "asgi_app",
    "wsgi_app",
]
