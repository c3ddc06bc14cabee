"""Composers: :class:`FailoverTransport` and :class:`RoundRobinTransport`.

A composer moves on first and waits later. For each message it makes
*rounds*: one attempt on each transport, in order, until one delivers:

===================  ===========================================================
error                what happens
===================  ===========================================================
``TransientError``   move on to the next transport at once; this transport is
                     tried again in the next round
``ProviderError``    move on at once; not tried again for this message
``RejectedError``    raise at once: another provider would refuse it too
``InvalidMessage``,  propagate: the message or the set-up is wrong
``Configuration…``
===================  ===========================================================

Only when every transport has failed the message in a round does the
composer wait (the :class:`Retry` backoff) before the next round; there are at
most ``Retry.attempts`` rounds, and none starts after ``Retry.deadline``.

A transport that failed *rests* for ``cooldown`` seconds: later messages skip it
at no cost (a circuit breaker). Once the cooldown is over, one message probes it
(half-open) with a single attempt whose connect time-out is at most
``probe_timeout``; success puts it back in service, failure sends it back to
rest. Resting transports are never given up on: when every live transport has
failed a message in the first round, the resting ones get one attempt each
(probe time-out), in order, before the composer waits or gives up with
:class:`~notifykit.errors.AllTransportsFailed`. Every attempt, skips included,
is in the receipt or in the error.
"""

from __future__ import annotations

import itertools
import logging
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
from notifykit.retry import Retry, waits_disabled
from notifykit.transports._timeouts import capped_connect_timeout
from notifykit.transports.base import BaseTransport, Transport

if TYPE_CHECKING:
    from notifykit.message import Message

__all__ = ["FailoverTransport", "RoundRobinTransport"]

logger = logging.getLogger("notifykit.failover")

#: Default connect time-out of a probe (seconds): short, so a hung transport
#: costs little once per cooldown, long enough for a TLS SMTP session set-up
#: across continents.
DEFAULT_PROBE_TIMEOUT = 3.0


@attrs.define
class _Circuit:
    """The health of one transport: resting until a time, or probing."""

    resting_until: float | None = None
    probing: bool = False


class FailoverTransport(BaseTransport):
    """Sends through the first transport that works; see the module docstring.

    Args:
        transports: the transports, most preferred first.
        retry: the retry rounds: ``attempts`` rounds at most, the backoff between
            them, the ``deadline`` of the whole send.
        cooldown: seconds a failed transport rests before it is probed again.
        probe_timeout: the most seconds a probe of a resting transport may
            spend connecting (its own ``connect_timeout`` when shorter).
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
        probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
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
        if (
            isinstance(probe_timeout, bool)
            or not isinstance(probe_timeout, (int, float))
            or not 0 < probe_timeout < float("inf")
        ):
            raise ConfigurationError(
                f"probe_timeout must be a positive number of seconds, got {probe_timeout!r}"
            )
        self.probe_timeout = float(probe_timeout)
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

    def _plan(self, channel: str) -> tuple[list[int], list[int], set[int]]:
        """Split transports for one message: (to try now, resting ones to skip, probes)."""
        live: list[int] = []
        resting: list[int] = []
        probes: set[int] = set()
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
                    probes.add(i)
                else:
                    resting.append(i)
        return live, resting, probes

    def _succeeded(self, i: int) -> None:
        circuit = self._circuits[i]
        if circuit.resting_until is None and not circuit.probing:
            return  # healthy already: the common case costs no lock
        with self._lock:
            self._circuits[i] = _Circuit()

    def _failed(self, i: int) -> None:
        with self._lock:
            self._circuits[i] = _Circuit(resting_until=self._clock() + self.cooldown)

    # -- sending

    def _deliver(self, message: Message) -> Receipt:
        """Deliver ``message`` through the first transport that accepts it (see the module)."""
        channel = message.channel
        deadline_at = (
            self._clock() + self.retry.deadline if self.retry.deadline is not None else None
        )
        live, resting, probes = self._plan(channel)
        attempts: list[Attempt] = [
            Attempt(self.transports[i].name, "skipped", "resting after a failure", duration=0.0)
            for i in resting
        ]
        last_error: dict[int, DeliveryError] = {}
        # Round 1: the live transports, then the resting ones as a last resort. A
        # probe or a last resort gets one attempt; the others are retried in later
        # rounds while their failures are transient.
        single = probes | set(resting)
        candidates = [*live, *resting]
        for round_no in range(1, self.retry.attempts + 1):
            again: list[int] = []
            for i in candidates:
                if deadline_at is not None and self._clock() >= deadline_at:
                    last_error[-1] = TransientError(
                        f"deadline of {self.retry.deadline:g}s reached before trying "
                        f"{self.transports[i].name}",
                        transport=self.name,
                    )
                    raise self._all_failed(last_error, attempts)
                try:
                    receipt = self._send_one(i, message, attempts, probe=i in single)
                except RejectedError as exc:
                    exc.attempts = tuple(attempts)
                    raise
                except TransientError as exc:
                    last_error[i] = exc
                    if exc.maybe_delivered and not self.resend_uncertain:
                        exc.attempts = tuple(attempts)
                        raise
                    if i not in single:
                        again.append(i)
                except DeliveryError as exc:
                    last_error[i] = exc
                else:
                    self._check_simulated(i, receipt, attempts)
                    return _with_attempts(receipt, tuple(attempts))
            if not again or round_no == self.retry.attempts:
                break
            wait = self._backoff(round_no, [last_error[i] for i in again])
            if deadline_at is not None and self._clock() + wait > deadline_at:
                break
            if wait > 0:
                self._sleep(wait)
            candidates = again
        raise self._all_failed(last_error, attempts)

    def _backoff(self, round_no: int, errors: Sequence[DeliveryError]) -> float:
        """The wait after round ``round_no``; a provider's ``Retry-After`` lengthens it."""
        if waits_disabled():
            return 0.0
        hints = [e.retry_after for e in errors if isinstance(e, TransientError) and e.retry_after]
        return self.retry.wait(round_no, max(hints) if hints else None, self._rng)

    def _all_failed(
        self, last_error: dict[int, DeliveryError], attempts: list[Attempt]
    ) -> AllTransportsFailed:
        return AllTransportsFailed(
            list(last_error.values()), transport=self.name, attempts=attempts
        )

    def _check_simulated(self, i: int, receipt: Receipt, attempts: list[Attempt]) -> None:
        """Warn when a real transport failed and a simulated one took the message."""
        if not (receipt.simulated or getattr(self.transports[i], "simulated", False)):
            return
        real = {t.name for t in self.transports if not getattr(t, "simulated", False)}
        missed = [a for a in attempts[:-1] if a.outcome != "sent" and a.transport in real]
        if missed:
            logger.warning(
                "%s: message %s was NOT delivered: %s failed and only %s (which delivers to "
                "no one) accepted it",
                self.name,
                receipt.message_id,
                ", ".join(dict.fromkeys(a.transport for a in missed)),
                receipt.transport,
            )

    def _send_one(self, i: int, message: Message, attempts: list[Attempt], probe: bool) -> Receipt:
        """One attempt on transport ``i``; updates its circuit; errors propagate."""
        transport = self.transports[i]
        t0 = time.perf_counter()
        try:
            try:
                if probe:
                    with capped_connect_timeout(self.probe_timeout):
                        receipt = transport.send(message)
                else:
                    receipt = transport.send(message)
            except DeliveryError as exc:
                attempts.extend(exc.attempts or (_attempt_for(transport, exc, t0),))
                raise
            except OSError as exc:  # a third-party transport that does not map its errors
                err = TransientError(f"{type(exc).__name__}: {exc}", transport=transport.name)
                attempts.append(_attempt_for(transport, err, t0))
                raise err from exc
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
        attempts.extend(
            receipt.attempts
            or (Attempt(transport.name, "sent", None, _started(t0), time.perf_counter() - t0),)
        )
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


_RECEIPT_FIELDS = (
    "message_id",
    "transport",
    "provider_message_id",
    "accepted",
    "rejected",
    "attempts",
    "simulated",
)
_RECEIPT_KNOWN = tuple(a.name for a in attrs.fields(Receipt)) == _RECEIPT_FIELDS


def _with_attempts(receipt: Receipt, attempts: tuple[Attempt, ...]) -> Receipt:
    """``attrs.evolve(receipt, attempts=attempts)``, without its cost on every message."""
    if not _RECEIPT_KNOWN:  # pragma: no cover - Receipt grew a field
        return attrs.evolve(receipt, attempts=attempts)
    return Receipt(
        receipt.message_id,
        receipt.transport,
        receipt.provider_message_id,
        receipt.accepted,
        receipt.rejected,
        attempts,
        receipt.simulated,
    )


def _started(t0: float) -> datetime:
    """The wall-clock time at which ``perf_counter()`` read ``t0``."""
    return datetime.fromtimestamp(time.time() - (time.perf_counter() - t0), timezone.utc)


def _attempt_for(transport: Transport, exc: DeliveryError, t0: float) -> Attempt:
    outcome = exc.kind if exc.kind in ("transient", "provider", "rejected") else "provider"
    return Attempt(
        transport.name,
        outcome,  # type: ignore[arg-type]
        str(exc),
        _started(t0),
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
