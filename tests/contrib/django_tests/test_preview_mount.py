"""The template preview mounted in the Django test project: staff only, with Django's client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import include, path

from notifykit.contrib.django.preview import preview_urls
from notifykit.transports.memory import MemoryTransport
from tests.preview.samples import write_templates

OUTBOX = MemoryTransport()
urlpatterns: list[Any] = []


@pytest.fixture
def mounted(settings: Any, tmp_path: Path) -> Path:
    """This module is the URLconf: the preview at /mail/preview/."""
    folder = write_templates(tmp_path)
    OUTBOX.clear()
    urlpatterns[:] = [
        path("mail/preview/", include(preview_urls(folder, send_via=OUTBOX))),
    ]
    settings.ROOT_URLCONF = __name__
    return folder


def staff_client(django_user_model: Any, *, staff: bool) -> Client:
    user = django_user_model.objects.create_user(
        username="staff" if staff else "customer", password="x", is_staff=staff
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_anonymous_and_non_staff_users_get_404(mounted: Path, django_user_model: Any) -> None:
    """Nobody but staff learns the preview exists."""
    assert 404 == Client().get("/mail/preview/").status_code
    assert 404 == staff_client(django_user_model, staff=False).get("/mail/preview/").status_code


@pytest.mark.django_db
def test_staff_see_the_index_and_a_template(mounted: Path, django_user_model: Any) -> None:
    """Links carry the mount point; a template page renders its parts."""
    client = staff_client(django_user_model, staff=True)
    index = client.get("/mail/preview/")
    assert 200 == index.status_code
    assert 'href="/mail/preview/view/welcome.html"' in index.content.decode()
    page = client.get("/mail/preview/view/welcome.html")
    assert 200 == page.status_code
    assert "Welcome to Chai &amp; Co., Asha" in page.content.decode()
    assert "default-src 'none'" in page["Content-Security-Policy"]
    state = client.get("/mail/preview/api/state")
    assert "version" in state.json()


@pytest.mark.django_db
def test_staff_send_a_test_with_the_preview_token(mounted: Path, django_user_model: Any) -> None:
    """The send form works under Django's CSRF middleware with the preview's own token."""
    client = staff_client(django_user_model, staff=True)
    page = client.get("/mail/preview/view/welcome.html").content.decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = {"template": "welcome.html", "case": "default", "to": "asha@example.com"}
    assert 403 == client.post("/mail/preview/send", {**form, "csrf": "wrong"}).status_code
    sent = client.post("/mail/preview/send", {**form, "csrf": token.group(1)})
    assert 200 == sent.status_code
    assert 1 == len(OUTBOX)
