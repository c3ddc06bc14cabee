"""The Notifier's test suites, run again through its async methods.

``tests/test_notifier.py`` and ``tests/test_end_to_end.py`` run a second time
with ``send``, ``send_email``, ``send_sms``, ``notify`` and ``close`` replaced
by ``asend``, ``asend_email``, ``asend_sms``, ``anotify`` and ``aclose`` on an
event loop (and the SMTP/failover transports on their async paths): the same
arguments give the same receipts, errors and delivery events.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

import notifykit as nk
from notifykit.testing import ScriptedTransport
from notifykit.transports.failover import FailoverTransport
from notifykit.transports.smtp import SMTPTransport
from tests.asyncio.conftest import LoopThread, notifier_through_async, through_asend
from tests.test_end_to_end import *  # noqa: F403 - the same tests, the async path
from tests.test_notifier import *  # noqa: F403


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> None:
    notifier_through_async(monkeypatch, loop_thread)
    through_asend(monkeypatch, loop_thread, FailoverTransport, SMTPTransport)


def test_async_with_closes_and_logs_each_attempt() -> None:
    """``async with`` closes the transports; asend logs queued, attempt_failed, sent."""
    sink = nk.MemorySink()
    message = nk.Email(to="asha@example.com", subject="s", text="t", sender="a@example.com")
    backup = ScriptedTransport(name="b")
    closed: list[str] = []

    class Closing(ScriptedTransport):
        async def aclose(self) -> None:
            closed.append(self.name)

    composer = FailoverTransport([Closing([nk.TransientError("451 busy")], name="a"), backup])

    async def run() -> nk.Receipt:
        async with nk.Notifier(email=composer, sinks=[sink]) as notifier:
            return await notifier.asend(message)

    receipt = asyncio.run(run())
    assert ["a", "b"] == [a.transport for a in receipt.attempts]
    assert ["queued", "attempt_failed", "sent"] == [e.status for e in sink.events]
    assert ["a"] == closed
    assert 1 == len(backup.sent)
