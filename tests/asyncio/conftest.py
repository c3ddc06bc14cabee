"""Run the sync test suites through ``asend``: the same tests prove both paths.

:func:`through_asend` replaces a transport class's ``send``/``close`` for one
test with wrappers that run ``asend``/``aclose`` on an event loop in a
background thread, so a sync test (threads included) drives the async code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from notifykit.transports.base import BaseTransport

_T = TypeVar("_T")


class LoopThread:
    """An event loop running in a daemon thread; :meth:`run` waits for a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 60) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


def through_asend(monkeypatch: pytest.MonkeyPatch, runner: LoopThread, *classes: type) -> None:
    """Make ``send``/``close`` of ``classes`` run ``asend``/``aclose`` on ``runner``'s loop."""
    for cls in classes:

        def send(self: Any, message: Any) -> Any:
            return runner.run(self.asend(message))

        def close(self: Any) -> None:
            runner.run(self.aclose())

        monkeypatch.setattr(cls, "send", send)
        if cls.aclose is not BaseTransport.aclose:  # the default aclose() runs close()
            monkeypatch.setattr(cls, "close", close)
