"""The retry policy: how many rounds, and how long to wait between them.

:class:`Retry` is a small value object. A composer
(:class:`~notifykit.FailoverTransport`) tries each of its transports once per
*round* and waits only when every transport failed the round; with a single
transport a round is one try. Waits grow exponentially (``initial``,
``initial * multiplier``, … capped at ``maximum``), are spread by ``jitter`` so
that many processes do not retry in lock-step, honour a provider's
``Retry-After`` within those bounds, and never run past ``deadline``.
:meth:`Retry.call` applies the same policy to any function (tenacity does its
bookkeeping and stays private to this module).

Only :class:`~notifykit.errors.TransientError` is ever retried: the caller
decides what is retryable, not the policy.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import attrs

from notifykit.errors import ConfigurationError, TransientError

__all__ = ["Retry"]

_R = TypeVar("_R")

# Process-wide switch for tests (notifykit.testing.no_backoff): waits become 0.
_no_wait_lock = threading.Lock()
_no_wait_depth = 0


@contextmanager
def _waits_disabled() -> Iterator[None]:
    global _no_wait_depth
    with _no_wait_lock:
        _no_wait_depth += 1
    try:
        yield
    finally:
        with _no_wait_lock:
            _no_wait_depth -= 1


def waits_disabled() -> bool:
    """True inside :func:`notifykit.testing.no_backoff`."""
    return _no_wait_depth > 0


def _positive(name: str, value: float, *, allow_zero: bool = True) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigurationError(f"Retry({name}=...) must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"Retry({name}={value!r}) must be positive")


@attrs.frozen
class Retry:
    """How a composer retries after :class:`TransientError`: rounds and the waits between them.

    Args:
        attempts: rounds at most, the first included (``1`` = every transport is
            tried once, no retry); each transport gets at most this many tries.
        initial: the first wait, in seconds.
        multiplier: each wait is the previous one times this.
        maximum: no single wait is longer than this (a ``Retry-After`` too).
        jitter: each wait is spread by ±this fraction of itself.
        deadline: the most time, in seconds, one ``send`` may spend across every
            transport and wait; ``None`` for no bound beyond ``attempts``.
    """

    attempts: int = 3
    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1
    deadline: float | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool):
            raise ConfigurationError(
                f"Retry(attempts=...) must be an integer, got {self.attempts!r}"
            )
        if not 1 <= self.attempts <= 100:
            raise ConfigurationError(f"Retry(attempts={self.attempts}) must be between 1 and 100")
        _positive("initial", self.initial)
        _positive("multiplier", self.multiplier)
        _positive("maximum", self.maximum)
        _positive("jitter", self.jitter)
        if self.multiplier < 1:
            raise ConfigurationError("Retry(multiplier=...) must be at least 1")
        if self.jitter > 1:
            raise ConfigurationError("Retry(jitter=...) is a fraction between 0 and 1")
        if self.deadline is not None:
            _positive("deadline", self.deadline, allow_zero=False)

    def wait(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed round (or try) number ``attempt`` (1-based).

        ``retry_after`` (a provider's hint) raises the wait, but never above
        ``maximum``.
        """
        base = min(self.initial * self.multiplier ** (attempt - 1), self.maximum)
        if self.jitter:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            base = base * (1 + spread)
        if retry_after is not None and retry_after > base:
            base = retry_after
        return max(0.0, min(base, self.maximum))

    def delays(self) -> list[float]:
        """The waits between rounds without jitter, e.g. ``[1.0, 2.0]`` for the default."""
        return [
            min(self.initial * self.multiplier**i, self.maximum) for i in range(self.attempts - 1)
        ]

    def call(
        self,
        fn: Callable[[], _R],
        *,
        deadline_at: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_retry: Callable[[TransientError, float], None] | None = None,
        retryable: Callable[[TransientError], bool] | None = None,
    ) -> _R:
        """Call ``fn`` until it returns, retrying it on :class:`TransientError` only.

        Any other exception, or a :class:`TransientError` for which
        ``retryable(error)`` is false, propagates at once. After ``attempts`` tries, or
        when the next wait would pass ``deadline_at`` (a ``clock()`` value), the
        last :class:`TransientError` is raised. ``on_retry(error, wait)`` is
        called before each wait.
        """
        import tenacity  # private: the public surface is Retry's parameters

        def wait(state: tenacity.RetryCallState) -> float:
            if waits_disabled():
                return 0.0
            exc = state.outcome.exception() if state.outcome else None
            hint = exc.retry_after if isinstance(exc, TransientError) else None
            return self.wait(state.attempt_number, hint, rng)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            return deadline_at is not None and clock() + state.upcoming_sleep > deadline_at

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                assert isinstance(exc, TransientError)
                on_retry(exc, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: (
                    isinstance(exc, TransientError) and (retryable is None or retryable(exc))
                )
            ),
            wait=wait,
            stop=stop,
            sleep=lambda seconds: sleep(seconds) if seconds > 0 else None,
            before_sleep=before_sleep,
            reraise=True,
        )
        # Fast path: the first try runs outside tenacity, which is only set up
        # (and only costs anything) once a try has failed.
        try:
            return fn()
        except TransientError as exc:
            if self.attempts == 1 or (retryable is not None and not retryable(exc)):
                raise
            first: list[TransientError] = [exc]

        def attempt() -> _R:
            if first:
                raise first.pop()  # replay the first failure as tenacity's attempt 1
            return fn()

        return retrying(attempt)
