"""A transport that writes each message to a file in a directory.

E-mails become ``<id>.eml`` files (the exact MIME bytes, openable in any mail
client); SMS become ``<id>.sms.txt``. Useful in staging, and as a fallback that
keeps every message on disk for a human to resend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from notifykit.errors import ConfigurationError, TransientError
from notifykit.receipt import Receipt
from notifykit.transports.base import BaseTransport
from notifykit.transports.console import format_sms

if TYPE_CHECKING:
    from notifykit.message import Message

__all__ = ["FileTransport"]


class FileTransport(BaseTransport):
    """Writes each message to ``directory`` (created if missing).

    The file appears atomically (written under a temporary name, then renamed),
    so a reader never sees half a message.
    """

    scheme: ClassVar[str] = "file"
    simulated: ClassVar[bool] = True  # delivers to no one

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigurationError(f"file transport: {self.directory} is not a directory")
        self.name = f"file:{self.directory}"

    def _send(self, message: Message) -> Receipt:
        from notifykit.message import Email

        if isinstance(message, Email):
            data = message.to_mime().as_bytes()
            target = self.directory / f"{message.id}.eml"
        else:
            data = format_sms(message).encode("utf-8")
            target = self.directory / f"{message.id}.sms.txt"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise TransientError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return Receipt(
            message_id=message.id,
            transport=self.name,
            provider_message_id=str(target),
            accepted=message.recipients,
        )

    def __str__(self) -> str:
        return f"file://{self.directory}"
