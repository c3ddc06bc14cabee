"""A transport that prints each message in full: the development fallback.

Unlike the hand-written "console fallbacks" that print a subject and drop the
message, this one writes everything a reader needs to act on it: headers, both
bodies, attachments, and for an SMS the number, sender, template and variables.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, ClassVar, TextIO

from notifykit.receipt import Receipt
from notifykit.transports.base import BaseTransport

if TYPE_CHECKING:
    from notifykit.message import SMS, Email, Message

__all__ = ["ConsoleTransport"]


def format_email(message: Email) -> str:
    """The e-mail as readable text: headers, text part, HTML part, attachments."""
    lines = [f"From: {message.sender or '(not set)'}"]
    if message.to:
        lines.append(f"To: {', '.join(message.to)}")
    if message.cc:
        lines.append(f"Cc: {', '.join(message.cc)}")
    if message.bcc:
        lines.append(f"Bcc: {', '.join(message.bcc)}")
    if message.reply_to:
        lines.append(f"Reply-To: {', '.join(message.reply_to)}")
    lines.append(f"Subject: {message.subject}")
    lines.extend(f"{k}: {v}" for k, v in message.headers.items())
    lines.append(f"X-NotifyKit-Id: {message.id}")
    text = message.body_text  # the text part as sent: derived from the HTML when there is none
    if text is not None:
        label = "text/plain" if message.text is not None else "text/plain (derived from the HTML)"
        lines += ["", f"--- {label} ---", text]
    if message.html:
        lines += ["", "--- text/html ---", message.html]
    for att in message.attachments:
        cid = f" cid:{att.content_id}" if att.content_id else ""
        lines.append(f"[attachment {att.filename} {att.mimetype} {len(att.content)} bytes{cid}]")
    return "\n".join(lines)


def format_sms(message: SMS) -> str:
    """The SMS as readable text: number, sender, template, variables, body."""
    lines = [f"SMS to {message.to}"]
    if message.sender:
        lines.append(f"Sender: {message.sender}")
    if message.template_id:
        lines.append(f"Template: {message.template_id}")
    for key, value in message.variables.items():
        lines.append(f"  {key} = {value}")
    lines.append(f"Encoding: {message.encoding}, {message.segments} segment(s)")
    lines += ["", message.body]
    return "\n".join(lines)


class ConsoleTransport(BaseTransport):
    """Writes each message in full to ``stream`` (standard error by default).

    It carries e-mail and SMS and never fails, which makes it the last resort of
    a development failover chain: the message is on screen, not lost.
    """

    scheme: ClassVar[str] = "console"
    simulated: ClassVar[bool] = True  # delivers to no one

    def __init__(self, stream: TextIO | None = None) -> None:
        self.name = "console"
        self._stream = stream
        self._lock = threading.Lock()

    def _send(self, message: Message) -> Receipt:
        from notifykit.message import Email

        body = format_email(message) if isinstance(message, Email) else format_sms(message)
        stream = self._stream if self._stream is not None else sys.stderr
        rule = "-" * 72
        with self._lock:
            stream.write(f"{rule}\n{body}\n{rule}\n")
            stream.flush()
        return Receipt(
            message_id=message.id,
            transport=self.name,
            provider_message_id=None,
            accepted=message.recipients,
        )
