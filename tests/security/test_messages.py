"""Header injection and wire safety of e-mails, on arbitrary text (issue 14, items 4-7).

For any text put in a subject, a display name, a custom header, a file name or
a content id, either the message is refused at construction with
``InvalidMessage``, or ``to_bytes()``:

- ends every line in CRLF (no bare CR or LF anywhere),
- holds no line longer than 998 octets,
- parses back (``email.parser`` with ``policy.default``) to the same subject,
  addresses, file name and body,
- and has exactly the headers notifykit writes: no extra header, no extra address.

Display names are also decoded as an RFC 2047 reader does (whitespace between
adjacent encoded words dropped), because ``policy.default`` keeps that
whitespace in address phrases, against the RFC.
"""

from __future__ import annotations

import email
import json
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.message import address_parts

SETTINGS = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SENDER = "Shop <noreply@shop.example>"
BASE_HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}

# Text of every kind: any code point (controls, lone surrogates, line separators),
# characters that matter to headers, and long runs that must be folded.
_SPECIALS = list("ab @,;:\"<>=?\\().'\t é€🙏\x00\x7f\x85")
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.sampled_from(_SPECIALS), max_size=40),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(1, 700)),
    st.builds(
        lambda a, b, n: a + " " * n + b,
        st.text(max_size=10),
        st.text(max_size=10),
        st.integers(0, 1200),
    ),
    st.sampled_from(
        [
            "=?utf-8?q?ceo=40bank.com?=",
            "=?utf-8?b?Y2VvQGJhbmsuY29t?= <ceo@bank.example>",
            "ceo@bank.example",
            '"ceo@bank.example" <x@y.example>',
            "Doe, John",
            "x" * 2000,
            "https://shop.example/" + "a" * 1500,
            "Ünïcödé " * 150,
        ]
    ),
)


def wire_checks(message: nk.Email, *, utf8: bool = False) -> EmailMessage:
    """The bytes' line rules, then the message as a receiving server parses it."""
    data = message.to_bytes(utf8=utf8)
    bare = data.replace(b"\r\n", b"")
    assert b"\r" not in bare, "a bare CR"
    assert b"\n" not in bare, "a bare LF"
    assert data.endswith(b"\r\n")
    longest = max(len(line) for line in data.split(b"\r\n"))
    assert longest <= 998, f"a line of {longest} octets"
    if utf8:  # RFC 6532: UTF-8 headers; the bytes parser would read them as surrogates
        parsed = email.message_from_string(data.decode("utf-8"), policy=policy.default)
    else:
        parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def header_names(parsed: EmailMessage) -> list[str]:
    return sorted(name.lower() for name in parsed)


def decoded_addresses(message: nk.Email, header: str) -> list[tuple[str, str]]:
    """(display name, addr-spec) of ``header`` as an RFC 2047-compliant reader sees them."""
    raw = email.message_from_bytes(message.to_bytes(), policy=policy.compat32)[header]
    pairs = getaddresses([raw.replace("\r\n", "")])
    return [(str(make_header(decode_header(name))), addr) for name, addr in pairs]


def expected(address: str) -> tuple[str, str]:
    parts = address_parts(address)
    return parts.name, parts.wire


def build(**fields: Any) -> nk.Email | None:
    base: dict[str, Any] = {
        "to": "asha@example.com",
        "subject": "Order shipped",
        "text": "Hello",
        "sender": SENDER,
    }
    base.update(fields)
    try:
        message = nk.Email(**base)
    except nk.InvalidMessage:
        note("refused at construction")
        return None
    note("built")
    return message


def note(what: str) -> None:
    """Count outcomes in hypothesis's statistics (--hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


@given(subject=TEXT)
@SETTINGS
def test_any_subject_is_refused_or_arrives_intact(subject: str) -> None:
    """A subject is refused, or arrives exactly, alone, in lines of at most 998 octets."""
    message = build(subject=subject)
    if message is None:
        return
    parsed = wire_checks(message)
    assert [subject] == parsed.get_all("Subject")
    assert BASE_HEADERS | {"content-transfer-encoding"} == set(header_names(parsed))
    assert "Hello" == parsed.get_content().rstrip("\r\n")


@given(name=TEXT, field=st.sampled_from(["to", "cc", "reply_to", "sender"]))
@SETTINGS
def test_any_display_name_is_refused_or_shows_no_other_address(name: str, field: str) -> None:
    """A display name is refused, or arrives as one name on one address: never a fake address."""
    try:
        who = nk.Recipient(email="asha@example.com", name=name or None)
    except nk.InvalidMessage:
        return
    message = build(**{field: who})
    if message is None:
        return
    parsed = wire_checks(message)
    header = {"to": "To", "cc": "Cc", "reply_to": "Reply-To", "sender": "From"}[field]
    assert [a.addr_spec for a in parsed[header].addresses] == ["asha@example.com"]
    assert [expected(who.email or "")] == decoded_addresses(message, header)
    names = set(header_names(parsed))
    assert names - BASE_HEADERS <= {"cc", "reply-to", "content-transfer-encoding"}
    assert len(parsed.keys()) == len(names)


@given(value=TEXT)
@SETTINGS
def test_any_custom_header_is_refused_or_arrives_alone(value: str) -> None:
    """A custom header value is refused, or is one header with that value, nothing more."""
    message = build(headers={"X-Campaign": value})
    if message is None:
        return
    parsed = wire_checks(message)
    assert BASE_HEADERS | {"x-campaign", "content-transfer-encoding"} == set(header_names(parsed))
    if "=?" not in value:  # an encoded word the caller wrote is decoded by readers, as meant
        assert [value.strip(" \t")] == parsed.get_all("X-Campaign")


@given(
    filename=TEXT,
    content_id=st.one_of(st.none(), st.from_regex(r"[a-z0-9.@_-]{1,40}", fullmatch=True), TEXT),
)
@SETTINGS
def test_any_file_name_and_content_id_are_refused_or_arrive_intact(
    filename: str, content_id: str | None
) -> None:
    """File names (RFC 2231 when long or non-ASCII) and content ids never break a header."""
    try:
        attachment = nk.Attachment(filename, b"%PDF-1.4", "application/pdf", content_id)
    except nk.InvalidMessage:
        return
    message = build(attachments=[attachment], html='<img src="cid:x">')
    if message is None:
        return
    parsed = wire_checks(message)
    (part,) = [p for p in parsed.walk() if p.get_content_type() == "application/pdf"]
    assert filename.strip() == part.get_filename()
    assert b"%PDF-1.4" == part.get_content()
    if attachment.content_id is not None:
        assert f"<{attachment.content_id}>" == part["Content-ID"]


@given(
    text=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=300),
    subject=st.text(st.characters(codec="utf-8", exclude_categories=("Cc",)), max_size=100),
    to=st.lists(
        st.builds(
            lambda n, local, dom: (n, f"{local}@{dom}"),
            st.text(st.characters(codec="utf-8", exclude_categories=("Cc",)), max_size=20),
            st.sampled_from(["asha", "δοκιμή", "josé", "a.b+c"]),
            st.sampled_from(["example.com", "bücher.example", "例え.jp"]),
        ),
        min_size=1,
        max_size=4,
    ),
)
@SETTINGS
def test_any_message_round_trips_through_the_wire(
    text: str, subject: str, to: list[tuple[str, str]]
) -> None:
    """Several addresses (IDN domains, non-ASCII local parts), any body: the same after parsing."""
    try:
        recipients = [nk.Recipient(email=addr, name=name or None) for name, addr in to]
    except nk.InvalidMessage:
        return
    message = build(to=recipients, subject=subject, text=text)
    if message is None:
        return
    utf8 = message.needs_smtputf8
    assert utf8 == any(not address_parts(r).wire.isascii() for r in message.to)
    parsed = wire_checks(message, utf8=utf8)
    assert [subject] == parsed.get_all("Subject")
    assert [expected(r)[1] for r in message.to] == [a.addr_spec for a in parsed["To"].addresses]
    if not utf8:
        assert parsed.as_bytes().isascii()
        assert [expected(r) for r in message.to] == decoded_addresses(message, "To")
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    got = parsed.get_content().replace("\r\n", "\n")
    assert got in (body, body + "\n")  # the last line gets its CRLF on the wire
    same = nk.message_from_dict(json.loads(json.dumps(message.to_dict())))
    assert same == message


@given(
    value=st.builds(
        lambda a, c, b: a + chr(c) + b,
        st.text(st.characters(codec="utf-8"), max_size=5),
        st.integers(0xD800, 0xDFFF),
        st.text(st.characters(codec="utf-8"), max_size=5),
    )
)
@SETTINGS
def test_lone_surrogates_are_refused_everywhere(value: str) -> None:
    """Text with a lone surrogate (json.loads of broken UTF-16) is refused in every text field."""
    builders = [
        lambda: build(subject=value),
        lambda: build(text=value),
        lambda: build(html=value),
        lambda: build(headers={"X-A": value}),
        lambda: build(tags=[value]),
        lambda: build(metadata={"k": value}),
        lambda: build(idempotency_key=value),
        lambda: build(to=f"{value} <a@example.com>"),
        lambda: build(alternatives=[(value, "text/calendar")]),
    ]
    for make in builders:
        assert make() is None, make
    for make_other in (
        lambda: nk.Attachment(value, b"x"),
        lambda: nk.Attachment("a.txt", value),
        lambda: nk.Recipient(email="a@example.com", name=value),
        lambda: nk.SMS("+919876543210", value),
        lambda: nk.SMS("+919876543210", "hi", template_id="1", variables={"v": value}),
    ):
        with pytest.raises(nk.InvalidMessage):
            make_other()


# --------------------------------------------------------------------------- examples


def test_long_non_ascii_display_name_is_folded_with_crlf() -> None:
    """The audit's case: an 18+ character non-ASCII name was folded with a bare LF."""
    message = build(to=nk.Recipient(email="asha@example.com", name="आशा वर्मा, लेखा विभाग प्रमुख"))
    assert message is not None
    parsed = wire_checks(message)
    assert [("आशा वर्मा, लेखा विभाग प्रमुख", "asha@example.com")] == decoded_addresses(message, "To")
    assert 1 == len(parsed["To"].addresses)


@pytest.mark.parametrize(
    "name",
    ["=?utf-8?q?ceo=40bank.com?=", "=?utf-8?b?Y2VvQGJhbmsuY29t?=", "ceo@bank.com", "a, b <c@d>"],
)
def test_names_that_look_like_addresses_stay_names(name: str) -> None:
    """An encoded-word-looking or address-looking name is encoded or quoted, never decoded into an address."""
    message = build(to=nk.Recipient(email="asha@example.com", name=name))
    assert message is not None
    parsed = wire_checks(message)
    (address,) = parsed["To"].addresses
    assert ("asha@example.com", name) == (address.addr_spec, address.display_name)
    raw = message.to_bytes().decode("ascii")
    to_line = raw[raw.index("\r\nTo: ") :].split("\r\n")[1]
    if "=?" in name:
        assert name not in to_line  # encoded, so a reader decodes it back to the literal text


def test_a_2000_character_subject_and_a_long_url_header() -> None:
    """Long values are folded (or encoded) into lines of at most 998 octets."""
    subject = "x" * 2000
    url = "<https://shop.example/unsubscribe?" + "t" * 900 + ">"
    message = build(subject=subject, headers={"List-Unsubscribe": url})
    assert message is not None
    parsed = wire_checks(message)
    assert subject == parsed["Subject"]
    assert url == parsed["List-Unsubscribe"]


def test_an_unfoldable_custom_header_is_refused_at_construction() -> None:
    """A word that cannot fit a 998-octet line, in a header that cannot be encoded: refused."""
    with pytest.raises(nk.InvalidMessage, match="998"):
        nk.Email(
            to="a@example.com",
            subject="s",
            text="t",
            headers={"List-Unsubscribe": "<https://shop.example/" + "u" * 1000 + ">"},
        )


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x9b"])
@pytest.mark.parametrize(
    "make",
    [
        lambda c: build(subject=f"a{c}b"),
        lambda c: build(headers={"X-A": f"a{c}b"}),
        lambda c: nk.Recipient(email="a@example.com", name=f"A{c}"),
        lambda c: nk.Attachment(f"a{c}.pdf", b"x"),
        lambda c: nk.Attachment("a.pdf", b"x", content_id=f"logo{c}"),
        lambda c: nk.Attachment("a.pdf", b"x", mimetype=f"application/pdf{c}"),
    ],
    ids=["subject", "header", "name", "filename", "content_id", "mimetype"],
)
def test_control_characters_are_refused(make: Any, char: str) -> None:
    """NUL and the other C0/C1 controls are refused in every header-bound field."""
    result: object
    try:
        result = make(char)
    except nk.InvalidMessage:
        return
    assert result is None


def test_tab_is_allowed_where_legal() -> None:
    """TAB is white space in a subject and a header value; it arrives unchanged."""
    message = build(subject="Order\tshipped", headers={"X-A": "a\tb"})
    assert message is not None
    parsed = wire_checks(message)
    assert "Order\tshipped" == parsed["Subject"]


def test_mimetype_parameters_are_parsed_and_name_is_refused() -> None:
    """A mimetype's own parameters are kept once; name= and filename= are notifykit's to write."""
    with pytest.raises(nk.InvalidMessage, match="name"):
        nk.Attachment("a.pdf", b"x", mimetype='application/pdf; name="evil.exe"')
    att = nk.Attachment("notes.txt", b"caf\xe9", mimetype="text/plain; charset=iso-8859-1")
    message = build(attachments=[att])
    assert message is not None
    parsed = wire_checks(message)
    (part,) = [p for p in parsed.walk() if p.get_filename() == "notes.txt"]
    assert "iso-8859-1" == part.get_content_charset()
    assert 1 == part["Content-Type"].count("charset")
    assert "café" == part.get_content()


@pytest.mark.parametrize(
    "name",
    [
        "Return-Path",
        "Resent-From",
        "Resent-To",
        "Content-Type",
        "Content-Disposition",
        "MIME-Version",
        "Received",
        "to",
        "BCC",
    ],
)
def test_reserved_headers_are_refused(name: str) -> None:
    """Headers notifykit or the receiving servers write cannot be set by the caller."""
    with pytest.raises(nk.InvalidMessage):
        nk.Email(to="a@example.com", subject="s", text="t", headers={name: "x@example.com"})


def test_sender_header_is_allowed_and_written_as_an_address() -> None:
    """Sender is an allowed custom header (contracts), validated and encoded as an address."""
    message = build(headers={"Sender": "Ünïcode Desk <desk@bücher.example>"})
    assert message is not None
    parsed = wire_checks(message)
    (address,) = parsed["Sender"].addresses
    assert "desk@xn--bcher-kva.example" == address.addr_spec
    with pytest.raises(nk.InvalidMessage):
        build_or_raise(headers={"Sender": "not an address"})


def test_header_names_differing_in_case_are_refused() -> None:
    """Two spellings of one header would be two headers on the wire."""
    with pytest.raises(nk.InvalidMessage, match="twice"):
        build_or_raise(headers={"X-Tag": "a", "x-tag": "b"})


def build_or_raise(**fields: Any) -> nk.Email:
    base: dict[str, Any] = {"to": "a@example.com", "subject": "s", "text": "t", "sender": SENDER}
    base.update(fields)
    return nk.Email(**base)
