# ruff: noqa: PT009, PT027 -- Django unittest-style tests, run by Django's runtests.py, not pytest
"""notifykit's EmailBackend under Django's own ``tests/mail`` suite.

``tests/django_suite/run.py`` copies this file into the ``tests/mail/``
folder of the Django source of the installed version (as
``mail/test_notifykit.py``) and runs it with Django's ``runtests.py``:

- :class:`NotifykitBackendTests` is Django's ``BaseEmailBackendTests``,
  unmodified, against Django's own test SMTP server (the one its
  ``SMTPBackendTests`` use: aiosmtpd, and a handler that refuses a message
  whose ``MAIL FROM`` differs from its ``From`` header);
- :class:`NotifykitSMTPBackendTests` and :class:`NotifykitStoppedServerTests`
  port every ``SMTPBackendTests`` / ``SMTPBackendStoppedServerTests`` test
  that applies to an SMTP-backed drop-in, under the same names. A port that
  had to change says how in its docstring; tests of the SMTP backend's
  private attributes (``connection``, ``_partial_connection``) check the
  observable behaviour instead (docs/django.md lists them).

This file is not collected by pytest (its name does not start with
``test_``) and is only importable from inside Django's test tree.
"""

import socket
from smtplib import SMTP, SMTPException
from ssl import SSLError

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.core import mail
from django.core.mail import BadHeaderError, EmailMessage, send_mail
from django.test import override_settings
from django.utils.translation import gettext_lazy

from notifykit.contrib.django import EmailBackend, reset_notifier
from notifykit.errors import NotifyKitError, ProviderError, TransientError

from .tests import BaseEmailBackendTests, SMTPBackendTestsBase, SMTPHandler

BACKEND = "notifykit.contrib.django.EmailBackend"


class _MailboxMixin:
    """The mailbox accessors of Django's SMTPBackendTests, unchanged."""

    def setUp(self):
        super().setUp()
        self.smtp_handler.flush_mailbox()
        self.addCleanup(self.smtp_handler.flush_mailbox)
        self.addCleanup(reset_notifier)

    def flush_mailbox(self):
        self.smtp_handler.flush_mailbox()

    def get_mailbox_content(self):
        return self.smtp_handler.mailbox

    def get_smtp_envelopes(self):
        return self.smtp_handler.smtp_envelopes


class NotifykitBackendTests(_MailboxMixin, BaseEmailBackendTests, SMTPBackendTestsBase):
    """Django's BaseEmailBackendTests against notifykit's backend and Django's test server.

    Every inherited test runs unmodified except the ones overridden below,
    each a documented difference (docs/django.md, "Differences from Django's
    SMTP backend"); the override checks everything else the original checks.
    """

    email_backend = BACKEND

    def test_send_unicode(self):
        """Differs: the encoded word's form (Django: Q; notifykit: B). The text is the same."""
        email = EmailMessage(
            "Chère maman", "Je t'aime très fort", "from@example.com", ["to@example.com"]
        )
        num_sent = mail.get_connection().send_messages([email])
        self.assertEqual(num_sent, 1)
        message = self.get_the_message()
        self.assertEqual(message["subject"], "Chère maman")
        self.assertIn(b"Subject: =?utf-8?", message.as_bytes())
        self.assertEqual(message.get_content(), "Je t'aime très fort")

    def test_send_verbose_name(self):
        """Differs: the encoded word's form (Django: Q; notifykit: B). The name is the same."""
        email = EmailMessage(
            from_email='"Firstname Sürname" <from@example.com>',
            to=["to@example.com"],
        )
        email.send()
        message = self.get_the_message()
        self.assertEqual(message["from"], "Firstname Sürname <from@example.com>")
        self.assertIn(b"From: =?utf-8?", message.as_bytes())
        self.assertIn(b"?= <from@example.com>", message.as_bytes())

    def test_message_cc_header(self):
        """Differs: ASCII text is labelled charset="us-ascii" (Django: "utf-8"); both true."""
        email = EmailMessage(
            "Subject",
            "Content",
            "from@example.com",
            ["to@example.com"],
            cc=["cc@example.com"],
        )
        mail.get_connection().send_messages([email])
        message = self.get_the_message()
        self.assertMessageHasHeaders(
            message,
            {
                ("MIME-Version", "1.0"),
                ("Content-Type", 'text/plain; charset="us-ascii"'),
                ("Content-Transfer-Encoding", "7bit"),
                ("Subject", "Subject"),
                ("From", "from@example.com"),
                ("To", "to@example.com"),
                ("Cc", "cc@example.com"),
            },
        )
        self.assertIn("\nDate: ", message.as_string())

    def test_recipient_without_domain(self):
        """Differs: an address without a domain ("django") is refused, not sent (#15042).

        notifykit validates every address; Django hands "django" to the SMTP
        server, which qualifies it with its own domain (or refuses it).
        """
        with self.assertRaises(ValueError):
            send_mail("Subject", "Content", "tester", ["django"])
        with self.assertRaises(ValueError):
            send_mail("Subject", "Content", "tester@example.com", ["django"])
        self.assertEqual(self.get_mailbox_content(), [])

    def test_lazy_addresses(self):
        """Differs only in using addresses with domains (see test_recipient_without_domain).

        Email sending should support lazy email addresses (#24416).
        """
        _ = gettext_lazy
        self.assertTrue(
            send_mail("Subject", "Content", _("tester@example.com"), [_("django@example.com")])
        )
        message = self.get_the_message()
        self.assertEqual(message.get("from"), "tester@example.com")
        self.assertEqual(message.get("to"), "django@example.com")

        self.flush_mailbox()
        m = EmailMessage(
            from_email=_("tester@example.com"),
            to=[_("to1@example.com"), _("to2@example.com")],
            cc=[_("cc1@example.com"), _("cc2@example.com")],
            bcc=[_("bcc@example.com")],
            reply_to=[_("reply@example.com")],
        )
        m.send()
        message = self.get_the_message()
        self.assertEqual(message.get("from"), "tester@example.com")
        self.assertEqual(message.get("to"), "to1@example.com, to2@example.com")
        self.assertEqual(message.get("cc"), "cc1@example.com, cc2@example.com")
        self.assertEqual(message.get("Reply-To"), "reply@example.com")
        self.assertEqual(
            self.get_smtp_envelopes()[0]["rcpt_tos"],
            [
                "to1@example.com",
                "to2@example.com",
                "cc1@example.com",
                "cc2@example.com",
                "bcc@example.com",
            ],
        )


class _RecordingHandler(SMTPHandler):
    """Django's SMTPHandler that also counts connections and records AUTH logins."""

    def __init__(self):
        super().__init__()
        self.connections = 0
        self.logins = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=True)


@override_settings(EMAIL_BACKEND=BACKEND)
class NotifykitSMTPBackendTests(_MailboxMixin, SMTPBackendTestsBase):
    """Ports of Django's SMTPBackendTests (same names) to notifykit's backend.

    A second server, with AUTH (no TLS, on 127.0.0.1), records logins and
    connections for the tests that need to see them.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cls.auth_handler = _RecordingHandler()
        cls.auth_controller = Controller(
            cls.auth_handler,
            hostname="127.0.0.1",
            port=port,
            auth_require_tls=False,
            authenticator=cls.auth_handler.authenticate,
        )
        cls.auth_controller.start()
        cls.addClassCleanup(cls.auth_controller.stop)

    def setUp(self):
        super().setUp()
        self.auth_handler.flush_mailbox()
        self.auth_handler.connections = 0
        self.auth_handler.logins.clear()

    def auth_settings(self, **settings):
        return self.settings(EMAIL_PORT=self.auth_controller.port, **settings)

    def send_one(self, backend):
        return backend.send_messages(
            [EmailMessage("Subject", "Content", "from@example.com", ["to@example.com"])]
        )

    def test_email_authentication_use_settings(self):
        """Port: the EMAIL_HOST_USER/EMAIL_HOST_PASSWORD settings are what the server sees.

        (Django's test reads ``backend.password``; notifykit keeps no public password.)
        """
        with self.auth_settings(
            EMAIL_HOST_USER="not empty username", EMAIL_HOST_PASSWORD="not empty password"
        ):
            backend = EmailBackend()
            self.assertEqual(backend.username, "not empty username")
            self.assertEqual(self.send_one(backend), 1)
        self.assertEqual(self.auth_handler.logins, ["not empty username"])

    def test_email_authentication_override_settings(self):
        """Port: username=/password= override the settings, as seen by the server."""
        with self.auth_settings(
            EMAIL_HOST_USER="not empty username", EMAIL_HOST_PASSWORD="not empty password"
        ):
            backend = EmailBackend(username="username", password="password")
            self.assertEqual(backend.username, "username")
            self.assertEqual(self.send_one(backend), 1)
        self.assertEqual(self.auth_handler.logins, ["username"])

    def test_email_disabled_authentication(self):
        """Port: username=""/password="" mean no AUTH, whatever the settings say."""
        with self.auth_settings(
            EMAIL_HOST_USER="not empty username", EMAIL_HOST_PASSWORD="not empty password"
        ):
            backend = EmailBackend(username="", password="")
            self.assertEqual(backend.username, "")
            self.assertEqual(self.send_one(backend), 1)
        self.assertEqual(self.auth_handler.logins, [])
        self.assertEqual(len(self.auth_handler.mailbox), 1)

    def test_auth_attempted(self):
        """
        Opening the backend with non empty username/password tries
        to authenticate against the SMTP server.
        """
        backend = EmailBackend(username="not empty username", password="not empty password")
        with (
            self.assertRaisesMessage(SMTPException, "SMTP AUTH extension not supported by server."),
            backend,
        ):
            pass

    def test_server_open(self):
        """Port: open() connects and returns True; close() ends the connection.

        (Django's test inspects ``connection``/``_partial_connection``; this
        one counts the connections the server saw.)
        """
        with self.auth_settings():
            backend = EmailBackend(username="", password="")
            opened = backend.open()
            self.assertIs(opened, True)
            self.assertEqual(self.auth_handler.connections, 1)
            self.assertEqual(self.send_one(backend), 1)
            self.assertEqual(self.auth_handler.connections, 1)
            backend.close()
            self.assertEqual(self.send_one(backend), 1)
        self.assertEqual(self.auth_handler.connections, 2)

    def test_reopen_connection(self):
        """Port: open() on an open backend returns False (Django mocks ``connection``)."""
        backend = EmailBackend()
        self.addCleanup(backend.close)
        self.assertIs(backend.open(), True)
        self.assertIs(backend.open(), False)

    def test_reopen_replaces_partial_connection(self):
        """Port: a failed open() leaves nothing half-open; the next open() tries afresh.

        (Django's test inspects ``_partial_connection``; here each attempt
        fails on its own new connection, and the backend never counts as open.)
        """
        backend = EmailBackend(username="not empty", password="not empty")
        self.addCleanup(backend.close)
        error = "SMTP AUTH extension not supported by server."
        with self.assertRaisesMessage(SMTPException, error):
            backend.open()
        with self.assertRaisesMessage(SMTPException, error):
            backend.open()
        with self.assertRaisesMessage(SMTPException, error):
            self.send_one(backend)
        self.assertEqual(self.get_mailbox_content(), [])

    @override_settings(EMAIL_USE_TLS=True)
    def test_email_tls_use_settings(self):
        backend = EmailBackend()
        self.assertTrue(backend.use_tls)

    @override_settings(EMAIL_USE_TLS=True)
    def test_email_tls_override_settings(self):
        backend = EmailBackend(use_tls=False)
        self.assertFalse(backend.use_tls)

    def test_email_tls_default_disabled(self):
        backend = EmailBackend()
        self.assertFalse(backend.use_tls)

    def test_ssl_tls_mutually_exclusive(self):
        msg = (
            "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set "
            "one of those settings to True."
        )
        with self.assertRaisesMessage(ValueError, msg):
            EmailBackend(use_ssl=True, use_tls=True)

    @override_settings(EMAIL_USE_SSL=True)
    def test_email_ssl_use_settings(self):
        backend = EmailBackend()
        self.assertTrue(backend.use_ssl)

    @override_settings(EMAIL_USE_SSL=True)
    def test_email_ssl_override_settings(self):
        backend = EmailBackend(use_ssl=False)
        self.assertFalse(backend.use_ssl)

    def test_email_ssl_default_disabled(self):
        backend = EmailBackend()
        self.assertFalse(backend.use_ssl)

    @override_settings(EMAIL_SSL_CERTFILE="foo")
    def test_email_ssl_certfile_use_settings(self):
        backend = EmailBackend()
        self.assertEqual(backend.ssl_certfile, "foo")

    @override_settings(EMAIL_SSL_CERTFILE="foo")
    def test_email_ssl_certfile_override_settings(self):
        backend = EmailBackend(ssl_certfile="bar")
        self.assertEqual(backend.ssl_certfile, "bar")

    def test_email_ssl_certfile_default_disabled(self):
        backend = EmailBackend()
        self.assertIsNone(backend.ssl_certfile)

    @override_settings(EMAIL_SSL_KEYFILE="foo")
    def test_email_ssl_keyfile_use_settings(self):
        backend = EmailBackend()
        self.assertEqual(backend.ssl_keyfile, "foo")

    @override_settings(EMAIL_SSL_KEYFILE="foo")
    def test_email_ssl_keyfile_override_settings(self):
        backend = EmailBackend(ssl_keyfile="bar")
        self.assertEqual(backend.ssl_keyfile, "bar")

    def test_email_ssl_keyfile_default_disabled(self):
        backend = EmailBackend()
        self.assertIsNone(backend.ssl_keyfile)

    @override_settings(EMAIL_USE_TLS=True)
    def test_email_tls_attempts_starttls(self):
        """Port: the error names STARTTLS in notifykit's words (Django: smtplib's words)."""
        backend = EmailBackend()
        self.addCleanup(backend.close)
        self.assertIs(backend.use_tls, True)
        with self.assertRaisesRegex(SMTPException, "STARTTLS"):
            backend.open()

    @override_settings(EMAIL_USE_SSL=True)
    def test_email_ssl_attempts_ssl_connection(self):
        backend = EmailBackend()
        self.assertIs(backend.use_ssl, True)
        with self.assertRaises(SSLError):
            backend.open()

    def test_connection_timeout_default(self):
        """Port: notifykit never waits forever; without EMAIL_TIMEOUT the timeout is 10 s.

        (Django's default is None: no timeout.)
        """
        connection = mail.get_connection(BACKEND)
        self.assertEqual(connection.timeout, 10)
        self.assertEqual(connection.notifier.email.timeout, 10)

    def test_connection_timeout_custom(self):
        """The timeout parameter can be customized."""

        class MyEmailBackend(EmailBackend):
            def __init__(self, *args, **kwargs):
                kwargs.setdefault("timeout", 42)
                super().__init__(*args, **kwargs)

        myemailbackend = MyEmailBackend()
        self.addCleanup(myemailbackend.close)
        myemailbackend.open()
        self.assertEqual(myemailbackend.timeout, 42)
        # Django checks its smtplib connection; notifykit's transport holds it.
        self.assertEqual(myemailbackend.notifier.email.timeout, 42)

    @override_settings(EMAIL_TIMEOUT=10)
    def test_email_timeout_override_settings(self):
        backend = EmailBackend()
        self.assertEqual(backend.timeout, 10)

    def test_email_msg_uses_crlf(self):
        """#23063 -- RFC-compliant messages are sent over SMTP."""
        send = SMTP.send
        try:
            smtp_messages = []

            def mock_send(self, s):
                smtp_messages.append(s)
                return send(self, s)

            SMTP.send = mock_send

            email = EmailMessage("Subject", "Content", "from@example.com", ["to@example.com"])
            mail.get_connection().send_messages([email])

            # Find the actual message
            msg = None
            for i, m in enumerate(smtp_messages):
                if m[:4] == "data":
                    msg = smtp_messages[i + 1]
                    break

            self.assertTrue(msg)

            msg = msg.decode()
            # The message only contains CRLF and not combinations of CRLF, LF, and CR.
            msg = msg.replace("\r\n", "")
            self.assertNotIn("\r", msg)
            self.assertNotIn("\n", msg)

        finally:
            SMTP.send = send

    def test_send_messages_after_open_failed(self):
        """
        send_messages() shouldn't try to send messages if open() raises an
        exception after initializing the connection.
        """
        backend = EmailBackend()
        # Simulate a connection failure that passed silently.
        backend.open = lambda: None
        email = EmailMessage(to=["to@example.com"])
        self.assertEqual(backend.send_messages([email]), 0)
        self.assertEqual(self.get_mailbox_content(), [])

    def test_send_messages_empty_list(self):
        backend = EmailBackend()
        self.assertEqual(backend.send_messages([]), 0)

    def test_send_messages_zero_sent(self):
        """A message isn't sent if it doesn't have any recipients."""
        backend = EmailBackend()
        email = EmailMessage("Subject", "Content", "from@example.com", to=[])
        sent = backend.send_messages([email])
        self.assertEqual(sent, 0)

    def test_avoids_sending_to_invalid_addresses(self):
        """Port: refused with a ValueError (notifykit's InvalidMessage), in its own words.

        (Django's message is "Invalid address"; Django mocks the connection,
        this port sends to the real server and checks nothing arrived.)
        """
        backend = EmailBackend()
        for email_address in (
            # Invalid address with two @ signs.
            "to@other.com@example.com",
            # Invalid address without the quotes.
            "to@other.com <to@example.com>",
            # Other invalid addresses.
            "@",
            "to@",
            "@example.com",
            # CR/NL in addr-spec. (SMTP strips display-name.)
            '"evil@example.com\r\nto"@example.com',
            "to\nevil@example.com",
        ):
            with self.subTest(email_address=email_address):
                email = EmailMessage(bcc=[email_address])
                with self.assertRaises(ValueError):
                    backend.send_messages([email])
                self.assertEqual(self.get_mailbox_content(), [])

    def test_encodes_idna_in_smtp_commands(self):
        """
        SMTP backend must encode non-ASCII domains for the SMTP envelope
        (which can be distinct from the email headers).
        """
        email = EmailMessage(
            from_email="lists@discussão.example.org",
            to=["To Example <to@漢字.example.com>"],
            bcc=["monitor@discussão.example.org"],
            headers={
                "From": "Gestor de listas <lists@discussão.example.org>",
                "To": "Discussão Django <django@discussão.example.org>",
            },
        )
        backend = EmailBackend()
        backend.send_messages([email])
        envelope = self.get_smtp_envelopes()[0]
        self.assertEqual(envelope["mail_from"], "lists@xn--discusso-xza.example.org")
        self.assertEqual(
            envelope["rcpt_tos"],
            ["to@xn--p8s937b.example.com", "monitor@xn--discusso-xza.example.org"],
        )

    def test_does_not_reencode_idna(self):
        """
        SMTP backend should not downgrade IDNA 2008 to IDNA 2003.

        Django does not currently handle IDNA 2008 encoding, but should retain
        it for addresses that have been pre-encoded.
        """
        email = EmailMessage(
            from_email='"βόλος" <from@xn--fa-hia.example.com>',
            to=['"faß" <to@xn--10cl1a0b660p.example.com>'],
            cc=['"ශ්‍රී" <cc@xn--nxasmm1c.example.com>'],
            bcc=['"نامه‌ای." <bcc@xn--mgba3gch31f060k.example.com>'],
        )
        backend = EmailBackend()
        backend.send_messages([email])
        envelope = self.get_smtp_envelopes()[0]
        self.assertEqual(envelope["mail_from"], "from@xn--fa-hia.example.com")
        self.assertEqual(
            envelope["rcpt_tos"],
            [
                "to@xn--10cl1a0b660p.example.com",
                "cc@xn--nxasmm1c.example.com",
                "bcc@xn--mgba3gch31f060k.example.com",
            ],
        )

    def test_validate_multiline_headers(self):
        """Port of LocmemBackendTests' #18861: a header newline raises BadHeaderError."""
        with self.assertRaises(BadHeaderError):
            send_mail("Subject\nMultiline", "Content", "from@example.com", ["to@example.com"])
        self.assertEqual(self.get_mailbox_content(), [])

    def test_errors_are_notifykit_and_smtplib_errors(self):
        """Added: the same failure is caught by notifykit's and by Django's except clauses."""
        backend = EmailBackend(username="not empty username", password="not empty password")
        with self.assertRaises(SMTPException) as smtp_side:
            backend.open()
        self.assertIsInstance(smtp_side.exception, ProviderError)
        self.assertIsInstance(smtp_side.exception, NotifyKitError)


@override_settings(EMAIL_BACKEND=BACKEND)
class NotifykitStoppedServerTests(SMTPBackendTestsBase):
    """Ports of Django's SMTPBackendStoppedServerTests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend = EmailBackend(username="", password="")
        cls.smtp_controller.stop()
        cls.addClassCleanup(reset_notifier)

    @classmethod
    def stop_smtp(cls):
        # SMTP controller is stopped in setUpClass().
        pass

    def test_server_stopped(self):
        """
        Closing the backend while the SMTP server is stopped doesn't raise an
        exception.
        """
        self.backend.close()

    def test_fail_silently_on_connection_error(self):
        """
        A socket connection error is silenced with fail_silently=True.

        (Port: Django also checks that ``connection`` stays None; here the
        error is also notifykit's TransientError, and send_messages sends nothing.)
        """
        self.backend.fail_silently = False
        with self.assertRaises(ConnectionError) as caught:
            self.backend.open()
        self.assertIsInstance(caught.exception, TransientError)
        self.assertIsInstance(caught.exception, SMTPException)
        self.backend.fail_silently = True
        self.assertIsNone(self.backend.open())
        email = EmailMessage("Subject", "Content", "from@example.com", ["to@example.com"])
        self.assertEqual(self.backend.send_messages([email]), 0)
