"""A Notifier built on first use and closed on demand, shared by the integrations.

Celery workers and Flask apps both hold one Notifier per process (per app),
built lazily, the first time a task or a view needs it, so that importing a
module or creating an app never opens a connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from notifykit.errors import ConfigurationError
from notifykit.notifier import Notifier

__all__ = ["LazyNotifier"]


class LazyNotifier:
    """Holds the Notifier that ``build`` makes, built once on first :meth:`get`.

    Thread-safe. :meth:`close` closes it; the next :meth:`get` builds a new one.
    """

    def __init__(self, build: Callable[[], object], what: str = "notifier_factory") -> None:
        self._build = build
        self._what = what
        self._notifier: Notifier | None = None
        self._lock = threading.Lock()

    def get(self) -> Notifier:
        """The Notifier, built on first call."""
        notifier = self._notifier
        if notifier is None:
            with self._lock:
                notifier = self._notifier
                if notifier is None:
                    built = self._build()
                    if not isinstance(built, Notifier):
                        raise ConfigurationError(f"{self._what} returned {built!r}, not a Notifier")
                    notifier = self._notifier = built
        return notifier

    def close(self) -> None:
        """Close the Notifier (QUIT, flush sinks), if one was built."""
        with self._lock:
            notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.close()
