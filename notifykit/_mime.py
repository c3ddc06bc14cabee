"""Serialise an :class:`~notifykit.message.Email` to RFC 5322 bytes, directly.

The stdlib's modern ``EmailMessage`` API parses every header it is given back
into header objects, which made building a message cost ~30x a Jinja render.
notifykit's messages are already validated, so this module writes the bytes
itself: CRLF line ends, headers folded at 78 columns, RFC 2047 encoded words for
non-ASCII text (or raw UTF-8 under SMTPUTF8), RFC 2231 file names,
quoted-printable text parts and base64 attachments. ``Email.to_mime()`` parses
these bytes back when a caller wants an ``EmailMessage``.
"""

from __future__ import annotations

import binascii
import quopri
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from email.header import Header
from email.utils import encode_rfc2231, format_datetime
from typing import TYPE_CHECKING

from notifykit.errors import InvalidMessage

if TYPE_CHECKING:
    from notifykit.message import Attachment, Email

__all__ = ["email_to_bytes"]

CRLF = "\r\n"


def _fold(name: str, value: str, utf8: bool) -> str:
    """One header line, ``name: value``, folded when long; encoded words for non-ASCII."""
    if value.isascii():
        if len(name) + 2 + len(value) <= 78:
            return f"{name}: {value}"
        folded = Header(value, "us-ascii", header_name=name).encode(splitchars=" ,;", linesep=CRLF)
        return f"{name}: {folded}"
    if utf8 and len(name) + 2 + len(value.encode("utf-8")) <= 998:
        return f"{name}: {value}"  # RFC 6532: raw UTF-8 under SMTPUTF8
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=CRLF)}"


def _split(address: str) -> tuple[str, str]:
    """(display name, addr-spec) of a normalised address, without re-parsing it."""
    if not address.endswith(">"):
        return "", address
    cut = address.rindex("<")
    name = address[:cut].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name, address[cut + 1 : -1]


def _address(address: str, utf8: bool) -> str:
    name, addr = _split(address)
    if not addr.isascii() and not utf8:
        local, _, domain = addr.rpartition("@")
        if not local.isascii():
            raise InvalidMessage(
                f"{addr!r} has a non-ASCII local part, which needs an SMTPUTF8 server"
            )
        try:
            addr = f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError as exc:
            raise InvalidMessage(f"{addr!r} has a domain that IDNA cannot encode") from exc
    if not name:
        return addr
    if name.isascii() or utf8:
        specials = '()<>[]:;@\\,."'
        if any(c in specials for c in name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{addr}>"
    return f"{Header(name, 'utf-8').encode()} <{addr}>"


def _address_header(name: str, addresses: Sequence[str], utf8: bool) -> str:
    value = ", ".join(_address(a, utf8) for a in addresses)
    if len(name) + len(value) + 2 <= 78:
        return f"{name}: {value}"
    # Fold between addresses: one address per continuation line.
    return f"{name}: " + ("," + CRLF + " ").join(_address(a, utf8) for a in addresses)


def _text_part(text: str, subtype: str) -> list[str]:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normalised.split("\n")
    if text.isascii() and all(len(line) <= 998 for line in lines):
        body = CRLF.join(lines)
        return [
            f'Content-Type: text/{subtype}; charset="us-ascii"',
            "Content-Transfer-Encoding: 7bit",
            "",
            body,
        ]
    data = normalised.encode("utf-8")
    body = quopri.encodestring(data).decode("ascii").replace("\n", CRLF)
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        body,
    ]


def _param(name: str, value: str) -> str:
    if value.isascii():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{name}="{escaped}"'
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def _attachment_part(att: Attachment, disposition: str) -> list[str]:
    if att.mimetype.lower().startswith("message/"):
        # RFC 2046 5.2.1: message/* parts are never base64; they travel as they are.
        content = att.content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        text = content.decode("utf-8", "surrogateescape")
        cte = "7bit" if content.isascii() else "8bit"
        return [
            f"Content-Type: {att.mimetype}",
            f"Content-Transfer-Encoding: {cte}",
            f"Content-Disposition: {disposition}; {_param('filename', att.filename)}",
            "",
            text.rstrip("\r\n"),
        ]
    encoded = binascii.b2a_base64(att.content, newline=False).decode("ascii")
    body = CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    ctype = att.mimetype
    if ctype.startswith("text/") and "charset" not in ctype.lower():
        # Name the charset when the bytes are UTF-8, so readers decode them right;
        # other bytes travel untouched for the reader to sniff.
        try:
            att.content.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            ctype += '; charset="utf-8"'
    lines = [
        f"Content-Type: {ctype}; {_param('name', att.filename)}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: {disposition}; {_param('filename', att.filename)}",
    ]
    if att.content_id is not None and disposition == "inline":
        lines.append(f"Content-ID: <{att.content_id}>")
    return [*lines, "", body]


def _boundary(parts: Iterable[str]) -> str:
    while True:
        boundary = f"=_nk_{uuid.uuid4().hex}"
        # QP and base64 output can never contain "=_"; 7bit text could, in theory.
        if not any(boundary in p for p in parts):
            return boundary


def _multipart(subtype: str, children: list[list[str]], extra: str = "") -> list[str]:
    bodies = [CRLF.join(child) for child in children]
    boundary = _boundary(bodies)
    out = [f'Content-Type: multipart/{subtype};{extra} boundary="{boundary}"', ""]
    for body in bodies:
        out += [f"--{boundary}", body]
    out += [f"--{boundary}--", ""]
    return out


def email_to_bytes(email: Email, *, utf8: bool = False) -> bytes:
    """The complete message, CRLF line ends, ready for SMTP DATA or SES raw."""
    if email.sender is None:
        raise InvalidMessage("the Email has no sender; pass sender=... or set Notifier(sender=...)")
    headers = [_address_header("From", [email.sender], utf8)]
    if email.to:
        headers.append(_address_header("To", email.to, utf8))
    if email.cc:
        headers.append(_address_header("Cc", email.cc, utf8))
    if email.reply_to:
        headers.append(_address_header("Reply-To", email.reply_to, utf8))
    headers.append(_fold("Subject", email.subject, utf8))
    custom = {k.lower() for k in email.headers}
    if "date" not in custom:
        headers.append(f"Date: {format_datetime(datetime.now(timezone.utc))}")
    if "message-id" not in custom:
        headers.append(f"Message-ID: {email.message_id_header}")
    headers.extend(_fold(name, value, utf8) for name, value in email.headers.items())
    headers.append("MIME-Version: 1.0")

    inline = [a for a in email.attachments if a.content_id is not None] if email.html else []
    files = [a for a in email.attachments if not (email.html and a.content_id is not None)]

    html_part: list[str] | None = None
    if email.html:
        html_part = _text_part(email.html, "html")
        if inline:
            html_part = _multipart(
                "related",
                [html_part, *(_attachment_part(a, "inline") for a in inline)],
                ' type="text/html";',
            )
    if email.text is not None and html_part is not None:
        body = _multipart("alternative", [_text_part(email.text, "plain"), html_part])
    elif html_part is not None:
        body = html_part
    else:
        body = _text_part(email.text or "", "plain")
    if files:
        body = _multipart("mixed", [body, *(_attachment_part(a, "attachment") for a in files)])
    text = CRLF.join([*headers, *body])
    if not text.endswith(CRLF):
        text += CRLF
    # Headers are ASCII unless utf8; only a forwarded 8-bit message/* part can add
    # raw bytes (kept exactly through surrogateescape).
    return text.encode("utf-8", "surrogateescape")
