"""A transport that writes each message to a file in a directory.

E-mails become ``<id>.eml`` files (the exact MIME bytes, openable in any mail
client); SMS become ``<id>.sms.txt``. Useful in staging, and as a fallback that
keeps every message on disk for a human to resend.

Every file stays inside the directory, whatever the message id: an id comes
from the caller, from :meth:`Email.from_dict <notifykit.Email.from_dict>` or
from a task queue's payload, so it is never used as a path. The file name is
the id when the id is made of letters, digits, ``.``, ``_``, ``-``, ``@`` and
``+`` (every id notifykit generates is); otherwise each other character becomes
``_``, leading dots are dropped, the name is cut to 100 characters, and a hash
of the whole id is appended so that two different ids never share a file
(``../../etc/cron.d/x`` becomes ``etc_cron.d_x-1a2b3c4d5e6f7a8b.eml``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from notifykit.errors import ConfigurationError, InvalidMessage, TransientError
from notifykit.receipt import Receipt
from notifykit.transports.base import BaseTransport
from notifykit.transports.console import format_sms

if TYPE_CHECKING:
    from notifykit.message import Message

__all__ = ["FileTransport", "safe_file_stem"]

_SAFE = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]{0,99}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_file_stem(message_id: str) -> str:
    """The file name (without extension) for ``message_id``: one path component.

    An id that is already safe (letters, digits, ``._-@+``, not starting with a
    dot, at most 100 characters) is used as it is. Any other id is cleaned and
    suffixed with 16 hex digits of its SHA-256, so distinct ids give distinct
    names and none can name a parent directory, an absolute path, a hidden
    file, or be too long for the file system.
    """
    if _SAFE.fullmatch(message_id):
        return message_id
    cleaned = _UNSAFE_CHARS.sub("_", message_id).lstrip("._")[:100]
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{cleaned}-{digest}" if cleaned else digest


class FileTransport(BaseTransport):
    """Writes each message to ``directory`` (created if missing).

    The file appears atomically (written under a temporary name, then renamed),
    so a reader never sees half a message. The file name comes from the message
    id through :func:`safe_file_stem`, so no id can place a file outside
    ``directory``.
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
            suffix = ".eml"
        else:
            data = format_sms(message).encode("utf-8")
            suffix = ".sms.txt"
        target = self.directory / f"{safe_file_stem(message.id)}{suffix}"
        # Belt and braces: the name is one plain component of the directory.
        if target.parent != self.directory or target.name in (".", ".."):
            raise InvalidMessage(f"file transport: message id {message.id!r} is not a file name")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # mkstemp creates a new file (O_EXCL): never follows a planted
            # symlink, and two sends of the same id do not share a temp file.
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
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
