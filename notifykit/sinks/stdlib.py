"""A sink that writes delivery events to the standard library's :mod:`logging`.

Each event becomes one log record with a readable message and the whole event
in ``extra``, so a plain text handler prints a useful line and a structured
(JSON) formatter gets every field without parsing text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

from notifykit.sinks.base import DeliveryEvent

__all__ = ["DEFAULT_LEVELS", "LoggingSink", "format_event"]

#: The level of each kind of event. A retried attempt is a warning because the
#: message may still go out; a final failure is an error because it did not.
DEFAULT_LEVELS: Mapping[str, int] = MappingProxyType(
    {
        "queued": logging.DEBUG,
        "attempt_failed": logging.WARNING,
        "sent": logging.INFO,
        "failed": logging.ERROR,
    }
)

#: At most this many recipients are spelled out in the message line; the
#: ``extra`` always has all of them.
_MAX_SHOWN = 3


def _recipients(recipients: tuple[str, ...]) -> str:
    if len(recipients) <= _MAX_SHOWN:
        return ", ".join(recipients) or "nobody"
    shown = ", ".join(recipients[:_MAX_SHOWN])
    return f"{shown} and {len(recipients) - _MAX_SHOWN} more"


def format_event(event: DeliveryEvent) -> str:
    """One readable line for ``event``, e.g. ``email 3f2a… sent via smtp:… to a@b.example``.

    Recipients are shown as the event carries them: the Notifier has already
    masked them when it was asked to (``redact_recipients=True``).
    """
    head = f"{event.channel} {event.message_id}"
    if event.template:
        head += f" ({event.template})"
    to = _recipients(event.recipients)
    if event.status == "queued":
        return f"{head} queued to {to}"
    if event.status == "sent":
        text = f"{head} sent via {event.transport} to {to} (attempt {event.attempt}"
        if event.duration is not None:
            text += f", {event.duration:.3f}s"
        if event.provider_message_id:
            text += f", provider id {event.provider_message_id}"
        text += ")"
        if event.rejected:
            text += f"; refused: {', '.join(event.rejected)}"
        return text
    # "failed" is the kind of AllTransportsFailed: "failed (failed)" says nothing more.
    kind = f" ({event.error_kind})" if event.error_kind not in (None, "failed") else ""
    uncertain = "; it may have been delivered" if event.maybe_delivered else ""
    if event.status == "attempt_failed":
        return (
            f"{head} attempt {event.attempt} via {event.transport} failed{kind}: "
            f"{event.error}{uncertain}"
        )
    via = f" via {event.transport}" if event.transport else ""
    return (
        f"{head} to {to} failed{via}{kind} after {event.attempt} attempt(s): {event.error}"
        f"{uncertain}"
    )


class LoggingSink:
    """Writes each delivery event as one :mod:`logging` record.

    Args:
        logger: a logger or a logger name; ``"notifykit.delivery"`` by default,
            so delivery lines can be routed apart from notifykit's own
            diagnostics (the ``"notifykit"`` logger).
        levels: the level of each status, merged over :data:`DEFAULT_LEVELS`
            (``queued`` DEBUG, ``attempt_failed`` WARNING, ``sent`` INFO,
            ``failed`` ERROR); e.g. ``{"queued": logging.INFO}``.

    Every record carries ``extra={"notifykit": event.to_dict()}`` plus flat
    keys for formatters and filters that want one field:
    ``notifykit_message_id``, ``notifykit_status``, ``notifykit_channel``,
    ``notifykit_transport``, ``notifykit_template``, ``notifykit_attempt``,
    ``notifykit_error_kind``. The keys are prefixed because ``extra`` may not
    reuse a :class:`logging.LogRecord` attribute name.

    When the logger is not enabled for an event's level, the event costs one
    level check and nothing is formatted.
    """

    def __init__(
        self,
        logger: str | logging.Logger = "notifykit.delivery",
        levels: Mapping[str, int] | None = None,
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.levels: dict[str, int] = {**DEFAULT_LEVELS, **(levels or {})}

    def record(self, event: DeliveryEvent) -> None:
        """Log ``event`` at the level of its status."""
        level = self.levels.get(event.status, logging.INFO)
        if not self.logger.isEnabledFor(level):
            return
        extra = {
            "notifykit": event.to_dict(),
            "notifykit_message_id": event.message_id,
            "notifykit_status": event.status,
            "notifykit_channel": event.channel,
            "notifykit_transport": event.transport,
            "notifykit_template": event.template,
            "notifykit_attempt": event.attempt,
            "notifykit_error_kind": event.error_kind,
        }
        # "%s" keeps a message id or an error text with a "%" in it from being
        # taken for a format string.
        self.logger.log(level, "%s", format_event(event), extra=extra)

    def __repr__(self) -> str:
        return f"LoggingSink({self.logger.name!r})"
