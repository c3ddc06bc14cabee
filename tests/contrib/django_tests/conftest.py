"""Set up the Django test project for the tests in this folder only.

Django is configured here, at collection time, from
``tests/contrib/django_project/settings.py`` (unless the run already
configured it), so the rest of the suite needs neither Django nor
pytest-django, and ``pytest tests/`` still runs everything. The whole folder
is skipped when Django or pytest-django is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("django")
pytest.importorskip("pytest_django")

import django
from django.conf import settings

if not settings.configured:
    from tests.contrib.django_project import settings as project_settings

    settings.configure(
        **{
            name: getattr(project_settings, name)
            for name in dir(project_settings)
            if name.isupper()
        }
    )
    django.setup()

if TYPE_CHECKING:
    from tests.servers.smtp import SMTPServer


def smtp_url(server: SMTPServer, **options: str) -> str:
    """The notifykit URL of a plain local test server (no TLS, no DNS lookup for EHLO)."""
    query = "&".join(
        f"{k}={v}"
        for k, v in {"security": "none", "local_hostname": "client.test", **options}.items()
    )
    return f"smtp://127.0.0.1:{server.port}?{query}"


@pytest.fixture
def notifykit_settings(settings: Any, smtp_server: SMTPServer) -> Iterator[SMTPServer]:
    """NOTIFYKIT pointing at a fresh aiosmtpd server, the notifykit backend, the model sink.

    Yields the server. The shared notifier is closed before the server stops.
    """
    from notifykit.contrib.django import reset_notifier

    settings.EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"
    settings.NOTIFYKIT = {"EMAIL_URL": smtp_url(smtp_server), "SINKS": ["django"]}
    try:
        yield smtp_server
    finally:
        reset_notifier()
