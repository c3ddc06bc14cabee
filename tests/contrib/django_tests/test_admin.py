"""The delivery log's admin: read-only, with filters and search."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from notifykit.contrib.django.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

AT = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def deliveries() -> list[Delivery]:
    sent = Delivery.objects.create(
        message_id="m-sent",
        channel="email",
        recipients="asha@example.com",
        subject="Order shipped",
        template="order_shipped",
        status="sent",
        transport="smtp:mail.example.com:587",
        attempts=1,
        created_at=AT,
        status_changed_at=AT,
    )
    DeliveryAttempt.objects.create(
        delivery=sent, event_key="k1", outcome="sent", transport=sent.transport, at=AT
    )
    failed = Delivery.objects.create(
        message_id="m-failed",
        channel="sms",
        recipients="+919876543210",
        template="otp",
        status="failed",
        transport="msg91",
        last_error="quota used",
        created_at=AT,
        status_changed_at=AT,
    )
    return [sent, failed]


def test_changelist_filters_and_search(admin_client: Any, deliveries: list[Delivery]) -> None:
    """The list offers the five filters and finds a delivery by recipient."""
    response = admin_client.get("/admin/notifykit/delivery/", {"q": "asha@"})

    assert 200 == response.status_code
    changelist = response.context["cl"]
    assert ["m-sent"] == [d.message_id for d in changelist.result_list]
    titles = [str(spec.title) for spec in changelist.filter_specs]
    assert ["status", "channel", "template", "transport", "created"] == titles


def test_filter_by_status(admin_client: Any, deliveries: list[Delivery]) -> None:
    """Filtering by status keeps only those rows."""
    response = admin_client.get("/admin/notifykit/delivery/", {"status__exact": "failed"})

    assert ["m-failed"] == [d.message_id for d in response.context["cl"].result_list]


def test_rows_cannot_be_added_changed_or_deleted(
    admin_client: Any, deliveries: list[Delivery]
) -> None:
    """The admin is read-only: no add or delete, and the change page only shows."""
    sent = deliveries[0]
    assert 403 == admin_client.get("/admin/notifykit/delivery/add/").status_code
    assert 403 == admin_client.get(f"/admin/notifykit/delivery/{sent.pk}/delete/").status_code
    page = admin_client.get(f"/admin/notifykit/delivery/{sent.pk}/change/")
    assert 200 == page.status_code
    assert not page.context["has_change_permission"]
    assert b'name="_save"' not in page.content
    assert b"smtp:mail.example.com:587" in page.content  # the attempt inline is shown
    posted = admin_client.post(f"/admin/notifykit/delivery/{sent.pk}/change/", {"status": "failed"})
    assert 403 == posted.status_code
    assert "sent" == Delivery.objects.get(pk=sent.pk).status
