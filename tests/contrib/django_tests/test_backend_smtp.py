"""The Django backend as a drop-in for Django's SMTP backend, against real aiosmtpd servers.

Django's ``EMAIL_*`` settings and ``get_connection()`` options, ``open()`` as a
health check, errors that both notifykit's and Django's ``except`` clauses
catch, ``BadHeaderError``, and the SMTP envelope (``from_email`` /
``recipients()``) kept apart from the headers.
"""

from __future__ import annotations

import pickle
import smtplib
import ssl
from collections.abc import Iterator
from email.mime.message import MIMEMessage
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import (
    EmailMessage,
    EmailMultiAlternatives,
    get_connection,
    send_mail,
)

from notifykit.contrib.django import EmailBackend, reset_notifier
from notifykit.contrib.django.models import Delivery
from notifykit.errors import (
    InvalidMessage,
    NotifyKitError,
    ProviderError,
    RejectedError,
    TransientError,
)
from tests.servers.smtp import FAKE_PASSWORD, FAKE_USER, Certificates, SilentServer, SMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _notifykit_backend(settings: Any) -> None:
    """pytest-django installs the locmem backend for tests; these test notifykit's."""
    settings.EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"


@pytest.fixture
def django_smtp(settings: Any, smtp_server: SMTPServer) -> Iterator[SMTPServer]:
    """No NOTIFYKIT at all: Django's EMAIL_HOST/EMAIL_PORT point at a plain aiosmtpd server."""
    del settings.NOTIFYKIT
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    try:
        yield smtp_server
    finally:
        reset_notifier()


@pytest.fixture
def trusted_ca(
    certificates: Certificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Certificates:
    """Make the system trust store (what Django's settings give) trust the test CA."""
    path = tmp_path / "ca.pem"
    certificates.ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return certificates


def _message(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "subject": "Hi",
        "body": "Hello",
        "from_email": "shop@shop.example",
        "to": ["asha@example.com"],
    }
    fields.update(overrides)
    return EmailMessage(**fields)


# -- where the mail goes (item 3)


def test_without_notifykit_email_url_django_settings_are_used(django_smtp: SMTPServer) -> None:
    """No NOTIFYKIT: EMAIL_HOST/EMAIL_PORT are the server, and the delivery log still works."""
    assert 1 == send_mail("Hi", "Hello", "shop@shop.example", ["asha@example.com"])

    [received] = django_smtp.messages
    assert "shop@shop.example" == received.mail_from
    assert None is received.login
    assert Delivery.Status.SENT == Delivery.objects.get().status


def test_get_connection_options_override_notifykit(settings: Any, smtp_server: SMTPServer) -> None:
    """host=/port= build an SMTP connection there, although NOTIFYKIT names memory://."""
    settings.NOTIFYKIT = {"EMAIL_URL": "memory://", "SINKS": []}
    try:
        connection = get_connection(host="127.0.0.1", port=smtp_server.port)
        assert 1 == connection.send_messages([_message()])
    finally:
        reset_notifier()

    assert 1 == len(smtp_server.messages)


def test_a_closed_port_is_a_connection_error_not_a_silent_reroute(
    settings: Any, smtp_server: SMTPServer, closed_port: int
) -> None:
    """The issue's case: get_connection(port=<closed>) fails; nothing goes elsewhere."""
    settings.NOTIFYKIT = {"EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}?security=none"}
    try:
        connection = get_connection(host="127.0.0.1", port=closed_port)
        with pytest.raises(ConnectionRefusedError) as caught:
            connection.send_messages([_message()])
    finally:
        reset_notifier()

    assert isinstance(caught.value, TransientError)
    assert isinstance(caught.value, smtplib.SMTPException)
    assert [] == smtp_server.messages


def test_email_timeout_is_honoured(settings: Any, silent_server: SilentServer) -> None:
    """EMAIL_TIMEOUT bounds the wait for a server that never answers (a TimeoutError)."""
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = silent_server.port
    settings.EMAIL_TIMEOUT = 0.3
    del settings.NOTIFYKIT
    backend = EmailBackend()
    try:
        with pytest.raises(TimeoutError) as caught:
            backend.open()
    finally:
        reset_notifier()

    assert 0.3 == backend.timeout
    assert isinstance(caught.value, TransientError)
    assert isinstance(caught.value, smtplib.SMTPServerDisconnected)  # what smtplib raised
    assert "timed out after 0.3 s" in str(caught.value)


def test_use_tls_and_use_ssl_together_is_an_error() -> None:
    """As with Django: a ValueError (and ImproperlyConfigured) with Django's message."""
    with pytest.raises(ValueError, match="mutually exclusive") as caught:
        get_connection(use_tls=True, use_ssl=True)

    assert isinstance(caught.value, ImproperlyConfigured)
    assert isinstance(caught.value, NotifyKitError)


def test_empty_username_and_password_mean_no_auth(settings: Any, django_smtp: SMTPServer) -> None:
    """username=""/password="" switch AUTH off although EMAIL_HOST_USER is set."""
    settings.EMAIL_HOST_USER = "not-used"
    settings.EMAIL_HOST_PASSWORD = "not-used-either"

    with pytest.raises(smtplib.SMTPAuthenticationError):  # the settings' login is tried
        get_connection().send_messages([_message()])
    assert 1 == get_connection(username="", password="").send_messages([_message()])

    assert [None] == [r.login for r in django_smtp.messages]


def test_settings_credentials_over_starttls(settings: Any, trusted_ca: Certificates) -> None:
    """EMAIL_USE_TLS + EMAIL_HOST_USER/PASSWORD: STARTTLS, then AUTH with those credentials."""
    with SMTPServer(
        security="starttls", certificates=trusted_ca, users={FAKE_USER: FAKE_PASSWORD}
    ) as server:
        del settings.NOTIFYKIT
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = True
        settings.EMAIL_HOST_USER = FAKE_USER
        settings.EMAIL_HOST_PASSWORD = FAKE_PASSWORD
        try:
            assert 1 == send_mail("Hi", "Hello", "shop@shop.example", ["asha@example.com"])
        finally:
            reset_notifier()

    [received] = server.messages
    assert (True, FAKE_USER) == (received.tls, received.login)


def test_use_ssl_option_speaks_implicit_tls(settings: Any, trusted_ca: Certificates) -> None:
    """get_connection(use_ssl=True, username=..., password=...) over implicit TLS."""
    with SMTPServer(
        security="ssl", certificates=trusted_ca, users={FAKE_USER: FAKE_PASSWORD}
    ) as server:
        try:
            connection = get_connection(
                host="127.0.0.1",
                port=server.port,
                use_ssl=True,
                username=FAKE_USER,
                password=FAKE_PASSWORD,
            )
            assert 1 == connection.send_messages([_message()])
        finally:
            reset_notifier()

    assert (True, FAKE_USER) == (server.messages[0].tls, server.messages[0].login)


def test_a_wrong_password_is_an_smtp_authentication_error(
    settings: Any, trusted_ca: Certificates
) -> None:
    """535 at AUTH: SMTPAuthenticationError and ProviderError; the password is nowhere in it."""
    password = "wrong-password-123"
    with SMTPServer(
        security="starttls", certificates=trusted_ca, users={FAKE_USER: FAKE_PASSWORD}
    ) as server:
        connection = get_connection(
            host="127.0.0.1", port=server.port, use_tls=True, username=FAKE_USER, password=password
        )
        try:
            with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
                connection.open()
        finally:
            reset_notifier()

    error = caught.value
    assert isinstance(error, ProviderError)
    assert 535 == error.smtp_code
    assert password not in f"{error} {error!r} {error.args}"
    assert password not in repr(connection)


def test_a_password_in_clear_text_to_a_remote_host_is_refused(settings: Any) -> None:
    """Django would send AUTH in clear text to a remote host; notifykit refuses it loudly."""
    password = "secret-password-456"
    with pytest.raises(ImproperlyConfigured, match="EMAIL_USE_TLS") as caught:
        get_connection(host="smtp.example.com", username="app", password=password).open()

    assert password not in str(caught.value)


def test_a_missing_client_certificate_is_a_settings_error(settings: Any) -> None:
    """EMAIL_SSL_CERTFILE that cannot be read is reported at once, naming the setting."""
    settings.EMAIL_SSL_CERTFILE = "/nonexistent/client.pem"
    with pytest.raises(ImproperlyConfigured, match="EMAIL_SSL_CERTFILE"):
        get_connection(host="127.0.0.1", use_tls=True).open()


# -- open() and close() (item 8)


def test_open_connects_and_close_says_quit(django_smtp: SMTPServer) -> None:
    """open() is a health check: it connects (True), then reports the open connection (False)."""
    backend = EmailBackend()

    assert True is backend.open()
    assert 1 == django_smtp.connections
    assert False is backend.open()
    assert 1 == backend.send_messages([_message()])
    backend.close()

    assert 1 == django_smtp.connections
    assert django_smtp.wait_for(lambda: django_smtp.open_connections == 0)
    backend.close()  # closing twice is harmless


def test_open_failure_honours_fail_silently(settings: Any, closed_port: int) -> None:
    """A failed open() raises ConnectionError; with fail_silently it returns None and sends 0."""
    del settings.NOTIFYKIT
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port
    try:
        with pytest.raises(ConnectionError):
            EmailBackend().open()
        quiet = EmailBackend(fail_silently=True)
        assert None is quiet.open()
        assert 0 == quiet.send_messages([_message()])
        assert 0 == send_mail("Hi", "Hello", None, ["asha@example.com"], fail_silently=True)
    finally:
        reset_notifier()


def test_open_checks_a_notifykit_failover_member_by_member(
    settings: Any, smtp_server: SMTPServer, closed_port: int
) -> None:
    """With a failover URL, open() succeeds when a later member answers."""
    primary = f"smtp://127.0.0.1:{closed_port}?security=none"
    backup = f"smtp://127.0.0.1:{smtp_server.port}?security=none"
    settings.NOTIFYKIT = {"EMAIL_URL": f"failover({primary} {backup})", "SINKS": []}
    try:
        backend = EmailBackend()
        assert True is backend.open()
        assert 1 == smtp_server.connections
        backend.close()
    finally:
        reset_notifier()


# -- errors both ways (item 8)


def test_a_refused_recipient_is_both_kinds_of_error(django_smtp: SMTPServer) -> None:
    """550 for the only recipient: RejectedError and SMTPRecipientsRefused, picklable."""
    django_smtp.fail("RCPT", "550 5.1.1 No such user")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        send_mail("Hi", "Hello", "shop@shop.example", ["nobody@example.com"])

    error = caught.value
    assert isinstance(error, RejectedError)
    assert "nobody@example.com" in error.rejected
    assert 550 == error.recipients["nobody@example.com"][0]
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, RejectedError)
    assert isinstance(copy, smtplib.SMTPRecipientsRefused)
    assert (str(error), error.rejected) == (str(copy), copy.rejected)


def test_a_dropped_connection_is_an_smtp_server_disconnected(django_smtp: SMTPServer) -> None:
    """The server hangs up after DATA: SMTPServerDisconnected and a maybe-delivered TransientError."""
    django_smtp.drop("DATA")

    with pytest.raises(smtplib.SMTPServerDisconnected) as caught:
        send_mail("Hi", "Hello", "shop@shop.example", ["asha@example.com"])

    assert isinstance(caught.value, TransientError)
    assert caught.value.maybe_delivered


# -- BadHeaderError (item 4)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\nBcc: victim@example.com"},
        {"headers": {"X-Tag": "a\r\nBcc: victim@example.com"}},
        {"to": ["asha@example.com\nBcc: victim@example.com"]},
        {"reply_to": ["help@shop.example\r\nX: y"]},
        {"from_email": "shop@shop.example\nBcc: victim@example.com"},
    ],
)
def test_a_line_break_in_a_header_raises_django_bad_header_error(
    django_smtp: SMTPServer, overrides: dict[str, Any]
) -> None:
    """Django's documented `except BadHeaderError` catches it; so does InvalidMessage."""
    from django.core.mail import BadHeaderError

    with pytest.raises(BadHeaderError) as caught:
        get_connection(fail_silently=True).send_messages([_message(**overrides)])

    assert isinstance(caught.value, InvalidMessage)
    assert [] == django_smtp.messages


def test_contact_form_pattern_catches_bad_header_error(django_smtp: SMTPServer) -> None:
    """The contact-form idiom from Django's docs works unchanged."""
    from django.core.mail import BadHeaderError

    def contact(subject: str) -> str:
        try:
            send_mail(subject, "Hello", "shop@shop.example", ["admin@shop.example"])
        except BadHeaderError:
            return "Invalid header found."
        return "sent"

    assert "Invalid header found." == contact("Hello\nBcc: victim@example.com")
    assert "sent" == contact("Hello")


# -- envelope and headers (items 5, 6, 7)


def test_from_email_is_the_envelope_sender_and_the_from_header_the_display(
    django_smtp: SMTPServer,
) -> None:
    """MAIL FROM is from_email (the bounce address); the From header is what people see."""
    message = _message(
        from_email="bounces+order-77@shop.example",
        headers={"From": "Shop <hello@shop.example>"},
    )

    assert 1 == get_connection().send_messages([message])

    [received] = django_smtp.messages
    assert "bounces+order-77@shop.example" == received.mail_from
    assert "Shop <hello@shop.example>" == received.message["From"]


def test_to_header_shown_while_the_envelope_holds_the_recipients(
    django_smtp: SMTPServer,
) -> None:
    """The mailing-list pattern: a To header for display, the real recipients in RCPT TO."""
    message = _message(
        to=["member1@example.com", "member2@example.com"],
        bcc=["archive@shop.example"],
        headers={"To": "Shop members <members@shop.example>"},
    )

    assert 1 == get_connection().send_messages([message])

    [received] = django_smtp.messages
    assert ("member1@example.com", "member2@example.com", "archive@shop.example") == (
        received.rcpt_tos
    )
    assert "Shop members <members@shop.example>" == received.message["To"]
    assert None is received.message["Bcc"]


def test_address_headers_with_commas_inside_quoted_names(django_smtp: SMTPServer) -> None:
    """Reply-To/Cc headers are parsed as address lists, not split on every comma."""
    message = _message(
        cc=["cc@example.com"],
        headers={
            "Reply-To": '"Doe, John" <john@example.com>, help@shop.example',
            "Cc": '"Roe, Jane" <cc@example.com>',
        },
    )

    assert 1 == get_connection().send_messages([message])

    mime = django_smtp.messages[0].message
    assert ["john@example.com", "help@shop.example"] == [
        a.addr_spec for a in mime["Reply-To"].addresses
    ]
    assert "Doe, John" == mime["Reply-To"].addresses[0].display_name
    assert "Roe, Jane" == mime["Cc"].addresses[0].display_name


def test_sender_header_calendar_alternative_and_forwarded_messages(
    django_smtp: SMTPServer,
) -> None:
    """A Sender header, a text/calendar alternative, MIMEMessage / EmailMessage attachments."""
    invite = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    message = EmailMultiAlternatives(
        "Meeting",
        "See the invitation.",
        "calendar@shop.example",
        ["asha@example.com"],
        headers={"Sender": "Assistant <assistant@shop.example>"},
    )
    message.attach_alternative(invite, "text/calendar; method=REQUEST")
    inner = _message(subject="Original order").message()
    message.attach(MIMEMessage(inner))
    message.attach(None, _message(subject="Second original"), "message/rfc822")
    message.attach(MIMEText("plain part", "plain"))

    assert 1 == message.send()

    mime = django_smtp.messages[0].message
    assert "Assistant <assistant@shop.example>" == mime["Sender"]
    calendar = [p for p in mime.walk() if p.get_content_type() == "text/calendar"]
    assert 1 == len(calendar)
    assert "METHOD:REQUEST" in calendar[0].get_content()
    forwarded = [p for p in mime.walk() if p.get_content_type() == "message/rfc822"]
    assert ["Original order", "Second original"] == [p.get_payload(0)["Subject"] for p in forwarded]


def test_idn_addresses_travel_as_punycode_without_smtputf8(settings: Any) -> None:
    """An IDN domain with an ASCII local part needs no SMTPUTF8 (the bounce in the issue)."""
    with SMTPServer(smtputf8=False) as server:
        del settings.NOTIFYKIT
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        try:
            assert 1 == send_mail("Hi", "Hello", "from@öäü.com", ["to@öäü.com"])
        finally:
            reset_notifier()

    [received] = server.messages
    assert ("from@xn--4ca9at.com", ("to@xn--4ca9at.com",)) == (
        received.mail_from,
        received.rcpt_tos,
    )
    assert "SMTPUTF8" not in received.mail_options
    assert "to@xn--4ca9at.com" == received.message["To"]


def test_outbox_untouched_and_ssl_error_type_kept(settings: Any, smtp_server: SMTPServer) -> None:
    """use_ssl against a plain server: an ssl.SSLError that is also a ProviderError."""
    try:
        with pytest.raises(ssl.SSLError) as caught:
            get_connection(host="127.0.0.1", port=smtp_server.port, use_ssl=True).open()
    finally:
        reset_notifier()

    assert isinstance(caught.value, ProviderError)
    assert [] == mail.outbox


@pytest.mark.parametrize("offered", [True, False])
def test_a_non_ascii_local_part_needs_smtputf8(settings: Any, offered: bool) -> None:
    """δοκιμή@example.com goes out with SMTPUTF8; without it, a clear error of both kinds."""
    with SMTPServer(smtputf8=offered) as server:
        del settings.NOTIFYKIT
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        try:
            if offered:
                assert 1 == send_mail("Hi", "Hello", "shop@shop.example", ["δοκιμή@example.com"])
            else:
                with pytest.raises(smtplib.SMTPNotSupportedError, match="SMTPUTF8") as caught:
                    send_mail("Hi", "Hello", "shop@shop.example", ["δοκιμή@example.com"])
                assert isinstance(caught.value, ProviderError)
        finally:
            reset_notifier()

    if offered:
        [received] = server.messages
        assert ("δοκιμή@example.com",) == received.rcpt_tos
        assert "SMTPUTF8" in received.mail_options
    else:
        assert [] == server.messages
