"""International addresses, envelopes and extra parts through SMTPTransport (issue 15).

Every test sends to a real aiosmtpd server on 127.0.0.1, with or without the
SMTPUTF8 extension, and checks what the server received: the envelope
(``MAIL FROM``, its options, ``RCPT TO``) and the message bytes.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")

import notifykit as nk
from notifykit.transports.smtp import SMTPTransport
from tests.servers.smtp import Received, SMTPServer

pytestmark = pytest.mark.timeout(30)

SENDER = "Shop <noreply@shop.example>"


def make_email(**changes: Any) -> nk.Email:
    fields: dict[str, Any] = {
        "to": "Asha <asha@example.com>",
        "subject": "Your order has shipped",
        "text": "Hello Asha",
        "sender": SENDER,
    }
    fields.update(changes)
    return nk.Email(**fields)


def parsed(received: Received) -> EmailMessage:
    """The bytes as a receiver reads them (UTF-8 headers decoded as UTF-8)."""
    message = email.message_from_string(received.data.decode("utf-8"), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(received: Received) -> bytes:
    return received.data.split(b"\r\n\r\n", 1)[0]


@pytest.fixture(params=[True, False], ids=["smtputf8", "no-smtputf8"])
def server(request: pytest.FixtureRequest) -> Iterator[SMTPServer]:
    with SMTPServer(smtputf8=request.param) as srv:
        yield srv


@pytest.fixture
def utf8_server() -> Iterator[SMTPServer]:
    with SMTPServer(smtputf8=True) as srv:
        yield srv


@pytest.fixture
def ascii_server() -> Iterator[SMTPServer]:
    with SMTPServer(smtputf8=False) as srv:
        yield srv


def transport_for(server: SMTPServer) -> SMTPTransport:
    return SMTPTransport("127.0.0.1", server.port, security="none", timeout=5)


# --------------------------------------------------------------------------- IDN and SMTPUTF8


def test_idn_domain_travels_in_punycode_without_smtputf8(server: SMTPServer) -> None:
    """An ASCII local part at an international domain never asks for SMTPUTF8 (issue 15 item 1)."""
    message = make_email(
        to="José Núñez <jose@bücher.example>",
        sender="Bücher <shop@bücher.example>",
        cc="ravi@例え.jp",
    )
    assert not message.needs_smtputf8
    with transport_for(server) as transport:
        transport.send(message)
    (received,) = server.messages
    assert "shop@xn--bcher-kva.example" == received.mail_from
    assert ("jose@xn--bcher-kva.example", "ravi@xn--r8jz45g.jp") == received.rcpt_tos
    assert not any(o.upper() == "SMTPUTF8" for o in received.mail_options)
    assert received.data.isascii()  # RFC 2047 names, punycode domains
    got = parsed(received)
    (to,) = got["To"].addresses
    assert ("José Núñez", "jose@xn--bcher-kva.example") == (to.display_name, to.addr_spec)
    assert "shop@xn--bcher-kva.example" == got["From"].addresses[0].addr_spec


def test_non_ascii_local_part_uses_smtputf8_when_offered(utf8_server: SMTPServer) -> None:
    """δοκιμή@example.com is accepted (RFC 6531) and sent with SMTPUTF8 and UTF-8 headers."""
    message = make_email(to="Δοκιμή <δοκιμή@παράδειγμα.δοκιμή>", subject="Γειά χαρά")
    assert message.needs_smtputf8
    with transport_for(utf8_server) as transport:
        receipt = transport.send(message)
    (received,) = utf8_server.messages
    assert "SMTPUTF8" in [o.upper() for o in received.mail_options]
    assert ("δοκιμή@παράδειγμα.δοκιμή",) == received.rcpt_tos
    assert ("δοκιμή@παράδειγμα.δοκιμή",) == receipt.accepted
    assert "To: Δοκιμή <δοκιμή@παράδειγμα.δοκιμή>".encode() in header_block(received)
    got = parsed(received)
    assert "Γειά χαρά" == got["Subject"]
    assert "δοκιμή@παράδειγμα.δοκιμή" == got["To"].addresses[0].addr_spec


def test_non_ascii_sender_local_part_needs_smtputf8(utf8_server: SMTPServer) -> None:
    """The envelope sender counts too: MAIL FROM carries SMTPUTF8 for a UTF-8 sender."""
    message = make_email(sender="Ünïcode <bücher@shop.example>")
    with transport_for(utf8_server) as transport:
        transport.send(message)
    (received,) = utf8_server.messages
    assert "bücher@shop.example" == received.mail_from
    assert "SMTPUTF8" in [o.upper() for o in received.mail_options]


def test_without_smtputf8_a_non_ascii_local_part_is_a_clear_provider_error(
    ascii_server: SMTPServer,
) -> None:
    """The error names the SMTPUTF8 extension; nothing is sent; the connection stays usable."""
    with transport_for(ascii_server) as transport:
        with pytest.raises(nk.ProviderError, match="SMTPUTF8") as info:
            transport.send(make_email(to="δοκιμή@example.com"))
        assert "non-ASCII local part" in str(info.value)
        assert not ascii_server.messages
        transport.send(make_email())
    assert 1 == len(ascii_server.messages)
    assert 1 == ascii_server.connections


def test_smtputf8_only_when_needed(utf8_server: SMTPServer) -> None:
    """A non-ASCII subject or body alone never asks for SMTPUTF8: headers are RFC 2047."""
    with transport_for(utf8_server) as transport:
        transport.send(make_email(subject="Commande expédiée ₹499", text="Namaste 🙏"))
    (received,) = utf8_server.messages
    assert not any(o.upper() == "SMTPUTF8" for o in received.mail_options)
    assert header_block(received).isascii()
    assert "Commande expédiée ₹499" == parsed(received)["Subject"]


def test_long_non_ascii_names_arrive_folded_with_crlf(server: SMTPServer) -> None:
    """The audit's bare-LF fold: long non-ASCII display names arrive intact, CRLF only."""
    names = ["श्रीमती आशा वर्मा (लेखा विभाग)", "Jürgen Müller-Lüdenscheidt, Geschäftsführer"]
    message = make_email(
        to=[nk.Recipient(email=f"user{i}@example.com", name=n) for i, n in enumerate(names)]
    )
    with transport_for(server) as transport:
        transport.send(message)
    (received,) = server.messages
    assert b"\n" not in received.data.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in header_block(received).split(b"\r\n"))
    from email.header import decode_header, make_header
    from email.utils import getaddresses

    raw = email.message_from_bytes(received.data, policy=policy.compat32)["To"]
    pairs = getaddresses([raw.replace("\r\n", "")])
    assert names == [str(make_header(decode_header(name))) for name, _ in pairs]


# --------------------------------------------------------------------------- envelope


def test_envelope_sender_and_recipients_differ_from_the_headers(server: SMTPServer) -> None:
    """MAIL FROM is the envelope sender (bounces, VERP); RCPT TO the envelope recipients."""
    message = make_email(
        to="Team <team@lists.example>",
        cc="cc@example.com",
        envelope_sender="bounces+asha=example.com@shop.example",
        envelope_recipients=["asha@example.com", "ravi@bücher.example"],
    )
    assert "bounces+asha=example.com@shop.example" == message.sender_address
    assert ("asha@example.com", "ravi@xn--bcher-kva.example") == message.recipients
    with transport_for(server) as transport:
        receipt = transport.send(message)
    (received,) = server.messages
    assert "bounces+asha=example.com@shop.example" == received.mail_from
    assert ("asha@example.com", "ravi@xn--bcher-kva.example") == received.rcpt_tos
    assert ("asha@example.com", "ravi@xn--bcher-kva.example") == receipt.accepted
    got = parsed(received)
    assert "noreply@shop.example" == got["From"].addresses[0].addr_spec
    assert "team@lists.example" == got["To"].addresses[0].addr_spec
    assert "cc@example.com" == got["Cc"].addresses[0].addr_spec
    assert got["Return-Path"] is None
    assert got["Bcc"] is None


def test_envelope_recipients_alone_are_enough() -> None:
    """A message may have only envelope recipients (no To header), as a Bcc-only list send."""
    message = nk.Email(
        to=(), subject="s", text="t", sender=SENDER, envelope_recipients=["a@example.com"]
    )
    assert ("a@example.com",) == message.recipients
    assert b"\r\nTo:" not in message.to_bytes()
    with pytest.raises(nk.InvalidMessage, match="envelope_recipients"):
        make_email(envelope_recipients=[])
    with pytest.raises(nk.InvalidMessage, match="envelope_sender"):
        make_email(envelope_sender="not an address")


def test_non_ascii_envelope_recipient_alone_needs_smtputf8() -> None:
    """needs_smtputf8 looks at the envelope as well as the headers."""
    assert make_email(envelope_recipients=["δοκιμή@example.com"]).needs_smtputf8
    assert make_email(envelope_sender="δοκιμή@example.com").needs_smtputf8
    assert make_email(headers={"Sender": "δοκιμή@example.com"}).needs_smtputf8
    assert not make_email(to="asha@bücher.example").needs_smtputf8


# --------------------------------------------------------------------------- address lists


def test_commas_in_quoted_names_do_not_split_addresses(server: SMTPServer) -> None:
    """'"Doe, John" <j@...>, b@...' is two addresses; the comma stays in the name."""
    to = nk.parse_addresses('"Doe, John" <john@example.com>, b@example.com')
    assert ('"Doe, John" <john@example.com>', "b@example.com") == to
    reply_to = nk.parse_addresses('"Support, India" <help@shop.example>')
    with transport_for(server) as transport:
        transport.send(make_email(to=to, reply_to=reply_to))
    (received,) = server.messages
    assert ("john@example.com", "b@example.com") == received.rcpt_tos
    got = parsed(received)
    assert [("Doe, John", "john@example.com"), ("", "b@example.com")] == [
        (a.display_name, a.addr_spec) for a in got["To"].addresses
    ]
    assert [("Support, India", "help@shop.example")] == [
        (a.display_name, a.addr_spec) for a in got["Reply-To"].addresses
    ]


def test_one_string_never_becomes_two_recipients() -> None:
    """A single address field refuses a list in one string: a form value cannot add a recipient."""
    with pytest.raises(nk.InvalidMessage, match="list"):
        make_email(to="victim@example.com, attacker@evil.example")
    with pytest.raises(nk.InvalidMessage):
        nk.parse_addresses("ok@example.com, not an address")


# --------------------------------------------------------------------------- parts


CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//shop//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:a-17@shop.example\r\nDTSTART:20270105T100000Z\r\n"
    "SUMMARY:Delivery window — Café\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_calendar_alternative_arrives_in_the_alternative_part(server: SMTPServer) -> None:
    """A text/calendar alternative is the last part of the multipart/alternative."""
    message = make_email(
        html="<p>Delivery on <b>5 January</b></p>",
        alternatives=[nk.Alternative(CALENDAR, "text/calendar; method=REQUEST")],
    )
    with transport_for(server) as transport:
        transport.send(message)
    got = parsed(server.messages[0])
    assert "multipart/alternative" == got.get_content_type()
    types = [p.get_content_type() for p in got.iter_parts()]
    assert ["text/plain", "text/html", "text/calendar"] == types
    calendar = list(got.iter_parts())[2]
    assert "REQUEST" == calendar.get_param("method")
    assert CALENDAR.replace("\r\n", "\n") == calendar.get_content().replace("\r\n", "\n")


def test_alternatives_accept_tuples_and_bytes_and_round_trip() -> None:
    """(content, mimetype) tuples work as in Django; bytes travel base64; to_dict keeps them."""
    message = make_email(
        alternatives=[(CALENDAR, "text/calendar"), (b"\x00\x01binary", "application/x-thing")]
    )
    assert message.alternatives[0] == nk.Alternative(CALENDAR, "text/calendar")
    assert message == nk.Email.from_dict(message.to_dict())
    got = email.message_from_bytes(message.to_bytes(), policy=policy.default)
    assert isinstance(got, EmailMessage)
    parts = list(got.iter_parts())
    assert b"\x00\x01binary" == parts[2].get_content()
    with pytest.raises(nk.InvalidMessage):
        make_email(alternatives=[("x", "multipart/mixed")])
    with pytest.raises(nk.InvalidMessage):
        make_email(alternatives=["just a string"])


FORWARDED = (
    b"From: Ravi <ravi@example.com>\r\nTo: asha@example.com\r\nSubject: Original\r\n"
    b"Message-ID: <orig-1@example.com>\r\n\r\nThe original body.\r\n"
)


def test_message_rfc822_attachment_arrives_as_a_message(server: SMTPServer) -> None:
    """An attached e-mail is a message/rfc822 part (not base64), file name optional."""
    attached = nk.Attachment(None, FORWARDED, "message/rfc822")
    with transport_for(server) as transport:
        transport.send(make_email(attachments=[attached]))
    got = parsed(server.messages[0])
    assert "multipart/mixed" == got.get_content_type()
    part = list(got.iter_parts())[1]
    assert "message/rfc822" == part.get_content_type()
    assert part["Content-Transfer-Encoding"] in ("7bit", "8bit")
    inner = part.get_content()
    assert "Original" == inner["Subject"]
    assert "The original body." == inner.get_content().strip()
    with pytest.raises(nk.InvalidMessage, match="filename"):
        nk.Attachment(None, b"%PDF", "application/pdf")
    with pytest.raises(nk.InvalidMessage, match="rfc822"):
        nk.Attachment(None, b"no headers here", "message/rfc822")


def test_sender_header_arrives(server: SMTPServer) -> None:
    """A Sender header (on behalf of) is allowed and arrives as an address."""
    with transport_for(server) as transport:
        transport.send(make_email(headers={"Sender": "Desk <desk@shop.example>"}))
    got = parsed(server.messages[0])
    assert "desk@shop.example" == got["Sender"].addresses[0].addr_spec


def test_html_only_email_arrives_with_a_derived_text_part(server: SMTPServer) -> None:
    """Email(html=...) gets a text part from the HTML (issue 16 item 7), unless opted out."""
    html = "<h1>Order A-17</h1><p>Track it <a href='https://shop.example/t/17'>here</a>.</p>"
    with transport_for(server) as transport:
        transport.send(make_email(text=None, html=html))
        transport.send(make_email(text=None, html=html, derive_text=False))
    derived, bare = (parsed(m) for m in server.messages)
    text, _ = derived.iter_parts()
    assert "Order A-17\n\nTrack it here (https://shop.example/t/17)." == (
        text.get_content().replace("\r\n", "\n").strip()  # type: ignore[attr-defined]
    )
    assert "text/html" == bare.get_content_type()


def test_new_fields_round_trip_through_to_dict() -> None:
    """Envelope, alternatives, derive_text and message attachments survive to_dict/from_dict."""
    message = make_email(
        text=None,
        html="<p>Hi</p>",
        derive_text=False,
        envelope_sender="bounces@shop.example",
        envelope_recipients=["a@example.com", "δοκιμή@example.com"],
        alternatives=[nk.Alternative(CALENDAR, "text/calendar; method=REQUEST")],
        attachments=[nk.Attachment(None, FORWARDED, "message/rfc822")],
        headers={"Sender": "Desk <desk@shop.example>"},
    )
    data = message.to_dict()
    assert data["envelope_recipients"] == ["a@example.com", "δοκιμή@example.com"]
    assert data["derive_text"] is False
    again = nk.message_from_dict(data)
    assert again == message
    assert again.to_bytes().split(b"\r\n\r\n", 1)[1].count(b"BEGIN:VCALENDAR") == 1
