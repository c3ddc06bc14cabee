"""The outbox tests (idempotency keys included), run again with the Notifier's async methods.

``Notifier.asend`` checks and frees idempotency keys as ``send`` does (the key
table is read and written in a worker thread).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

from notifykit.transports.smtp import SMTPTransport
from tests.asyncio.conftest import LoopThread, notifier_through_async, through_asend
from tests.outbox.conftest import *  # noqa: F403 - its fixtures
from tests.outbox.test_outbox import *  # noqa: F403 - the same tests, the async path
from tests.outbox.test_outbox import _open


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> Iterator[None]:
    notifier_through_async(monkeypatch, loop_thread)
    through_asend(monkeypatch, loop_thread, SMTPTransport)
    yield
    # tests/outbox/conftest.py's _close_notifiers (underscored, so not star-imported),
    # here while close() still runs aclose() on the loop that holds the connections.
    while _open:
        _open.pop().close()
