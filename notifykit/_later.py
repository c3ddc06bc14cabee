"""Enqueueing messages on a task queue, without importing the task queue.

:meth:`Notifier.send_later <notifykit.Notifier.send_later>` and
:meth:`~notifykit.Notifier.notify_later` live in the core, which never imports
:mod:`notifykit.contrib`: they only need an object with Celery's
``apply_async(args=..., kwargs=..., **options)`` method (the task made by
:func:`notifykit.contrib.celery.make_send_task`). The integration depends on
the core, never the other way round; :mod:`notifykit.contrib.celery`
re-exports these functions under its own names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.message import Message, Recipient
from notifykit.receipt import Receipt

if TYPE_CHECKING:
    from notifykit.notifier import Notifier

__all__ = ["notify_later", "send_later"]


def send_later(task: Any, message: Message, *, template: str | None = None, **options: Any) -> Any:
    """Enqueue ``message`` on ``task`` (made by ``make_send_task``).

    ``options`` go to the task's ``apply_async`` (``countdown``, ``eta``,
    ``queue``...). Returns what ``apply_async`` returns (Celery's
    ``AsyncResult``; its result is the receipt as a dict).
    """
    to_dict = getattr(message, "to_dict", None)
    if not callable(to_dict):
        raise ConfigurationError(f"send_later() needs an Email or an SMS, got {message!r}")
    apply_async = getattr(task, "apply_async", None)
    if not callable(apply_async):
        raise ConfigurationError(
            f"send_later() needs a task with apply_async() (see make_send_task), got {task!r}"
        )
    kwargs = {"template": template} if template is not None else {}
    return apply_async(args=(to_dict(),), kwargs=kwargs, **options)


class _Collect:
    """A transport that keeps messages instead of sending them: what notify() would send."""

    name = "notifykit.enqueue"

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def send(self, message: Message) -> Receipt:
        self.messages.append(message)
        return Receipt(message_id=message.id, transport=self.name)

    def close(self) -> None:
        """Nothing to release."""


def notify_later(
    task: Any,
    notifier: Notifier,
    template: str,
    to: Recipient,
    context: Mapping[str, Any] | None = None,
    *,
    locale: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Render like :meth:`Notifier.notify` here, and enqueue each channel's message on ``task``.

    The template is rendered now, by ``notifier`` (so the context need not be
    serialisable and a template error surfaces in the caller); each
    message -- e-mail, SMS, as many channels as ``notify()`` would use --
    is then sent by the workers, retried independently. Returns
    ``{"email": AsyncResult | error, "sms": ...}``, one entry per channel.
    """
    from notifykit.notifier import Notifier

    email_out = _Collect() if notifier.email is not None else None
    sms_out = _Collect() if notifier.sms is not None else None
    renderer = Notifier(
        email=email_out,
        sms=sms_out,
        templates=notifier.templates,
        sender=notifier.sender,
        sms_sender=notifier.sms_sender,
        default_region=notifier.default_region,
        strict_sinks=True,
    )
    outcomes = renderer.notify(template, to, context, locale=locale, **overrides)
    queued: dict[str, Any] = {}
    for channel, outcome in outcomes.items():
        if isinstance(outcome, NotifyKitError):
            queued[channel] = outcome
            continue
        collector = email_out if channel == "email" else sms_out
        assert collector is not None  # notify() only uses channels with a transport
        queued[channel] = send_later(task, collector.messages[-1], template=template)
    return queued
