"""The SMTP transport's test suite, run again through ``asend`` (aiosmtplib).

Every test of ``tests/transports/test_smtp.py`` is collected here a second
time with ``SMTPTransport.send``/``close`` running ``asend``/``aclose`` on an
event loop: the async path is proven by the same tests against the same real
aiosmtpd servers (STARTTLS and implicit TLS with trustme certificates, AUTH,
scripted faults).
"""

from __future__ import annotations

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

from notifykit.transports.smtp import SMTPTransport
from tests.asyncio.conftest import LoopThread, through_asend
from tests.transports.test_smtp import *  # noqa: F403 - the same tests, the async path


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> None:
    through_asend(monkeypatch, loop_thread, SMTPTransport)


# check() is a sync-only health check (it shares the sync pool, not the async one).
globals().pop("test_check_authenticates_without_sending")
