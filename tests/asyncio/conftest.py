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
        # One more turn: callbacks queued in the loop's last batch (a transport's
        # connection_lost after a close()) run instead of being dropped with the loop.
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
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


def notifier_through_async(monkeypatch: pytest.MonkeyPatch, runner: LoopThread) -> None:
    """Make the Notifier's sync methods run their async twins on ``runner``'s loop."""
    from notifykit.notifier import Notifier

    def send(self: Any, message: Any, *, template: str | None = None) -> Any:
        return runner.run(self.asend(message, template=template))

    def send_email(self: Any, *args: Any, **kwargs: Any) -> Any:
        return runner.run(self.asend_email(*args, **kwargs))

    def send_sms(self: Any, *args: Any, **kwargs: Any) -> Any:
        return runner.run(self.asend_sms(*args, **kwargs))

    def notify(self: Any, *args: Any, **kwargs: Any) -> Any:
        return runner.run(self.anotify(*args, **kwargs))

    def close(self: Any) -> None:
        runner.run(self.aclose())

    for name, fn in [
        ("send", send),
        ("send_email", send_email),
        ("send_sms", send_sms),
        ("notify", notify),
        ("close", close),
    ]:
        monkeypatch.setattr(Notifier, name, fn)
