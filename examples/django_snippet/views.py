"""Sending from Django views: plain ``send_mail()``, and a template through ``get_notifier()``."""

from __future__ import annotations

from django.core.mail import send_mail
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from notifykit.contrib.django import get_notifier


@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    """Django's own API: EMAIL_BACKEND sends it through notifykit's transports and log."""
    send_mail("Welcome to Chai and Co.", "Thanks for signing up.", None, [request.POST["email"]])
    return JsonResponse({"ok": True})


@require_POST
def ship(request: HttpRequest, number: str) -> JsonResponse:
    """A notification template rendered and sent by the project's shared Notifier."""
    receipt = get_notifier().send_email(
        "order_shipped.html",
        to=request.POST["email"],
        context={
            "shop": "Chai and Co.",
            "customer": {"name": request.POST.get("name", "there")},
            "order": {
                "number": number,
                "carrier": "BlueDart",
                "tracking_url": f"https://t.example/{number}",
            },
        },
    )
    return JsonResponse({"message_id": receipt.message_id, "transport": receipt.transport})
