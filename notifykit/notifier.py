"""The :class:`Notifier`: where templates, messages, transports and sinks meet.

Every other piece of notifykit is usable alone; the Notifier ties them
together for the common case::

    notifier = Notifier(email=transport, templates=renderer, sinks=[SQLiteSink("nk.db")],
                        sender="Shop <noreply@shop.example>")
    notifier.send_email("order_shipped", to="asha@example.com", context={...})

It fills in sender defaults, renders templates, picks the transport for the
message's channel, and reports every attempt and outcome to the sinks as
:class:`~notifykit.sinks.base.DeliveryEvent` facts. A sink that raises never
stops delivery: the failure is logged on the ``notifykit`` logger and counted
in :attr:`Notifier.sink_failures` (``strict_sinks=True`` raises instead, for
tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar

from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidMessage,
    NotifyKitError,
    Suppressed,
    TemplateError,
)
from notifykit.message import SMS, Email, Message, Recipient
from notifykit.receipt import Receipt
from notifykit.sinks.base import DeliveryEvent, LogSink
from notifykit.transports.base import aclose_with, asend_with

if TYPE_CHECKING:
    from datetime import datetime

    from notifykit.outbox.base import Outbox
    from notifykit.suppression import SuppressionStore
    from notifykit.transports.base import Transport

__all__ = ["DUPLICATE", "BulkResult", "Notifier", "redact_recipient"]

#: The ``transport`` of the :class:`Receipt` that :meth:`Notifier.send` returns,
#: without sending, for a message whose ``idempotency_key`` another message holds.
DUPLICATE = "duplicate"

logger = logging.getLogger("notifykit")

_M = TypeVar("_M", Email, SMS)


class _Rendered(Protocol):
    subject: str
    html: str
    text: str
    sms: str | None


class _Renderer(Protocol):
    def render(self, name: str, context: Mapping[str, Any] | None = None, /) -> Any: ...


#: One entry of :meth:`Notifier.send_many`'s answer: the receipt, or why it failed.
BulkResult = Receipt | NotifyKitError


class _Job(NamedTuple):
    """One message of a bulk send: how to build it, and what to log if that fails."""

    build: Callable[[], Message]  # may raise TemplateError, InvalidMessage...
    template: str | None
    channel: Literal["email", "sms"]
    to: tuple[str, ...]


def _addresses(to: Any) -> tuple[str, ...]:
    """The recipients of ``to`` as strings, for a failure logged before a message exists."""
    items = to if isinstance(to, (list, tuple)) else [to]
    out: list[str] = []
    for item in items:
        if isinstance(item, Recipient):
            out.extend(str(v) for v in (item.email, item.phone) if v)
        elif item is not None:
            out.append(str(item))
    return tuple(out)


def redact_recipient(recipient: str) -> str:
    """Mask a recipient for logs: ``a***@example.com``, ``+91******3210``."""
    if "@" in recipient:
        _, _, rest = recipient.rpartition("<")
        addr = rest.rstrip(">") if rest else recipient
        local, _, domain = addr.rpartition("@")
        return f"{local[:1]}***@{domain}"
    digits = recipient.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


class Notifier:
    """Sends messages and notifications through transports and records them in sinks.

    Args:
        email: the transport for e-mail (e.g. a ``FailoverTransport``).
        sms: the transport for SMS.
        templates: a :class:`~notifykit.TemplateRenderer` for the template methods.
        sinks: where delivery events go (:mod:`notifykit.sinks`).
        sender: the default ``From`` of e-mails that do not set one.
        sms_sender: the default SMS sender (a 6-letter DLT header in India).
        default_region: the region for national phone numbers (``"IN"``).
        strict_sinks: raise when a sink fails instead of logging it (for tests).
        redact_recipients: mask recipients in delivery events.
        outbox: where :meth:`enqueue` stores messages, and where ``send`` checks
            idempotency keys (:mod:`notifykit.outbox`).
        suppression: a suppression list (:mod:`notifykit.suppression`):
            :meth:`send` refuses a message to any recipient on it.
    """

    def __init__(
        self,
        email: Transport | None = None,
        sms: Transport | None = None,
        templates: _Renderer | None = None,
        sinks: Iterable[LogSink] = (),
        sender: str | None = None,
        sms_sender: str | None = None,
        default_region: str | None = None,
        *,
        strict_sinks: bool = False,
        redact_recipients: bool = False,
        outbox: Outbox | None = None,
        suppression: SuppressionStore | None = None,
    ) -> None:
        if sender is not None:
            # Validate once, here, rather than on every message.
            sender = Email(to="check@example.com", subject="", text="x", sender=sender).sender
        self.email = email
        self.sms = sms
        self.templates = templates
        self.sinks: tuple[LogSink, ...] = tuple(sinks)
        for sink in self.sinks:
            if not callable(getattr(sink, "record", None)):
                raise ConfigurationError(f"{sink!r} is not a LogSink (it has no record() method)")
        self.sender = sender
        self.sms_sender = sms_sender
        self.default_region = default_region
        self.strict_sinks = strict_sinks
        self.redact_recipients = redact_recipients
        self.outbox = outbox
        self.suppression = suppression
        self._sink_failures = 0
        self._count_lock = threading.Lock()

    @property
    def sink_failures(self) -> int:
        """Events the sinks failed to log, whether a ``record()`` raised or a sink dropped them.

        A ``record()`` that raised is logged and counted here; a sink that
        writes in the background (:class:`~notifykit.sinks.sqlite.SQLiteSink`)
        counts what it drops later in its ``dropped`` attribute, which is
        added in.
        """
        dropped = 0
        for sink in self.sinks:
            value = getattr(sink, "dropped", 0)
            if isinstance(value, int) and not isinstance(value, bool):
                dropped += value
        return self._sink_failures + dropped

    # -- configuration from the environment lives in notifykit.config

    @classmethod
    def from_env(
        cls,
        prefix: str = "NOTIFYKIT_",
        environ: Mapping[str, str] | None = None,
        *,
        dotenv: str | os.PathLike[str] | None = ".env",
    ) -> Notifier:
        """Build a Notifier from ``NOTIFYKIT_*`` variables and a ``.env`` file.

        See :func:`notifykit.config.notifier_from_env` for the variables.
        """
        from notifykit.config import notifier_from_env

        return notifier_from_env(prefix=prefix, environ=environ, dotenv=dotenv)

    # -- sending

    def send(
        self, message: Message, *, template: str | None = None, ignore_suppression: bool = False
    ) -> Receipt:
        """Send one :class:`Email` or :class:`SMS`, filling in the Notifier's defaults.

        Raises the transport's :class:`~notifykit.errors.DeliveryError` when the
        message is not delivered; every attempt is in the sinks either way.
        Raises :class:`~notifykit.errors.Suppressed` (logged as ``failed``) when
        a recipient is on the suppression list, unless ``ignore_suppression``.
        """
        message = self._with_defaults(message)
        transport = self._transport_for(message)
        duplicate = self._idempotent_duplicate(message)
        if duplicate is not None:
            return duplicate
        if self.sinks:  # no events to build for nobody
            self._emit(self._event(message, "queued", template))
        if self.suppression is not None and not ignore_suppression:
            try:
                self._refuse_suppressed(message, template)
            except NotifyKitError:
                self._release_key(message, False)  # refused before sending: free the key
                raise
        t0 = time.perf_counter()
        try:
            receipt = transport.send(message)
        except (DeliveryError, InvalidMessage, ConfigurationError) as exc:
            self._release_key(message, _maybe_sent(exc))
            for event in self._failure_events(message, template, exc, t0):
                self._emit(event)
            raise
        if self.sinks:
            for event in self._success_events(message, template, receipt, t0):
                self._emit(event)
        return receipt

    async def asend(
        self, message: Message, *, template: str | None = None, ignore_suppression: bool = False
    ) -> Receipt:
        """:meth:`send` for async code: the same receipt, errors and delivery events.

        The transport's ``asend()`` does the I/O without blocking the event loop
        (a transport without one runs in a worker thread). Sinks record as in
        :meth:`send`; one with an ``arecord()`` coroutine (the Django sink) is awaited.
        The suppression list is read in a worker thread (it is a database).
        """
        message = self._with_defaults(message)
        transport = self._transport_for(message)
        keyed = message.idempotency_key is not None and self.outbox is not None
        if keyed:  # the outbox's key table is a database: read it in a thread
            duplicate = await asyncio.to_thread(self._idempotent_duplicate, message)
            if duplicate is not None:
                return duplicate
        if self.sinks:  # as in send(): no events to build for nobody
            await self._aemit(self._event(message, "queued", template))
        if self.suppression is not None and not ignore_suppression:
            try:
                await asyncio.to_thread(self._refuse_suppressed, message, template)
            except NotifyKitError:
                if keyed:
                    await asyncio.to_thread(self._release_key, message, False)
                raise
        t0 = time.perf_counter()
        try:
            receipt = await asend_with(transport, message)
        except (DeliveryError, InvalidMessage, ConfigurationError) as exc:
            if keyed:
                await asyncio.to_thread(self._release_key, message, _maybe_sent(exc))
            for event in self._failure_events(message, template, exc, t0):
                await self._aemit(event)
            raise
        if self.sinks:
            for event in self._success_events(message, template, receipt, t0):
                await self._aemit(event)
        return receipt

    def _failure_events(
        self, message: Message, template: str | None, exc: NotifyKitError, t0: float
    ) -> list[DeliveryEvent]:
        """The events of a send that raised ``exc``: each failed attempt, then ``failed``."""
        if isinstance(exc, DeliveryError):
            return [
                *self._attempt_events(message, exc.attempts, template),
                self._event(
                    message,
                    "failed",
                    template,
                    transport=exc.transport,
                    attempt=_count_tries(exc.attempts),
                    error=str(exc),
                    error_kind=exc.kind,
                    duration=time.perf_counter() - t0,
                    maybe_delivered=exc.maybe_delivered,
                    rejected=getattr(exc, "rejected", None) or {},
                ),
            ]
        return [
            self._event(
                message,
                "failed",
                template,
                error=str(exc),
                error_kind="invalid",
                duration=time.perf_counter() - t0,
            )
        ]

    def _success_events(
        self, message: Message, template: str | None, receipt: Receipt, t0: float
    ) -> list[DeliveryEvent]:
        """The events of a delivered message: each failed attempt first, then ``sent``."""
        return [
            *self._attempt_events(message, receipt.attempts[:-1], template),
            self._event(
                message,
                "sent",
                template,
                transport=receipt.transport,
                attempt=_count_tries(receipt.attempts),
                provider_message_id=receipt.provider_message_id,
                duration=time.perf_counter() - t0,
                rejected=receipt.rejected,
            ),
        ]

    def send_email(
        self,
        template: str,
        to: str | Recipient | Sequence[str | Recipient],
        context: Mapping[str, Any] | None = None,
        *,
        locale: str | None = None,
        **overrides: Any,
    ) -> Receipt:
        """Render ``template`` and send it as an e-mail to ``to``.

        ``overrides`` are :class:`Email` fields (``cc``, ``attachments``,
        ``tags``, ``subject``…) that win over the rendered values and defaults.
        ``locale`` (``"hi"``, ``"ta_IN"``) renders that language's version (see
        ``docs/i18n.md``); the same holds for :meth:`send_sms` and :meth:`notify`.
        """
        email, ignore = self._templated("email", template, to, context, locale, overrides)
        return self.send(email, template=template, ignore_suppression=ignore)

    def send_sms(
        self,
        template: str,
        to: str | Recipient,
        context: Mapping[str, Any] | None = None,
        *,
        locale: str | None = None,
        **overrides: Any,
    ) -> Receipt:
        """Render the ``sms`` block of ``template`` and send it to ``to``.

        For a DLT template pass ``template_id=`` and ``variables=``: the
        provider builds the text from them, and the rendered block is only the
        preview kept in the log and the console.
        """
        sms, ignore = self._templated("sms", template, to, context, locale, overrides)
        return self.send(sms, template=template, ignore_suppression=ignore)

    def notify(
        self,
        template: str,
        to: Recipient,
        context: Mapping[str, Any] | None = None,
        *,
        locale: str | None = None,
        **overrides: Any,
    ) -> dict[str, Receipt | NotifyKitError]:
        """Send ``template`` on every channel it defines and ``to`` can be reached on.

        Returns a mapping ``{"email": Receipt | error, "sms": Receipt | error}``
        with one entry per channel tried: one channel failing does not stop the
        others. ``overrides`` apply to both messages where the field exists.
        """
        results: dict[str, Receipt | NotifyKitError] = {}
        for channel, build in self._notify_jobs(template, to, context, overrides, locale):
            try:
                results[channel] = self.send(build(), template=template)
            except NotifyKitError as exc:
                results[channel] = exc
        return results

    def _templated(
        self,
        channel: Literal["email", "sms"],
        template: str,
        to: Any,
        context: Mapping[str, Any] | None,
        locale: str | None,
        overrides: dict[str, Any],
    ) -> tuple[Message, bool]:
        """Render ``template`` into the ``channel`` message to send, and whether to
        ignore the suppression list (shared by the sync and async template methods)."""
        rendered = self._render(template, context, locale)
        if channel == "sms" and not rendered.sms:
            raise TemplateError(f"template {template!r} has no sms block", template=template)
        ignore = bool(overrides.pop("ignore_suppression", False))
        if channel == "email":
            return self._email_from(rendered, to, overrides), ignore
        return self._sms_from(rendered, to, overrides, locale), ignore

    def _notify_jobs(
        self,
        template: str,
        to: Recipient,
        context: Mapping[str, Any] | None,
        overrides: Mapping[str, Any],
        locale: str | None = None,
    ) -> list[tuple[str, Callable[[], Message]]]:
        """Check ``notify()``'s arguments, render, and list (channel, build message) pairs."""
        if not isinstance(to, Recipient):
            raise InvalidMessage("notify() needs a Recipient(email=..., phone=...)")
        unknown = set(overrides) - _EMAIL_FIELDS - _SMS_FIELDS
        if unknown:
            raise InvalidMessage(f"notify() got unknown message fields: {sorted(unknown)}")
        rendered = self._render(template, context, locale)
        jobs: list[tuple[str, Callable[[], Message]]] = []
        if to.email and self.email is not None and (rendered.html or rendered.text):
            jobs.append(("email", lambda: self._email_from(rendered, to, _only(overrides, Email))))
        if to.phone and self.sms is not None and rendered.sms:
            jobs.append(
                ("sms", lambda: self._sms_from(rendered, to, _only(overrides, SMS), locale))
            )
        if not jobs:
            raise ConfigurationError(
                f"template {template!r} cannot reach {to!r}: it needs a channel the template "
                "defines, the recipient has and the Notifier has a transport for"
            )
        return jobs

    # -- async twins (rendering stays sync: it is CPU work, not I/O)

    async def asend_email(
        self,
        template: str,
        to: str | Recipient | Sequence[str | Recipient],
        context: Mapping[str, Any] | None = None,
        *,
        locale: str | None = None,
        **overrides: Any,
    ) -> Receipt:
        """:meth:`send_email` for async code (see :meth:`asend`)."""
        email, ignore = self._templated("email", template, to, context, locale, overrides)
        return await self.asend(email, template=template, ignore_suppression=ignore)

    async def asend_sms(
        self,
        template: str,
        to: str | Recipient,
        context: Mapping[str, Any] | None = None,
        *,
        locale: str | None = None,
        **overrides: Any,
    ) -> Receipt:
        """:meth:`send_sms` for async code (see :meth:`asend`)."""
        sms, ignore = self._templated("sms", template, to, context, locale, overrides)
        return await self.asend(sms, template=template, ignore_suppression=ignore)

    async def anotify(
        self,
        template: str,
        to: Recipient,
        context: Mapping[str, Any] | None = None,
        *,
        locale: str | None = None,
        **overrides: Any,
    ) -> dict[str, Receipt | NotifyKitError]:
        """:meth:`notify` for async code: the channels are sent one after the other, as there."""
        results: dict[str, Receipt | NotifyKitError] = {}
        for channel, build in self._notify_jobs(template, to, context, overrides, locale):
            try:
                results[channel] = await self.asend(build(), template=template)
            except NotifyKitError as exc:
                results[channel] = exc
        return results

    # -- many at once

    def send_many(
        self,
        template: str,
        recipients_with_context: Iterable[tuple[Any, Mapping[str, Any] | None]],
        *,
        channel: Literal["email", "sms"] = "email",
        concurrency: int = 4,
        on_progress: Callable[[int, BulkResult], None] | None = None,
        locale: str | None = None,
        **overrides: Any,
    ) -> list[BulkResult]:
        """Render ``template`` for each ``(to, context)`` pair and send them concurrently.

        ``concurrency`` threads render and send at once; the transports' pools
        and rate limits (``rate="14/s"``) apply as to any send, so a bulk send
        never outruns the provider's rate. ``overrides`` (``cc``, ``tags``,
        ``subject``…) apply to every message, as in :meth:`send_email` /
        :meth:`send_sms` (``channel="sms"``).

        One failure never stops the rest: the answer has one entry per pair, in
        the same order, a :class:`Receipt` or the :class:`NotifyKitError` that
        message met. Every message is in the sinks, also one whose template
        failed to render or whose address was refused before sending (a
        ``failed`` event). ``on_progress(index, result)`` is called as each one
        finishes, one call at a time (it need not be thread-safe); an exception
        it raises is logged and ignored.

        ``locale`` renders every message in that language (see
        ``docs/i18n.md``); a row whose context has a ``"locale"`` key is
        rendered in that one instead, so one call can send each recipient in
        their own language.

        Raises :class:`ConfigurationError` before sending anything when this
        Notifier cannot send ``channel`` or has no templates.
        """
        if channel not in ("email", "sms"):
            raise ConfigurationError(f"channel must be 'email' or 'sms', not {channel!r}")
        unknown = set(overrides) - (_EMAIL_FIELDS if channel == "email" else _SMS_FIELDS)
        if unknown:
            raise InvalidMessage(f"send_many() got unknown message fields: {sorted(unknown)}")

        def job(to: Any, context: Mapping[str, Any] | None) -> _Job:
            def build() -> Message:
                row_locale = (context or {}).get("locale") or locale
                rendered = self._render(template, context, row_locale)
                if channel == "email":
                    return self._email_from(rendered, to, overrides)
                if not rendered.sms:
                    raise TemplateError(
                        f"template {template!r} has no sms block", template=template
                    )
                return self._sms_from(rendered, to, overrides, row_locale)

            return _Job(build, template, channel, _addresses(to))

        jobs = []
        for pair in recipients_with_context:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise InvalidMessage(
                    f"send_many() takes (to, context) pairs, got {type(pair).__name__}"
                )
            jobs.append(job(*pair))
        batch = getattr(self.sms, "send_batch", None) if channel == "sms" else None
        valid = type(concurrency) is int and concurrency >= 1  # else _send_jobs refuses it
        if batch is not None and len(jobs) > 1 and self.templates is not None and valid:
            # The provider takes many numbers per request (MSG91, Fast2SMS).
            return self._send_sms_batch(jobs, batch, on_progress)
        return self._send_jobs(jobs, concurrency=concurrency, on_progress=on_progress)

    def _send_jobs(
        self,
        jobs: Sequence[_Job],
        *,
        concurrency: int,
        on_progress: Callable[[int, BulkResult], None] | None,
    ) -> list[BulkResult]:
        """Build and send ``jobs`` on ``concurrency`` threads; one result per job, in order."""
        from concurrent.futures import ThreadPoolExecutor

        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, not {concurrency!r}")
        for channel in {j.channel for j in jobs}:
            if (self.email if channel == "email" else self.sms) is None:
                raise ConfigurationError(
                    f"this Notifier has no {channel} transport; pass {channel}=..."
                )
        if any(j.template is not None for j in jobs) and self.templates is None:
            raise ConfigurationError(
                "this Notifier has no templates; pass templates=TemplateRenderer(...)"
            )
        results: list[BulkResult | None] = [None] * len(jobs)
        progress_lock = threading.Lock()

        def run(index: int) -> None:
            result = self._send_job(jobs[index])
            results[index] = result
            if on_progress is not None:
                with progress_lock:
                    try:
                        on_progress(index, result)
                    except Exception:
                        logger.exception("notifykit: the on_progress callback failed")

        if jobs:
            with ThreadPoolExecutor(
                max_workers=min(concurrency, len(jobs)), thread_name_prefix="notifykit-bulk"
            ) as pool:
                try:
                    for future in [pool.submit(run, i) for i in range(len(jobs))]:
                        future.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        return [r for r in results if r is not None]

    def _send_sms_batch(
        self,
        jobs: Sequence[_Job],
        send_batch: Callable[[Sequence[SMS]], Sequence[BulkResult]],
        on_progress: Callable[[int, BulkResult], None] | None,
    ) -> list[BulkResult]:
        """``send_many`` for an SMS transport with a batch endpoint: render all, send in batches.

        The same events as :meth:`send` (``queued``, then ``sent`` or
        ``failed``) for each message, and ``on_progress`` for each in order.
        """
        results: list[BulkResult | None] = [None] * len(jobs)
        pending: list[tuple[int, SMS]] = []
        for index, job in enumerate(jobs):
            built = self._build_job(job)
            if isinstance(built, NotifyKitError):
                results[index] = built
                continue
            assert isinstance(built, SMS)  # channel="sms" builds SMS
            message = self._with_defaults(built)
            assert isinstance(message, SMS)
            self._emit(self._event(message, "queued", job.template))
            pending.append((index, message))
        t0 = time.perf_counter()
        outcomes = send_batch([m for _, m in pending]) if pending else []
        for (index, message), outcome in zip(pending, outcomes, strict=True):
            results[index] = outcome
            self._record_outcome(message, outcome, jobs[index].template, t0)
        done = [r for r in results if r is not None]
        if on_progress is not None:
            for index, result in enumerate(done):
                try:
                    on_progress(index, result)
                except Exception:
                    logger.exception("notifykit: the on_progress callback failed")
        return done

    def _record_outcome(
        self, message: Message, outcome: BulkResult, template: str | None, t0: float
    ) -> None:
        """The ``sent`` or ``failed`` event of a message sent outside :meth:`send`."""
        duration = time.perf_counter() - t0
        if isinstance(outcome, Receipt):
            self._report_attempts(message, outcome.attempts[:-1], template)
            event = self._event(
                message,
                "sent",
                template,
                transport=outcome.transport,
                attempt=_count_tries(outcome.attempts),
                provider_message_id=outcome.provider_message_id,
                duration=duration,
                rejected=outcome.rejected,
            )
        elif isinstance(outcome, DeliveryError):
            self._report_attempts(message, outcome.attempts, template)
            event = self._event(
                message,
                "failed",
                template,
                transport=outcome.transport,
                attempt=_count_tries(outcome.attempts),
                error=str(outcome),
                error_kind=outcome.kind,
                duration=duration,
                maybe_delivered=outcome.maybe_delivered,
                rejected=getattr(outcome, "rejected", None) or {},
            )
        else:
            event = self._event(
                message,
                "failed",
                template,
                error=str(outcome),
                error_kind="invalid",
                duration=duration,
            )
        self._emit(event)

    def _build_job(self, job: _Job) -> Message | NotifyKitError:
        """Build one message of a bulk send; a failure is logged (``failed``) and returned."""
        t0 = time.perf_counter()
        try:
            return job.build()
        except NotifyKitError as exc:
            recipients = job.to
            if self.redact_recipients:
                recipients = tuple(redact_recipient(r) for r in recipients)
            self._emit(
                DeliveryEvent(
                    message_id=uuid.uuid4().hex,
                    status="failed",
                    channel=job.channel,
                    recipients=recipients,
                    template=job.template,
                    error=str(exc),
                    error_kind="invalid",  # never sent: the row or its template is wrong
                    duration=time.perf_counter() - t0,
                )
            )
            return exc

    def _send_job(self, job: _Job) -> BulkResult:
        """Build and send one message; a failure is the result (and a ``failed`` event)."""
        message = self._build_job(job)
        if isinstance(message, NotifyKitError):
            return message
        try:
            return self.send(message, template=job.template)
        except NotifyKitError as exc:
            return exc

    # -- later, from the outbox (notifykit.outbox)

    def enqueue(
        self,
        message_or_template: Message | str,
        to: str | Recipient | Sequence[str | Recipient] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        send_at: datetime | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        channel: str = "email",
        locale: str | None = None,
        **overrides: Any,
    ) -> str:
        """Store a message in the :attr:`outbox`; its id, once durably committed.

        ``message_or_template`` is an :class:`Email` or :class:`SMS`, or the name of a
        template rendered now (with ``to``, ``context`` and ``overrides``, as
        :meth:`send_email`, or :meth:`send_sms` with ``channel="sms"``). A
        worker sends it at ``send_at`` (a timezone-aware datetime; default:
        now), higher ``priority`` first. A second message with the same
        ``idempotency_key`` within the outbox's window is not stored: the first
        one's id is returned. ``locale`` renders the template in that language
        (see ``docs/i18n.md``); an SMS keeps it in ``metadata["locale"]`` so the
        worker's MSG91/Fast2SMS transport picks that language's DLT template.
        """
        if self.outbox is None:
            raise ConfigurationError("this Notifier has no outbox; pass outbox=SQLiteOutbox(...)")
        template: str | None = None
        message = message_or_template
        if isinstance(message, str):
            template = message
            if to is None:
                raise InvalidMessage("enqueue(template, to=...) needs a recipient")
            rendered = self._render(template, context, locale)
            if channel == "sms":
                if not rendered.sms:
                    raise TemplateError(
                        f"template {template!r} has no sms block", template=template
                    )
                message = self._sms_from(rendered, to, overrides, locale)
            elif channel == "email":
                message = self._email_from(rendered, to, overrides)
            else:
                raise InvalidMessage(f"channel: expected 'email' or 'sms', got {channel!r}")
        elif to is not None or context is not None or overrides or locale is not None:
            raise InvalidMessage(
                "enqueue(message) takes no to, context, locale or fields: set them on it"
            )
        message = self._with_defaults(message)
        if idempotency_key is not None:
            message = message.replace(idempotency_key=idempotency_key)
        return self.outbox.add(message, send_at=send_at, priority=priority, template=template)

    def _idempotent_duplicate(self, message: Message) -> Receipt | None:
        key = message.idempotency_key
        if key is None or self.outbox is None:
            return None
        holder = self.outbox.reserve_key(key, message.id)
        if holder == message.id:
            return None
        logger.info("notifykit: message %s not sent: key already used by %s", message.id, holder)
        return Receipt(message_id=holder, transport=DUPLICATE)

    def _release_key(self, message: Message, maybe_delivered: bool) -> None:
        if message.idempotency_key is not None and self.outbox is not None and not maybe_delivered:
            self.outbox.release_key(message.idempotency_key, message.id)

    # -- later, on a task queue (the core never imports notifykit.contrib: notifykit._later)

    def send_later(
        self, message: Message, *, task: Any, template: str | None = None, **options: Any
    ) -> Any:
        """Enqueue ``message`` (defaults filled in) on a Celery ``task`` from
        :func:`notifykit.contrib.celery.make_send_task`; ``options`` go to
        ``apply_async``. Returns the ``AsyncResult``.
        """
        from notifykit._later import send_later

        return send_later(task, self._with_defaults(message), template=template, **options)

    def notify_later(
        self,
        template: str,
        to: Recipient,
        context: Mapping[str, Any] | None = None,
        *,
        task: Any,
        locale: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Render ``template`` now (in ``locale``, if given) and enqueue one message
        per channel on ``task`` (see :func:`notifykit.contrib.celery.notify_later`).
        """
        from notifykit._later import notify_later

        return notify_later(task, self, template, to, context, locale=locale, **overrides)

    # -- helpers

    def _render(
        self, template: str, context: Mapping[str, Any] | None, locale: str | None = None
    ) -> _Rendered:
        if self.templates is None:
            raise ConfigurationError(
                "this Notifier has no templates; pass templates=TemplateRenderer(...)"
            )
        if locale is None:
            rendered: _Rendered = self.templates.render(template, context or {})
        else:  # a renderer of your own must then take locale= too
            renderer: Any = self.templates
            rendered = renderer.render(template, context or {}, locale=locale)
        return rendered

    def _email_from(self, rendered: _Rendered, to: Any, overrides: Mapping[str, Any]) -> Email:
        fields: dict[str, Any] = {
            "to": to,
            "subject": rendered.subject,
            "text": rendered.text or None,
            "html": rendered.html or None,
            "sender": self.sender,
        }
        fields.update(overrides)
        return _build(Email, fields)

    def _sms_from(
        self,
        rendered: _Rendered,
        to: Any,
        overrides: Mapping[str, Any],
        locale: str | None = None,
    ) -> SMS:
        fields: dict[str, Any] = {"to": to, "body": rendered.sms or "", "sender": self.sms_sender}
        fields.update(overrides)
        metadata = fields.get("metadata") or {}
        if locale is not None and isinstance(metadata, Mapping):
            # The transports pick the DLT template of this language from it
            # (templates={"otp.hi": ...}); it also travels in a Celery payload.
            from notifykit.templates.i18n import normalize_locale

            fields["metadata"] = {"locale": normalize_locale(locale), **metadata}
        fields.setdefault("default_region", self.default_region)
        return _build(SMS, fields)

    def _with_defaults(self, message: Message) -> Message:
        if isinstance(message, Email):
            if message.sender is None and self.sender is not None:
                return message.replace(sender=self.sender)
            return message
        if isinstance(message, SMS):
            if message.sender is None and self.sms_sender is not None:
                return message.replace(sender=self.sms_sender)
            return message
        raise InvalidMessage(f"expected an Email or an SMS, got {type(message).__name__}")

    def _refuse_suppressed(self, message: Message, template: str | None) -> None:
        assert self.suppression is not None
        hits = self.suppression.check(message.recipients)
        if not hits:
            return
        who = ", ".join(redact_recipient(r) for r in hits)
        error = Suppressed(f"not sent: on the suppression list: {who}", rejected=hits)
        self._emit(
            self._event(
                message, "failed", template, error=str(error), error_kind="rejected", rejected=hits
            )
        )
        logger.info("notifykit: message %s not sent, suppressed: %s", message.id, who)
        raise error

    def _transport_for(self, message: Message) -> Transport:
        transport = self.email if message.channel == "email" else self.sms
        if transport is None:
            raise ConfigurationError(
                f"this Notifier has no {message.channel} transport; pass {message.channel}=..."
            )
        return transport

    def _event(
        self, message: Message, status: Any, template: str | None, **fields: Any
    ) -> DeliveryEvent:
        recipients = message.recipients
        rejected = fields.pop("rejected", None) or {}
        if self.redact_recipients:
            recipients = tuple(redact_recipient(r) for r in recipients)
            rejected = {redact_recipient(k): v for k, v in rejected.items()}
        return DeliveryEvent(
            message_id=message.id,
            status=status,
            channel=message.channel,  # type: ignore[arg-type]
            recipients=recipients,
            subject=message.subject if isinstance(message, Email) else None,
            template=template,
            tags=message.tags,
            metadata=message.metadata,
            rejected=rejected,
            **fields,
        )

    def _report_attempts(
        self, message: Message, attempts: Iterable[Any], template: str | None
    ) -> None:
        for event in self._attempt_events(message, attempts, template):
            self._emit(event)

    def _attempt_events(
        self, message: Message, attempts: Iterable[Any], template: str | None
    ) -> list[DeliveryEvent]:
        """One ``attempt_failed`` event per failed attempt (skips are not attempts)."""
        events: list[DeliveryEvent] = []
        number = 0
        for attempt in attempts:
            if attempt.outcome == "skipped":
                continue
            number += 1
            if attempt.outcome == "sent":
                continue
            events.append(
                self._event(
                    message,
                    "attempt_failed",
                    template,
                    transport=attempt.transport,
                    attempt=number,
                    error=attempt.error,
                    error_kind=attempt.outcome,
                    duration=attempt.duration,
                    at=attempt.started_at,
                    maybe_delivered=attempt.maybe_delivered,
                )
            )
        return events

    def _emit(self, event: DeliveryEvent) -> None:
        for sink in self.sinks:
            try:
                sink.record(event)
            except Exception:
                self._sink_failed(sink, event)

    async def _aemit(self, event: DeliveryEvent) -> None:
        """:meth:`_emit` from async code: a sink's ``arecord()`` coroutine is awaited."""
        for sink in self.sinks:
            arecord = getattr(sink, "arecord", None)
            try:
                if arecord is not None:
                    await arecord(event)
                else:
                    sink.record(event)  # cheap by contract: in memory, a queue, one write()
            except Exception:
                self._sink_failed(sink, event)

    def _sink_failed(self, sink: LogSink, event: DeliveryEvent) -> None:
        """Count and log a sink's failure (inside its ``except``), or re-raise when strict."""
        if self.strict_sinks:
            raise  # called from an except block: re-raises the sink's error
        with self._count_lock:
            self._sink_failures += 1
        logger.exception(
            "notifykit sink %r failed to record a %s event for message %s",
            sink,
            event.status,
            event.message_id,
        )

    # -- lifecycle

    def close(self) -> None:
        """Close the transports and the sinks that have a ``close()`` (flushing them)."""
        closed: set[int] = set()
        for transport in (self.email, self.sms):
            if transport is not None and id(transport) not in closed:
                closed.add(id(transport))
                transport.close()
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    if self.strict_sinks:
                        raise
                    logger.exception("notifykit sink %r failed to close", sink)

    async def aclose(self) -> None:
        """:meth:`close` for async code: transports close with ``aclose()``, sinks in a thread.

        A sink's ``close()`` flushes (the SQLite writer, a file): it runs in a
        worker thread so the loop is not blocked meanwhile.
        """
        closed: set[int] = set()
        for transport in (self.email, self.sms):
            if transport is not None and id(transport) not in closed:
                closed.add(id(transport))
                await aclose_with(transport)
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    await asyncio.to_thread(close)
                except Exception:
                    if self.strict_sinks:
                        raise
                    logger.exception("notifykit sink %r failed to close", sink)

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Notifier email={self.email} sms={self.sms} sinks={len(self.sinks)}>"


def _maybe_any(attempts: Iterable[Any]) -> bool:
    return any(a.maybe_delivered for a in attempts)


def _maybe_sent(exc: NotifyKitError) -> bool:
    """Whether a failed send may have been delivered (its idempotency key stays taken)."""
    if isinstance(exc, DeliveryError):
        return exc.maybe_delivered or _maybe_any(exc.attempts)
    return False


def _count_tries(attempts: Iterable[Any]) -> int:
    return sum(1 for a in attempts if a.outcome != "skipped")


_EMAIL_FIELDS = frozenset(
    {
        "cc",
        "bcc",
        "reply_to",
        "headers",
        "attachments",
        "tags",
        "metadata",
        "idempotency_key",
        "sender",
        "subject",
        "text",
        "html",
    }
)
_SMS_FIELDS = frozenset({"template_id", "variables", "tags", "metadata", "idempotency_key", "body"})


def _only(overrides: Mapping[str, Any], kind: type[Email] | type[SMS]) -> dict[str, Any]:
    allowed = _EMAIL_FIELDS if kind is Email else _SMS_FIELDS
    return {k: v for k, v in overrides.items() if k in allowed}


def _build(kind: type[_M], fields: dict[str, Any]) -> _M:
    try:
        return kind(**fields)
    except TypeError as exc:
        raise InvalidMessage(f"cannot build {kind.__name__}: {exc}") from None
