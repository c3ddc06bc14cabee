"""A Django e-mail backend that sends through notifykit.

``EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"`` and every
``send_mail()``, ``EmailMessage.send()``, ``mail_admins()`` and password-reset
mail goes through the transports in ``NOTIFYKIT["EMAIL_URL"]`` -- failover,
retries and circuit breaker included -- and lands in the delivery log.

On Django 6.1+ it is also a ``MAILERS`` backend; its ``OPTIONS`` are the
keyword arguments of :class:`EmailBackend`::

    MAILERS = {
        "default": {"BACKEND": "notifykit.contrib.django.EmailBackend"},
        "bulk": {
            "BACKEND": "notifykit.contrib.django.EmailBackend",
            "OPTIONS": {"email_url": "smtp://bulk-relay.internal:25?security=none"},
        },
    }
"""

from __future__ import annotations

import email.message
import logging
import mimetypes
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from notifykit.contrib.django.conf import SettingsError, get_notifier
from notifykit.errors import DeliveryError, InvalidMessage
from notifykit.message import Attachment, Email
from notifykit.notifier import Notifier

__all__ = ["EmailBackend", "email_from_django"]

logger = logging.getLogger("notifykit.contrib.django")

# Headers notifykit writes from the message's own fields; others pass through.
_ADDRESS_HEADERS = frozenset({"to", "cc"})


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """Sends Django ``EmailMessage`` objects through a notifykit :class:`~notifykit.Notifier`.

    Args:
        fail_silently: when true, a message that is not delivered
            (:class:`~notifykit.errors.DeliveryError`) is skipped instead of
            raising; it is still in the delivery log. An invalid message or a
            configuration error always raises: those are bugs, not outages.
        notifier: the Notifier to send through: an instance, or the dotted
            path of one or of a function returning one. By default the shared
            :func:`~notifykit.contrib.django.get_notifier`.
        email_url: send through this transport URL instead of
            ``NOTIFYKIT["EMAIL_URL"]`` (sinks and defaults still come from
            ``NOTIFYKIT``). Handy for a second ``MAILERS`` entry.
        keep_open: keep the transport's connection open after a batch, for
            the next batch (the transport reconnects by itself if the server
            hangs up meanwhile). By default it is closed after each batch, as
            Django's SMTP backend does.
        username, password: refused when set -- credentials belong in the
            transport URL; they are accepted as ``None`` because Django's
            ``send_mail()`` always passes them.

    ``send_messages()`` sends a whole batch over one connection. Each
    delivered Django message gets a ``notifykit_receipt`` attribute (the
    :class:`~notifykit.Receipt`, with the provider's message id).
    """

    def __init__(
        self,
        *,
        fail_silently: bool = False,
        notifier: Notifier | str | None = None,
        email_url: str | None = None,
        keep_open: bool = False,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Django 6.1 passes ``alias`` (and refuses unknown OPTIONS) through
        # here; fail_silently is ours to implement, so it is not passed on.
        super().__init__(**kwargs)
        self.fail_silently = bool(fail_silently)
        if username is not None or password is not None:
            raise SettingsError(
                "notifykit's EmailBackend takes credentials from the transport URL "
                "(NOTIFYKIT['EMAIL_URL']), not from auth_user/auth_password"
            )
        if notifier is not None and email_url is not None:
            raise SettingsError("give the EmailBackend notifier= or email_url=, not both")
        self._notifier_option = notifier
        self.email_url = email_url
        self.keep_open = bool(keep_open)
        self._notifier: Notifier | None = None
        self._is_open = False
        self._lock = threading.RLock()

    @property
    def notifier(self) -> Notifier:
        """The Notifier this backend sends through (resolved on first use)."""
        if self._notifier is None:
            self._notifier = self._resolve_notifier()
        return self._notifier

    def _resolve_notifier(self) -> Notifier:
        option = self._notifier_option
        if option is None:
            return get_notifier(self.email_url)
        if isinstance(option, str):
            try:
                found = import_string(option)
            except ImportError as exc:
                raise SettingsError(f"EmailBackend(notifier={option!r}): {exc}") from exc
            option = found() if callable(found) and not isinstance(found, Notifier) else found
        if not isinstance(option, Notifier):
            raise SettingsError(
                f"EmailBackend(notifier=...) must be a Notifier or the dotted path of one "
                f"(or of a function returning one), got {option!r}"
            )
        return option

    # -- Django's connection protocol

    def open(self) -> bool:
        """Start a batch; ``True`` when this call started it (Django's contract).

        The connection itself is opened by the transport on the first send.
        """
        with self._lock:
            if self._is_open:
                return False
            if self.notifier.email is None:
                raise SettingsError("NOTIFYKIT has no 'EMAIL_URL': there is no e-mail transport")
            self._is_open = True
            return True

    def close(self) -> None:
        """End the batch: close the transport's connection (unless ``keep_open``)."""
        with self._lock:
            was_open, self._is_open = self._is_open, False
            if not was_open or self.keep_open or self._notifier is None:
                return
            transport = self._notifier.email
            if transport is not None:
                transport.close()

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        """Send every message over one connection; return how many were delivered."""
        if not email_messages:
            return 0
        with self._lock:
            started = self.open()
            try:
                sent = 0
                for message in email_messages:
                    if not message.recipients():
                        continue
                    if self._send(message):
                        sent += 1
                return sent
            finally:
                if started:
                    self.close()

    def _send(self, message: Any) -> bool:
        mail = email_from_django(message)
        try:
            receipt = self.notifier.send(mail)
        except DeliveryError as exc:
            if not self.fail_silently:
                raise
            logger.warning("notifykit: message %s not delivered (fail_silently): %s", mail.id, exc)
            return False
        message.notifykit_receipt = receipt
        return True


def email_from_django(message: Any) -> Email:
    """Convert a Django ``EmailMessage`` / ``EmailMultiAlternatives`` to an :class:`Email`.

    Keeps the subject, body (``content_subtype = "html"`` makes it the HTML
    part), ``text/html`` and ``text/plain`` alternatives, attachments
    (``(filename, content, mimetype)`` tuples and MIME parts; a part with a
    ``Content-ID`` becomes an inline image), to/cc/bcc/reply-to and extra
    headers. ``tags`` and ``metadata`` attributes, as django-anymail names
    them, become the message's tags and metadata.

    notifykit writes ``From``, ``To`` and ``Cc`` from the message's fields:
    an extra ``From`` header becomes the sender (envelope too), an extra
    ``Reply-To`` header the reply-to list, and an extra ``To``/``Cc`` header
    that differs from the recipients is refused with
    :class:`~notifykit.errors.InvalidMessage`. Other alternatives than text
    and HTML (``text/calendar``…) are refused too: attach them instead.
    """
    subject = str(message.subject or "")
    body = str(message.body or "")
    sender = str(message.from_email) if message.from_email else None
    reply_to = [str(a) for a in message.reply_to or ()]
    to = [str(a) for a in message.to or ()]
    cc = [str(a) for a in message.cc or ()]
    headers: dict[str, str] = {}
    for name, value in (message.extra_headers or {}).items():
        lowered = str(name).lower()
        value = str(value)
        if lowered == "from":
            sender = value
        elif lowered == "reply-to":
            reply_to = [part.strip() for part in value.split(",") if part.strip()]
        elif lowered == "subject":
            subject = value
        elif lowered in _ADDRESS_HEADERS:
            shown = to if lowered == "to" else cc
            if value.replace(" ", "") != ",".join(shown).replace(" ", ""):
                raise InvalidMessage(
                    f"extra header {name!r} differs from the message's recipients; notifykit "
                    f"writes {name} from them (send separate messages instead)"
                )
        else:
            headers[str(name)] = value

    text: str | None = None
    html: str | None = None
    if getattr(message, "content_subtype", "plain") == "html":
        html = body
    else:
        text = body
    for content, mimetype in _alternatives(message):
        if mimetype == "text/html" and not html:
            html = str(content)
        elif mimetype == "text/plain" and not text:
            text = str(content)
        else:
            raise InvalidMessage(
                f"notifykit sends a text and an HTML part only; the alternative {mimetype!r} "
                "cannot be sent (attach it instead)"
            )
    if not text and not html:
        text = "\n"  # Django allows an empty body; an empty text part is still a message

    return Email(
        to=to,
        subject=subject,
        text=text or None,
        html=html or None,
        sender=sender,
        cc=cc,
        bcc=[str(a) for a in message.bcc or ()],
        reply_to=reply_to,
        headers=headers,
        attachments=[_attachment(a, i) for i, a in enumerate(message.attachments or (), 1)],
        tags=_tags(getattr(message, "tags", ())),
        metadata=dict(getattr(message, "metadata", None) or {}),
        derive_text=False,  # Django sends an HTML body as it is
    )


def _alternatives(message: Any) -> Iterable[tuple[Any, str]]:
    for alternative in getattr(message, "alternatives", None) or ():
        content, mimetype = alternative[0], alternative[1]
        yield content, str(mimetype).lower()


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or ()]


def _attachment(item: Any, number: int) -> Attachment:
    if isinstance(item, email.message.Message):
        return _part_attachment(item, number)
    try:
        filename, content, mimetype = item
    except (TypeError, ValueError):
        raise InvalidMessage(f"attachment {number}: cannot read {item!r}") from None
    content = _content_bytes(content)
    mimetype = mimetype or mimetypes.guess_type(filename or "")[0] or "application/octet-stream"
    return Attachment(filename or _default_name(mimetype, number), content, mimetype)


def _content_bytes(content: Any) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, email.message.Message):  # a forwarded message/rfc822
        return content.as_bytes()
    inner = getattr(content, "message", None)  # a Django EmailMessage, forwarded
    if callable(inner):
        built = inner()
        if isinstance(built, email.message.Message):
            return built.as_bytes()
    raise InvalidMessage(f"attachment content must be bytes or str, got {type(content).__name__}")


def _part_attachment(part: email.message.Message, number: int) -> Attachment:
    if part.is_multipart():
        raise InvalidMessage(f"attachment {number}: a multipart MIME attachment is not supported")
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = b""
    mimetype = part.get_content_type()
    content_id = part.get("Content-ID")
    filename = part.get_filename() or _default_name(mimetype, number)
    return Attachment(
        filename, payload, mimetype, str(content_id).strip("<> ") if content_id else None
    )


def _default_name(mimetype: str, number: int) -> str:
    return f"attachment-{number}{mimetypes.guess_extension(mimetype) or '.bin'}"
