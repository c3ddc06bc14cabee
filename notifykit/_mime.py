"""Serialise an :class:`~notifykit.message.Email` to RFC 5322 bytes, directly.

The stdlib's modern ``EmailMessage`` API parses every header it is given back
into header objects, which made building a message cost ~30x a Jinja render.
notifykit's messages are already validated, so this module writes the bytes
itself, with guarantees the tests check on arbitrary input:

- every line ends in CRLF and holds at most 998 octets (RFC 5322 2.1.1):
  headers are folded at whitespace near 78 columns, and text that cannot be
  folded there (a long word, non-ASCII text) is written as RFC 2047 encoded
  words, which can always be split; long or non-ASCII file names use RFC 2231
  continuations;
- a display name is written bare only when it is plain words; anything with
  specials (``@``, ``,``, quotes...) is quoted, and anything that looks like
  an encoded word is itself encoded, so no reader decodes it into a fake address;
- international domains are written in IDNA (punycode) when the local part
  is ASCII; raw UTF-8 headers (RFC 6532) only with ``utf8=True``, for SMTPUTF8.

Bodies are quoted-printable (7bit when plain ASCII; raw UTF-8 ``8bit`` with
``eight_bit=True``, for servers that offer 8BITMIME), attachments base64,
``message/rfc822`` attachments as they are. ``Email.to_mime()`` parses these
bytes back when a caller wants an ``EmailMessage``.
"""

from __future__ import annotations

import binascii
import functools
import itertools
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING

from notifykit.errors import InvalidMessage
from notifykit.message import (
    _ADDRESS_HEADERS,
    MAX_LINE,
    _quote_name,
    address_parts,
    fold_plain,
    mimetype_params,
)

if TYPE_CHECKING:
    from notifykit.message import Alternative, Attachment, Email

__all__ = ["email_to_bytes"]

CRLF = "\r\n"
_WIDTH = 78  # RFC 5322 2.1.1: lines SHOULD hold at most 78 characters
_WORD_BYTES = 42  # UTF-8 bytes per encoded word: =?utf-8?b?<56 chars>?= is 68 characters


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 base64 encoded words, split between characters."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(_word(bytes(chunk)))
            chunk.clear()
        chunk += data
    if chunk or not words:
        words.append(_word(bytes(chunk)))
    return words


def _word(data: bytes) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def _pack(prefix: int, tokens: Iterable[str]) -> str:
    """Join ``tokens`` with single spaces, folding before a token that would pass 78 columns."""
    out: list[str] = []
    width = prefix
    for token in tokens:
        size = _size(token)
        if not out:
            out.append(token)
            width += size
        elif width + 1 + size > _WIDTH:
            out.append(CRLF + " " + token)
            width = 1 + size
        else:
            out.append(" " + token)
            width += 1 + size
    return "".join(out)


def _unstructured(name: str, value: str, utf8: bool, *, custom: bool) -> str:
    """``Name: value`` for free text (Subject, custom headers), folded or encoded."""
    prefix = len(name) + 2
    plain = (value.isascii() or utf8) and (
        custom or ("=?" not in value and not value[:1].isspace())
    )
    if plain:
        lines = fold_plain(prefix, value)
        if lines is not None:
            return f"{name}: " + CRLF.join(lines)
    return f"{name}: " + _pack(prefix, _encoded_words(value))


def _address_tokens(address: str, utf8: bool) -> list[str]:
    """The tokens of one address in a header: name (plain, quoted or encoded) and <addr>."""
    parts = address_parts(address)
    addr = parts.wire
    if not addr.isascii() and not utf8:
        raise InvalidMessage(
            f"{addr!r} has a non-ASCII local part, which needs an SMTPUTF8 server"
            " (to_bytes(utf8=True))"
        )
    name = parts.name
    if not name:
        return [addr]
    if (name.isascii() or utf8) and "=?" not in name:
        quoted = _quote_name(name)
        if _size(quoted) + _size(addr) + 3 <= 76:
            return [quoted, f"<{addr}>"]
    return [*_encoded_words(name), f"<{addr}>"]


def display_name(name: str) -> str:
    """A display name as one header phrase: bare words, a quoted string or encoded words."""
    if name.isascii() and "=?" not in name and len(name) <= 60:
        return _quote_name(name)
    return " ".join(_encoded_words(name))


@functools.lru_cache(maxsize=64)
def _from_header(sender: str, utf8: bool) -> str:
    """``From: ...``; a Notifier's sender is the same on every message: built once."""
    return _address_header("From", [sender], utf8)


def _address_header(name: str, addresses: Sequence[str], utf8: bool) -> str:
    if len(addresses) == 1:  # the usual To: one line, as _pack writes it when nothing folds
        line = f"{name}: " + " ".join(_address_tokens(addresses[0], utf8))
        if len(line) <= _WIDTH and line.isascii():
            return line
    tokens: list[str] = []
    for i, address in enumerate(addresses):
        piece = _address_tokens(address, utf8)
        if i < len(addresses) - 1:
            piece[-1] += ","
        tokens.extend(piece)
    return f"{name}: " + _pack(len(name) + 2, tokens)


_ATTR_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)


def _param(name: str, value: str) -> list[str]:
    """A MIME parameter; RFC 2231 (UTF-8, split in continuations) when long or non-ASCII."""
    if value.isascii() and len(value) <= 60 and value.isprintable() and "=?" not in value:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return [f'{name}="{escaped}"']
    pieces: list[str] = []
    current = ""
    for byte in value.encode("utf-8"):
        char = chr(byte)
        encoded = char if char in _ATTR_CHARS else f"%{byte:02X}"
        if len(current) + len(encoded) > 60:
            pieces.append(current)
            current = ""
        current += encoded
    pieces.append(current)
    if len(pieces) == 1:
        return [f"{name}*=utf-8''{pieces[0]}"]
    return [
        f"{name}*{i}*=" + ("utf-8''" if i == 0 else "") + piece for i, piece in enumerate(pieces)
    ]


def _content_header(name: str, first: str, params: Sequence[str]) -> str:
    items = [first, *params]
    tokens = [item + ";" for item in items[:-1]] + [items[-1]]
    return f"{name}: " + _pack(len(name) + 2, tokens)


def _content_type(mimetype: str, extra: Sequence[str] = ()) -> str:
    base, params = mimetype_params(mimetype)
    return _content_header(
        "Content-Type", base, [f"{k}={v}" for k, v in params.items()] + list(extra)
    )


@functools.lru_cache(maxsize=128)
def _text_content_type(mimetype: str, charset: str) -> str:
    """``Content-Type: text/...; charset=...``: the same few per process, built once each."""
    base, params = mimetype_params(mimetype)
    own = [f"{k}={v}" for k, v in params.items() if k != "charset"]
    return _content_header("Content-Type", base, [*own, f'charset="{charset}"'])


@functools.lru_cache(maxsize=128)
def _text_head(mimetype: str, charset: str, encoding: str) -> bytes:
    """The headers of a text part and the blank line after them, as bytes: built once each."""
    head = [_text_content_type(mimetype, charset), f"Content-Transfer-Encoding: {encoding}", ""]
    return _head(head)


def _head(lines: list[str]) -> bytes:
    """Header lines and the blank line that ends them (the last item is ``""``)."""
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def _fits(data: bytes) -> bool:
    """True when every line of ``data`` (LF line ends) holds at most 998 octets."""
    return len(data) <= MAX_LINE or max(map(len, data.split(b"\n"))) <= MAX_LINE


# Every part below is bytes: its headers, a blank line and its body, CRLF line ends,
# with no CRLF after the body. Each text is encoded to UTF-8 once, here.


def _text_part(
    text: str, mimetype: str, eight_bit: bool = False, utf8: bytes | None = None
) -> bytes:
    """``utf8``: ``text`` already encoded (by the Email's validation), or None."""
    if "\r" in text:
        data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    else:
        data = text.encode("utf-8") if utf8 is None else utf8
    if text.isascii():
        if _fits(data):
            return _text_head(mimetype, "us-ascii", "7bit") + data.replace(b"\n", b"\r\n")
    elif eight_bit and _fits(data):
        # RFC 6152: raw UTF-8 lines of at most 998 octets, for a server that offers 8BITMIME.
        return _text_head(mimetype, "utf-8", "8bit") + data.replace(b"\n", b"\r\n")
    body = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
    return _text_head(mimetype, "utf-8", "quoted-printable") + body


def _base64_body(content: bytes) -> bytes:
    encoded = binascii.b2a_base64(content, newline=False)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _alternative_part(alt: Alternative, eight_bit: bool) -> bytes:
    if isinstance(alt.content, str):
        return _text_part(alt.content, alt.mimetype, eight_bit)
    head = [_content_type(alt.mimetype), "Content-Transfer-Encoding: base64", ""]
    return _head(head) + _base64_body(alt.content)


def _attachment_part(att: Attachment, disposition: str) -> bytes:
    filename = [] if att.filename is None else _param("filename", att.filename)
    if att.mimetype.startswith("message/rfc822"):
        # RFC 2046 5.2.1: message/rfc822 parts are never base64; they travel as they are.
        content = att.content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        cte = "7bit" if content.isascii() else "8bit"
        head = [
            _content_type(att.mimetype),
            f"Content-Transfer-Encoding: {cte}",
            _content_header("Content-Disposition", disposition, filename),
            "",
        ]
        return _head(head) + content.rstrip(b"\r\n")
    extra: list[str] = []
    base, params = mimetype_params(att.mimetype)
    if base.startswith("text/") and "charset" not in params:
        # Name the charset when the bytes are UTF-8, so readers decode them right;
        # other bytes travel untouched for the reader to sniff.
        try:
            att.content.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            extra.append('charset="utf-8"')
    if att.filename is not None:
        extra += _param("name", att.filename)
    lines = [
        _content_type(att.mimetype, extra),
        "Content-Transfer-Encoding: base64",
        _content_header("Content-Disposition", disposition, filename),
    ]
    if att.content_id is not None and disposition == "inline":
        lines.append(f"Content-ID: <{att.content_id}>")
    return _head([*lines, ""]) + _base64_body(att.content)


_date: tuple[int, str] = (0, "")


def _date_header() -> str:
    """``Date: ...`` for now; formatted once per second, not once per message."""
    global _date
    second = int(time.time())
    cached = _date
    if cached[0] != second:
        stamp = datetime.fromtimestamp(second, timezone.utc)
        cached = _date = (second, f"Date: {format_datetime(stamp)}")
    return cached[1]


# A random prefix per process and a counter: unique without a random draw per message.
_BOUNDARY_PREFIX = f"=_nk_{secrets.token_hex(12)}_"
_boundary_count = itertools.count()


def _boundary(parts: Iterable[bytes]) -> str:
    while True:
        boundary = f"{_BOUNDARY_PREFIX}{next(_boundary_count):x}"
        # QP and base64 output can never contain "=_"; 7bit text could, in theory.
        data = boundary.encode("ascii")
        if not any(data in p for p in parts):
            return boundary


def _multipart(subtype: str, children: list[bytes], extra: str = "") -> bytes:
    boundary = _boundary(children)
    head = f'Content-Type: multipart/{subtype};{extra} boundary="{boundary}"\r\n\r\n'
    dashes = b"--" + boundary.encode("ascii")
    out = [head.encode("ascii")]
    for child in children:
        out += (dashes, b"\r\n", child, b"\r\n")
    out += (dashes, b"--\r\n")
    return b"".join(out)


def email_to_bytes(email: Email, *, utf8: bool = False, eight_bit: bool = False) -> bytes:
    """The complete message, CRLF line ends, ready for SMTP DATA or SES raw.

    ``eight_bit``: non-ASCII text parts as raw UTF-8 (``8bit``, for an
    8BITMIME server) when their lines fit in 998 octets, else quoted-printable.
    """
    if email.sender is None:
        raise InvalidMessage("the Email has no sender; pass sender=... or set Notifier(sender=...)")
    headers = [_from_header(email.sender, utf8)]
    if email.to:
        headers.append(_address_header("To", email.to, utf8))
    if email.cc:
        headers.append(_address_header("Cc", email.cc, utf8))
    if email.reply_to:
        headers.append(_address_header("Reply-To", email.reply_to, utf8))
    headers.append(_unstructured("Subject", email.subject, utf8, custom=False))
    custom = {k.lower() for k in email.headers} if email.headers else ()
    if "date" not in custom:
        headers.append(_date_header())
    if "message-id" not in custom:
        headers.append(f"Message-ID: {email.message_id_header}")
    for name, value in email.headers.items():
        if name.lower() in _ADDRESS_HEADERS:
            headers.append(_address_header(name, [value], utf8))
        else:
            headers.append(_unstructured(name, value, utf8, custom=True))
    headers.append("MIME-Version: 1.0")

    inline: list[Attachment] = []
    files: list[Attachment] = []
    for attachment in email.attachments:
        (inline if email.html and attachment.content_id is not None else files).append(attachment)

    renderings: list[bytes] = []
    text = email.body_text
    encoded = email._memo  # the bodies' UTF-8 when Email(...) kept it
    if text is not None and (text or not (email.html or email.alternatives)):
        known = encoded.get(("utf-8", "text")) if text is email.text else None
        renderings.append(_text_part(text, "text/plain", eight_bit, known))
    if email.html:
        html_part = _text_part(email.html, "text/html", eight_bit, encoded.get(("utf-8", "html")))
        if inline:
            html_part = _multipart(
                "related",
                [html_part, *(_attachment_part(a, "inline") for a in inline)],
                ' type="text/html";',
            )
        renderings.append(html_part)
    if email.alternatives:
        renderings.extend(_alternative_part(a, eight_bit) for a in email.alternatives)
    body = renderings[0] if len(renderings) == 1 else _multipart("alternative", renderings)
    if files:
        body = _multipart("mixed", [body, *(_attachment_part(a, "attachment") for a in files)])
    # Headers are ASCII unless utf8 (validated: no lone surrogate); bodies are bytes
    # already, a forwarded 8-bit message/rfc822 part exactly as it was given.
    out = (CRLF.join(headers) + CRLF).encode("utf-8") + body
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out
