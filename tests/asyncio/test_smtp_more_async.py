"""SMTPUTF8, 8BITMIME, pool and rate-limit tests of the SMTP transport, run again through ``asend``."""

from __future__ import annotations

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

from notifykit.transports.smtp import SMTPTransport
from tests.asyncio.conftest import LoopThread, through_asend
from tests.transports.test_pool_rate import *  # noqa: F403 - the same tests, the async path
from tests.transports.test_smtp_8bitmime import *  # noqa: F403
from tests.transports.test_smtputf8 import *  # noqa: F403


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> None:
    through_asend(monkeypatch, loop_thread, SMTPTransport)
