"""The Django e-mail backend against a real aiosmtpd server."""

from __future__ import annotations

from email.mime.image import MIMEImage
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection, send_mail

from notifykit.contrib.django import EmailBackend, email_from_django
from notifykit.contrib.django.models import Delivery
from notifykit.errors import InvalidMessage, RejectedError
from tests.contrib.django_tests.conftest import smtp_url
from tests.servers.smtp import SMTPServer

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_send_mail_is_delivered_and_logged(notifykit_settings: SMTPServer) -> None:
    """Plain send_mail() goes through notifykit to the SMTP server and into the Delivery table."""
    sent = send_mail("Welcome", "Hello Asha", None, ["asha@example.com"])

    assert 1 == sent
    [received] = notifykit_settings.messages
    assert ("asha@example.com",) == received.rcpt_tos
    assert "noreply@shop.example" == received.mail_from
    assert "Welcome" == received.message["Subject"]
    assert "Hello Asha" == received.message.get_content().strip()
    row = Delivery.objects.get()
    assert Delivery.Status.SENT == row.status
    assert "asha@example.com" == row.recipients
    assert "Welcome" == row.subject
    assert 1 == row.attempts
    assert received.message["Message-ID"] == row.provider_message_id


def test_multi_alternatives_keep_every_part(notifykit_settings: SMTPServer) -> None:
    """HTML alternative, cc, bcc, reply-to, extra headers and all attachment kinds arrive."""
    message = EmailMultiAlternatives(
        subject="Your invoice",
        body="Plain text",
        from_email="Billing <billing@shop.example>",
        to=["asha@example.com"],
        cc=["ravi@example.com"],
        bcc=["audit@shop.example"],
        reply_to=["help@shop.example"],
        headers={"X-Order": "1001"},
    )
    message.attach_alternative('<p>HTML <img src="cid:logo"></p>', "text/html")
    message.attach("invoice.pdf", b"%PDF-1.4 fake", "application/pdf")
    message.attach("notes.txt", "résumé", None)
    logo = MIMEImage(PNG, "png")
    logo.add_header("Content-ID", "<logo>")
    message.attach(logo)

    assert 1 == message.send()

    [received] = notifykit_settings.messages
    mime = received.message
    assert {"asha@example.com", "ravi@example.com", "audit@shop.example"} == set(received.rcpt_tos)
    assert None is mime["Bcc"]
    assert "ravi@example.com" == mime["Cc"]
    assert "help@shop.example" == mime["Reply-To"]
    assert "1001" == mime["X-Order"]
    assert "Plain text" == mime.get_body(("plain",)).get_content().strip()
    assert "HTML" in mime.get_body(("html",)).get_content()
    files = {part.get_filename(): part for part in mime.iter_attachments()}
    assert b"%PDF-1.4 fake" == files["invoice.pdf"].get_content()
    assert "résumé" == files["notes.txt"].get_content().rstrip()
    inline = [p for p in mime.walk() if p["Content-ID"] == "<logo>"]
    assert 1 == len(inline)
    assert PNG == inline[0].get_content()


def test_html_body_is_sent_as_html(notifykit_settings: SMTPServer) -> None:
    """A message whose content_subtype is html has an HTML body and no text part."""
    message = EmailMessage("Hi", "<p>Hi <b>there</b></p>", None, ["asha@example.com"])
    message.content_subtype = "html"

    message.send()

    mime = notifykit_settings.messages[0].message
    assert "text/html" == mime.get_content_type()


def test_batch_uses_one_connection_and_closes_it(notifykit_settings: SMTPServer) -> None:
    """send_messages() sends a batch over one SMTP connection and says QUIT after it."""
    messages = [
        EmailMessage(f"Message {i}", "body", None, [f"user{i}@example.com"]) for i in range(3)
    ]

    sent = get_connection().send_messages(messages)

    assert 3 == sent
    assert 3 == len(notifykit_settings.messages)
    assert 1 == notifykit_settings.connections
    assert notifykit_settings.wait_for(lambda: notifykit_settings.open_connections == 0)


def test_open_connection_spans_batches(notifykit_settings: SMTPServer) -> None:
    """Inside `with get_connection()`, several batches share one connection."""
    with get_connection() as connection:
        connection.send_messages([EmailMessage("A", "a", None, ["a@example.com"])])
        connection.send_messages([EmailMessage("B", "b", None, ["b@example.com"])])

    assert 2 == len(notifykit_settings.messages)
    assert 1 == notifykit_settings.connections


def test_keep_open_leaves_the_connection_for_the_next_batch(
    notifykit_settings: SMTPServer,
) -> None:
    """keep_open=True does not QUIT after a batch, so the next batch reuses the connection."""
    backend = EmailBackend(keep_open=True)
    backend.send_messages([EmailMessage("A", "a", None, ["a@example.com"])])
    EmailBackend(keep_open=True).send_messages([EmailMessage("B", "b", None, ["b@example.com"])])

    assert 1 == notifykit_settings.connections
    assert 1 == notifykit_settings.open_connections


def test_messages_without_recipients_are_skipped(notifykit_settings: SMTPServer) -> None:
    """A message with no recipient is not sent and not counted, as with Django's SMTP backend."""
    assert 0 == get_connection().send_messages([EmailMessage("A", "a", None, [])])
    assert [] == notifykit_settings.messages


def test_delivery_error_raises_without_fail_silently(notifykit_settings: SMTPServer) -> None:
    """A refused recipient raises RejectedError, and the failure is in the log."""
    notifykit_settings.fail("RCPT", "550 5.1.1 No such user")

    with pytest.raises(RejectedError):
        send_mail("Hi", "body", None, ["nobody@example.com"])

    row = Delivery.objects.get()
    assert Delivery.Status.FAILED == row.status
    assert "No such user" in row.last_error


def test_fail_silently_skips_undelivered_messages(notifykit_settings: SMTPServer) -> None:
    """With fail_silently=True an undelivered message is skipped, counted out and still logged."""
    notifykit_settings.fail("RCPT", "550 5.1.1 No such user", match="nobody@example.com")
    messages = [
        EmailMessage("Lost", "x", None, ["nobody@example.com"]),
        EmailMessage("Kept", "y", None, ["asha@example.com"]),
    ]

    sent = get_connection(fail_silently=True).send_messages(messages)

    assert 1 == sent
    assert ["Kept"] == [m.message["Subject"] for m in notifykit_settings.messages]
    assert {"Lost": "failed", "Kept": "sent"} == dict(
        Delivery.objects.values_list("subject", "status")
    )


def test_fail_silently_never_hides_an_invalid_message(notifykit_settings: SMTPServer) -> None:
    """A header injection is a bug: it raises InvalidMessage even with fail_silently=True."""
    message = EmailMessage("Hi\nBcc: victim@example.com", "x", None, ["asha@example.com"])

    with pytest.raises(InvalidMessage):
        get_connection(fail_silently=True).send_messages([message])
    assert [] == notifykit_settings.messages


def test_the_receipt_is_attached_to_the_django_message(notifykit_settings: SMTPServer) -> None:
    """After sending, message.notifykit_receipt holds notifykit's Receipt."""
    message = EmailMessage("Hi", "x", None, ["asha@example.com"])
    message.send()

    receipt: Any = message.notifykit_receipt  # type: ignore[attr-defined]
    assert ("asha@example.com",) == receipt.accepted
    assert notifykit_settings.messages[0].message["Message-ID"] == receipt.provider_message_id


def test_email_url_option_sends_elsewhere(notifykit_settings: SMTPServer, settings: Any) -> None:
    """The email_url option (a MAILERS OPTION on Django 6.1) picks another transport."""
    with SMTPServer() as other:
        backend = EmailBackend(alias="bulk", email_url=smtp_url(other))
        backend.send_messages([EmailMessage("Bulk", "x", None, ["asha@example.com"])])
        from notifykit.contrib.django import reset_notifier

        reset_notifier()
        assert 1 == len(other.messages)
    assert [] == notifykit_settings.messages


def test_failover_url_reaches_the_backup(notifykit_settings: SMTPServer, settings: Any) -> None:
    """With a failover URL whose primary is down, send_mail is delivered by the backup."""
    from tests.servers import closed_port

    backup = smtp_url(notifykit_settings)
    primary = f"smtp://127.0.0.1:{closed_port()}?security=none&local_hostname=client.test"
    settings.NOTIFYKIT = {
        "EMAIL_URL": f"failover({primary} {backup})?retry_attempts=1",
        "SINKS": ["django"],
    }

    send_mail("Hi", "body", None, ["asha@example.com"])

    assert 1 == len(notifykit_settings.messages)
    row = Delivery.objects.get()
    assert Delivery.Status.SENT == row.status
    assert 2 == row.attempts
    assert f"smtp:127.0.0.1:{notifykit_settings.port}" == row.transport
    assert ["attempt_failed", "sent"] == [a.outcome for a in row.attempt_log.all()]


def test_auth_user_builds_an_smtp_connection_from_django_settings(
    notifykit_settings: SMTPServer, settings: Any
) -> None:
    """send_mail(auth_user=..., auth_password=...) is honoured as Django does, not ignored.

    The credentials go to an SMTP connection built from EMAIL_HOST/EMAIL_PORT
    (here a server without those users, which refuses them) -- never to
    NOTIFYKIT's transport.
    """
    import smtplib

    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = notifykit_settings.port

    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_mail("Hi", "x", None, ["a@example.com"], auth_user="u", auth_password="p")
    assert [] == notifykit_settings.messages


def test_calendar_alternative_is_kept() -> None:
    """An alternative that is neither text nor HTML becomes an Alternative part."""
    message = EmailMultiAlternatives("Hi", "x", "a@shop.example", ["b@example.com"])
    message.attach_alternative("BEGIN:VCALENDAR", "text/calendar")

    converted = email_from_django(message)

    assert [("BEGIN:VCALENDAR", "text/calendar")] == [
        (a.content, a.mimetype) for a in converted.alternatives
    ]
    assert "x" == converted.text


def test_extra_from_and_reply_to_headers_are_honoured() -> None:
    """Extra From and Reply-To headers become the sender and the reply-to list."""
    message = EmailMessage(
        "Hi",
        "x",
        "bounces@shop.example",
        ["b@example.com"],
        headers={"From": "Shop <hello@shop.example>", "Reply-To": "a@shop.example, b@shop.example"},
    )

    converted = email_from_django(message)

    assert "Shop <hello@shop.example>" == converted.sender
    assert "bounces@shop.example" == converted.sender_address  # MAIL FROM: from_email
    assert ("a@shop.example", "b@shop.example") == converted.reply_to


def test_extra_to_header_is_shown_while_recipients_stay_in_the_envelope() -> None:
    """An extra To header is what the headers show; the envelope keeps message.recipients()."""
    message = EmailMessage(
        "Hi", "x", "a@shop.example", ["b@example.com"], headers={"To": "undisclosed@example.com"}
    )

    converted = email_from_django(message)

    assert ("undisclosed@example.com",) == converted.to
    assert ("b@example.com",) == converted.recipients


def test_anymail_style_tags_and_metadata_are_kept() -> None:
    """tags and metadata attributes on the Django message become the Email's."""
    message = EmailMessage("Hi", "x", "a@shop.example", ["b@example.com"])
    message.tags = ["welcome"]  # type: ignore[attr-defined]
    message.metadata = {"user_id": 7}  # type: ignore[attr-defined]

    converted = email_from_django(message)

    assert ("welcome",) == converted.tags
    assert {"user_id": 7} == converted.metadata


def test_locmem_outbox_is_untouched(notifykit_settings: SMTPServer) -> None:
    """The notifykit backend replaced Django's test backend: mail.outbox stays empty."""
    send_mail("Hi", "x", None, ["a@example.com"])

    assert [] == mail.outbox
    assert 1 == len(notifykit_settings.messages)


def test_forwarded_message_and_unnamed_attachment() -> None:
    """A forwarded EmailMessage becomes a message/rfc822 attachment; an unnamed part gets a name."""
    inner = EmailMessage("Inner", "inner body", "a@shop.example", ["b@example.com"])
    message = EmailMessage("Fwd", "see attached", "a@shop.example", ["c@example.com"])
    message.attach("fwd.eml", inner, "message/rfc822")
    message.attach(None, b"abc", "application/octet-stream")

    forwarded, unnamed = email_from_django(message).attachments

    assert "message/rfc822" == forwarded.mimetype
    assert b"Subject: Inner" in forwarded.content
    assert ("attachment-2.bin", b"abc") == (unnamed.filename, unnamed.content)
