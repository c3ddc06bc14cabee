"""Messages: :class:`Email`, :class:`SMS`, :class:`Attachment`, :class:`Recipient`.

Messages are frozen values, validated when they are built: a malformed address,
an impossible phone number, a CR or LF in a header value (header injection) or
a message with no body is an :class:`~notifykit.errors.InvalidMessage` at once,
never a half-sent e-mail later. Every message round-trips through
``to_dict()`` / ``from_dict()`` (JSON-safe, attachments base64) so it can cross a
task queue.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any, ClassVar

import attrs

from notifykit import _gsm
from notifykit.errors import InvalidMessage

__all__ = [
    "SMS",
    "Attachment",
    "Email",
    "Message",
    "Recipient",
    "message_from_dict",
    "normalize_phone",
]

_ADDR_SPEC = re.compile(
    r"""[^\s@<>()\[\]\\,;:"]+        # local part
        @
        (?!-)[^\s@<>()\[\]\\,;:".]+(?<!-)      # domain labels: no leading or
        (?:\.(?!-)[^\s@<>()\[\]\\,;:".]+(?<!-))*  # trailing hyphen
    """,
    re.VERBOSE,
)
_ANGLE_FORM = re.compile(r"[^<>]*<[^<>]+>")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 ftext)
# Headers notifykit writes itself from the message's fields.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "sender",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
    }
)


# Every character str.splitlines() breaks on: CR and LF, and the ones the email
# package also treats as line ends (VT, FF, FS, GS, RS, NEL, U+2028, U+2029).
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _no_newline(field: str, value: str) -> None:
    if not _LINE_BREAKS.isdisjoint(value):
        raise InvalidMessage(
            f"{field} contains a line break (CR, LF or another line separator), "
            "which would let it inject headers"
        )


def _parse_address(value: object, field: str) -> str:
    if isinstance(value, Recipient):
        if value.email is None:
            raise InvalidMessage(f"{field}: recipient {value.name or ''!r} has no e-mail address")
        return value.email
    if not isinstance(value, str):
        raise InvalidMessage(
            f"{field}: expected an e-mail address string, got {type(value).__name__}"
        )
    _no_newline(field, value)
    text = value.strip()
    pairs = getaddresses([text])
    if len(pairs) != 1:
        raise InvalidMessage(f"{field}: {value!r} holds more than one address; pass a list")
    name, addr = pairs[0]
    angled = "<" in text or ">" in text
    if (
        not _ADDR_SPEC.fullmatch(addr)
        or (not angled and text != addr)
        or (angled and not _ANGLE_FORM.fullmatch(text))
    ):
        raise InvalidMessage(f"{field}: {value!r} is not a valid e-mail address")
    try:
        return str(Address(display_name=name, addr_spec=addr))
    except (ValueError, IndexError, TypeError) as exc:  # email's parser refuses it
        raise InvalidMessage(f"{field}: {value!r} is not a valid e-mail address") from exc


def _address_list(field: str) -> Any:
    def convert(value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, (str, Recipient)):
            value = [value]
        if not isinstance(value, Iterable):
            raise InvalidMessage(f"{field}: expected an address or a list of addresses")
        return tuple(_parse_address(v, field) for v in value)

    return convert


def _to(value: object) -> tuple[str, ...]:
    return _address_list("to")(value)  # type: ignore[no-any-return]


def _cc(value: object) -> tuple[str, ...]:
    return _address_list("cc")(value)  # type: ignore[no-any-return]


def _bcc(value: object) -> tuple[str, ...]:
    return _address_list("bcc")(value)  # type: ignore[no-any-return]


def _reply_to(value: object) -> tuple[str, ...]:
    return _address_list("reply_to")(value)  # type: ignore[no-any-return]


def _optional_address(value: object) -> str | None:
    return None if value is None else _parse_address(value, "sender")


def _subject(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidMessage(f"subject: expected a string, got {type(value).__name__}")
    _no_newline("subject", value)
    return value


def _optional_text(field: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidMessage(f"{field}: expected a string, got {type(value).__name__}")


def _text(value: object) -> str | None:
    return _optional_text("text", value)


def _html(value: object) -> str | None:
    return _optional_text("html", value)


def _headers(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidMessage("headers: expected a mapping of header name to value")
    out: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidMessage(f"headers: {name!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidMessage(
                f"headers: {name!r} is set from the message's own fields; use them instead"
            )
        if not isinstance(val, str):
            raise InvalidMessage(f"headers: the value of {name!r} must be a string")
        _no_newline(f"header {name!r}", val)
        out[name] = val
    return out


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidMessage("tags: expected a list of strings")
    tags = tuple(value)
    for tag in tags:
        if not isinstance(tag, str):
            raise InvalidMessage(f"tags: {tag!r} is not a string")
        _no_newline("tag", tag)
    return tags


def _metadata(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidMessage("metadata: expected a mapping")
    if not value:
        return {}
    for key in value:
        if not isinstance(key, str):
            raise InvalidMessage(f"metadata: key {key!r} is not a string")
    try:
        # It must cross a task queue and a JSON log: check that once, here.
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"metadata must be JSON-safe: {exc}") from None
    return dict(value)


def _new_id() -> str:
    return uuid.uuid4().hex


def _message_id_value(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidMessage("id: expected a non-empty string")
    _no_newline("id", value)
    return value


def _optional_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage("idempotency_key: expected a string")
    _no_newline("idempotency_key", value)
    return value


# --------------------------------------------------------------------------- phone


def normalize_phone(number: str, default_region: str | None = None) -> str:
    """Parse ``number`` with phonenumbers and return it in E.164 (``+919876543210``).

    ``default_region`` (``"IN"``) is used for numbers written without a country
    code. A number that cannot be parsed, is not possible (too short or too
    long) or is not valid is an :class:`InvalidMessage` that says why.
    """
    import phonenumbers  # deferred: its import is not free and only SMS needs it

    if not isinstance(number, str) or not number.strip():
        raise InvalidMessage(f"phone number: expected a non-empty string, got {number!r}")
    _no_newline("phone number", number)
    region = default_region.upper() if default_region else None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        reason = {
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
                "has an invalid country code"
                if number.strip().startswith("+")
                else "has no country code; write it as +<country code>... or give a default_region"
                if region is None
                else f"has an invalid country code (default region {region!r})"
            ),
            phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
            phonenumbers.NumberParseException.TOO_LONG: "is too long",
        }.get(exc.error_type, "cannot be parsed")
        raise InvalidMessage(f"phone number {number!r} {reason}") from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible not in (
        phonenumbers.ValidationResult.IS_POSSIBLE,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ):
        reason = {
            phonenumbers.ValidationResult.TOO_SHORT: "is too short",
            phonenumbers.ValidationResult.TOO_LONG: "is too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "has an invalid country code",
            phonenumbers.ValidationResult.INVALID_LENGTH: "has an invalid length",
        }.get(possible, "is not possible")
        raise InvalidMessage(f"phone number {number!r} {reason}")
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_number(parsed) or f"+{parsed.country_code}"
        raise InvalidMessage(f"phone number {number!r} is not a valid number for {where}")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


# --------------------------------------------------------------------------- values


def _content_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidMessage(f"attachment content: expected bytes, got {type(value).__name__}")


@attrs.frozen
class Attachment:
    """A file attached to an e-mail.

    ``mimetype`` is guessed from ``filename`` when not given. An attachment with
    a ``content_id`` is an inline image: the HTML refers to it as
    ``<img src="cid:CONTENT_ID">``.
    """

    filename: str = attrs.field()
    content: bytes = attrs.field(converter=_content_bytes, repr=lambda c: f"<{len(c)} bytes>")
    mimetype: str = attrs.field(
        default=attrs.Factory(
            lambda self: (
                (isinstance(self.filename, str) and mimetypes.guess_type(self.filename)[0])
                or "application/octet-stream"
            ),
            takes_self=True,
        )
    )
    content_id: str | None = attrs.field(default=None)

    @filename.validator
    def _check_filename(self, _: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidMessage("attachment filename: expected a non-empty string")
        _no_newline("attachment filename", value)

    def __attrs_post_init__(self) -> None:
        mimetype = self.mimetype
        if not isinstance(mimetype, str) or mimetype.count("/") != 1:
            raise InvalidMessage(
                f"attachment mimetype {mimetype!r} is not of the form type/subtype"
            )
        _no_newline("attachment mimetype", mimetype)
        if self.content_id is not None:
            if not isinstance(self.content_id, str) or not self.content_id.strip("<>"):
                raise InvalidMessage("attachment content_id: expected a non-empty string")
            _no_newline("attachment content_id", self.content_id)
            object.__setattr__(self, "content_id", self.content_id.strip("<>"))

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        mimetype: str | None = None,
        content_id: str | None = None,
    ) -> Attachment:
        """Read a file from disk into an attachment named after it."""
        p = Path(path)
        if mimetype is None:
            return cls(p.name, p.read_bytes(), content_id=content_id)
        return cls(p.name, p.read_bytes(), mimetype, content_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (content base64-encoded)."""
        return {
            "filename": self.filename,
            "content": base64.b64encode(self.content).decode("ascii"),
            "mimetype": self.mimetype,
            "content_id": self.content_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attachment:
        """Rebuild an attachment from :meth:`to_dict` output."""
        _require_mapping(data, "attachment")
        try:
            content = base64.b64decode(data["content"], validate=True)
            mimetype = data.get("mimetype")
            if mimetype is None:
                return cls(data["filename"], content, content_id=data.get("content_id"))
            return cls(data["filename"], content, mimetype, data.get("content_id"))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidMessage):
                raise
            raise InvalidMessage(
                f"attachment: cannot rebuild from {sorted(data)!r}: {exc}"
            ) from exc


def _attachments(value: object) -> tuple[Attachment, ...]:
    if isinstance(value, Attachment):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidMessage("attachments: expected a list of Attachment")
    items = tuple(value)
    for item in items:
        if not isinstance(item, Attachment):
            raise InvalidMessage(f"attachments: {item!r} is not an Attachment")
    return items


def _optional_email(value: object) -> str | None:
    return None if value is None else _parse_address(value, "email")


def _optional_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage("name: expected a string")
    _no_newline("name", value)
    return value


def _optional_phone(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\+?[0-9 ()./-]{3,32}", value.strip()):
        raise InvalidMessage(f"phone: {value!r} is not a phone number")
    return value.strip()


@attrs.frozen
class Recipient:
    """A person reachable on one or more channels.

    ``phone`` may be in E.164 (``+919876543210``) or national form; national
    numbers are resolved with the Notifier's ``default_region`` when an SMS is
    built.
    """

    email: str | None = attrs.field(default=None, converter=_optional_email)
    phone: str | None = attrs.field(default=None, converter=_optional_phone)
    name: str | None = attrs.field(default=None, converter=_optional_name)

    def __attrs_post_init__(self) -> None:
        if self.email is None and self.phone is None:
            raise InvalidMessage("Recipient needs an e-mail address or a phone number")
        if self.name and self.email and "<" not in self.email:
            object.__setattr__(
                self, "email", str(Address(display_name=self.name, addr_spec=self.email))
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"email": self.email, "phone": self.phone, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipient:
        """Rebuild a recipient from :meth:`to_dict` output."""
        _require_mapping(data, "recipient")
        return cls(data.get("email"), data.get("phone"), data.get("name"))


def _require_mapping(data: object, what: str) -> None:
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise InvalidMessage(f"{what}: expected a dict made by to_dict(), got {kind}")


def _bare(address: str) -> str:
    # Stored addresses are normalised ("addr" or "Name <addr>"), so the bare
    # address is whatever the last angle brackets hold: no parsing needed.
    if address.endswith(">"):
        return address[address.rindex("<") + 1 : -1]
    return address


@attrs.frozen
class Email:
    """An e-mail, validated on construction.

    At least one recipient (``to``, ``cc`` or ``bcc``) and one of ``text`` /
    ``html`` are required. Addresses may be ``"a@b.example"``,
    ``"Asha <a@b.example>"`` or :class:`Recipient`; they are stored normalised.
    ``sender`` may be left out when a :class:`~notifykit.Notifier` supplies it.
    """

    channel: ClassVar[str] = "email"

    to: tuple[str, ...] = attrs.field(converter=_to)
    subject: str = attrs.field(converter=_subject)
    text: str | None = attrs.field(default=None, converter=_text)
    html: str | None = attrs.field(default=None, converter=_html)
    sender: str | None = attrs.field(default=None, converter=_optional_address)
    cc: tuple[str, ...] = attrs.field(default=(), converter=_cc)
    bcc: tuple[str, ...] = attrs.field(default=(), converter=_bcc)
    reply_to: tuple[str, ...] = attrs.field(default=(), converter=_reply_to)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers, hash=False)
    attachments: tuple[Attachment, ...] = attrs.field(default=(), converter=_attachments)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_metadata, hash=False)
    idempotency_key: str | None = attrs.field(default=None, converter=_optional_key)
    id: str = attrs.field(factory=_new_id, converter=_message_id_value)

    def __attrs_post_init__(self) -> None:
        if not (self.to or self.cc or self.bcc):
            raise InvalidMessage("an Email needs at least one recipient")
        if not self.text and not self.html:
            raise InvalidMessage("an Email needs a body: text, html or both")

    # -- derived values

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every envelope recipient (to, cc and bcc), bare addresses, without duplicates."""
        seen: dict[str, None] = {}
        for addr in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(_bare(addr), None)
        return tuple(seen)

    @property
    def sender_address(self) -> str | None:
        """The bare address of ``sender`` (``noreply@shop.example``), for the envelope."""
        return None if self.sender is None else _bare(self.sender)

    @property
    def message_id_header(self) -> str:
        """The ``Message-ID`` header this e-mail carries (stable for a given ``id``)."""
        custom = next((v for k, v in self.headers.items() if k.lower() == "message-id"), None)
        if custom:
            return custom
        sender = self.sender_address or "notifykit.invalid"
        domain = sender.rpartition("@")[2] or "notifykit.invalid"
        return f"<{self.id}@{domain}>"

    def replace(self, **changes: Any) -> Email:
        """A copy with ``changes`` applied and validated again (the ``id`` is kept)."""
        return attrs.evolve(self, **changes)

    # -- MIME

    def to_bytes(self, *, utf8: bool = False) -> bytes:
        """The message as RFC 5322 bytes with CRLF line ends, ready to send.

        ``multipart/alternative`` when both text and html are present; inline
        images (attachments with a ``content_id``) sit in a ``multipart/related``
        with the HTML; other attachments make the message ``multipart/mixed``.
        ``Bcc`` is never written into the headers. Non-ASCII header text is
        RFC 2047-encoded, or left as UTF-8 with ``utf8=True`` (for servers that
        offer SMTPUTF8). Raises :class:`InvalidMessage` when there is no sender.
        """
        from notifykit._mime import email_to_bytes

        return email_to_bytes(self, utf8=utf8)

    def to_mime(self) -> EmailMessage:
        """The message as an :class:`email.message.EmailMessage` (parsed from :meth:`to_bytes`).

        Uses the SMTP policy, so ``as_bytes()`` gives CRLF line ends.
        """
        from email import message_from_bytes, policy

        return message_from_bytes(self.to_bytes(), policy=policy.SMTP)

    # -- serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` (or :func:`message_from_dict`) rebuilds it."""
        return {
            "type": "email",
            "id": self.id,
            "to": list(self.to),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "sender": self.sender,
            "cc": list(self.cc),
            "bcc": list(self.bcc),
            "reply_to": list(self.reply_to),
            "headers": dict(self.headers),
            "attachments": [a.to_dict() for a in self.attachments],
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "idempotency_key": self.idempotency_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Email:
        """Rebuild an e-mail from :meth:`to_dict` output."""
        _require_mapping(data, "e-mail")
        if data.get("type", "email") != "email":
            raise InvalidMessage(f"not an e-mail: type {data.get('type')!r}")
        if not isinstance(data.get("attachments", ()), (list, tuple)):
            raise InvalidMessage("e-mail dict: attachments must be a list of attachment dicts")
        try:
            return cls(
                to=data.get("to", ()),
                subject=data["subject"],
                text=data.get("text"),
                html=data.get("html"),
                sender=data.get("sender"),
                cc=data.get("cc", ()),
                bcc=data.get("bcc", ()),
                reply_to=data.get("reply_to", ()),
                headers=data.get("headers") or {},
                attachments=[Attachment.from_dict(a) for a in data.get("attachments", ())],
                tags=data.get("tags", ()),
                metadata=data.get("metadata") or {},
                idempotency_key=data.get("idempotency_key"),
                id=data.get("id") or _new_id(),
            )
        except KeyError as exc:
            raise InvalidMessage(f"e-mail dict lacks the key {exc.args[0]!r}") from None


def _variables(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidMessage("variables: expected a mapping of name to value")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidMessage(f"variables: key {key!r} is not a non-empty string")
        if not isinstance(val, (str, int, float, Decimal)) or isinstance(val, bool):
            raise InvalidMessage(
                f"variables: the value of {key!r} must be text or a number, "
                f"not {type(val).__name__}"
            )
        out[key] = str(val)
    return out


def _sms_body(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidMessage(f"SMS body: expected a string, got {type(value).__name__}")
    return value


def _optional_sender(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage("SMS sender: expected a non-empty string")
    _no_newline("SMS sender", value)
    return value.strip()


def _optional_template_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise InvalidMessage("SMS template_id: expected a non-empty string")
    return str(value).strip()


def _region(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value):
        raise InvalidMessage(f"default_region: {value!r} is not a two-letter region code")
    return value.upper()


@attrs.frozen
class SMS:
    """A text message, validated on construction.

    ``to`` is parsed with phonenumbers (``default_region`` for national numbers,
    e.g. ``"IN"``) and stored in E.164. ``body`` is the text; when
    ``template_id`` is set (a DLT / flow template) the provider builds the text
    from ``variables`` and ``body`` is only a preview, so it may be empty.
    """

    channel: ClassVar[str] = "sms"

    to: str = attrs.field()
    body: str = attrs.field(default="", converter=_sms_body)
    sender: str | None = attrs.field(default=None, converter=_optional_sender)
    template_id: str | None = attrs.field(default=None, converter=_optional_template_id)
    variables: Mapping[str, str] = attrs.field(factory=dict, converter=_variables, hash=False)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_metadata, hash=False)
    idempotency_key: str | None = attrs.field(default=None, converter=_optional_key)
    id: str = attrs.field(factory=_new_id, converter=_message_id_value)
    default_region: str | None = attrs.field(
        default=None, converter=_region, eq=False, repr=False, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        to = self.to.phone if isinstance(self.to, Recipient) else self.to
        if to is None:
            raise InvalidMessage("SMS: the recipient has no phone number")
        object.__setattr__(self, "to", normalize_phone(to, self.default_region))
        if not self.body.strip() and self.template_id is None:
            raise InvalidMessage("an SMS needs a body (or a template_id with variables)")

    @property
    def recipients(self) -> tuple[str, ...]:
        """The recipient, as a one-element tuple (the same shape as :attr:`Email.recipients`)."""
        return (self.to,)

    @property
    def encoding(self) -> str:
        """``"GSM-7"`` or ``"UCS-2"``: how the body travels."""
        return _gsm.encoding_of(self.body)

    @property
    def segments(self) -> int:
        """How many SMS parts the body needs (160/153 GSM-7, 70/67 UCS-2)."""
        return _gsm.segments_of(self.body)

    @property
    def ucs2_characters(self) -> list[tuple[int, str, str]]:
        """The characters that force UCS-2, as ``(index, char, name)``: curly quotes, dashes…"""
        return _gsm.describe_characters(self.body)

    def replace(self, **changes: Any) -> SMS:
        """A copy with ``changes`` applied and validated again (the ``id`` is kept)."""
        return attrs.evolve(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` (or :func:`message_from_dict`) rebuilds it."""
        return {
            "type": "sms",
            "id": self.id,
            "to": self.to,
            "body": self.body,
            "sender": self.sender,
            "template_id": self.template_id,
            "variables": dict(self.variables),
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "idempotency_key": self.idempotency_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SMS:
        """Rebuild an SMS from :meth:`to_dict` output."""
        _require_mapping(data, "SMS")
        if data.get("type", "sms") != "sms":
            raise InvalidMessage(f"not an SMS: type {data.get('type')!r}")
        try:
            return cls(
                to=data["to"],
                body=data.get("body", ""),
                sender=data.get("sender"),
                template_id=data.get("template_id"),
                variables=data.get("variables") or {},
                tags=data.get("tags", ()),
                metadata=data.get("metadata") or {},
                idempotency_key=data.get("idempotency_key"),
                id=data.get("id") or _new_id(),
            )
        except KeyError as exc:
            raise InvalidMessage(f"SMS dict lacks the key {exc.args[0]!r}") from None


#: Either kind of message.
Message = Email | SMS


def message_from_dict(data: Mapping[str, Any]) -> Message:
    """Rebuild an :class:`Email` or :class:`SMS` from its ``to_dict()`` output."""
    if not isinstance(data, Mapping):
        raise InvalidMessage("expected a dict made by Email.to_dict() or SMS.to_dict()")
    kind = data.get("type")
    if kind == "email":
        return Email.from_dict(data)
    if kind == "sms":
        return SMS.from_dict(data)
    raise InvalidMessage(f"unknown message type {kind!r} (expected 'email' or 'sms')")
