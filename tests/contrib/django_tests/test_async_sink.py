"""DjangoModelSink under ``Notifier.asend``: the ORM write goes through sync_to_async."""

from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import SynchronousOnlyOperation

import notifykit as nk
from notifykit.contrib.django import DjangoModelSink
from notifykit.contrib.django.models import Delivery
from notifykit.sinks.base import DeliveryEvent


@pytest.mark.django_db(transaction=True)
def test_asend_records_rows_through_the_orm() -> None:
    """An async view's asend_email-like call logs one SENT row (no SynchronousOnlyOperation)."""
    sink = DjangoModelSink()
    notifier = nk.Notifier(email=nk.MemoryTransport(), sinks=[sink], strict_sinks=True)
    message = nk.Email(to="asha@example.com", subject="Hi", text="t", sender="s@example.com")

    async def view() -> nk.Receipt:
        return await notifier.asend(message)

    try:
        receipt = asyncio.run(view())
    finally:
        sink.close()
    row = Delivery.objects.get()
    assert receipt.message_id == row.message_id
    assert Delivery.Status.SENT == row.status


@pytest.mark.django_db(transaction=True)
def test_calling_record_on_the_loop_would_fail() -> None:
    """Why arecord() exists: Django refuses ORM calls made on a running event loop."""
    sink = DjangoModelSink()
    event = DeliveryEvent(
        message_id="m-1", status="queued", channel="email", recipients=("a@example.com",)
    )

    async def on_loop() -> None:
        sink.record(event)

    try:
        with pytest.raises(SynchronousOnlyOperation):
            asyncio.run(on_loop())
    finally:
        sink.close()
