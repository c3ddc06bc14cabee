"""Composers: :class:`FailoverTransport` and :class:`RoundRobinTransport`.

For each message a composer walks its transports in order:

===================  ===========================================================
error                what happens
===================  ===========================================================
``TransientError``   retry the same transport with backoff (:class:`Retry`), then
                     move on to the next one
``ProviderError``    no retry: move on at once
``RejectedError``    raise at once: another provider would refuse it too
``InvalidMessage``,  propagate: the message or the set-up is wrong
``Configuration…``
===================  ===========================================================

A transport that failed *rests* for ``cooldown`` seconds: later messages skip it
at no cost (a circuit breaker). Once the cooldown is over, one message probes it
(half-open); success puts it back in service, failure sends it back to rest.
Resting transports are never given up on: when every live transport has failed
a message, the resting ones are tried too, in order, before the composer gives
up with :class:`~notifykit.errors.AllTransportsFailed`. Every attempt, skips
included, is in the receipt or in the error.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, ClassVar

import attrs

from notifykit.errors import (
    AllTransportsFailed,
    ConfigurationError,
    DeliveryError,
    RejectedError,
    TransientError,
)
from notifykit.receipt import Attempt, Receipt
from notifykit.retry import Retry
from notifykit.transports.base import BaseTransport, Transport

if TYPE_CHECKING:
    from notifykit.message import Message

__all__ = ["FailoverTransport", "RoundRobinTransport"]


@attrs.define
class _Circuit:
    """The health of one transport: resting until a time, or probing."""

    resting_until: float | None = None
    probing: bool = False


class FailoverTransport(BaseTransport):
    """Sends through the first transport that works; see the module docstring.

    Args:
        transports: the transports, most preferred first.
        retry: how transient failures are retried on one transport.
        cooldown: seconds a failed transport rests before it is probed again.
        resend_uncertain: when a transport may have delivered a message although
            it failed (``maybe_delivered``), send it again elsewhere (at least
            once, the default) or raise at once (at most once).
        sleep, clock, rng: injectable for tests; default to :func:`time.sleep`,
            :func:`time.monotonic` and the :mod:`random` module.
    """

    scheme: ClassVar[str] = "failover"

    def __init__(
        self,
        transports: Sequence[Transport],
        retry: Retry | None = None,
        cooldown: float = 60.0,
        resend_uncertain: bool = True,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        transports = tuple(transports)
        if not transports:
            raise ConfigurationError(f"{type(self).__name__} needs at least one transport")
        for t in transports:
            if not isinstance(t, Transport):
                raise ConfigurationError(f"{t!r} is not a transport (it needs send() and close())")
        if retry is not None and not isinstance(retry, Retry):
            raise ConfigurationError(f"retry must be a notifykit.Retry, got {retry!r}")
        if not isinstance(cooldown, (int, float)) or not 0 <= cooldown < float("inf"):
            raise ConfigurationError(f"cooldown must be finite seconds >= 0, got {cooldown!r}")
        self.transports: tuple[Transport, ...] = transports
        self.retry = retry if retry is not None else Retry()
        self.cooldown = float(cooldown)
        self.resend_uncertain = resend_uncertain
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._circuits = [_Circuit() for _ in transports]
        self._turn = itertools.count()  # RoundRobinTransport's rotation
        self.channels = frozenset().union(
            *(getattr(t, "channels", frozenset({"email", "sms"})) for t in transports)
        )
        self.name = str(self)

    # -- health

    def is_resting(self, transport: Transport) -> bool:
        """True while ``transport`` is resting after a failure (skipped at no cost)."""
        circuit = self._circuits[self.transports.index(transport)]
        with self._lock:
            return circuit.resting_until is not None and (
                self._clock() < circuit.resting_until or circuit.probing
            )

    def reset(self) -> None:
        """Put every transport back in service at once."""
        with self._lock:
            for circuit in self._circuits:
                circuit.resting_until = None
                circuit.probing = False

    def _order(self) -> list[int]:
        """Indices of the transports in the order one message tries them."""
        return list(range(len(self.transports)))

    def _plan(self, channel: str) -> tuple[list[int], list[int]]:
        """Split transports for one message into (to try now, resting ones to skip)."""
        live: list[int] = []
        resting: list[int] = []
        now = self._clock()
        with self._lock:
            for i in self._order():
                if channel not in getattr(self.transports[i], "channels", {channel}):
                    continue
                circuit = self._circuits[i]
                if circuit.resting_until is None:
                    live.append(i)
                elif now >= circuit.resting_until and not circuit.probing:
                    circuit.probing = True  # this message is the half-open probe
                    live.append(i)
                else:
                    resting.append(i)
        return live, resting

    def _succeeded(self, i: int) -> None:
        with self._lock:
            self._circuits[i] = _Circuit()

    def _failed(self, i: int) -> None:
        with self._lock:
            self._circuits[i] = _Circuit(resting_until=self._clock() + self.cooldown)

    # -- sending

    def _deliver(self, message: Message) -> Receipt:
        """Deliver ``message`` through the first transport that accepts it."""
        channel = message.channel
        deadline_at = (
            self._clock() + self.retry.deadline if self.retry.deadline is not None else None
        )
        live, resting = self._plan(channel)
        attempts: list[Attempt] = [
            Attempt(self.transports[i].name, "skipped", "resting after a failure", duration=0.0)
            for i in resting
        ]
        errors: list[DeliveryError] = []
        # Live transports with retries first; the resting ones once each, last.
        for i, retries in [*((i, True) for i in live), *((i, False) for i in resting)]:
            if deadline_at is not None and self._clock() >= deadline_at:
                errors.append(
                    TransientError(
                        f"deadline of {self.retry.deadline:g}s reached before trying "
                        f"{self.transports[i].name}",
                        transport=self.name,
                    )
                )
                break
            try:
                receipt = self._send_one(i, message, attempts, retries, deadline_at)
            except RejectedError as exc:
                exc.attempts = tuple(attempts)
                raise
            except TransientError as exc:
                errors.append(exc)
                if exc.maybe_delivered and not self.resend_uncertain:
                    exc.attempts = tuple(attempts)
                    raise
            except DeliveryError as exc:
                errors.append(exc)
            else:
                return attrs.evolve(receipt, attempts=tuple(attempts))
        raise AllTransportsFailed(errors, transport=self.name, attempts=attempts)

    def _send_one(
        self,
        i: int,
        message: Message,
        attempts: list[Attempt],
        retries: bool,
        deadline_at: float | None,
    ) -> Receipt:
        transport = self.transports[i]

        def once() -> Receipt:
            started = datetime.now(timezone.utc)
            t0 = time.perf_counter()
            try:
                receipt = transport.send(message)
            except DeliveryError as exc:
                attempts.extend(exc.attempts or (_attempt_for(transport, exc, started, t0),))
                raise
            except OSError as exc:  # a third-party transport that does not map its errors
                err = TransientError(f"{type(exc).__name__}: {exc}", transport=transport.name)
                attempts.append(_attempt_for(transport, err, started, t0))
                raise err from exc
            attempts.extend(
                receipt.attempts
                or (Attempt(transport.name, "sent", None, started, time.perf_counter() - t0),)
            )
            return receipt

        try:
            if retries:
                receipt = self.retry.call(
                    once,
                    retryable=lambda exc: self.resend_uncertain or not exc.maybe_delivered,
                    deadline_at=deadline_at,
                    sleep=self._sleep,
                    clock=self._clock,
                    rng=self._rng,
                )
            else:
                receipt = once()
        except RejectedError:
            self._succeeded(i)  # the transport works; the message was the problem
            raise
        except TransientError as exc:
            if exc.maybe_delivered:
                self._succeeded(i)  # it answered up to hand-over: not a dead transport
            else:
                self._failed(i)
            raise
        except DeliveryError:
            self._failed(i)
            raise
        except BaseException:
            with self._lock:
                self._circuits[i].probing = False
            raise
        self._succeeded(i)
        return receipt

    def close(self) -> None:
        """Close every transport (each may be used again later)."""
        for transport in self.transports:
            transport.close()

    def __str__(self) -> str:
        return f"{self.scheme}({' '.join(str(t) for t in self.transports)})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


def _attempt_for(transport: Transport, exc: DeliveryError, started: datetime, t0: float) -> Attempt:
    outcome = exc.kind if exc.kind in ("transient", "provider", "rejected") else "provider"
    return Attempt(
        transport.name,
        outcome,  # type: ignore[arg-type]
        str(exc),
        started,
        time.perf_counter() - t0,
        exc.provider_code,
        exc.maybe_delivered,
    )


class RoundRobinTransport(FailoverTransport):
    """Spreads messages over its transports in turn, failing over like :class:`FailoverTransport`.

    Message *n* starts with transport *n mod len(transports)* and falls back to
    the others in order; resting transports are skipped the same way.
    """

    scheme: ClassVar[str] = "roundrobin"

    def _order(self) -> list[int]:
        n = len(self.transports)
        start = next(self._turn) % n
        return [(start + k) % n for k in range(n)]
