"""SMTPTransport against real aiosmtpd servers on 127.0.0.1 (no mocking of smtplib)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

pytest.importorskip("aiosmtpd")

import notifykit as nk
from notifykit.transports.smtp import Security, SMTPTransport
from tests.servers.smtp import FAKE_PASSWORD, FAKE_USER, Certificates, SMTPServer
from tests.transports.contract import TransportContract

pytestmark = pytest.mark.timeout(30)


def make_email(**changes: Any) -> nk.Email:
    fields: dict[str, Any] = {
        "to": "Asha <asha@example.com>",
        "subject": "Your order has shipped",
        "text": "Hello Asha,\nyour order is on its way.\n",
        "html": "<p>Hello Asha, your order is on its way.</p>",
        "sender": "Shop <noreply@shop.example>",
    }
    fields.update(changes)
    return nk.Email(**fields)


@pytest.fixture
def plain(smtp_server: SMTPServer) -> Iterator[SMTPTransport]:
    """A transport to the plain test server."""
    with SMTPTransport("127.0.0.1", smtp_server.port, security="none", timeout=5) as transport:
        yield transport


def tls_transport(server: SMTPServer, certificates: Certificates, **options: Any) -> SMTPTransport:
    options.setdefault("username", FAKE_USER)
    options.setdefault("password", FAKE_PASSWORD)
    options.setdefault("ssl_context", certificates.client_context())
    options.setdefault("timeout", 5)
    return SMTPTransport("127.0.0.1", server.port, security=server.security, **options)


# --------------------------------------------------------------------------- contract


class TestSMTPContract(TransportContract):
    """The shared transport contract, over STARTTLS with AUTH."""

    secrets: ClassVar[tuple[str, ...]] = (FAKE_PASSWORD,)

    @pytest.fixture
    def server(self, smtp_tls_server: SMTPServer) -> SMTPServer:
        return smtp_tls_server

    @pytest.fixture
    def transport(self, server: SMTPServer, certificates: Certificates) -> Iterator[Any]:
        transport = tls_transport(server, certificates)
        self._server = server
        yield transport
        transport.close()

    def assert_delivered(self, transport: Any, message: nk.Email | nk.SMS) -> None:
        assert isinstance(message, nk.Email)
        ids = [m.message["Message-ID"] for m in self._server.messages]
        assert message.message_id_header in ids


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"security": "tls"}, "security must be one of"),
        ({"port": 0}, "port must be"),
        ({"port": 70000}, "port must be"),
        ({"port": True}, "port must be"),
        ({"timeout": 0}, "timeout must be"),
        ({"timeout": -1.5}, "timeout must be"),
        ({"password": "hunter22"}, "password was given without a username"),
        ({"username": "someone"}, "username was given without a password"),
        ({"max_messages_per_connection": 0}, "max_messages_per_connection"),
        ({"ssl_context": object()}, "ssl_context must be"),
        ({"local_hostname": "has space"}, "local_hostname"),
    ],
)
def test_impossible_options_are_configuration_errors(
    options: dict[str, Any], fragment: str
) -> None:
    """Each impossible option is a ConfigurationError naming the problem, raised at construction."""
    with pytest.raises(nk.ConfigurationError) as info:
        SMTPTransport("mail.example.com", **options)
    assert fragment in str(info.value)
    assert "hunter22" not in str(info.value)


@pytest.mark.parametrize("host", ["", "  ", "mail.example.com:587", "a b", "user@mail.example.com"])
def test_bad_host_is_a_configuration_error(host: str) -> None:
    """An empty host, a host with a port glued on, or one with spaces is refused at construction."""
    with pytest.raises(nk.ConfigurationError):
        SMTPTransport(host)


def test_auth_over_plain_text_is_refused_unless_allowed() -> None:
    """A username with security='none' is a ConfigurationError pointing at allow_insecure_auth."""
    with pytest.raises(nk.ConfigurationError) as info:
        SMTPTransport("127.0.0.1", 25, FAKE_USER, FAKE_PASSWORD, security="none")
    assert "allow_insecure_auth" in str(info.value)
    assert FAKE_PASSWORD not in str(info.value)
    SMTPTransport(
        "127.0.0.1", 25, FAKE_USER, FAKE_PASSWORD, security="none", allow_insecure_auth=True
    )


def test_ssl_context_with_security_none_is_refused() -> None:
    """An ssl_context for a transport that never uses TLS is a mistake the user should hear about."""
    with pytest.raises(nk.ConfigurationError):
        SMTPTransport("127.0.0.1", security="none", ssl_context=ssl.create_default_context())


def test_non_ascii_password_is_refused_without_echoing_it() -> None:
    """smtplib cannot send a non-ASCII password; the error says so and does not repeat it."""
    with pytest.raises(nk.ConfigurationError) as info:
        SMTPTransport("mail.example.com", username="u", password="pässwörd-secret")
    assert "pässwörd-secret" not in str(info.value)


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_default_port_follows_security(security: Security, port: int) -> None:
    """Without a port, STARTTLS uses 587, implicit TLS 465 and plain text 25."""
    assert port == SMTPTransport("mail.example.com", security=security).port


def test_name_str_and_repr() -> None:
    """name and str() identify host and port; repr shows the user but masks the password."""
    transport = SMTPTransport("mail.example.com", 587, "shop@example.com", "s3cret-pass")
    assert "smtp:mail.example.com:587" == transport.name
    assert "smtp://mail.example.com:587" == str(transport)
    assert "<SMTPTransport smtp://shop%40example.com:***@mail.example.com:587>" == repr(transport)
    assert "s3cret-pass" in transport._secrets()


def test_str_shows_implicit_tls_and_plain_text() -> None:
    """Implicit TLS has the smtps scheme; plain text says security=none, like a DSN would."""
    assert "smtps://mail.example.com:465" == str(SMTPTransport("mail.example.com", security="ssl"))
    assert "smtps" == SMTPTransport("mail.example.com", security="ssl").scheme
    assert "smtp://127.0.0.1:1025?security=none" == str(
        SMTPTransport("127.0.0.1", 1025, security="none")
    )
    assert "smtp:[::1]:25" == SMTPTransport("::1", 25, security="none").name


def test_construction_does_not_connect(closed_port: int) -> None:
    """Building a transport opens no connection; only sending does."""
    transport = SMTPTransport("127.0.0.1", closed_port, security="none")
    transport.close()


def test_carries_email_only(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """An SMS given to the SMTP transport is a ConfigurationError and nothing is sent."""
    with pytest.raises(nk.ConfigurationError):
        plain.send(nk.SMS("+919876543210", "hello"))
    assert 0 == smtp_server.connections


# --------------------------------------------------------------------------- delivery


def test_quick_start_delivers(smtp_server: SMTPServer) -> None:
    """The README quick start delivers one message to a local server."""
    email = make_email()
    with SMTPTransport("127.0.0.1", smtp_server.port, security="none") as t:
        t.send(email)
    assert 1 == len(smtp_server.messages)


def test_envelope_headers_and_receipt(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """The envelope carries every recipient (Bcc too), the headers never show Bcc, and the receipt names the Message-ID."""
    email = make_email(cc="Ravi <ravi@example.com>", bcc="audit@shop.example")
    receipt = plain.send(email)

    (received,) = smtp_server.messages
    assert "noreply@shop.example" == received.mail_from
    assert ("asha@example.com", "ravi@example.com", "audit@shop.example") == received.rcpt_tos
    parsed = received.message
    assert parsed["Bcc"] is None
    assert b"audit@shop.example" not in received.data
    assert email.message_id_header == parsed["Message-ID"]
    assert email.message_id_header == receipt.provider_message_id
    assert email.id == receipt.message_id
    assert plain.name == receipt.transport
    assert ("asha@example.com", "ravi@example.com", "audit@shop.example") == receipt.accepted
    assert {} == dict(receipt.rejected)
    assert "sent" == receipt.attempts[-1].outcome


def test_lines_end_in_crlf_and_dots_survive(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """The message travels with CRLF line ends and lines starting with a dot arrive intact."""
    text = ".leading dot\n..two dots\n.\nend\n"
    plain.send(make_email(text=text, html=None))
    (received,) = smtp_server.messages
    assert b"\n" not in received.data.replace(b"\r\n", b"")
    assert text == received.message.get_content().replace("\r\n", "\n")


def test_multipart_alternative_arrives(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """An e-mail with text and HTML arrives as multipart/alternative with both parts."""
    plain.send(make_email())
    parsed = smtp_server.messages[0].message
    assert "multipart/alternative" == parsed.get_content_type()
    assert ["text/plain", "text/html"] == [p.get_content_type() for p in parsed.iter_parts()]


def test_non_ascii_body_is_seven_bit_clean(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """A non-ASCII body travels quoted-printable (7-bit clean, no 8BITMIME needed) and arrives unchanged."""
    plain.send(make_email(text="Namaste 🙏 — ₹499 paid", html=None))
    (received,) = smtp_server.messages
    assert received.data.isascii()
    assert "BODY=8BITMIME" not in received.mail_options
    assert "Namaste 🙏 — ₹499 paid" == received.message.get_content().rstrip("\r\n")


def test_size_is_declared(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """The SIZE the client declares in MAIL FROM is the size of the message sent."""
    plain.send(make_email())
    (received,) = smtp_server.messages
    (size,) = [o for o in received.mail_options if o.startswith("SIZE=")]
    assert len(received.data) == int(size.removeprefix("SIZE="))


def test_international_address_uses_smtputf8(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """A non-ASCII address is sent with SMTPUTF8 (and UTF-8 headers) to a server that offers it."""
    plain.send(make_email(to="José <josé@bücher.example>"))
    (received,) = smtp_server.messages
    assert ("josé@bücher.example",) == received.rcpt_tos
    assert "José <josé@bücher.example>" == received.message["To"]
    assert "SMTPUTF8" in received.mail_options


def test_international_address_without_smtputf8_is_provider_error() -> None:
    """A server without SMTPUTF8 cannot take a non-ASCII address: ProviderError, nothing sent."""
    with (
        SMTPServer(smtputf8=False) as server,
        SMTPTransport("127.0.0.1", server.port, security="none") as transport,
    ):
        with pytest.raises(nk.ProviderError) as info:
            transport.send(make_email(to="josé@bücher.example"))
        assert "SMTPUTF8" in str(info.value)
        transport.send(make_email())  # the connection is still good
        assert 1 == len(server.messages)
        assert 1 == server.connections


def test_message_without_sender_is_invalid_and_nothing_connects(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """An e-mail without a sender is InvalidMessage before any connection is made."""
    with pytest.raises(nk.InvalidMessage):
        plain.send(make_email(sender=None))
    assert 0 == smtp_server.connections


def test_unserialisable_message_is_invalid_message(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """A value the email package refuses to serialise is InvalidMessage, not a raw ValueError."""
    with pytest.raises(nk.InvalidMessage):
        plain.send(make_email(subject="Hello\u2028Bcc: victim@example.com"))
    assert [] == smtp_server.messages


def test_local_hostname_is_sent_in_ehlo(smtp_server: SMTPServer) -> None:
    """local_hostname is the name the client gives in EHLO."""
    with SMTPTransport(
        "127.0.0.1", smtp_server.port, security="none", local_hostname="app1.shop.example"
    ) as transport:
        transport.send(make_email())
    assert "app1.shop.example" == smtp_server.messages[0].helo


def test_ipv4_only_reaches_localhost(smtp_server: SMTPServer) -> None:
    """With ipv4_only the name localhost resolves to 127.0.0.1, where the server listens."""
    with SMTPTransport("localhost", smtp_server.port, security="none", ipv4_only=True) as transport:
        transport.send(make_email())
    assert 1 == len(smtp_server.messages)


# --------------------------------------------------------------------------- TLS and AUTH


def test_starttls_with_auth(smtp_tls_server: SMTPServer, certificates: Certificates) -> None:
    """STARTTLS upgrades the connection before AUTH; the message arrives encrypted and authenticated."""
    with tls_transport(smtp_tls_server, certificates) as transport:
        transport.send(make_email())
    (received,) = smtp_tls_server.messages
    assert received.tls
    assert FAKE_USER == received.login


def test_implicit_tls_with_auth(smtps_server: SMTPServer, certificates: Certificates) -> None:
    """security='ssl' speaks TLS from the first byte and authenticates."""
    with tls_transport(smtps_server, certificates) as transport:
        transport.send(make_email())
    (received,) = smtps_server.messages
    assert received.tls
    assert FAKE_USER == received.login


@pytest.mark.parametrize("server_fixture", ["smtp_tls_server", "smtps_server"])
def test_untrusted_certificate_is_provider_error(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    """Certificates are verified by default: a private CA not given as ssl_context is a ProviderError."""
    server: SMTPServer = request.getfixturevalue(server_fixture)
    transport = SMTPTransport(
        "127.0.0.1",
        server.port,
        FAKE_USER,
        FAKE_PASSWORD,
        security=server.security,
    )
    with transport, pytest.raises(nk.ProviderError) as info:
        transport.send(make_email())
    assert "certificate verification failed" in str(info.value)
    assert "ssl_context" in str(info.value)
    assert [] == server.messages


def test_hostname_is_checked(smtp_tls_server: SMTPServer, certificates: Certificates) -> None:
    """A trusted certificate for another name is refused: the host name is verified too."""
    ctx = certificates.client_context()
    transport = SMTPTransport(
        "127.0.0.2", smtp_tls_server.port, security="starttls", ssl_context=ctx, timeout=2
    )
    with transport, pytest.raises(nk.DeliveryError):
        # 127.0.0.2 is not in the certificate (and nothing may listen there).
        transport.send(make_email())


def test_starttls_not_offered_is_provider_error(smtp_server: SMTPServer) -> None:
    """security='starttls' against a server without STARTTLS is a ProviderError, never a silent plain send."""
    with (
        SMTPTransport("127.0.0.1", smtp_server.port, security="starttls") as transport,
        pytest.raises(nk.ProviderError) as info,
    ):
        transport.send(make_email())
    assert "STARTTLS" in str(info.value)
    assert [] == smtp_server.messages


def test_wrong_password_is_provider_error_without_the_password(
    smtp_tls_server: SMTPServer, certificates: Certificates
) -> None:
    """A 535 is a ProviderError with code 535; the password is in no message, repr or attempt."""
    password = "wrong-password-4242"
    with (
        tls_transport(smtp_tls_server, certificates, password=password) as transport,
        pytest.raises(nk.ProviderError) as info,
    ):
        transport.send(make_email())
    error = info.value
    assert "535" == error.provider_code
    assert "authentication failed" in str(error)
    for text in (str(error), repr(error), *map(str, error.args), *map(repr, error.attempts)):
        assert password not in text
    assert "provider" == error.attempts[-1].outcome
    assert [] == smtp_tls_server.messages


def test_insecure_auth_when_allowed() -> None:
    """With allow_insecure_auth=True the client authenticates over plain text to a trusted relay."""
    with (
        SMTPServer(users={FAKE_USER: FAKE_PASSWORD}) as server,
        SMTPTransport(
            "127.0.0.1",
            server.port,
            FAKE_USER,
            FAKE_PASSWORD,
            security="none",
            allow_insecure_auth=True,
        ) as transport,
    ):
        transport.send(make_email())
        assert FAKE_USER == server.messages[0].login


def test_auth_required_without_credentials_is_provider_error(certificates: Certificates) -> None:
    """A server answering 530 (authentication required) to MAIL is a ProviderError."""
    with (
        SMTPServer(
            security="starttls",
            certificates=certificates,
            users={FAKE_USER: FAKE_PASSWORD},
            auth_required=True,
        ) as server,
        tls_transport(server, certificates, username=None, password=None) as transport,
        pytest.raises(nk.ProviderError) as info,
    ):
        transport.send(make_email())
    assert "530" == info.value.provider_code


def test_scripted_535_on_auth(smtp_tls_server: SMTPServer, certificates: Certificates) -> None:
    """A 535 scripted on AUTH is a ProviderError carrying the code."""
    smtp_tls_server.fail("AUTH", "535 5.7.8 Authentication credentials invalid", times=None)
    with (
        tls_transport(smtp_tls_server, certificates) as transport,
        pytest.raises(nk.ProviderError) as info,
    ):
        transport.send(make_email())
    assert "535" == info.value.provider_code


def test_check_authenticates_without_sending(
    smtp_tls_server: SMTPServer, certificates: Certificates
) -> None:
    """check() logs in without sending, keeps the connection for the next send, replaces a dead one."""
    with tls_transport(smtp_tls_server, certificates) as transport:
        transport.check()
        transport.check()  # the open connection answers NOOP: it is kept
        assert [] == smtp_tls_server.messages
        transport.send(make_email())
    assert 1 == smtp_tls_server.connections
    with tls_transport(smtp_tls_server, certificates) as transport:
        transport.send(make_email())
        smtp_tls_server.drop_connections()
        transport.check()  # the dead connection is noticed and replaced
        assert 3 == smtp_tls_server.connections
    password = "nope-nope-nope"
    with (
        tls_transport(smtp_tls_server, certificates, password=password) as transport,
        pytest.raises(nk.ProviderError) as info,
    ):
        transport.check()
    assert password not in repr(info.value)
    assert "provider" == info.value.attempts[-1].outcome


# --------------------------------------------------------------------------- scripted replies


@pytest.mark.parametrize(
    ("command", "reply", "kind"),
    [
        ("MAIL", "421 4.3.2 Service shutting down", nk.TransientError),
        ("MAIL", "451 4.3.0 Local error, try later", nk.TransientError),
        ("MAIL", "550 5.7.1 Sender not allowed", nk.ProviderError),
        ("MAIL", "552 5.3.4 Message too big", nk.RejectedError),
        ("DATA", "554 5.7.1 Message refused as spam", nk.RejectedError),
        ("DATA", "452 4.3.1 Insufficient storage", nk.TransientError),
    ],
)
def test_reply_codes_map_to_error_kinds(
    plain: SMTPTransport,
    smtp_server: SMTPServer,
    command: str,
    reply: str,
    kind: type[nk.DeliveryError],
) -> None:
    """Each scripted reply becomes the delivery error kind providers.md assigns, with its code."""
    smtp_server.fail(command, reply)
    with pytest.raises(nk.DeliveryError) as info:
        plain.send(make_email())
    assert kind is type(info.value)
    assert reply[:3] == info.value.provider_code
    assert reply[4:] in str(info.value)
    assert not info.value.maybe_delivered
    assert [] == smtp_server.messages


def test_busy_greeting_is_transient(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """421 to EHLO and to the HELO fallback is a TransientError; nothing is sent."""
    smtp_server.fail("EHLO", "421 4.7.0 Too busy")
    smtp_server.fail("HELO", "421 4.7.0 Too busy")
    with pytest.raises(nk.TransientError) as info:
        plain.send(make_email())
    assert "421" == info.value.provider_code
    assert [] == smtp_server.messages


def test_after_a_refusal_the_connection_is_reused(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """A refused transaction is reset with RSET and the next message goes over the same connection."""
    smtp_server.fail("DATA", "554 5.7.1 Refused")
    with pytest.raises(nk.RejectedError):
        plain.send(make_email())
    plain.send(make_email())
    assert 1 == len(smtp_server.messages)
    assert 1 == smtp_server.connections
    assert 1 <= smtp_server.count("RSET")


def test_one_recipient_refused_gives_partial_receipt(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """550 for one of two recipients: the other gets the message and the receipt names the refused one."""
    smtp_server.fail("RCPT", "550 5.1.1 No such user", match="bob@example.com")
    receipt = plain.send(make_email(to=["asha@example.com", "bob@example.com"]))
    assert ("asha@example.com",) == receipt.accepted
    assert {"bob@example.com": "550 5.1.1 No such user"} == dict(receipt.rejected)
    assert [("asha@example.com",)] == [m.rcpt_tos for m in smtp_server.messages]


def test_every_recipient_refused_is_rejected(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """550 for every recipient is a RejectedError listing each one; no DATA is sent."""
    smtp_server.fail("RCPT", "550 5.1.1 No such user", times=None)
    with pytest.raises(nk.RejectedError) as info:
        plain.send(make_email(to=["asha@example.com", "bob@example.com"]))
    assert {
        "asha@example.com": "550 5.1.1 No such user",
        "bob@example.com": "550 5.1.1 No such user",
    } == info.value.rejected
    assert "550" == info.value.provider_code
    assert [] == smtp_server.messages


def test_temporary_recipient_refusal_fails_the_whole_message(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """A 4xx for one recipient is a TransientError and nobody gets the message, so a retry reaches everyone once."""
    smtp_server.fail("RCPT", "452 4.2.2 Mailbox full", match="bob@example.com")
    with pytest.raises(nk.TransientError) as info:
        plain.send(make_email(to=["asha@example.com", "bob@example.com"]))
    assert "452" == info.value.provider_code
    assert [] == smtp_server.messages
    plain.send(make_email(to=["asha@example.com", "bob@example.com"]))
    assert [("asha@example.com", "bob@example.com")] == [m.rcpt_tos for m in smtp_server.messages]


# --------------------------------------------------------------------------- connections


def test_thousand_messages_one_connection(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """1,000 messages through one transport open exactly one connection."""
    email = make_email()
    for _ in range(1000):
        plain.send(email)
    assert 1000 == len(smtp_server.messages)
    assert 1 == smtp_server.connections


def test_max_messages_per_connection(smtp_server: SMTPServer) -> None:
    """With max_messages_per_connection=3, seven messages use three connections, each closed after its third."""
    with SMTPTransport(
        "127.0.0.1", smtp_server.port, security="none", max_messages_per_connection=3
    ) as transport:
        for _ in range(7):
            transport.send(make_email())
    assert 7 == len(smtp_server.messages)
    assert 3 == smtp_server.connections
    assert [1, 1, 1, 2, 2, 2, 3] == [m.connection for m in smtp_server.messages]


def test_close_quits_is_idempotent_and_send_reopens(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """close() ends the session (the server sees it go), twice is harmless, and a later send reconnects."""
    plain.send(make_email())
    plain.close()
    assert smtp_server.wait_for(lambda: smtp_server.open_connections == 0)
    plain.close()
    plain.send(make_email())
    assert 2 == smtp_server.connections


def test_idle_connection_dropped_by_server_reconnects(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """When the server hung up on the idle connection, the next send reconnects transparently."""
    plain.send(make_email())
    smtp_server.drop_connections()
    receipt = plain.send(make_email())
    assert "sent" == receipt.attempts[-1].outcome
    assert [1, 2] == [m.connection for m in smtp_server.messages]


def test_server_restarted_under_open_connection(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """A server restarted while the transport held a connection is reached again without an error."""
    plain.send(make_email())
    smtp_server.restart()
    plain.send(make_email())
    plain.send(make_email())
    assert 3 == len(smtp_server.messages)
    assert 2 == smtp_server.connections


def test_421_on_reused_connection_reconnects(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """A 421 (closing channel) to the first command on a reused connection is retried once on a new one."""
    plain.send(make_email())
    smtp_server.fail("MAIL", "421 4.4.2 Idle timeout, closing")
    plain.send(make_email())
    assert [1, 2] == [m.connection for m in smtp_server.messages]


def test_drop_on_fresh_connection_is_not_retried(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """A connection lost before hand-over on a fresh connection is a TransientError, not delivered and not retried."""
    smtp_server.drop("MAIL")
    with pytest.raises(nk.TransientError) as info:
        plain.send(make_email())
    assert not info.value.maybe_delivered
    assert 1 == smtp_server.connections
    assert [] == smtp_server.messages


def test_closed_port_is_transient(closed_port: int) -> None:
    """A refused connection is a TransientError at once, not after the time-out."""
    with (
        SMTPTransport("127.0.0.1", closed_port, security="none", timeout=30) as transport,
        pytest.raises(nk.TransientError) as info,
    ):
        transport.send(make_email())
    assert "refused" in str(info.value)
    assert not info.value.maybe_delivered
    assert "transient" == info.value.attempts[-1].outcome


@pytest.mark.timeout(10)
def test_server_that_never_answers_times_out(silent_server: Any) -> None:
    """A server that accepts the connection but never greets is a TransientError after the time-out."""
    with (
        SMTPTransport("127.0.0.1", silent_server.port, security="none", timeout=0.5) as transport,
        pytest.raises(nk.TransientError) as info,
    ):
        transport.send(make_email())
    assert "timed out after 0.5 s" in str(info.value)
    assert not info.value.maybe_delivered


def test_drop_after_data_terminator_is_maybe_delivered(
    plain: SMTPTransport, smtp_server: SMTPServer
) -> None:
    """A connection lost after the final '.' and before the reply is a TransientError with maybe_delivered."""
    smtp_server.drop("DATA")
    with pytest.raises(nk.TransientError) as info:
        plain.send(make_email())
    assert info.value.maybe_delivered
    assert info.value.attempts[-1].maybe_delivered
    assert 1 == len(smtp_server.messages)  # the server did get it
    plain.send(make_email())  # and the transport recovers on a new connection
    assert 2 == smtp_server.connections


@pytest.mark.timeout(10)
def test_timeout_after_data_terminator_is_maybe_delivered(smtp_server: SMTPServer) -> None:
    """No reply after the final '.' within the time-out is a TransientError with maybe_delivered."""
    smtp_server.hang("DATA")
    with (
        SMTPTransport("127.0.0.1", smtp_server.port, security="none", timeout=0.5) as transport,
        pytest.raises(nk.TransientError) as info,
    ):
        transport.send(make_email())
    assert info.value.maybe_delivered
    assert "timed out" in str(info.value)


@pytest.mark.timeout(10)
def test_timeout_on_reused_connection_is_not_retried(smtp_server: SMTPServer) -> None:
    """A server that stops answering is not retried on a new connection: the caller waits once."""
    with SMTPTransport("127.0.0.1", smtp_server.port, security="none", timeout=0.5) as transport:
        transport.send(make_email())
        smtp_server.hang("MAIL")
        with pytest.raises(nk.TransientError) as info:
            transport.send(make_email())
    assert not info.value.maybe_delivered
    assert 1 == smtp_server.connections


def test_threads_share_one_transport(plain: SMTPTransport, smtp_server: SMTPServer) -> None:
    """Eight threads sending through one transport deliver every message exactly once over the pool."""
    emails = [make_email(subject=f"message {i}") for i in range(160)]
    errors: list[BaseException] = []

    def worker(batch: list[nk.Email]) -> None:
        try:
            for email in batch:
                plain.send(email)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(emails[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert [] == errors
    received = sorted(m.message["Subject"] for m in smtp_server.messages)
    assert sorted(e.subject for e in emails) == received
    assert 1 <= smtp_server.connections <= plain.max_connections  # the pool (4 by default)
