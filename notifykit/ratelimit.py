"""Per-transport rate limits, shared by every thread using the transport.

Providers throttle (or suspend) accounts that send faster than they allow: SES
has a per-second ``MaxSendRate``, SMS gateways a requests-per-second cap. A
transport given ``rate="14/s"`` (or ``?rate=14/s`` in its URL) never has more
than 14 sends in any window of one second::

    smtp = SMTPTransport("email-smtp.ap-south-1.amazonaws.com", ..., rate="14/s")

How: a sliding window of send *slots*. A send takes a slot when it starts and
gives it back when it ends; a slot is free again ``per`` seconds after the send
that held it *ended*. So however long each send takes, and whatever the
provider's clock, no window of ``per`` seconds sees more than ``count``
messages arrive. (A plain token bucket allows up to twice the rate in one
window: a full bucket's burst, then a refill. Providers count per window.)
The price is that a send's own duration is added to its slot: a send of 5 ms
at ``14/s`` gives a throughput about 0.5 % under the limit.

A send that finds no free slot waits in the calling thread; waiting threads
are served as slots free up. The wait is bounded by the rate and by the
transports' own time-outs (a slot held by a send is freed when it ends).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from notifykit.errors import ConfigurationError, NotifyKitError

__all__ = ["ProviderRate", "RateLimit", "parse_rate", "split_rate"]

logger = logging.getLogger("notifykit.ratelimit")

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_UNITS.update({"h": 3600.0, "hour": 3600.0})
_RATE = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,9})?)\s*/\s*([a-z]{1,6})\s*$")
#: The most slots one limiter keeps track of (``"100000/h"`` is fine).
MAX_SLOTS = 100_000


def parse_rate(value: str | float | RateLimit) -> RateLimit:
    """A :class:`RateLimit` from ``"14/s"``, ``"100/min"``, ``"5000/h"`` or a number per second."""
    if isinstance(value, RateLimit):
        return value
    if isinstance(value, bool):
        raise ConfigurationError(f"rate must be like '14/s', not {value!r}")
    if isinstance(value, (int, float)):
        return RateLimit(value, 1.0)
    if not isinstance(value, str):
        raise ConfigurationError(f"rate must be like '14/s', not a {type(value).__name__}")
    match = _RATE.match(value.lower())
    unit = None
    if match is not None:
        name = match.group(2)
        unit = _UNITS.get(name) or _UNITS.get(name[:-1] if name.endswith("s") else name)
    if match is None or unit is None:
        raise ConfigurationError(
            f"rate {value[:40]!r} is not a rate; write messages per second, minute or hour: "
            "'14/s', '100/min', '5000/h'"
        )
    return RateLimit(float(match.group(1)), unit)


class RateLimit:
    """At most ``count`` sends in any ``per`` seconds, shared by threads.

    Args:
        count: sends per window, a positive number; a fraction spreads the
            window (``RateLimit(0.5)`` is one send every two seconds).
        per: the window, in seconds.
        clock: injectable for tests; :func:`time.monotonic` by default.

    Use :meth:`slot` around one send (transports do this themselves when given
    ``rate=``).
    """

    def __init__(
        self, count: float, per: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        for name, value in (("count", count), ("per", per)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigurationError(f"rate {name} must be a positive number, not {value!r}")
        self.count = float(count)
        self.per = float(per)
        slots = max(1, math.floor(self.count))
        if slots > MAX_SLOTS:
            raise ConfigurationError(
                f"rate {self}: at most {MAX_SLOTS} messages per window; use a shorter window"
            )
        self.slots = slots
        #: The window in which at most ``slots`` sends happen (``per`` for a whole count).
        self.window = self.per * slots / self.count
        self._clock = clock
        self._cond = threading.Condition()
        self._busy = 0
        self._freed: deque[float] = deque()  # end times of recent sends, oldest first

    def _take(self) -> float | None:
        """Take a slot (returns ``None``) or say how long to wait; lock held."""
        now = self._clock()
        freed = self._freed
        while freed and freed[0] <= now - self.window:
            freed.popleft()
        if self._busy + len(freed) < self.slots:
            self._busy += 1
            return None
        if freed:
            return freed[0] + self.window - now
        return self.window  # every slot is held by a running send: woken when one ends

    def acquire(self) -> float:
        """Wait for a free slot and take it; the seconds waited. Pair with :meth:`release`."""
        t0 = self._clock()
        with self._cond:
            while (wait := self._take()) is not None:
                self._cond.wait(max(wait, 0.0005))
        return self._clock() - t0

    def release(self) -> None:
        """End the send that holds a slot: the slot is free again ``window`` seconds from now."""
        with self._cond:
            self._busy = max(0, self._busy - 1)
            self._freed.append(self._clock())
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the duration of the ``with`` block (one send)."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def for_transport(self, transport: Any) -> RateLimit:
        """The limit to give ``transport`` (this one; :class:`ProviderRate` binds itself)."""
        return self

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}.get(self.per, f"({self.per:g}s)")
        return f"{self.count:g}/{unit}"

    def __repr__(self) -> str:
        return f"<RateLimit {self}>"


class ProviderRate(RateLimit):
    """The rate the provider allows this account, read from it on first use.

    For Amazon SES (``ses://…?rate=auto``, or
    ``ses.rate_limit = ProviderRate(ses)``): the first send asks SES for the
    account's ``MaxSendRate`` (:meth:`SESTransport.check`) and keeps to it. If
    SES cannot be asked, sends go on without a limit and it asks again a minute
    later (a WARNING says so); a rate of 0 or less means no limit.
    """

    def __init__(self, transport: Any = None, *, retry_after: float = 60.0) -> None:
        super().__init__(1)
        self._transport = transport
        self._retry_after = retry_after
        self._resolved: RateLimit | None = None
        self._known = False
        self._asked_at: float | None = None
        self._lock = threading.Lock()

    def for_transport(self, transport: Any) -> RateLimit:
        if getattr(transport, "scheme", "") != "ses":
            raise ConfigurationError(
                f"rate=auto needs a provider that reports its sending rate (ses://), "
                f"not {transport}"
            )
        return ProviderRate(transport, retry_after=self._retry_after)

    def _limit(self) -> RateLimit | None:
        """The provider's limit, asking for it when due; ``None``: no limit (yet)."""
        if self._known:
            return self._resolved
        with self._lock:
            if self._known:
                return self._resolved
            now = time.monotonic()
            if self._asked_at is not None and now - self._asked_at < self._retry_after:
                return None
            self._asked_at = now
            try:
                rate = float(getattr(self._transport.check(), "max_send_rate", 0.0) or 0.0)
            except NotifyKitError as exc:
                logger.warning(
                    "%s: cannot read the account's sending rate (%s); "
                    "sending without a limit for now",
                    self._transport,
                    exc,
                )
                return None
            self._resolved = RateLimit(rate) if rate > 0 else None
            self._known = True
            logger.info("%s: the account's sending rate is %s", self._transport, self)
            return self._resolved

    @contextmanager
    def slot(self) -> Iterator[None]:
        limit = self._limit()
        if limit is None:
            yield
            return
        with limit.slot():
            yield

    def acquire(self) -> float:
        raise ConfigurationError("use ProviderRate.slot() (the limit is known only once read)")

    def release(self) -> None:
        raise ConfigurationError("use ProviderRate.slot() (the limit is known only once read)")

    def __str__(self) -> str:
        return f"auto ({self._resolved})" if self._resolved is not None else "auto"


def split_rate(url: str) -> tuple[str, RateLimit | None]:
    """Take ``rate=`` out of a transport URL's own query: ``(url without it, the limit)``.

    Only the outermost query counts (after a composer's closing parenthesis), so
    ``failover(smtp://a?rate=5/s smtp://b)?rate=14/s`` limits the composer to
    14/s and leaves ``a``'s own limit in its URL.
    """
    q = url.rfind("?")
    if q < 0 or q < url.rfind(")"):
        return url, None
    items = url[q + 1 :].split("&")
    rates = [item for item in items if item.startswith("rate=")]
    if not rates:
        return url, None
    if len(rates) > 1:
        raise ConfigurationError("option 'rate' given twice")
    from urllib.parse import unquote

    value = unquote(rates[0][len("rate=") :])
    try:
        limit = ProviderRate() if value == "auto" else parse_rate(value)
    except ConfigurationError:
        # Not the value: in a malformed URL it could be part of a password.
        raise ConfigurationError(
            "option 'rate' is not a rate; write messages per second, minute or hour: "
            "'14/s', '100/min', '5000/h'"
        ) from None
    rest = "&".join(item for item in items if not item.startswith("rate="))
    return (url[: q + 1] + rest if rest else url[:q]), limit
