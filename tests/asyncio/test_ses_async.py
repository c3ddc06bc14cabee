"""The SES test suite (moto), run again through ``asend`` (the boto3 client in a worker thread)."""

from __future__ import annotations

import pytest

pytest.importorskip("moto")

from notifykit.transports.ses import SESTransport
from tests.asyncio.conftest import LoopThread, through_asend
from tests.transports.test_ses import *  # noqa: F403 - the same tests, the async path


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> None:
    through_asend(monkeypatch, loop_thread, SESTransport)
