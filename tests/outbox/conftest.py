"""Fixtures for the outbox tests: a fresh SQLite outbox and a Notifier on a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifykit import Notifier
from notifykit.outbox import SQLiteOutbox
from notifykit.transports.smtp import SMTPTransport

if TYPE_CHECKING:
    from tests.servers.smtp import SMTPServer


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[SQLiteOutbox]:
    box = SQLiteOutbox(tmp_path / "outbox.db")
    yield box
    box.close()


def smtp_notifier(
    server: SMTPServer, outbox: SQLiteOutbox | None = None, *, timeout: float = 5
) -> Notifier:
    """A Notifier sending through ``server`` (plain SMTP, short time-out)."""
    transport = SMTPTransport("127.0.0.1", server.port, security="none", timeout=timeout)
    notifier = Notifier(email=transport, sender="Shop <shop@example.com>", outbox=outbox)
    _open.append(notifier)
    return notifier


_open: list[Notifier] = []


@pytest.fixture(autouse=True)
def _close_notifiers() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


@pytest.fixture
def notifier(smtp_server: SMTPServer, outbox: SQLiteOutbox) -> Iterator[Notifier]:
    return smtp_notifier(smtp_server, outbox)
