"""Views that send mail the ways Django projects do."""

from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse

from notifykit.contrib.django import get_notifier


def signup(request: HttpRequest) -> HttpResponse:
    """Create a user and send a welcome mail with plain send_mail()."""
    email = request.GET["email"]
    User.objects.create_user(username=email, email=email)
    send_mail("Welcome", "Thanks for signing up.", None, [email])
    return HttpResponse("ok")


def signup_then_crash(request: HttpRequest) -> HttpResponse:
    """Create a user, send the mail, then fail: ATOMIC_REQUESTS rolls the user back."""
    email = request.GET["email"]
    User.objects.create_user(username=email, email=email)
    send_mail("Welcome", "Thanks for signing up.", None, [email])
    raise RuntimeError("the payment step failed after the mail went out")


def order_shipped(request: HttpRequest) -> HttpResponse:
    """Send a templated notification through the shared Notifier."""
    receipt = get_notifier().send_email(
        "emails/order_shipped.html",
        to=request.GET["email"],
        context={"order": {"number": request.GET.get("order", "1001")}},
    )
    return HttpResponse(receipt.message_id)
