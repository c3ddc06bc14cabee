"""URLs for the webhook tests: one SES and one MSG91 receiver behind Django views."""

from __future__ import annotations

from django.urls import include, path

from notifykit.contrib.django import DjangoModelSink
from notifykit.contrib.django.webhooks import DjangoSuppressionList, webhook_urls
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.webhooks import MSG91Receiver, SESReceiver
from tests.webhooks.sns import TOPIC, Fetcher

SECRET = "django-test-secret-0123456789abcdef"
LOG = SQLiteSink()
SUPPRESSION = DjangoSuppressionList()
FETCHER = Fetcher()

RECEIVERS = {
    "ses": SESReceiver(
        topics=[TOPIC],
        fetch_certificate=FETCHER,
        confirm=None,
        sinks=[LOG],
        suppression=SUPPRESSION,
    ),
    "ses-models": SESReceiver(
        topics=[TOPIC], fetch_certificate=FETCHER, confirm=None, sinks=[DjangoModelSink()]
    ),
    "msg91": MSG91Receiver(secret=SECRET, sinks=[LOG], suppression=SUPPRESSION),
}

urlpatterns = [path("hooks/", include(webhook_urls(RECEIVERS)))]
