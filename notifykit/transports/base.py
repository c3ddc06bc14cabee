"""The :class:`Transport` protocol and :class:`BaseTransport`.

A transport delivers one message and hands back a :class:`~notifykit.Receipt`,
or raises one of the delivery errors. :class:`BaseTransport` gives every
concrete transport the same frame: a context manager, ``close()``, a channel
check, one :class:`~notifykit.receipt.Attempt` recorded per call, and masking
of the transport's secrets in any error it raises. Subclasses implement
``_send()`` and translate their library's exceptions in one place.

Masking happens here, once, for every transport (:meth:`BaseTransport._mask_error`):
each form of each secret the transport holds (:func:`~notifykit.errors.secret_forms`:
raw, percent-encoded, base64 at any alignment) is replaced by ``***`` in the
error's message, its attempts and its rejected recipients, and in every
exception chained to it, before the error leaves :meth:`BaseTransport.send`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar, cast, runtime_checkable

import attrs

from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidMessage,
    NotifyKitError,
    ProviderError,
    TransientError,
    mask_exception,
    mask_text,
)
from notifykit.receipt import Attempt, Outcome, Receipt, _amended

if TYPE_CHECKING:
    from notifykit.message import Message
    from notifykit.ratelimit import RateLimit

__all__ = ["BaseTransport", "Transport", "asend_with", "aclose_with", "mask_secrets"]

_T = TypeVar("_T", bound="BaseTransport")


@runtime_checkable
class Transport(Protocol):
    """Anything that can send a message.

    ``name`` identifies the transport in receipts, errors and the delivery log
    (``"smtp:mail.example.com:587"``, ``"msg91"``); it never holds a secret.
    """

    name: str

    def send(self, message: Message) -> Receipt:
        """Deliver ``message`` or raise a :class:`~notifykit.errors.DeliveryError`."""
        ...

    def close(self) -> None:
        """Release connections; the transport may be used again afterwards."""
        ...


def mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every form of each secret (3 characters or more) in ``text`` with ``***``.

    The forms are those of :func:`notifykit.errors.secret_forms`: the secret as
    is, percent-encoded, escaped, and base64-encoded at any alignment.
    """
    return mask_text(text, secrets)


class _Capture:
    """One active :func:`notifykit.testing.capture_sent` block."""

    def __init__(self, deliver: bool) -> None:
        self.deliver = deliver
        self.messages: list[Message] = []


# Active capture blocks (a test-only switch), and the send depth (of this thread,
# or of this asyncio task) so that a composer's inner sends are not captured twice.
_captures: list[_Capture] = []
_captures_lock = threading.Lock()
_depth: ContextVar[int] = ContextVar("notifykit_capture_depth", default=0)


class _Capturing:
    """One send under :func:`notifykit.testing.capture_sent`, sync or async.

    The outermost send of a thread or task takes a snapshot of the active
    blocks, says whether to really :attr:`deliver`, and on success adds the
    message to every block; a composer's inner sends just deliver.
    """

    def __init__(self, transport: BaseTransport, message: Message) -> None:
        self.message = message
        self.active: list[_Capture] = []
        self.deliver = True
        #: What the send returns: the transport's receipt when it delivered.
        self.receipt = Receipt(
            message_id=message.id,
            transport=transport.name,
            provider_message_id=f"captured-{message.id}",
            accepted=message.recipients,
            attempts=(Attempt(transport.name, "sent"),),
        )
        self._token: Token[int] | None = None

    def __enter__(self) -> _Capturing:
        if not _depth.get():
            self._token = _depth.set(1)
            with _captures_lock:
                self.active = list(_captures)
            self.deliver = all(c.deliver for c in self.active)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self._token is not None:
            _depth.reset(self._token)
        if exc_type is None:
            for capture in self.active:
                capture.messages.append(self.message)


def _send_captured(transport: BaseTransport, message: Message) -> Receipt:
    with _Capturing(transport, message) as capturing:
        if capturing.deliver:
            capturing.receipt = transport._deliver(message)
    return capturing.receipt


async def _asend_captured(transport: BaseTransport, message: Message) -> Receipt:
    with _Capturing(transport, message) as capturing:
        if capturing.deliver:
            capturing.receipt = await transport._adeliver(message)
    return capturing.receipt


async def asend_with(transport: Transport, message: Message) -> Receipt:
    """``await transport.asend(message)``; a transport without ``asend`` runs in a thread.

    Third-party transports that only implement the sync :class:`Transport`
    protocol still work in async code: their ``send()`` runs in a worker
    thread (:func:`asyncio.to_thread`), so the event loop is never blocked.
    """
    asend: Callable[[Message], Awaitable[Receipt]] | None = getattr(transport, "asend", None)
    if asend is not None:
        return await asend(message)
    return await asyncio.to_thread(transport.send, message)


async def aclose_with(transport: Transport) -> None:
    """``await transport.aclose()``, or its ``close()`` in a worker thread."""
    aclose: Callable[[], Awaitable[None]] | None = getattr(transport, "aclose", None)
    if aclose is not None:
        await aclose()
    else:
        await asyncio.to_thread(transport.close)


async def _acquire(limit: RateLimit) -> RateLimit | None:
    """Take a slot of ``limit`` without blocking the loop (its waits run in a thread)."""

    def take() -> RateLimit | None:
        resolve = getattr(limit, "_limit", None)  # ProviderRate: read once from the provider
        inner: RateLimit | None = resolve() if callable(resolve) else limit
        if inner is not None:
            inner.acquire()
        return inner

    taking = asyncio.ensure_future(asyncio.to_thread(take))
    try:
        return await asyncio.shield(taking)
    except asyncio.CancelledError:
        # The thread still takes the slot: give it back as soon as it has.
        taking.add_done_callback(_release_taken)
        raise


def _release_taken(taking: asyncio.Future[RateLimit | None]) -> None:
    if not taking.cancelled() and taking.exception() is None:
        held = taking.result()
        if held is not None:
            held.release()


class _Settling:
    """One call of a transport's ``_send``/``_asend``: timed, its errors settled
    (:meth:`BaseTransport._settle_error`) and its receipt completed."""

    def __init__(self, transport: BaseTransport) -> None:
        self.transport = transport
        self.receipt: Receipt | None = None

    def __enter__(self) -> _Settling:
        self.started = datetime.now(timezone.utc)
        self.t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, (DeliveryError, OSError, UnicodeError)):
            err = self.transport._settle_error(exc, self.started, self.t0)
            if err is not exc:
                raise err from exc

    def result(self) -> Receipt:
        assert self.receipt is not None
        return self.transport._settle_receipt(self.receipt, self.started, self.t0)


class BaseTransport:
    """A convenient base for transports.

    Subclasses set ``name`` and ``channels`` and implement :meth:`_send`; they
    may override :meth:`close` and :meth:`_secrets`. :meth:`send` checks that the
    message is for a channel this transport carries, times the attempt, and
    makes sure every error leaves with the transport's name, one
    :class:`Attempt`, and no secret in its message.
    """

    #: The channels this transport carries: ``"email"``, ``"sms"`` or both.
    channels: frozenset[str] = frozenset({"email", "sms"})
    #: The URL scheme this transport has in DSNs and in ``str()``.
    scheme: ClassVar[str] = ""
    name: str = "transport"
    #: True for transports that do not deliver to a person (console, file, memory):
    #: their receipts say ``simulated=True``.
    simulated: ClassVar[bool] = False
    #: The most this transport sends (``rate="14/s"``); see :mod:`notifykit.ratelimit`.
    rate_limit: RateLimit | None = None

    def _check_channel(self, message: Message) -> None:
        channel = getattr(message, "channel", None)
        if channel not in self.channels:
            raise ConfigurationError(
                f"{self.name} carries {' and '.join(sorted(self.channels))}, "
                f"not {channel or type(message).__name__}"
            )

    def send(self, message: Message) -> Receipt:
        """Deliver ``message``; see :class:`Transport`."""
        self._check_channel(message)
        if self.rate_limit is not None:
            with self.rate_limit.slot():
                return _send_captured(self, message) if _captures else self._deliver(message)
        if _captures:
            return _send_captured(self, message)
        return self._deliver(message)

    async def asend(self, message: Message) -> Receipt:
        """Deliver ``message`` from async code: the same checks, receipt and errors as :meth:`send`.

        The event loop is never blocked: transports with a native async client
        (SMTP on aiosmtplib, MSG91 and Fast2SMS on ``httpx.AsyncClient``)
        implement :meth:`_asend`; the others run their sync ``_send`` in a
        worker thread.
        """
        self._check_channel(message)
        if self.rate_limit is not None:
            held = await _acquire(self.rate_limit)
            try:
                return await (
                    _asend_captured(self, message) if _captures else self._adeliver(message)
                )
            finally:
                if held is not None:
                    held.release()
        if _captures:
            return await _asend_captured(self, message)
        return await self._adeliver(message)

    def _deliver(self, message: Message) -> Receipt:
        """Send one message for a channel this transport carries (composers override this)."""
        with _Settling(self) as settling:
            settling.receipt = self._send(message)
        return settling.result()

    async def _adeliver(self, message: Message) -> Receipt:
        """The async twin of :meth:`_deliver` (composers override this)."""
        with _Settling(self) as settling:
            settling.receipt = await self._asend(message)
        return settling.result()

    async def _asend(self, message: Message) -> Receipt:
        """Deliver one message from async code; by default :meth:`_send` in a worker thread."""
        return await asyncio.to_thread(self._send, message)

    def _settle_error(
        self, exc: DeliveryError | OSError | UnicodeError, started: datetime, t0: float
    ) -> NotifyKitError:
        """The error to raise for ``exc`` (one of ``_send``'s), masked, with one attempt."""
        if isinstance(exc, DeliveryError):
            self._finish_error(exc, started, time.perf_counter() - t0)
            return exc
        if isinstance(exc, OSError):
            # A socket-level failure the subclass did not map itself.
            err = TransientError(f"{type(exc).__name__}: {exc}", transport=self.name)
            self._finish_error(err, started, time.perf_counter() - t0, cause=exc)
            return err
        if isinstance(exc, UnicodeEncodeError) and exc.encoding != "idna":
            # Text of the message this provider cannot carry: the message's fault.
            bad = InvalidMessage(
                mask_text(f"{self.name} cannot encode the message: {exc}", self._secrets())
            )
            mask_exception(exc, self._secrets())
            return bad
        # A host name that cannot be encoded (a DNS label over 63 characters,
        # an invalid IDN): this transport cannot be reached as configured, so
        # it is a ProviderError and a composer moves on to the next transport.
        failure = ProviderError(
            f"cannot reach the provider: the host name cannot be encoded "
            f"({type(exc).__name__}: {exc})",
            transport=self.name,
        )
        self._finish_error(failure, started, time.perf_counter() - t0, cause=exc)
        return failure

    def _settle_receipt(self, receipt: Receipt, started: datetime, t0: float) -> Receipt:
        simulated = receipt.simulated or self.simulated
        if not receipt.attempts:
            attempt = Attempt(self.name, "sent", None, started, time.perf_counter() - t0)
            return _amended(receipt, (attempt,), simulated)
        if simulated and not receipt.simulated:
            return _amended(receipt, receipt.attempts, True)
        return receipt

    def _mask_error(self, exc: DeliveryError, cause: BaseException | None = None) -> None:
        """Mask this transport's secrets in ``exc``, its attempts and its exception chain.

        ``cause`` is the exception ``exc`` is about to be raised from, when the
        chain is not linked yet. This is the one place where errors are masked.
        """
        secrets = self._secrets()
        exc.message = mask_text(exc.message, secrets)
        exc.args = (exc.message,)
        rejected = getattr(exc, "rejected", None)
        if isinstance(rejected, dict) and rejected:
            exc.rejected = {  # type: ignore[attr-defined]
                mask_text(str(k), secrets): mask_text(str(v), secrets) for k, v in rejected.items()
            }
        if exc.attempts:
            exc.attempts = tuple(
                attrs.evolve(a, error=mask_text(a.error, secrets)) if a.error else a
                for a in exc.attempts
            )
        mask_exception(exc, secrets)
        if cause is not None:
            mask_exception(cause, secrets)

    def _finish_error(
        self,
        exc: DeliveryError,
        started: datetime,
        duration: float,
        cause: BaseException | None = None,
    ) -> None:
        self._mask_error(exc, cause)
        if exc.transport is None:
            exc.transport = self.name
        if not exc.attempts:
            exc.attempts = (
                Attempt(
                    exc.transport,
                    cast(Outcome, exc.kind),
                    str(exc),
                    started,
                    duration,
                    exc.provider_code,
                    exc.maybe_delivered,
                ),
            )

    def _send(self, message: Message) -> Receipt:
        """Deliver one message; raise a :class:`DeliveryError` subclass on failure."""
        raise NotImplementedError

    def _secrets(self) -> tuple[str | None, ...]:
        """Values that must never appear in an error message (passwords, keys)."""
        return ()

    def close(self) -> None:
        """Release connections. The base transport holds none."""

    async def aclose(self) -> None:
        """Release connections from async code; by default :meth:`close` (in a thread)."""
        if type(self).close is not BaseTransport.close:
            await asyncio.to_thread(self.close)

    async def __aenter__(self: _T) -> _T:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __str__(self) -> str:
        return f"{self.scheme}://" if self.scheme else self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"
