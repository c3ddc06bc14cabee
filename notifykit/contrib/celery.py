"""notifykit for Celery (``pip install "notifykit-py[celery]"``): send from many workers.

::

    from celery import Celery
    from notifykit import Notifier, Email
    from notifykit.contrib.celery import make_send_task, send_later

    app = Celery("shop", broker="redis://localhost:6379/0")
    send = make_send_task(app, Notifier.from_env)          # the task "notifykit.send"

    send_later(send, Email(to="asha@example.com", subject="Hi", text="..."))

The task receives ``message.to_dict()`` (JSON, so any serializer works) and
sends it through the worker's Notifier, which is built once per worker
process by ``notifier_factory`` and shared by every task it runs.

Retries happen in two layers, each doing what it is good at:

1. **Inside one task run**, the Notifier's transports do their own retrying:
   a ``FailoverTransport`` retries a transient failure with short waits and
   moves on to the next provider. That is seconds, inside the worker.
2. **Across task runs**, when the whole send still fails with a
   :class:`~notifykit.errors.TransientError` or
   :class:`~notifykit.errors.AllTransportsFailed`, the task is re-enqueued
   with an exponential backoff (Celery's ``countdown``) computed by a
   :class:`~notifykit.Retry` -- minutes, without holding a worker.
   :class:`~notifykit.errors.RejectedError` (the message will never be
   accepted), :class:`~notifykit.errors.InvalidMessage`,
   :class:`~notifykit.errors.ProviderError` (credentials, account: a human must
   act) and configuration errors fail the task at once.

The message keeps its id across runs, so the delivery log shows each run's
``queued``, ``attempt_failed`` and final event under one message id.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery, Task
from celery.result import AsyncResult
from celery.signals import worker_process_shutdown, worker_shutdown

from notifykit import _later
from notifykit.contrib._lazy import LazyNotifier
from notifykit.errors import (
    AllTransportsFailed,
    ConfigurationError,
    NotifyKitError,
    TransientError,
)
from notifykit.message import Message, Recipient, message_from_dict
from notifykit.notifier import Notifier
from notifykit.receipt import Receipt
from notifykit.retry import Retry, waits_disabled

__all__ = [
    "DEFAULT_BACKOFF",
    "NotifierCache",
    "OutboxHandOff",
    "SendTask",
    "make_send_task",
    "notify_later",
    "send_later",
]

#: Waits between task runs: about 10 s, 30 s, 1.5 min, 4.5 min, 13.5 min (6 runs).
DEFAULT_BACKOFF = Retry(attempts=6, initial=10.0, multiplier=3.0, maximum=900.0, jitter=0.2)

NotifierFactory = Callable[[], Notifier]

_caches: weakref.WeakSet[NotifierCache] = weakref.WeakSet()


class NotifierCache(LazyNotifier):
    """One Notifier per process, built by ``factory`` on first use and shared by tasks.

    :meth:`get` builds it; :meth:`close` closes it (QUIT, flush sinks) and the
    next :meth:`get` builds a new one.
    """

    def __init__(self, factory: NotifierFactory) -> None:
        if not callable(factory):
            raise ConfigurationError(f"notifier_factory must be callable, got {factory!r}")
        super().__init__(factory, "notifier_factory")
        self.factory = factory
        _caches.add(self)


def _close_all(**kwargs: Any) -> None:
    for cache in list(_caches):
        cache.close()


# A worker (or a prefork child) that stops closes its connections cleanly.
worker_shutdown.connect(_close_all, weak=False, dispatch_uid="notifykit.close")
worker_process_shutdown.connect(_close_all, weak=False, dispatch_uid="notifykit.close")


class SendTask(Task):  # type: ignore[misc]
    """The base class of the task :func:`make_send_task` creates.

    ``notifykit_cache``, ``notifykit_backoff`` and ``notifykit_resend_uncertain``
    are set per task by :func:`make_send_task`.
    """

    notifykit_cache: NotifierCache
    notifykit_backoff: Retry = DEFAULT_BACKOFF
    notifykit_resend_uncertain: bool = True

    @property
    def notifier(self) -> Notifier:
        """This worker process's Notifier."""
        return self.notifykit_cache.get()

    def close_notifier(self) -> None:
        """Close this process's Notifier now (it is also closed at worker shutdown)."""
        self.notifykit_cache.close()

    def countdown(self, run: int, error: NotifyKitError) -> float:
        """Seconds before run ``run + 1``, after run number ``run`` (1-based) failed."""
        if waits_disabled():
            return 0.0
        return self.notifykit_backoff.wait(run, getattr(error, "retry_after", None))


def _send(
    task: SendTask, message: Mapping[str, Any], template: str | None = None
) -> dict[str, Any]:
    """The task body: rebuild the message, send it, re-enqueue it on a transient failure."""
    rebuilt = message_from_dict(message)  # InvalidMessage: fails at once, never retried
    try:
        receipt = task.notifier.send(rebuilt, template=template)
    except (TransientError, AllTransportsFailed) as exc:
        if exc.maybe_delivered and not task.notifykit_resend_uncertain:
            raise  # at most once: it may have arrived, do not risk a duplicate
        run = task.request.retries + 1
        if run >= task.notifykit_backoff.attempts:
            raise
        raise task.retry(
            exc=exc,
            countdown=task.countdown(run, exc),
            max_retries=task.notifykit_backoff.attempts - 1,
        ) from exc
    return receipt.to_dict()


def make_send_task(
    celery_app: Celery,
    notifier_factory: NotifierFactory | None = None,
    *,
    name: str = "notifykit.send",
    retry: Retry = DEFAULT_BACKOFF,
    resend_uncertain: bool = True,
    **task_options: Any,
) -> SendTask:
    """Register the task that sends a serialised message, and return it.

    Args:
        celery_app: the Celery app to register it on.
        notifier_factory: builds the worker's Notifier (called once per
            worker process, on the first task); by default
            :meth:`Notifier.from_env() <notifykit.Notifier.from_env>`, which
            makes this the ready ``notifykit.send`` task configured by the
            ``NOTIFYKIT_*`` environment variables.
        name: the task name; give each task you make its own.
        retry: the backoff between task runs: ``retry.attempts`` runs at
            most, waits from ``retry.wait()`` (a provider's ``Retry-After``
            is honoured). Inside ``notifykit.testing.no_backoff()`` the waits
            are zero.
        resend_uncertain: re-enqueue a failure that may have been delivered
            (``maybe_delivered``): at least once (the default, as the
            failover does) or at most once.
        task_options: other Celery task options (``queue``, ``rate_limit``,
            ``acks_late``...). ``max_retries`` comes from ``retry.attempts``.

    The task takes ``(message_dict, template=None)`` and returns the
    receipt as a dict.
    """
    if "max_retries" in task_options or "autoretry_for" in task_options:
        raise ConfigurationError(
            "make_send_task() retries by itself: use retry=Retry(attempts=...) "
            "instead of max_retries/autoretry_for"
        )
    if not isinstance(retry, Retry):
        raise ConfigurationError(f"retry must be a notifykit.Retry, got {retry!r}")
    if notifier_factory is None:
        notifier_factory = Notifier.from_env
    cache = NotifierCache(notifier_factory)

    def send(self: SendTask, message: Mapping[str, Any], template: str | None = None) -> Any:
        return _send(self, message, template)

    send.__doc__ = "Send a message given as Email/SMS.to_dict(); see notifykit.contrib.celery."
    task: SendTask = celery_app.task(
        bind=True,
        # Not shared: a shared task would be added to every Celery app created
        # later in the process, each with this factory.
        shared=False,
        base=SendTask,
        name=name,
        max_retries=retry.attempts - 1,
        notifykit_cache=cache,
        notifykit_backoff=retry,
        notifykit_resend_uncertain=resend_uncertain,
        **task_options,
    )(send)
    return task


def send_later(
    task: Any, message: Message, *, template: str | None = None, **options: Any
) -> AsyncResult:
    """Enqueue ``message`` on ``task`` (made by :func:`make_send_task`).

    ``options`` go to Celery's ``apply_async`` (``countdown``, ``eta``,
    ``queue``...). Returns the ``AsyncResult``; its result is the receipt
    as a dict. (The implementation is in the core, :mod:`notifykit._later`.)
    """
    result: AsyncResult = _later.send_later(task, message, template=template, **options)
    return result


def notify_later(
    task: Any,
    notifier: Notifier,
    template: str,
    to: Recipient,
    context: Mapping[str, Any] | None = None,
    *,
    locale: str | None = None,
    **overrides: Any,
) -> dict[str, AsyncResult | NotifyKitError]:
    """Render like :meth:`Notifier.notify` here, and enqueue each channel's message on ``task``.

    ``locale`` renders the language's version now; the SMS carries it in
    ``metadata["locale"]`` in the task payload, so the worker's MSG91/Fast2SMS
    transport picks that language's DLT template (``templates={"otp.hi": ...}``).
    Returns ``{"email": AsyncResult | error, "sms": ...}``; see
    :func:`notifykit._later.notify_later` (the core's implementation).
    """
    return _later.notify_later(task, notifier, template, to, context, locale=locale, **overrides)


class OutboxHandOff:
    """Hands outbox rows to a Celery ``task`` instead of sending them: the scale-out path.

    Give it to an outbox worker in place of a Notifier::

        outbox.run(OutboxHandOff(send))    # or Worker(outbox, OutboxHandOff(send))

    Each due row is enqueued on ``task`` (from :func:`make_send_task`, e.g. the
    ready ``notifykit.send``) with :func:`send_later`, and marked ``sent`` with
    ``transport="celery:<task name>"`` and the Celery task id as the provider
    message id: from then on the broker and the task's retries own the message.
    A broker that cannot be reached is a :class:`~notifykit.errors.TransientError`,
    and the row is retried with the outbox's backoff. ``options`` go to
    ``apply_async`` (``queue``, ``priority``...).

    At least once: a worker killed between the hand-off and its record hands
    the row over again (recorded ``maybe_delivered``), with the same message id.
    """

    def __init__(self, task: Any, **options: Any) -> None:
        self.task = task
        self.options = options

    def send(self, message: Message, *, template: str | None = None) -> Receipt:
        """Enqueue ``message`` on the task; a Receipt naming the Celery task id."""
        name = str(getattr(self.task, "name", "task"))
        try:
            result = send_later(self.task, message, template=template, **self.options)
        except NotifyKitError:
            raise
        except Exception as exc:  # the broker's own errors (kombu, redis, amqp...)
            from kombu.exceptions import OperationalError

            from notifykit.config import mask_url

            raise TransientError(
                f"celery:{name}: could not hand the message to the broker "
                f"({type(exc).__name__}: {mask_url(str(exc))})",  # a broker URL may hold a password
                transport=f"celery:{name}",
                # A refused connection sent nothing; any other failure may have published.
                maybe_delivered=not isinstance(exc, OperationalError),
            ) from exc
        return Receipt(
            message_id=message.id, transport=f"celery:{name}", provider_message_id=result.id
        )

    def __repr__(self) -> str:
        return f"OutboxHandOff({getattr(self.task, 'name', self.task)!r})"
