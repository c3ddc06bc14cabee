"""Messages: validation on construction, MIME structure, dict round trips, SMS encoding."""

from __future__ import annotations

import email
import json
import math
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit._gsm import GSM7_BASIC, GSM7_EXTENSION

SENDER = "Shop <noreply@shop.example>"
hypothesis_settings = settings(
    deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow]
)


def make_email(**changes: Any) -> nk.Email:
    fields: dict[str, Any] = {
        "to": "Asha <asha@example.com>",
        "subject": "Your order has shipped",
        "text": "Hello Asha",
        "sender": SENDER,
    }
    fields.update(changes)
    return nk.Email(**fields)


def wire(message: nk.Email) -> EmailMessage:
    """The e-mail as a receiving server would parse it."""
    parsed = email.message_from_bytes(message.to_mime().as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def structure(part: EmailMessage) -> Any:
    """The MIME tree as nested (content type, [children]) tuples."""
    if part.is_multipart():
        return (part.get_content_type(), [structure(p) for p in part.iter_parts()])  # type: ignore[arg-type]
    return part.get_content_type()


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address",
    [
        "not an address",
        "a@",
        "@example.com",
        "a@b@example.com",
        "a b@example.com",
        "a@example..com",
        "",
        "Asha <>",
    ],
)
def test_malformed_address_is_invalid(address: str) -> None:
    """A malformed address is InvalidMessage at construction, naming the field."""
    with pytest.raises(nk.InvalidMessage) as info:
        make_email(to=address)
    assert "to" in str(info.value)


def test_two_addresses_in_one_string_are_refused() -> None:
    """A comma-separated string is refused: several recipients must be passed as a list."""
    with pytest.raises(nk.InvalidMessage) as info:
        make_email(to="a@example.com, b@example.com")
    assert "list" in str(info.value)


def test_non_string_address_is_invalid() -> None:
    """An address that is not a string (nor a Recipient) is InvalidMessage, not a TypeError."""
    with pytest.raises(nk.InvalidMessage):
        make_email(to=[42])


def test_addresses_are_normalised() -> None:
    """Addresses keep their display names, quoted when needed; a single string becomes a tuple."""
    message = make_email(to='"Doe, John" <john@example.com>', cc="ravi@example.com")
    assert ('"Doe, John" <john@example.com>',) == message.to
    assert ("ravi@example.com",) == message.cc


def test_recipients_are_bare_unique_and_include_bcc() -> None:
    """recipients lists to, cc and bcc as bare addresses, each once, in order."""
    message = make_email(
        to=["Asha <asha@example.com>", "ravi@example.com"],
        cc="asha@example.com",
        bcc="Audit <audit@shop.example>",
    )
    assert ("asha@example.com", "ravi@example.com", "audit@shop.example") == message.recipients


def test_recipient_objects_are_accepted() -> None:
    """A Recipient with an e-mail address can stand for an address, with its name."""
    message = make_email(to=nk.Recipient(email="asha@example.com", name="Asha Rao"))
    assert ("Asha Rao <asha@example.com>",) == message.to


def test_recipient_without_email_cannot_receive_email() -> None:
    """A Recipient with only a phone number is InvalidMessage as an e-mail recipient."""
    with pytest.raises(nk.InvalidMessage):
        make_email(to=nk.Recipient(phone="+919876543210"))


def test_recipient_needs_a_channel() -> None:
    """A Recipient with neither e-mail nor phone is InvalidMessage."""
    with pytest.raises(nk.InvalidMessage):
        nk.Recipient()


def test_recipient_round_trip() -> None:
    """Recipient.to_dict/from_dict rebuild an equal recipient."""
    recipient = nk.Recipient(email="asha@example.com", phone="+919876543210", name="Asha")
    assert recipient == nk.Recipient.from_dict(json.loads(json.dumps(recipient.to_dict())))


def test_sender_address_is_bare() -> None:
    """sender_address is the bare address used for the SMTP envelope."""
    assert "noreply@shop.example" == make_email().sender_address
    assert make_email(sender=None).sender_address is None


# --------------------------------------------------------------------------- required parts


def test_email_needs_a_recipient() -> None:
    """An e-mail without any recipient is InvalidMessage."""
    with pytest.raises(nk.InvalidMessage):
        make_email(to=[])


def test_bcc_alone_is_enough() -> None:
    """An e-mail with only Bcc recipients is valid."""
    assert ("audit@shop.example",) == make_email(to=[], bcc="audit@shop.example").recipients


@pytest.mark.parametrize(("text", "html"), [(None, None), ("", None), (None, ""), ("", "")])
def test_email_needs_a_body(text: str | None, html: str | None) -> None:
    """An e-mail with neither text nor HTML is InvalidMessage."""
    with pytest.raises(nk.InvalidMessage):
        make_email(text=text, html=html)


def test_messages_are_frozen_and_replace_revalidates() -> None:
    """Messages cannot be changed in place; replace() keeps the id and validates again."""
    message = make_email()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.subject = "changed"  # type: ignore[misc]
    changed = message.replace(subject="Changed")
    assert message.id == changed.id
    assert "Changed" == changed.subject
    with pytest.raises(nk.InvalidMessage):
        message.replace(subject="a\r\nBcc: x@example.com")


def test_ids_are_unique() -> None:
    """Every message gets its own id."""
    assert make_email().id != make_email().id


# --------------------------------------------------------------------------- header injection


@pytest.mark.parametrize("newline", ["\r", "\n", "\r\n"])
@pytest.mark.parametrize(
    "field",
    ["subject", "to_name", "sender_name", "header", "tag", "attachment_filename", "recipient_name"],
)
def test_line_breaks_in_header_values_are_refused(field: str, newline: str) -> None:
    """A CR or LF in anything that becomes a header is InvalidMessage (header injection)."""
    evil = f"Hello{newline}Bcc: victim@example.com"
    build = {
        "subject": lambda: make_email(subject=evil),
        "to_name": lambda: make_email(to=f"{evil} <asha@example.com>"),
        "sender_name": lambda: make_email(sender=f"{evil} <noreply@shop.example>"),
        "header": lambda: make_email(headers={"X-Campaign": evil}),
        "tag": lambda: make_email(tags=[evil]),
        "attachment_filename": lambda: nk.Attachment(f"{evil}.pdf", b"%PDF"),
        "recipient_name": lambda: nk.Recipient(email="asha@example.com", name=evil),
    }[field]
    with pytest.raises(nk.InvalidMessage):
        build()


@given(
    prefix=st.text(max_size=20),
    newline=st.sampled_from(["\r", "\n"]),
    suffix=st.text(max_size=20),
)
@hypothesis_settings
def test_any_subject_with_cr_or_lf_is_refused(prefix: str, newline: str, suffix: str) -> None:
    """Wherever a CR or LF sits in a subject, the e-mail is refused."""
    with pytest.raises(nk.InvalidMessage):
        make_email(subject=prefix + newline + suffix)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_unicode_line_separators_in_subject_are_invalid_message(separator: str) -> None:
    """Any character Python treats as a line break is refused at construction, like CR and LF."""
    with pytest.raises(nk.InvalidMessage):
        make_email(subject=f"Hello{separator}Bcc: victim@example.com")


def test_custom_headers_are_validated() -> None:
    """Custom header names must be valid, their values strings, and reserved names are refused."""
    for headers in ({"X Bad": "v"}, {"X:Bad": "v"}, {"": "v"}, {"X-Ok": 5}, {"Bcc": "x@y.example"}):
        with pytest.raises(nk.InvalidMessage):
            make_email(headers=headers)


@given(
    subject=st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"
        ),
        max_size=200,
    )
)
@hypothesis_settings
def test_subject_survives_the_wire(subject: str) -> None:
    """Any single-line subject reaches the receiver unchanged, as exactly one Subject header."""
    assume(subject == subject.strip() and "=?" not in subject)
    parsed = wire(make_email(subject=subject))
    assert [subject] == parsed.get_all("Subject")
    assert parsed.get_all("Bcc") is None


# --------------------------------------------------------------------------- MIME


def test_text_only_structure() -> None:
    """A text-only e-mail is a single text/plain part."""
    assert "text/plain" == structure(wire(make_email()))


def test_html_only_structure() -> None:
    """HTML without text gets a derived text part; derive_text=False sends a single text/html part."""
    parsed = wire(
        make_email(text=None, html="<p>Hi <a href='https://shop.example/o'>order</a></p>")
    )
    assert ("multipart/alternative", ["text/plain", "text/html"]) == structure(parsed)
    text = next(parsed.iter_parts())
    assert "Hi order (https://shop.example/o)" == text.get_content().strip()  # type: ignore[attr-defined]
    bare = make_email(text=None, html="<p>Hi</p>", derive_text=False)
    assert "text/html" == structure(wire(bare))
    assert bare.body_text is None


def test_text_and_html_are_alternatives() -> None:
    """Text and HTML make a multipart/alternative with the text first (the least preferred)."""
    parsed = wire(make_email(text="Hello", html="<p>Hello</p>"))
    assert ("multipart/alternative", ["text/plain", "text/html"]) == structure(parsed)
    text, html = parsed.iter_parts()
    assert "Hello" == text.get_content().strip()  # type: ignore[attr-defined]
    assert "<p>Hello</p>" == html.get_content().strip()  # type: ignore[attr-defined]


def test_inline_images_sit_with_the_html() -> None:
    """An attachment with a content_id is an inline part next to the HTML, named by Content-ID."""
    logo = nk.Attachment("logo.png", b"\x89PNG fake", content_id="logo@shop.example")
    parsed = wire(
        make_email(text="Hi", html='<img src="cid:logo@shop.example">', attachments=[logo])
    )
    assert (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png"])],
    ) == structure(parsed)
    image = next(p for p in parsed.walk() if p.get_content_type() == "image/png")
    assert "<logo@shop.example>" == image["Content-ID"]
    assert "inline" == image.get_content_disposition()
    assert b"\x89PNG fake" == image.get_payload(decode=True)


def test_attachments_make_multipart_mixed() -> None:
    """Files are attachments after the body in a multipart/mixed, content unchanged."""
    pdf = nk.Attachment("invoice.pdf", b"%PDF-1.4 \x00\xff binary")
    parsed = wire(make_email(text="Hi", html="<p>Hi</p>", attachments=[pdf]))
    assert (
        "multipart/mixed",
        [("multipart/alternative", ["text/plain", "text/html"]), "application/pdf"],
    ) == structure(parsed)
    (attached,) = parsed.iter_attachments()
    assert "invoice.pdf" == attached.get_filename()
    assert b"%PDF-1.4 \x00\xff binary" == attached.get_payload(decode=True)


def test_inline_image_and_file_together() -> None:
    """An HTML e-mail with an inline image and a file nests related inside mixed."""
    logo = nk.Attachment("logo.png", b"png", content_id="logo")
    pdf = nk.Attachment("invoice.pdf", b"%PDF")
    parsed = wire(make_email(text=None, html='<img src="cid:logo">', attachments=[logo, pdf]))
    assert (
        "multipart/mixed",
        [("multipart/related", ["text/html", "image/png"]), "application/pdf"],
    ) == structure(parsed)


def test_content_id_without_html_is_a_plain_attachment() -> None:
    """With no HTML to refer to it, an image with a content_id is attached like any file."""
    logo = nk.Attachment("logo.png", b"png", content_id="logo")
    parsed = wire(make_email(text="Hi", attachments=[logo]))
    assert ("multipart/mixed", ["text/plain", "image/png"]) == structure(parsed)


def test_text_attachment_in_latin1_arrives_unchanged() -> None:
    """A text attachment that is not UTF-8 arrives byte for byte."""
    content = "prénom;ville\nÉlodie;Nîmes\n".encode("latin-1")
    parsed = wire(make_email(attachments=[nk.Attachment("people.csv", content)]))
    (attached,) = parsed.iter_attachments()
    payload = attached.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert content == payload.replace(b"\r\n", b"\n")


def test_bcc_is_never_in_the_headers() -> None:
    """Bcc recipients are in the envelope only: no Bcc header, and their address appears nowhere."""
    message = make_email(bcc=["Audit <audit@shop.example>"])
    data = message.to_mime().as_bytes()
    assert b"audit@shop.example" not in data
    assert wire(message).get_all("Bcc") is None


def test_standard_headers() -> None:
    """From, To, Cc, Reply-To, Subject, Date and Message-ID are written; lines end in CRLF."""
    message = make_email(cc="Ravi <ravi@example.com>", reply_to="help@shop.example")
    data = message.to_mime().as_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    parsed = wire(message)
    assert SENDER == parsed["From"]
    assert "Asha <asha@example.com>" == parsed["To"]
    assert "Ravi <ravi@example.com>" == parsed["Cc"]
    assert "help@shop.example" == parsed["Reply-To"]
    assert parsed["Date"].datetime is not None
    assert message.message_id_header == parsed["Message-ID"]


def test_message_id_is_stable_and_uses_sender_domain() -> None:
    """The Message-ID is derived from the message id and the sender's domain, the same on every build."""
    message = make_email()
    assert f"<{message.id}@shop.example>" == message.message_id_header
    assert message.to_mime()["Message-ID"] == message.to_mime()["Message-ID"]


def test_custom_message_id_and_headers_are_kept() -> None:
    """A Message-ID given in headers replaces the generated one; other custom headers are written."""
    message = make_email(headers={"Message-ID": "<order-42@shop.example>", "X-Campaign": "q3"})
    parsed = wire(message)
    assert "<order-42@shop.example>" == parsed["Message-ID"]
    assert "<order-42@shop.example>" == message.message_id_header
    assert "q3" == parsed["X-Campaign"]


def test_to_mime_without_sender_is_invalid() -> None:
    """Building MIME for an e-mail without a sender is InvalidMessage that says how to fix it."""
    with pytest.raises(nk.InvalidMessage) as info:
        make_email(sender=None).to_mime()
    assert "sender" in str(info.value)


def test_non_ascii_body_and_subject() -> None:
    """Non-ASCII subjects and bodies arrive intact."""
    parsed = wire(make_email(subject="Commande expédiée ₹499", text="Namaste 🙏"))
    assert "Commande expédiée ₹499" == parsed["Subject"]
    assert "Namaste 🙏" == parsed.get_content().strip()


# --------------------------------------------------------------------------- attachments


def test_attachment_mimetype_is_guessed() -> None:
    """The mimetype comes from the file name, with application/octet-stream as the fallback."""
    assert "application/pdf" == nk.Attachment("a.pdf", b"x").mimetype
    assert "application/octet-stream" == nk.Attachment("a.unknown-ext", b"x").mimetype


def test_attachment_validation() -> None:
    """A bad mimetype, an empty file name or non-bytes content is InvalidMessage."""
    with pytest.raises(nk.InvalidMessage):
        nk.Attachment("a", b"x", mimetype="not-a-type")
    with pytest.raises(nk.InvalidMessage):
        nk.Attachment("", b"x")
    with pytest.raises(nk.InvalidMessage):
        nk.Attachment("a.bin", 42)  # type: ignore[arg-type]
    with pytest.raises(nk.InvalidMessage):
        make_email(attachments=["not an attachment"])
    for name in (None, 5):
        with pytest.raises(nk.InvalidMessage, match="attachment filename"):
            nk.Attachment(name, b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [nk.Email, nk.SMS, nk.Attachment, nk.Recipient])
@pytest.mark.parametrize("data", ["a string", ["a", "list"], None, 42])
def test_from_dict_of_something_else_is_invalid_message(cls: Any, data: object) -> None:
    """from_dict() of anything but a dict says what it expected (no AttributeError)."""
    with pytest.raises(nk.InvalidMessage, match="expected a dict made by to_dict"):
        cls.from_dict(data)


def test_content_id_brackets_are_stripped() -> None:
    """A content_id given as <id> is stored bare, as HTML refers to it (cid:id)."""
    assert "logo@shop" == nk.Attachment("l.png", b"x", content_id="<logo@shop>").content_id


def test_attachment_repr_hides_content() -> None:
    """An attachment's repr shows its size, not its bytes."""
    assert "<5 bytes>" in repr(nk.Attachment("a.bin", b"\x00secret"[:5]))


def test_attachment_from_path(tmp_path: Path) -> None:
    """Attachment.from_path reads the file and names the attachment after it."""
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4")
    attachment = nk.Attachment.from_path(path)
    assert ("invoice.pdf", b"%PDF-1.4", "application/pdf") == (
        attachment.filename,
        attachment.content,
        attachment.mimetype,
    )


# --------------------------------------------------------------------------- dicts


def test_email_round_trips_through_json() -> None:
    """Every field of an e-mail survives to_dict -> JSON -> from_dict, attachments included."""
    message = make_email(
        to=["Asha <asha@example.com>", "ravi@example.com"],
        cc="c@example.com",
        bcc="b@example.com",
        reply_to="r@example.com",
        html="<p>Hi</p>",
        headers={"X-Campaign": "q3"},
        attachments=[
            nk.Attachment("logo.png", b"\x89PNG\x00", content_id="logo"),
            nk.Attachment("a.bin", bytes(range(256))),
        ],
        tags=["order", "shipped"],
        metadata={"order": 42, "items": [1, 2], "nested": {"a": None}},
        idempotency_key="order-42-shipped",
    )
    data = json.loads(json.dumps(message.to_dict()))
    assert message == nk.Email.from_dict(data)
    assert message == nk.message_from_dict(data)
    assert message.id == nk.Email.from_dict(data).id


def test_sms_round_trips_through_json() -> None:
    """Every field of an SMS survives to_dict -> JSON -> from_dict."""
    sms = nk.SMS(
        "+919876543210",
        "Order A-1 shipped",
        sender="SHOPIN",
        template_id="1001",
        variables={"order": "A-1"},
        tags=["otp"],
        metadata={"user": 7},
        idempotency_key="k",
    )
    data = json.loads(json.dumps(sms.to_dict()))
    assert sms == nk.SMS.from_dict(data)
    assert sms == nk.message_from_dict(data)


def test_bad_dicts_are_invalid_message() -> None:
    """A dict of an unknown type, missing a key, or with broken base64 is InvalidMessage."""
    with pytest.raises(nk.InvalidMessage):
        nk.message_from_dict({"type": "fax"})
    with pytest.raises(nk.InvalidMessage):
        nk.message_from_dict("not a dict")  # type: ignore[arg-type]
    with pytest.raises(nk.InvalidMessage):
        nk.Email.from_dict({"type": "email", "to": ["a@example.com"], "text": "x"})
    with pytest.raises(nk.InvalidMessage):
        nk.Email.from_dict({"type": "sms", "subject": "x"})
    with pytest.raises(nk.InvalidMessage):
        nk.Attachment.from_dict({"filename": "a", "content": "!!not base64"})


_words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30
)
_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_addresses = st.builds(lambda local, domain: f"{local}@{domain}.example", _local, _label)


@given(
    to=st.lists(_addresses, min_size=1, max_size=3),
    subject=_words,
    text=st.one_of(
        st.none(),
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            min_size=1,
            max_size=100,
        ),
    ),
    html=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=100,
    ),
    tags=st.lists(_words, max_size=3),
    metadata=st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        max_size=3,
    ),
    content=st.binary(max_size=64),
)
@hypothesis_settings
def test_any_email_round_trips(
    to: list[str],
    subject: str,
    text: str | None,
    html: str,
    tags: list[str],
    metadata: dict[str, Any],
    content: bytes,
) -> None:
    """Any valid e-mail comes back equal from its JSON dict."""
    message = nk.Email(
        to=to,
        subject=subject,
        text=text,
        html=html,
        sender=SENDER,
        tags=tags,
        metadata=metadata,
        attachments=[nk.Attachment("file.bin", content)],
    )
    assert message == nk.message_from_dict(json.loads(json.dumps(message.to_dict())))


# --------------------------------------------------------------------------- SMS


def test_sms_number_is_stored_in_e164() -> None:
    """International formatting with spaces or dashes is stored as E.164."""
    assert "+919876543210" == nk.SMS("+91 98765-43210", "hi").to
    assert "+12025550100" == nk.SMS("+1 (202) 555-0100", "hi").to


def test_sms_default_region_for_national_numbers() -> None:
    """A national number is read in the default region (IN: 10 digits or with a leading 0)."""
    assert "+919876543210" == nk.SMS("98765 43210", "hi", default_region="IN").to
    assert "+919876543210" == nk.SMS("098765 43210", "hi", default_region="in").to


def test_sms_from_recipient() -> None:
    """An SMS can be addressed to a Recipient's phone number."""
    recipient = nk.Recipient(phone="98765 43210")
    assert "+919876543210" == nk.SMS(recipient, "hi", default_region="IN").to


@pytest.mark.parametrize(
    ("number", "region", "reason"),
    [
        ("9876543210", None, "country code"),
        ("+91 98765", None, "too short"),
        ("abc", None, "not a phone number"),
        ("+91 00000 00000", None, "not a valid number"),
        ("", None, "non-empty"),
    ],
)
def test_impossible_numbers_are_invalid(number: str, region: str | None, reason: str) -> None:
    """An impossible or unparseable number is InvalidMessage saying why."""
    with pytest.raises(nk.InvalidMessage) as info:
        nk.SMS(number, "hi", default_region=region)
    assert reason in str(info.value)


def test_bad_default_region_is_invalid() -> None:
    """default_region must be a two-letter region code."""
    with pytest.raises(nk.InvalidMessage):
        nk.SMS("98765 43210", "hi", default_region="India")


def test_sms_needs_body_or_template() -> None:
    """An empty SMS is refused unless a provider template supplies the text."""
    with pytest.raises(nk.InvalidMessage):
        nk.SMS("+919876543210", "  ")
    assert "" == nk.SMS("+919876543210", "", template_id="1001").body


def test_sms_variables_must_be_plain() -> None:
    """Template variables are plain values, stored as strings."""
    assert {"n": "5"} == dict(nk.SMS("+919876543210", "x", variables={"n": 5}).variables)
    with pytest.raises(nk.InvalidMessage):
        nk.SMS("+919876543210", "x", variables={"n": [5]})


@given(digits=st.from_regex(r"[6-9][0-9]{9}", fullmatch=True))
@hypothesis_settings
def test_indian_number_formats_agree(digits: str) -> None:
    """However a valid Indian mobile number is written, it is stored as the same E.164."""
    try:
        expected = nk.SMS(f"+91{digits}", "hi").to
    except nk.InvalidMessage:
        assume(False)
        raise  # pragma: no cover
    spaced = f"{digits[:5]} {digits[5:]}"
    assert f"+91{digits}" == expected
    assert expected == nk.SMS(f"+91 {spaced}", "hi").to
    assert expected == nk.SMS(f"0{spaced}", "hi", default_region="IN").to
    assert expected == nk.SMS(spaced, "hi", default_region="IN").to
    assert expected == nk.SMS(expected, "hi").to  # idempotent


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€", "GSM-7", 1),
        ("a" * 159 + "€", "GSM-7", 2),  # 161 septets; the escape pair is not split
        ("₹" * 70, "UCS-2", 1),
        ("₹" * 71, "UCS-2", 2),
        ("₹" * 134, "UCS-2", 2),
        ("₹" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # each emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
        ("Don\u2019t", "UCS-2", 1),  # a curly apostrophe
    ],
)
def test_sms_encoding_and_segments(body: str, encoding: str, segments: int) -> None:
    """GSM-7 fits 160 septets (153 per part), UCS-2 fits 70 units (67 per part)."""
    sms = nk.SMS("+919876543210", body, template_id="1001")  # a template allows an empty body
    assert (encoding, segments) == (sms.encoding, sms.segments)


def test_ucs2_characters_are_named() -> None:
    """The characters that force UCS-2 are listed with their position and Unicode name."""
    sms = nk.SMS("+919876543210", "Don\u2019t \u2014 wait")
    expected = [(3, "\u2019", "RIGHT SINGLE QUOTATION MARK"), (6, "\u2014", "EM DASH")]
    assert expected == sms.ucs2_characters


_GSM_BASIC = "".join(sorted(GSM7_BASIC - {"\r", "\n"}))


@given(body=st.text(alphabet=_GSM_BASIC, min_size=1, max_size=700))
@hypothesis_settings
def test_gsm_basic_segments_formula(body: str) -> None:
    """Text of basic GSM-7 characters needs 1 part up to 160, then ceil(n / 153)."""
    sms = nk.SMS("+919876543210", body if body.strip() else "x" + body)
    n = len(sms.body)
    assert "GSM-7" == sms.encoding
    assert (1 if n <= 160 else math.ceil(n / 153)) == sms.segments


@given(
    body=st.text(
        alphabet=st.characters(
            min_codepoint=0x100, max_codepoint=0xFFFF, blacklist_categories=("Cs",)
        ),
        min_size=1,
        max_size=300,
    )
)
@hypothesis_settings
def test_ucs2_segments_formula(body: str) -> None:
    """Text with a non-GSM character in the BMP needs 1 part up to 70 characters, then ceil(n / 67)."""
    assume(body.strip() and any(c not in GSM7_BASIC | GSM7_EXTENSION for c in body))
    sms = nk.SMS("+919876543210", body)
    assert "UCS-2" == sms.encoding
    n = len(body)
    assert (1 if n <= 70 else math.ceil(n / 67)) == sms.segments


@given(body=st.text(min_size=1, max_size=400), extra=st.text(min_size=1, max_size=5))
@hypothesis_settings
def test_longer_text_never_needs_fewer_segments(body: str, extra: str) -> None:
    """Appending text to an SMS never lowers the number of segments it needs."""
    assume(body.strip())
    before = nk.SMS("+919876543210", body)
    after = nk.SMS("+919876543210", body + extra)
    assert before.segments <= after.segments


@pytest.mark.parametrize(
    "address", ["<a@b.example", "a@b.example>", "a@-b.example", "a@b-.example"]
)
def test_malformed_angle_brackets_and_hyphen_domains_are_refused(address: str) -> None:
    """An unclosed angle bracket or a domain label that starts or ends with a hyphen is refused."""
    with pytest.raises(nk.InvalidMessage):
        make_email(to=address)


def test_invalid_country_code_is_named() -> None:
    """A number with a + and an unknown country code says so, not that the code is missing."""
    with pytest.raises(nk.InvalidMessage, match="invalid country code"):
        nk.SMS("+999 1234567", "hi")


def test_metadata_must_be_json_safe() -> None:
    """Metadata that cannot cross a task queue as JSON is refused when the message is built."""
    with pytest.raises(nk.InvalidMessage):
        make_email(metadata={"when": object()})


@pytest.mark.parametrize(
    "fields", [{"template_id": True}, {"variables": {"": "x"}}, {"variables": {"otp": b"12"}}]
)
def test_sms_template_fields_are_checked(fields: dict[str, object]) -> None:
    """A boolean template id, an empty variable name or a bytes value is refused."""
    with pytest.raises(nk.InvalidMessage):
        nk.SMS("+919876543210", "hi", **fields)  # type: ignore[arg-type]
