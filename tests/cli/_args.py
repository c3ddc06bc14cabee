"""Building ``notifykit send`` command lines in the CLI tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.servers.smtp import SMTPServer

SENDER = "Shop <noreply@shop.example>"


def via(server: SMTPServer) -> str:
    """The --via URL of a local test SMTP server (no TLS)."""
    return f"smtp://127.0.0.1:{server.port}?security=none&timeout=5"


def send_args(
    *extra: str,
    to: str | None = None,
    subject: str | None = None,
    text: str | None = None,
    sender: str | None = None,
    via: str | None = None,
) -> list[str]:
    """``["send", "--to", to, ...]`` with the options given, then ``extra`` as written."""
    args = ["send"]
    for flag, value in (
        ("--to", to),
        ("--subject", subject),
        ("--text", text),
        ("--from", sender),
        ("--via", via),
    ):
        if value is not None:
            args += [flag, value]
    return [*args, *extra]


def memory_args(*extra: str, **fields: str | None) -> list[str]:
    """A complete send to the memory transport (a@example.com, "s", "t"), ``fields`` changed."""
    chosen: dict[str, str | None] = {
        "to": "a@example.com",
        "subject": "s",
        "text": "t",
        "sender": SENDER,
        "via": "memory://",
        **fields,
    }
    return send_args(*extra, **chosen)
