"""Messages: :class:`Email`, :class:`SMS`, :class:`Attachment`, :class:`Recipient`.

Messages are frozen values, validated when they are built: a malformed address,
an impossible phone number, a CR, LF or other control character in a header
value (header injection), a lone surrogate, a header that cannot be folded
under 998 octets or a message with no body is an
:class:`~notifykit.errors.InvalidMessage` at once, never a half-sent e-mail
later. Every message round-trips through ``to_dict()`` / ``from_dict()``
(JSON-safe, attachments base64) so it can cross a task queue.
"""

from __future__ import annotations

import base64
import inspect
import json
import mimetypes
import os
import re
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import attrs

from notifykit import _gsm
from notifykit.errors import InvalidMessage

__all__ = [
    "SMS",
    "Alternative",
    "Attachment",
    "Email",
    "Message",
    "Recipient",
    "message_from_dict",
    "normalize_phone",
    "parse_addresses",
]

_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # printable ASCII except ':' (RFC 5322 ftext)
# Headers notifykit writes itself from the message's fields, and headers only a
# receiving or forwarding server may write (trace and authentication results).
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "mime-version",
        "return-path",
        "received",
        "delivered-to",
        "authentication-results",
        "received-spf",
    }
)
_RESERVED_PREFIXES = ("content-", "resent-", "arc-")
# Custom headers whose value is an address: validated and written as addresses.
_ADDRESS_HEADERS = frozenset({"sender"})

# Every character str.splitlines() breaks on: CR and LF, and the ones the email
# package also treats as line ends (VT, FF, FS, GS, RS, NEL, U+2028, U+2029).
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# C0 controls except TAB, DEL and the C1 controls: never legal in a header.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# A header line may hold at most 998 octets (RFC 5322 2.1.1).
MAX_LINE = 998


def _no_surrogates(field: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage(
            f"{field} contains a lone surrogate (text decoded from broken UTF-16 or JSON), "
            "which cannot be encoded"
        ) from None


def _no_newline(field: str, value: str, *, tab: bool = True) -> None:
    """Refuse line breaks, other control characters and lone surrogates in a header value."""
    if value.isprintable():
        # The common case, in one C scan: a printable string holds no line break
        # (Cc, Zl, Zp), no control character (Cc), no TAB and no lone surrogate (Cs).
        return
    _no_newline_full(field, value, tab=tab)


def _no_newline_full(field: str, value: str, *, tab: bool = True) -> None:
    """:func:`_no_newline` without its fast path (tests compare the two)."""
    if not _LINE_BREAKS.isdisjoint(value):
        raise InvalidMessage(
            f"{field} contains a line break (CR, LF or another line separator), "
            "which would let it inject headers"
        )
    bad = _CONTROLS.search(value)
    if bad is not None or (not tab and "\t" in value):
        char = bad.group() if bad is not None else "\t"
        raise InvalidMessage(f"{field} contains the control character {char!r}")
    _no_surrogates(field, value)


# --------------------------------------------------------------------------- addresses

_ATEXT_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_ASCII_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
# A display name written bare (no quotes): atext words separated by single spaces.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MAX_ADDR = 254  # RFC 5321 4.5.3.1.3: a path is at most 256 octets, brackets included
_MAX_NAME = 256


class _BadAddress(Exception):
    """Why a text is not an address (the caller adds the field and the value)."""


class AddressParts(NamedTuple):
    """One parsed address: its display name, its addr-spec and the forms notifykit writes."""

    name: str  # "" when there is none
    addr: str  # the addr-spec as given (Unicode domain kept)
    wire: str  # the addr-spec on the wire: IDNA domain when the local part is ASCII
    text: str  # the normalised form stored in the message: 'Name <addr>' or 'addr'

    @property
    def needs_smtputf8(self) -> bool:
        """True when the local part is not ASCII (RFC 6531)."""
        return not self.wire.isascii()


def _quote_name(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) or (not name.isascii() and _plain_unicode(name)):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plain_unicode(name: str) -> bool:
    return all(c.isalnum() or c == " " or c in "!#$%&'*+/=?^_`{|}~-" for c in name) and (
        "  " not in name and name == name.strip()
    )


def _check_addr_spec(addr: str) -> str:
    """Validate an addr-spec; return its wire form (IDNA domain when the local part is ASCII)."""
    if len(addr.encode("utf-8")) > _MAX_ADDR:
        raise _BadAddress(f"is longer than {_MAX_ADDR} octets")
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise _BadAddress("is not a valid e-mail address")
    if local.isascii():
        if not _ATEXT_LOCAL.fullmatch(local):
            raise _BadAddress("is not a valid e-mail address")
    elif not (local.isprintable() and " " not in local and "@" not in local) or any(
        c in '()<>[]\\,;:"' for c in local
    ):
        raise _BadAddress("is not a valid e-mail address")
    if domain.isascii():
        ace = domain
    else:
        try:
            ace = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise _BadAddress("has a domain that IDNA cannot encode") from None
    labels = ace.split(".")
    if len(ace) > 253 or not all(_ASCII_LABEL.fullmatch(label) for label in labels):
        raise _BadAddress("is not a valid e-mail address")
    if local.isascii():
        return f"{local}@{ace}"
    return addr  # SMTPUTF8: the address travels as UTF-8, domain as given


def _split_text(text: str) -> tuple[str, str]:
    """(display name, addr-spec) of one address in any of the usual forms."""
    depth = 0
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char in ",;" and depth == 0:
            raise _BadAddress("holds more than one address; pass a list")
    if quoted or depth != 0:
        raise _BadAddress("is not a valid e-mail address")
    if not text.endswith(">"):
        if any(c in text for c in ' <>"()'):
            raise _BadAddress("is not a valid e-mail address")
        return "", text
    cut = text.rfind("<")
    raw_name, addr = text[:cut].strip(), text[cut + 1 : -1].strip()
    if raw_name.startswith('"'):
        if len(raw_name) < 2 or not raw_name.endswith('"'):
            raise _BadAddress("is not a valid e-mail address")
        inner = raw_name[1:-1]
        name, i = [], 0
        while i < len(inner):
            char = inner[i]
            if char == "\\" and i + 1 < len(inner):
                i += 1
                char = inner[i]
            elif char == '"':
                raise _BadAddress("is not a valid e-mail address")
            name.append(char)
            i += 1
        return "".join(name), addr
    if any(c in raw_name for c in "<>"):
        raise _BadAddress("is not a valid e-mail address")
    if any(c in raw_name for c in '@,;:"[]\\'):
        raise _BadAddress("has a display name with special characters; put it in double quotes")
    return " ".join(raw_name.split()), addr


def _make_parts(name: str, addr: str) -> AddressParts:
    if len(name) > _MAX_NAME:
        raise _BadAddress(f"has a display name longer than {_MAX_NAME} characters")
    wire = _check_addr_spec(addr)
    name = name.strip()
    text = f"{_quote_name(name)} <{addr}>" if name else addr
    return AddressParts(name, addr, wire, text)


_CACHE: dict[str, AddressParts] = {}
_CACHE_SIZE = 4096


def address_parts(text: str) -> AddressParts:
    """Parse one address (``a@b.example``, ``Name <a@b.example>``, ``"Doe, J" <j@b.example>``).

    Raises ``_BadAddress``; results are cached (a Notifier's constant sender is
    parsed once per process, not once per message).
    """
    hit = _CACHE.get(text)
    if hit is not None:
        return hit
    simple = _SIMPLE_ADDRESS.fullmatch(text)
    if (
        simple is not None
        and len(simple["addr"]) <= _MAX_ADDR
        and len(simple["domain"]) <= 253
        and len(simple["name"] or "") <= _MAX_NAME
    ):
        # The usual forms, plain ASCII: what the full parse below would give.
        name, addr = simple["name"] or "", simple["addr"]
        parts = AddressParts(name, addr, addr, f"{name} <{addr}>" if name else addr)
    else:
        parts = _address_parts_full(text)
    if len(text) <= 512:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[text] = parts
    return parts


def _address_parts_full(text: str) -> AddressParts:
    """:func:`address_parts` without its cache and fast path (tests compare the two)."""
    name, addr = _split_text(text.strip())
    return _make_parts(name, addr)


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
# ``a@b.example`` or ``Plain Name <a@b.example>``, ASCII, nothing to normalise.
_SIMPLE_ADDRESS = re.compile(
    rf"(?:(?P<name>{_ATEXT}+(?: {_ATEXT}+)*) <)?"
    rf"(?P<addr>[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]+@(?P<domain>(?:{_LABEL}\.)*{_LABEL}))"
    r"(?(name)>)"
)


# Address strings already validated by _parse_address (any field), and their normal form.
_VALID: dict[str, str] = {}


def _parse_address(value: object, field: str) -> str:
    if type(value) is str:
        known = _VALID.get(value)
        if known is not None:  # a Notifier's constant sender: checked once per process
            return known
    if isinstance(value, Recipient):
        if value.email is None:
            raise InvalidMessage(f"{field}: recipient {value.name or ''!r} has no e-mail address")
        return value.email
    if not isinstance(value, str):
        raise InvalidMessage(
            f"{field}: expected an e-mail address string, got {type(value).__name__}"
        )
    _no_newline(field, value, tab=False)
    try:
        text = address_parts(value).text
    except _BadAddress as exc:
        raise InvalidMessage(f"{field}: {value!r} {exc}") from None
    if type(value) is str and len(value) <= 512:
        if len(_VALID) >= _CACHE_SIZE:
            _VALID.clear()
        _VALID[value] = text
    return text


def parse_addresses(value: str) -> tuple[str, ...]:
    """Split an address-list header value into normalised addresses.

    ``'"Doe, John" <john@example.com>, b@example.com'`` gives two addresses: commas
    inside quoted display names are kept. Each address is validated as
    :class:`Email` validates its fields; an empty value gives ``()``. Use it for
    values that are lists by design (a ``Reply-To`` header from a form);
    :class:`Email` itself refuses a string holding two addresses, so a single
    address from a user can never become two recipients.
    """
    if not isinstance(value, str):
        raise InvalidMessage(f"expected an address-list string, got {type(value).__name__}")
    _no_newline("address list", value, tab=False)
    out = []
    for name, addr in getaddresses([value]):
        if not name and not addr:
            continue
        try:
            out.append(_make_parts(name, addr).text)
        except _BadAddress as exc:
            raise InvalidMessage(f"address list: {addr!r} {exc}") from None
    if not out and value.strip():
        raise InvalidMessage(f"address list: {value!r} holds no valid address")
    return tuple(out)


def _address_list(field: str) -> Any:
    def convert(value: object) -> tuple[str, ...]:
        if value is None or (type(value) is tuple and not value):  # the default: no address
            return ()
        if type(value) is str:
            return (_parse_address(value, field),)
        if isinstance(value, (str, Recipient)):
            return (_parse_address(value, field),)
        if isinstance(value, (list, tuple)):
            return tuple(_parse_address(v, field) for v in value)
        if not isinstance(value, Iterable):
            raise InvalidMessage(f"{field}: expected an address or a list of addresses")
        return tuple(_parse_address(v, field) for v in value)

    return convert


_TO, _CC, _BCC, _REPLY_TO = (_address_list(f) for f in ("to", "cc", "bcc", "reply_to"))


def _to(value: object) -> tuple[str, ...]:
    return _TO(value)  # type: ignore[no-any-return]


def _cc(value: object) -> tuple[str, ...]:
    return _CC(value)  # type: ignore[no-any-return]


def _bcc(value: object) -> tuple[str, ...]:
    return _BCC(value)  # type: ignore[no-any-return]


def _reply_to(value: object) -> tuple[str, ...]:
    return _REPLY_TO(value)  # type: ignore[no-any-return]


def _optional_address(value: object) -> str | None:
    return None if value is None else _parse_address(value, "sender")


def _envelope_sender(value: object) -> str | None:
    if value is None:
        return None
    text = _parse_address(value, "envelope_sender")
    return address_parts(text).addr


def _envelope_recipients(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, Recipient)):
        value = [value]
    if not isinstance(value, Iterable):
        raise InvalidMessage("envelope_recipients: expected a list of addresses")
    out = tuple(address_parts(_parse_address(v, "envelope_recipients")).addr for v in value)
    if not out:
        raise InvalidMessage("envelope_recipients: the list is empty; leave it out (None) instead")
    return out


def _subject(value: object) -> str:
    if type(value) is str and value.isprintable():  # _no_newline's fast path, inlined
        return value
    if not isinstance(value, str):
        raise InvalidMessage(f"subject: expected a string, got {type(value).__name__}")
    _no_newline("subject", value)
    return value


def _optional_text(field: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.isascii():  # ASCII text holds no surrogate: skip the UTF-8 encoding
            _no_surrogates(field, value)
        if "\x00" in value:
            raise InvalidMessage(f"{field} contains a NUL character")
        return value
    raise InvalidMessage(f"{field}: expected a string, got {type(value).__name__}")


def _text(value: object) -> str | None:
    return _optional_text("text", value)


def _html(value: object) -> str | None:
    return _optional_text("html", value)


def fold_plain(prefix: int, value: str) -> list[str] | None:
    """``value`` folded at whitespace into lines of at most 78 columns where possible.

    ``prefix`` is the length of ``Name: ``. Returns the pieces (join them with
    CRLF), or None when a word is too long for a 998-octet line.
    """
    if prefix + len(value.encode("utf-8")) <= 78:
        return [value]
    lines: list[str] = []
    current = ""
    width = prefix
    for token in re.findall(r"[ \t]*[^ \t]+|[ \t]+$", value):
        size = len(token.encode("utf-8"))
        if current and width + size > 78 and token[0] in " \t" and token.strip():
            lines.append(current)
            current, width = token, size
        else:
            current += token
            width += size
        if width > MAX_LINE:
            return None
    lines.append(current)
    return lines


def _headers(value: object) -> dict[str, str]:
    if type(value) is dict and not value:  # the default
        return {}
    if not isinstance(value, Mapping):
        raise InvalidMessage("headers: expected a mapping of header name to value")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, val in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidMessage(f"headers: {name!r} is not a valid header name")
        lower = name.lower()
        if lower in _RESERVED_HEADERS or lower.startswith(_RESERVED_PREFIXES):
            raise InvalidMessage(
                f"headers: {name!r} is written by notifykit from the message's own fields "
                "(or by receiving servers); it cannot be set"
            )
        if lower in seen:
            raise InvalidMessage(f"headers: {name!r} is given twice (header names ignore case)")
        seen.add(lower)
        if not isinstance(val, str):
            raise InvalidMessage(f"headers: the value of {name!r} must be a string")
        _no_newline(f"header {name!r}", val)
        val = val.strip(" \t")  # white space around a value means nothing to readers
        if lower in _ADDRESS_HEADERS:
            val = _parse_address(val, f"header {name!r}")
        elif val.isascii() and fold_plain(len(name) + 2, val) is None:
            raise InvalidMessage(
                f"header {name!r} has a word too long to fold into a {MAX_LINE}-octet line"
            )
        out[name] = val
    return out


def _tags(value: object) -> tuple[str, ...]:
    if type(value) is tuple and not value:  # the default
        return ()
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
    if type(value) is dict and not value:  # the default
        return {}
    if not isinstance(value, Mapping):
        raise InvalidMessage("metadata: expected a mapping")
    if not value:
        return {}
    for key in value:
        if not isinstance(key, str):
            raise InvalidMessage(f"metadata: key {key!r} is not a string")
    try:
        # It must cross a task queue and a JSON log: check that once, here.
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage("metadata contains a lone surrogate (cannot be encoded)") from None
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"metadata must be JSON-safe: {exc}") from None
    return dict(value)


# Random bytes for ids, drawn from the OS 4 KiB at a time: one getrandom() call
# per 256 messages instead of one per message. A forked child draws its own.
_ID_POOL_SIZE = 4096
_id_lock = threading.Lock()
_id_pool = b""
_id_pos = 0


def _reset_ids() -> None:
    global _id_lock, _id_pool, _id_pos
    _id_lock, _id_pool, _id_pos = threading.Lock(), b"", 0


os.register_at_fork(after_in_child=_reset_ids)


def _new_id() -> str:
    """A random UUID4 in hex, as ``uuid.uuid4().hex`` (the same bits, from os.urandom)."""
    global _id_pool, _id_pos
    with _id_lock:
        pos = _id_pos
        if pos + 16 > len(_id_pool):
            _id_pool, pos = os.urandom(_ID_POOL_SIZE), 0
        _id_pos = pos + 16
        data = bytearray(_id_pool[pos : pos + 16])
    data[6] = (data[6] & 0x0F) | 0x40  # version 4
    data[8] = (data[8] & 0x3F) | 0x80  # RFC 4122 variant
    return data.hex()


def _message_id_value(value: object) -> str:
    if type(value) is str and value.isalnum() and value.isascii():  # _new_id()'s form
        return value
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
        _no_surrogates("attachment content", value)
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidMessage(f"attachment content: expected bytes, got {type(value).__name__}")


_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MIMETYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*")
_PARAM = re.compile(rf'\s*;\s*({_TOKEN})\s*=\s*({_TOKEN}|"(?:[^"\\]|\\.)*")\s*')
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=^_`{|}~.@-]{1,250}")


def _parse_mimetype(field: str, value: object) -> str:
    """Validate ``type/subtype[; key=value...]``; return it normalised.

    ``name`` and ``filename`` parameters are refused: notifykit writes them from
    the attachment's file name, and two would confuse mail readers.
    """
    if not isinstance(value, str):
        raise InvalidMessage(f"{field} {value!r} is not of the form type/subtype")
    _no_newline(field, value)
    head = _MIMETYPE.match(value)
    if head is None:
        raise InvalidMessage(f"{field} {value!r} is not of the form type/subtype")
    out = f"{head.group(1).lower()}/{head.group(2).lower()}"
    pos = head.end()
    seen: set[str] = set()
    while pos < len(value):
        param = _PARAM.match(value, pos)
        if param is None:
            raise InvalidMessage(f"{field} {value!r} has malformed parameters")
        key = param.group(1).lower()
        if key in ("name", "filename", "boundary"):
            raise InvalidMessage(
                f"{field} {value!r} has a {key!r} parameter; notifykit writes it itself"
            )
        if key in seen:
            raise InvalidMessage(f"{field} {value!r} has the parameter {key!r} twice")
        seen.add(key)
        if not param.group(2).isascii():
            raise InvalidMessage(f"{field} {value!r} has a non-ASCII parameter value")
        out += f"; {key}={param.group(2)}"
        pos = param.end()
    if len(out) > 200:
        raise InvalidMessage(f"{field} is longer than 200 characters")
    return out


def mimetype_params(mimetype: str) -> tuple[str, dict[str, str]]:
    """(``type/subtype``, parameters) of a mimetype normalised by :class:`Attachment`."""
    base, _, rest = mimetype.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest if rest else ""):
        params[match.group(1).lower()] = match.group(2)
    return base.strip(), params


def _check_rfc822(content: bytes) -> None:
    if b"\x00" in content:
        raise InvalidMessage("a message/rfc822 attachment contains a NUL byte")
    lines = content.replace(b"\r\n", b"\n").split(b"\n")
    if any(len(line) > MAX_LINE for line in lines):
        raise InvalidMessage(
            f"a message/rfc822 attachment has a line longer than {MAX_LINE} octets"
        )
    if not content.strip() or b":" not in lines[0]:
        raise InvalidMessage(
            "a message/rfc822 attachment must hold an RFC 5322 message (headers first)"
        )


@attrs.frozen
class Attachment:
    """A file attached to an e-mail.

    ``mimetype`` is guessed from ``filename`` when not given; it may carry
    parameters (``"text/plain; charset=iso-8859-1"``) except ``name`` and
    ``filename``, which notifykit writes from ``filename``. An attachment with
    a ``content_id`` is an inline image: the HTML refers to it as
    ``<img src="cid:CONTENT_ID">``. An attached e-mail is
    ``Attachment(None, message_bytes, "message/rfc822")``: the file name is
    optional and the message travels as a ``message/rfc822`` part, not base64.
    """

    filename: str | None = attrs.field()
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

    def __attrs_post_init__(self) -> None:
        mimetype = _parse_mimetype("attachment mimetype", self.mimetype)
        object.__setattr__(self, "mimetype", mimetype)
        filename = self.filename
        if filename is None and mimetype.startswith("message/rfc822"):
            pass
        elif not isinstance(filename, str) or not filename.strip():
            raise InvalidMessage("attachment filename: expected a non-empty string")
        else:
            _no_newline("attachment filename", filename)
            object.__setattr__(self, "filename", filename.strip())
        if mimetype.startswith("message/rfc822"):
            _check_rfc822(self.content)
        if self.content_id is not None:
            cid = self.content_id
            if not isinstance(cid, str) or not cid.strip("<>"):
                raise InvalidMessage("attachment content_id: expected a non-empty string")
            _no_newline("attachment content_id", cid)
            cid = cid.strip("<>")
            if not _CONTENT_ID.fullmatch(cid):
                raise InvalidMessage(
                    f"attachment content_id {cid!r} must be at most 250 letters, digits "
                    "and the characters !#$%&'*+/=^_`{|}~.@- (RFC 5322 msg-id)"
                )
            object.__setattr__(self, "content_id", cid)

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
            return cls(data.get("filename"), content, mimetype, data.get("content_id"))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidMessage):
                raise
            raise InvalidMessage(
                f"attachment: cannot rebuild from {sorted(data)!r}: {exc}"
            ) from exc


def _attachments(value: object) -> tuple[Attachment, ...]:
    if type(value) is tuple and not value:  # the default
        return ()
    if isinstance(value, Attachment):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidMessage("attachments: expected a list of Attachment")
    items = tuple(value)
    for item in items:
        if not isinstance(item, Attachment):
            raise InvalidMessage(f"attachments: {item!r} is not an Attachment")
    return items


def _alternative_content(value: object) -> str | bytes:
    if isinstance(value, str):
        _no_surrogates("alternative content", value)
        if "\x00" in value:
            raise InvalidMessage("alternative content contains a NUL character")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidMessage(f"alternative content: expected str or bytes, got {type(value).__name__}")


def _alternative_mimetype(value: object) -> str:
    mimetype = _parse_mimetype("alternative mimetype", value)
    if mimetype.startswith(("multipart/", "message/")):
        raise InvalidMessage(f"alternative mimetype {mimetype!r} must be a single part")
    return mimetype


@attrs.frozen
class Alternative:
    """Another rendering of the body, e.g. a calendar invitation (``"text/calendar"``).

    It becomes one more part of the ``multipart/alternative``, after the text and
    HTML. ``str`` content travels as UTF-8 text (quoted-printable), ``bytes`` as
    base64. ``mimetype`` may carry parameters: ``"text/calendar; method=REQUEST"``.
    """

    content: str | bytes = attrs.field(
        converter=_alternative_content, repr=lambda c: f"<{len(c)} characters or bytes>"
    )
    mimetype: str = attrs.field(converter=_alternative_mimetype)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (bytes content base64-encoded)."""
        if isinstance(self.content, bytes):
            content = base64.b64encode(self.content).decode("ascii")
            return {"content": content, "encoding": "base64", "mimetype": self.mimetype}
        return {"content": self.content, "encoding": "text", "mimetype": self.mimetype}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alternative:
        """Rebuild an alternative from :meth:`to_dict` output."""
        _require_mapping(data, "alternative")
        try:
            content: str | bytes = data["content"]
            if data.get("encoding") == "base64":
                content = base64.b64decode(data["content"], validate=True)
            return cls(content, data["mimetype"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidMessage):
                raise
            raise InvalidMessage(
                f"alternative: cannot rebuild from {sorted(data)!r}: {exc}"
            ) from exc


def _alternatives(value: object) -> tuple[Alternative, ...]:
    if type(value) is tuple and not value:  # the default
        return ()
    if isinstance(value, Alternative):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise InvalidMessage("alternatives: expected a list of Alternative or (content, mimetype)")
    out = []
    for item in value:
        if isinstance(item, Alternative):
            out.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(Alternative(item[0], item[1]))
        else:
            raise InvalidMessage(
                f"alternatives: {item!r} is neither an Alternative nor (content, mimetype)"
            )
    return tuple(out)


def _optional_email(value: object) -> str | None:
    return None if value is None else _parse_address(value, "email")


def _optional_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage("name: expected a string")
    _no_newline("name", value, tab=False)
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
        if self.name and self.email and not self.email.endswith(">"):
            try:
                text = _make_parts(self.name, self.email).text
            except _BadAddress as exc:
                raise InvalidMessage(f"email: {self.email!r} {exc}") from None
            object.__setattr__(self, "email", text)

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


def _wire(address: str) -> str:
    """The addr-spec of a stored (already validated) address, as the envelope carries it."""
    return address_parts(address).wire


def _derive_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidMessage("derive_text: expected True or False")
    return value


@attrs.frozen
class Email:
    """An e-mail, validated on construction.

    At least one recipient (``to``, ``cc``, ``bcc`` or ``envelope_recipients``)
    and a body (``text``, ``html`` or ``alternatives``) are required. Addresses
    may be ``"a@b.example"``, ``"Asha <a@b.example>"`` or :class:`Recipient`;
    they are stored normalised. ``sender`` may be left out when a
    :class:`~notifykit.Notifier` supplies it.

    ``html`` without ``text`` gets a text part derived from the HTML (links as
    ``label (url)``, lists, tables), as templates do; pass ``derive_text=False``
    to send HTML alone. ``alternatives`` adds more parts to the
    ``multipart/alternative`` (a ``text/calendar`` invitation).

    ``envelope_sender`` is the SMTP ``MAIL FROM`` (the return path, where
    bounces go; by default the address of ``sender``); ``envelope_recipients``
    the ``RCPT TO`` list (by default to + cc + bcc). Neither changes the headers.
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
    alternatives: tuple[Alternative, ...] = attrs.field(
        default=(), converter=_alternatives, kw_only=True
    )
    envelope_sender: str | None = attrs.field(
        default=None, converter=_envelope_sender, kw_only=True
    )
    envelope_recipients: tuple[str, ...] | None = attrs.field(
        default=None, converter=_envelope_recipients, kw_only=True
    )
    derive_text: bool = attrs.field(default=True, converter=_derive_flag, kw_only=True)
    # Values derived from the (frozen) fields, computed once: the serialised message
    # per (utf8, eight_bit), reused by every attempt, the text derived from the
    # HTML, and the envelope properties.
    _memo: dict[object, Any] = attrs.field(
        init=False, factory=dict, eq=False, hash=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if not (self.to or self.cc or self.bcc or self.envelope_recipients):
            raise InvalidMessage("an Email needs at least one recipient")
        if not (self.text or self.html or self.alternatives) and not (
            self.text is not None and self.attachments
        ):
            raise InvalidMessage("an Email needs a body: text, html or both")

    # -- derived values

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every envelope recipient, bare addresses, without duplicates.

        ``envelope_recipients`` when given, else to, cc and bcc. Domains are in
        IDNA (punycode) form when the local part is ASCII.
        """
        memo = self._memo.get("recipients")
        if memo is not None:
            return memo  # type: ignore[no-any-return]
        seen: dict[str, None] = {}
        if self.envelope_recipients is not None:
            for addr in self.envelope_recipients:
                seen.setdefault(_wire(addr), None)
        else:
            for addr in (*self.to, *self.cc, *self.bcc):
                seen.setdefault(_wire(addr), None)
        memo = self._memo["recipients"] = tuple(seen)
        return memo

    @property
    def sender_address(self) -> str | None:
        """The envelope sender (``MAIL FROM``): ``envelope_sender``, else ``sender``'s address."""
        if self.envelope_sender is not None:
            return _wire(self.envelope_sender)
        return None if self.sender is None else _wire(self.sender)

    @property
    def needs_smtputf8(self) -> bool:
        """True iff an envelope or header address has a non-ASCII local part (RFC 6531).

        Such a message can only travel through a server that offers SMTPUTF8.
        International domains with an ASCII local part never need it: they are
        written in IDNA (punycode).
        """
        memo = self._memo.get("smtputf8")
        if memo is None:
            memo = self._memo["smtputf8"] = self._needs_smtputf8()
        return memo

    def _needs_smtputf8(self) -> bool:
        addresses: list[str] = [*self.to, *self.cc, *self.bcc, *self.reply_to]
        if self.sender is not None:
            addresses.append(self.sender)
        if self.envelope_sender is not None:
            addresses.append(self.envelope_sender)
        addresses.extend(self.envelope_recipients or ())
        addresses.extend(v for k, v in self.headers.items() if k.lower() in _ADDRESS_HEADERS)
        if all(a.isascii() for a in addresses):  # the common case, without parsing (per send)
            return False
        return any(not address_parts(a).wire.isascii() for a in addresses)

    @property
    def body_text(self) -> str | None:
        """The text part as sent: ``text``, or the text derived from ``html`` (``derive_text``)."""
        if self.text is not None or not self.html or not self.derive_text:
            return self.text
        derived = self._memo.get("text")
        if derived is None:
            from notifykit.templates._text import html_to_text  # deferred: loads Jinja

            derived = self._memo["text"] = html_to_text(self.html)
        return derived

    @property
    def message_id_header(self) -> str:
        """The ``Message-ID`` header this e-mail carries (stable for a given ``id``)."""
        memo = self._memo.get("message-id")
        if memo is None:
            memo = self._memo["message-id"] = self._message_id_header()
        return memo

    def _message_id_header(self) -> str:
        custom = next((v for k, v in self.headers.items() if k.lower() == "message-id"), None)
        if custom:
            return custom
        sender = _wire(self.sender) if self.sender is not None else "notifykit.invalid"
        domain = sender.rpartition("@")[2] or "notifykit.invalid"
        return f"<{self.id}@{domain}>"

    def replace(self, **changes: Any) -> Email:
        """A copy with ``changes`` applied and validated again (the ``id`` is kept)."""
        return _replace_email(self, changes)

    # -- MIME

    def to_bytes(self, *, utf8: bool | None = None, eight_bit: bool = False) -> bytes:
        """The message as RFC 5322 bytes with CRLF line ends, ready to send.

        ``multipart/alternative`` when there is more than one rendering (text,
        html, alternatives); inline images (attachments with a ``content_id``)
        sit in a ``multipart/related`` with the HTML; other attachments make the
        message ``multipart/mixed``. ``Bcc`` is never written into the headers.
        Non-ASCII header text is RFC 2047-encoded and international domains are
        written in IDNA, or header text is left as UTF-8 with ``utf8=True`` (for
        servers that offer SMTPUTF8). ``utf8`` defaults to
        :attr:`needs_smtputf8`. Every line ends in CRLF and holds at most 998
        octets. Raises :class:`InvalidMessage` when there is no sender, or when
        ``utf8=False`` is asked for a message that needs SMTPUTF8.

        ``eight_bit=True`` writes non-ASCII text parts as UTF-8 with
        ``Content-Transfer-Encoding: 8bit`` instead of quoted-printable (about
        half the work); only for servers that offer 8BITMIME (RFC 6152), and
        only where every line of the part fits in 998 octets (a part with a
        longer line stays quoted-printable). ASCII parts are 7bit either way.

        The bytes are built once per message and kept with it, so a retry or a
        failover sends the very same bytes (same ``Date``, same MIME
        boundaries) without building them again.
        """
        if utf8 is None:
            utf8 = self.needs_smtputf8
        key = (utf8, eight_bit)
        data = self._memo.get(key)
        if data is None:
            from notifykit._mime import email_to_bytes

            data = self._memo[key] = email_to_bytes(self, utf8=utf8, eight_bit=eight_bit)
        return data

    def to_mime(self) -> EmailMessage:
        """The message as an :class:`email.message.EmailMessage` (parsed from :meth:`to_bytes`).

        Uses the SMTP policy, so ``as_bytes()`` gives CRLF line ends (the
        SMTPUTF8 policy, with UTF-8 headers, when :attr:`needs_smtputf8`).
        """
        from email import message_from_bytes, message_from_string, policy

        if self.needs_smtputf8:
            text = self.to_bytes(utf8=True).decode("utf-8", "surrogateescape")
            return message_from_string(text, policy=policy.SMTPUTF8)
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
            "alternatives": [a.to_dict() for a in self.alternatives],
            "envelope_sender": self.envelope_sender,
            "envelope_recipients": (
                None if self.envelope_recipients is None else list(self.envelope_recipients)
            ),
            "derive_text": self.derive_text,
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
            attachments = data.get("attachments") or ()
            alternatives = data.get("alternatives") or ()
            if not isinstance(attachments, (list, tuple)) or not isinstance(
                alternatives, (list, tuple)
            ):
                raise InvalidMessage("e-mail dict: attachments and alternatives must be lists")
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
                attachments=[Attachment.from_dict(a) for a in attachments],
                alternatives=[Alternative.from_dict(a) for a in alternatives],
                envelope_sender=data.get("envelope_sender"),
                envelope_recipients=data.get("envelope_recipients"),
                derive_text=data.get("derive_text", True),
                tags=data.get("tags", ()),
                metadata=data.get("metadata") or {},
                idempotency_key=data.get("idempotency_key"),
                id=data.get("id") or _new_id(),
            )
        except KeyError as exc:
            raise InvalidMessage(f"e-mail dict lacks the key {exc.args[0]!r}") from None


# -- Email(...) for the common call: to, subject, text, html, sender and nothing else
#
# attrs runs one converter per field (twenty calls, most of them on defaults);
# for the call nearly every application makes per message, _email_init checks
# the five given values inline and sets the defaults directly. Whenever a value
# is not plainly fine (a new address, a non-ASCII or non-printable subject, a
# non-ASCII body...) it calls that field's own converter, in field order, so the
# values and the errors are exactly those of the full path (_attrs_email_init),
# which tests/test_message_fastpath.py checks on random input.

_attrs_email_init = Email.__init__
_set_field = object.__setattr__


def _email_init(
    self: Email,
    to: Any,
    subject: Any,
    text: Any = None,
    html: Any = None,
    sender: Any = None,
    *args: Any,
    **kwargs: Any,
) -> None:
    if args or kwargs:
        _attrs_email_init(self, to, subject, text, html, sender, *args, **kwargs)
        return
    address = _VALID.get(to) if type(to) is str else None
    _set_field(self, "to", (address,) if address is not None else _to(to))
    if not (type(subject) is str and subject.isprintable()):
        subject = _subject(subject)
    _set_field(self, "subject", subject)
    memo: dict[object, Any] = {}
    if text is not None and not (type(text) is str and text.isascii() and "\x00" not in text):
        text = _body(memo, "text", text)
    _set_field(self, "text", text)
    if html is not None and not (type(html) is str and html.isascii() and "\x00" not in html):
        html = _body(memo, "html", html)
    _set_field(self, "html", html)
    if sender is not None:
        address = _VALID.get(sender) if type(sender) is str else None
        sender = address if address is not None else _optional_address(sender)
    _set_field(self, "sender", sender)
    if all(a.isascii() for a in self.to) and (sender is None or sender.isascii()):
        memo["smtputf8"] = False  # no address can have a non-ASCII local part
    _set_field(self, "cc", ())
    _set_field(self, "bcc", ())
    _set_field(self, "reply_to", ())
    _set_field(self, "headers", {})
    _set_field(self, "attachments", ())
    _set_field(self, "tags", ())
    _set_field(self, "metadata", {})
    _set_field(self, "idempotency_key", None)
    _set_field(self, "id", _new_id())
    _set_field(self, "alternatives", ())
    _set_field(self, "envelope_sender", None)
    _set_field(self, "envelope_recipients", None)
    _set_field(self, "derive_text", True)
    _set_field(self, "_memo", memo)
    self.__attrs_post_init__()


def _body(memo: dict[object, Any], field: str, value: object) -> str | None:
    """``text`` or ``html`` checked by encoding it, keeping the UTF-8 for the serialiser."""
    if type(value) is str and "\x00" not in value:
        try:
            memo[("utf-8", field)] = value.encode("utf-8")  # fails on a lone surrogate
        except UnicodeEncodeError:
            pass
        else:
            return value
    return _optional_text(field, value)  # the full check, and its error


# -- Email.replace(): only the changed fields are checked again
#
# The other fields of an Email were checked when it was made and are frozen, so
# a copy reuses them as they are (the dicts copied, as their converters would);
# each changed field goes through its own converter, then the checks across
# fields. Values and errors are those of attrs.evolve (which subclasses, and
# unknown field names, still get); tests/test_message_fastpath.py compares them.

_EMAIL_FIELDS = tuple(f for f in attrs.fields(Email) if f.init)
_EMAIL_CONVERTERS: dict[str, Any] = {f.name: f.converter for f in _EMAIL_FIELDS}
_EMAIL_DICTS = frozenset({"headers", "metadata"})
# Memo entries that depend on one field only: kept when that field is unchanged.
_BODY_MEMO = {("utf-8", "text"): "text", ("utf-8", "html"): "html"}


def _replace_email(email: Email, changes: dict[str, Any]) -> Email:
    if type(email) is not Email or not changes.keys() <= _EMAIL_CONVERTERS.keys():
        return attrs.evolve(email, **changes)
    new = object.__new__(Email)
    for field in _EMAIL_FIELDS:
        name = field.name
        if name in changes:
            value = _EMAIL_CONVERTERS[name](changes[name])
        else:
            value = getattr(email, name)
            if name in _EMAIL_DICTS:
                value = dict(value)
        _set_field(new, name, value)
    old = email._memo
    memo = {key: old[key] for key, name in _BODY_MEMO.items() if key in old and name not in changes}
    _set_field(new, "_memo", memo)
    new.__attrs_post_init__()
    return new


_email_init.__doc__ = _attrs_email_init.__doc__
_email_init.__signature__ = inspect.signature(_attrs_email_init)  # type: ignore[attr-defined]
Email.__init__ = _email_init  # type: ignore[method-assign]


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
        _no_surrogates(f"variables: {key!r}", key)
        out[key] = str(val)
        _no_surrogates(f"variables: the value of {key!r}", out[key])
    return out


def _sms_body(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidMessage(f"SMS body: expected a string, got {type(value).__name__}")
    _no_surrogates("SMS body", value)
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
    _no_newline("SMS template_id", str(value))
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
