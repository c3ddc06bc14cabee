"""LazyNotifier: the build-once holder behind the Celery and Flask integrations."""

from __future__ import annotations

import threading

import pytest

import notifykit as nk
from notifykit.contrib._lazy import LazyNotifier


def test_built_once_for_many_threads_and_rebuilt_after_close() -> None:
    """Concurrent first calls build one Notifier; close() closes it and the next get() rebuilds."""
    built: list[nk.Notifier] = []
    barrier = threading.Barrier(8)

    def build() -> nk.Notifier:
        notifier = nk.Notifier(email=nk.MemoryTransport())
        built.append(notifier)
        return notifier

    lazy = LazyNotifier(build)
    seen: list[nk.Notifier] = []

    def worker() -> None:
        barrier.wait()
        seen.append(lazy.get())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 == len(built)
    assert {id(built[0])} == {id(n) for n in seen}
    lazy.close()
    assert lazy.get() is not built[0]
    assert 2 == len(built)


def test_a_factory_that_returns_something_else_is_a_configuration_error() -> None:
    """The factory's mistake is named, not an AttributeError later in a task or a view."""
    lazy = LazyNotifier(lambda: "smtp://mail.example.com", "my factory")
    with pytest.raises(
        nk.ConfigurationError,
        match=r"my factory returned 'smtp://mail\.example\.com', not a Notifier",
    ):
        lazy.get()
