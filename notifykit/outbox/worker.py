"""The outbox worker: claims due rows under a lease and sends them through a Notifier.

One :class:`Worker` runs one loop (in a thread of your process, or as the
``notifykit worker`` process). Several workers, in one process or many, may
share an outbox: each row is leased to one worker at a time, a background
heartbeat renews the leases of the rows a worker holds while it sends, and the
row of a worker that died is taken over once its lease expires.

For each row the worker:

1. durably records "attempt N in flight" (``begin_attempt``);
2. calls :meth:`Notifier.send <notifykit.Notifier.send>` (the transport's own
   retries and failover happen inside that call);
3. records the outcome: ``sent``; a transient failure rescheduled with
   :class:`~notifykit.outbox.Backoff`; or ``dead`` with the reason (a
   :class:`~notifykit.errors.RejectedError`, an invalid message, or retries
   used up).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from notifykit.config import mask_url
from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidMessage,
    RejectedError,
    TemplateError,
    TransientError,
)
from notifykit.outbox.base import AttemptOutcome, Backoff, Claim, Outbox, Sender

__all__ = ["Worker"]

logger = logging.getLogger("notifykit.outbox")


def _positive(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"Worker({name}=...) must be a positive number, got {value!r}")
    return float(value)


class Worker:
    """Delivers the due messages of ``outbox`` through ``notifier``.

    Args:
        outbox: the :class:`~notifykit.outbox.Outbox` to work on.
        notifier: the :class:`~notifykit.Notifier` that sends (its transports,
            failover and sinks apply), or any :class:`~notifykit.outbox.Sender`
            (:class:`notifykit.contrib.celery.OutboxHandOff` hands rows to Celery).
        poll_interval: the longest time, in seconds, between two looks at the
            outbox when it is idle (a message scheduled with ``send_at`` goes
            out at most this late).
        lease: seconds a claimed row stays reserved to this worker without a
            heartbeat; a dead worker's rows are taken over after this long.
        batch: rows claimed at once.
        backoff: when failed rows are tried again, and when they are given up.
        name: this worker's name in the outbox (default: host, pid and a random part).
    """

    def __init__(
        self,
        outbox: Outbox,
        notifier: Sender,
        *,
        poll_interval: float = 1.0,
        lease: float = 60.0,
        batch: int = 10,
        backoff: Backoff | None = None,
        name: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.poll_interval = _positive("poll_interval", poll_interval)
        self.lease = _positive("lease", lease)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ConfigurationError(f"Worker(batch=...) must be an integer >= 1, got {batch!r}")
        self.batch = batch
        self.backoff = backoff if backoff is not None else Backoff()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: Counters since the worker started: rows sent, rescheduled and dead-lettered.
        self.sent = 0
        self.retried = 0
        self.dead = 0
        self._held: set[str] = set()
        self._maybe_tries = 0
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running

    def start(self) -> Worker:
        """Run :meth:`run` in a daemon thread; stop it with :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            raise ConfigurationError("this worker is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"notifykit-outbox-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the loop to stop after the message in hand, and wait up to ``timeout`` s."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, stop: threading.Event | None = None) -> None:
        """Deliver due messages until ``stop`` (or :meth:`stop`) is set."""
        stop = stop or self._stop
        beat = threading.Thread(
            target=self._heartbeat, args=(stop,), name=f"notifykit-lease-{self.name}", daemon=True
        )
        beat.start()
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    done = self.run_once(stop)
                except Exception:  # a database error: log it, wait, try again
                    logger.exception("notifykit outbox worker %s: claiming failed", self.name)
                    stop.wait(self.poll_interval)
                    continue
                if done >= self.batch:
                    continue
                stop.wait(self._idle_wait())
        finally:
            self._stop.set()
            beat.join(self.lease)

    def _idle_wait(self) -> float:
        try:
            due = self.outbox.next_due()
        except Exception:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        return min(self.poll_interval, max(0.01, due - time.time()))

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim one batch of due rows and process them; how many were claimed."""
        claims = self.outbox.claim(self.name, limit=self.batch, lease=self.lease)
        with self._held_lock:
            self._held.update(c.id for c in claims)
        try:
            for i, claim in enumerate(claims):
                if (stop is not None and stop.is_set()) or self._stop.is_set():
                    self._give_back([c.id for c in claims[i:]])
                    break
                self._process(claim)
                with self._held_lock:
                    self._held.discard(claim.id)
        finally:
            with self._held_lock:
                self._held.difference_update(c.id for c in claims)
        return len(claims)

    def _give_back(self, ids: list[str]) -> None:
        try:
            self.outbox.release(self.name, ids)
        except Exception:  # their leases expire anyway
            logger.exception("notifykit outbox worker %s: could not release rows", self.name)

    def _heartbeat(self, stop: threading.Event) -> None:
        every = self.lease / 3
        while not stop.wait(every) and not self._stop.is_set():
            with self._held_lock:
                held = list(self._held)
            if not held:
                continue
            try:
                lost = self.outbox.renew(self.name, held, self.lease)
            except Exception:
                logger.exception("notifykit outbox worker %s: lease renewal failed", self.name)
                continue
            if lost:
                logger.warning(
                    "notifykit outbox worker %s lost the lease of %d row(s)", self.name, len(lost)
                )

    # -- one row

    def _process(self, claim: Claim) -> None:
        now = time.time()
        limit = self.backoff.max_attempts
        if limit is not None and claim.attempts >= limit:
            self._fail(claim, 0, "error", f"gave up after {claim.attempts} attempts", False, None)
            return
        if claim.attempts and now > claim.created_at + self.backoff.max_age:
            self._fail(
                claim, 0, "error", f"gave up: older than max_age={self.backoff.max_age:g}s",
                False, None,
            )  # fmt: skip
            return
        number = self.outbox.begin_attempt(self.name, claim.id)
        if number is None:
            return  # the lease was lost: another worker has the row
        self._maybe_tries = 0
        try:
            receipt = self.notifier.send(claim.message, template=claim.template)
        except RejectedError as exc:
            self._maybe_tries = _maybe_tries(exc)
            self._fail(claim, number, "rejected", _reason(exc), _maybe(exc), None)
        except DeliveryError as exc:
            self._maybe_tries = _maybe_tries(exc)
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            outcome: AttemptOutcome = "provider" if exc.kind == "provider" else "transient"
            self._retry(claim, number, outcome, _reason(exc), _maybe(exc), retry_after)
        except (InvalidMessage, TemplateError, ConfigurationError) as exc:
            self._fail(claim, number, "invalid", _reason(exc), False, None)
        except Exception as exc:
            # Not a notifykit error: a bug or an unexpected library error, raised at any
            # point of the send. It may have been delivered: say so, and retry later.
            logger.exception("notifykit outbox worker %s: sending %s failed", self.name, claim.id)
            self._maybe_tries = 1
            self._retry(claim, number, "error", _reason(exc), True, None)
        else:
            self.outbox.mark_sent(self.name, claim.id, number, receipt)
            self.sent += 1

    def _retry(
        self,
        claim: Claim,
        number: int,
        outcome: AttemptOutcome,
        reason: str,
        maybe: bool,
        retry_after: float | None,
    ) -> None:
        tries = claim.attempts + 1
        limit = self.backoff.max_attempts
        if limit is not None and tries >= limit:
            self._fail(claim, number, outcome, f"gave up after {tries} attempts: {reason}", maybe)
            return
        retry_at = time.time() + self.backoff.delay(tries, retry_after)
        if retry_at > claim.created_at + self.backoff.max_age:
            self._fail(
                claim,
                number,
                outcome,
                f"gave up after {tries} attempts (max_age={self.backoff.max_age:g}s): {reason}",
                maybe,
            )
            return
        self.outbox.mark_failed(
            self.name,
            claim.id,
            number,
            outcome=outcome,
            error=reason,
            maybe_delivered=maybe,
            retry_at=retry_at,
            maybe_tries=self._maybe_tries,
        )
        self.retried += 1

    def _fail(
        self,
        claim: Claim,
        number: int,
        outcome: AttemptOutcome,
        reason: str,
        maybe: bool,
        retry_at: None = None,
    ) -> None:
        self.outbox.mark_failed(
            self.name,
            claim.id,
            number,
            outcome=outcome,
            error=reason,
            maybe_delivered=maybe,
            retry_at=None,
            maybe_tries=self._maybe_tries,
        )
        self.dead += 1
        logger.warning("notifykit outbox: message %s dead-lettered: %s", claim.id, reason)

    def __repr__(self) -> str:
        return f"<Worker {self.name} on {self.outbox!r}>"


def _maybe(exc: DeliveryError) -> bool:
    """Whether any try inside this send may have delivered the message.

    A composer's error carries the last error of each transport; an earlier
    try of the same transport (a retry after a lost reply) is only in ``attempts``.
    """
    return exc.maybe_delivered or any(a.maybe_delivered for a in exc.attempts)


def _maybe_tries(exc: DeliveryError) -> int:
    return max(int(exc.maybe_delivered), sum(1 for a in exc.attempts if a.maybe_delivered))


def _reason(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = "(no description)"
    # Transports mask their secrets already; an unexpected error may quote a URL.
    return mask_url(f"{type(exc).__name__}: {text}")[:2000]
