"""8BITMIME: UTF-8 bodies travel as raw 8bit to servers that offer it, quoted-printable otherwise.

Against real aiosmtpd servers on 127.0.0.1, one offering 8BITMIME (aiosmtpd's
default) and one that does not. The received bytes are parsed back and must
give the very text that was sent.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.transports.smtp import SMTPTransport
from tests.servers.smtp import Received, SMTPServer

TEXT = "Namaste 🙏 — your order of ₹499 has shipped.\n\n.a line with a leading dot\nCafé ü\n"
HTML = "<p>Namaste 🙏 — <b>₹499</b></p>\n<p>Café ü</p>\n"


def make_email(**changes: object) -> nk.Email:
    fields: dict[str, object] = {
        "to": "asha@example.com",
        "subject": "Commande expédiée",
        "text": TEXT,
        "html": HTML,
        "sender": "Shop <noreply@shop.example>",
    }
    fields.update(changes)
    return nk.Email(**fields)  # type: ignore[arg-type]


def parts(received: Received) -> dict[str, EmailMessage]:
    message = email.message_from_bytes(received.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    found: dict[str, EmailMessage] = {}
    for part in message.walk():
        if not part.is_multipart():
            assert isinstance(part, EmailMessage)
            found[part.get_content_type()] = part
    return found


def content(part: EmailMessage) -> str:
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


@pytest.fixture
def eight_bit_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def seven_bit_server() -> Iterator[SMTPServer]:
    with SMTPServer(eightbitmime=False) as server:
        yield server


def transport_for(server: SMTPServer) -> SMTPTransport:
    return SMTPTransport(server.host, server.port, security="none", local_hostname="client.test")


def test_utf8_bodies_travel_8bit_to_an_8bitmime_server(eight_bit_server: SMTPServer) -> None:
    """Once the server has offered 8BITMIME, text parts are raw UTF-8 with BODY=8BITMIME."""
    with transport_for(eight_bit_server) as transport:
        transport.check()  # EHLO: the transport learns that the server offers 8BITMIME
        transport.send(make_email())
        transport.send(make_email())
    for received in eight_bit_server.messages:
        assert "BODY=8BITMIME" in received.mail_options
        assert not received.data.isascii()
        assert "Namaste 🙏".encode() in received.data  # raw UTF-8, not =F0=9F...
        found = parts(received)
        for mimetype, sent in (("text/plain", TEXT), ("text/html", HTML)):
            assert "8bit" == found[mimetype]["Content-Transfer-Encoding"]
            assert 'charset="utf-8"' in found[mimetype]["Content-Type"]
            assert sent == content(found[mimetype])
        assert max(len(line) for line in received.data.split(b"\r\n")) <= 998


def test_a_7bit_server_still_gets_quoted_printable(seven_bit_server: SMTPServer) -> None:
    """No 8BITMIME in EHLO: bodies are quoted-printable, the message is pure ASCII."""
    with transport_for(seven_bit_server) as transport:
        transport.check()
        transport.send(make_email())
        transport.send(make_email())
    assert 2 == len(seven_bit_server.messages)
    for received in seven_bit_server.messages:
        assert received.data.isascii()
        assert "BODY=8BITMIME" not in received.mail_options
        found = parts(received)
        assert "quoted-printable" == found["text/plain"]["Content-Transfer-Encoding"]
        assert TEXT == content(found["text/plain"])
        assert HTML == content(found["text/html"])


def test_switching_to_a_7bit_server_rebuilds_the_body(
    eight_bit_server: SMTPServer, seven_bit_server: SMTPServer
) -> None:
    """A transport that saw 8BITMIME once never sends 8bit to a connection that lacks it."""
    transport = SMTPTransport(
        eight_bit_server.host,
        eight_bit_server.port,
        security="none",
        local_hostname="client.test",
    )
    with transport:
        transport.check()
        assert transport._offers_8bitmime
        transport.close()
        transport.port = seven_bit_server.port  # the same name now leads to a 7-bit server
        message = make_email()
        transport.send(message)
    (received,) = seven_bit_server.messages
    assert received.data.isascii()
    assert TEXT == content(parts(received)["text/plain"])


def test_a_line_over_998_octets_stays_quoted_printable(eight_bit_server: SMTPServer) -> None:
    """8bit lines may hold 998 octets at most (RFC 5322): a longer line keeps that part QP."""
    long_text = "₹" * 400 + "\nshort ü\n"  # 1,200 octets on one line
    with transport_for(eight_bit_server) as transport:
        transport.check()
        transport.send(make_email(text=long_text, html=HTML))
    (received,) = eight_bit_server.messages
    found = parts(received)
    assert "quoted-printable" == found["text/plain"]["Content-Transfer-Encoding"]
    assert "8bit" == found["text/html"]["Content-Transfer-Encoding"]
    assert long_text == content(found["text/plain"])
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998


def test_ascii_bodies_are_7bit_either_way() -> None:
    """eight_bit changes nothing for ASCII text; the two serialisations are cached apart."""
    message = make_email(text="plain ascii\n", html="<p>ascii</p>\n")
    assert message.to_bytes(eight_bit=True).isascii()
    assert b"Content-Transfer-Encoding: 7bit" in message.to_bytes(eight_bit=True)
    utf8 = make_email()
    assert utf8.to_bytes() is utf8.to_bytes()
    assert utf8.to_bytes(eight_bit=True) is utf8.to_bytes(eight_bit=True)
    assert utf8.to_bytes().isascii()
    assert not utf8.to_bytes(eight_bit=True).isascii()


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=600,
    )
)
def test_8bit_bodies_round_trip_and_keep_lines_short(text: str) -> None:
    """Any text survives the 8bit serialisation, and no line passes 998 octets."""
    message = nk.Email(to="a@example.com", subject="s", text=text, sender="b@example.com")
    data = message.to_bytes(eight_bit=True)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert b"\n" not in data.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_content()
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert expected.rstrip("\n") == body.replace("\r\n", "\n").rstrip("\n")
