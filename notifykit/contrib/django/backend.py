"""A Django e-mail backend that sends through notifykit.

``EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"`` and every
``send_mail()``, ``EmailMessage.send()``, ``mail_admins()`` and password-reset
mail goes through notifykit -- retries, failover and circuit breaker included
-- and lands in the delivery log.

Where the mail goes, as with Django's SMTP backend:

- ``get_connection(host=..., port=..., username=..., password=..., use_tls=...,
  use_ssl=..., timeout=..., ssl_keyfile=..., ssl_certfile=...)``: an SMTP
  connection built from those options, the others taken from Django's
  ``EMAIL_*`` settings, exactly as Django's SMTP backend reads them;
- otherwise ``NOTIFYKIT["EMAIL_URL"]`` when it is set (any transport URL,
  e.g. a failover);
- otherwise Django's ``EMAIL_HOST``, ``EMAIL_PORT``, ``EMAIL_HOST_USER``,
  ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``, ``EMAIL_USE_SSL``,
  ``EMAIL_TIMEOUT``, ``EMAIL_SSL_CERTFILE`` and ``EMAIL_SSL_KEYFILE``.

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
import inspect
import ipaddress
import logging
import mimetypes
import ssl
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from notifykit.contrib.django.conf import SettingsError, get_notifier, get_transport_notifier
from notifykit.contrib.django.errors import BadHeaderError, django_compatible
from notifykit.errors import AllTransportsFailed, ConfigurationError, DeliveryError, InvalidMessage
from notifykit.message import Alternative, Attachment, Email, parse_addresses
from notifykit.notifier import Notifier
from notifykit.transports.base import Transport
from notifykit.transports.failover import FailoverTransport
from notifykit.transports.smtp import SMTPTransport

__all__ = ["EmailBackend", "email_from_django"]

logger = logging.getLogger("notifykit.contrib.django")

# Every character str.splitlines() breaks on (what notifykit refuses in a header).
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_TLS_AND_SSL = (
    "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of those settings to True."
)


@dataclass(frozen=True)
class _SMTPSettings:
    """Django's SMTP settings, resolved as Django's SMTP backend resolves them."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    use_tls: bool
    use_ssl: bool
    timeout: float | None
    ssl_keyfile: str | None
    ssl_certfile: str | None

    @classmethod
    def resolve(cls, given: Mapping[str, Any]) -> _SMTPSettings:
        """``given`` options over Django's ``EMAIL_*`` settings (Django's own rules)."""

        def pick(option: str, setting: str, default: Any) -> Any:
            value = given.get(option)
            return getattr(settings, setting, default) if value is None else value

        port: Any = given.get("port") or getattr(settings, "EMAIL_PORT", 25)
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)
        conf = cls(
            host=str(given.get("host") or getattr(settings, "EMAIL_HOST", "localhost")),
            port=port,
            username=str(pick("username", "EMAIL_HOST_USER", "") or ""),
            password=str(pick("password", "EMAIL_HOST_PASSWORD", "") or ""),
            use_tls=bool(pick("use_tls", "EMAIL_USE_TLS", False)),
            use_ssl=bool(pick("use_ssl", "EMAIL_USE_SSL", False)),
            timeout=pick("timeout", "EMAIL_TIMEOUT", None),
            ssl_keyfile=pick("ssl_keyfile", "EMAIL_SSL_KEYFILE", None),
            ssl_certfile=pick("ssl_certfile", "EMAIL_SSL_CERTFILE", None),
        )
        if conf.use_tls and conf.use_ssl:
            raise SettingsError(_TLS_AND_SSL)
        return conf

    @property
    def security(self) -> str:
        return "ssl" if self.use_ssl else "starttls" if self.use_tls else "none"

    def transport(self) -> SMTPTransport:
        """The SMTP transport these settings describe (no connection is made)."""
        from django.core.mail.utils import DNS_NAME

        # Django authenticates only when both are non-empty.
        auth = bool(self.username and self.password)
        loopback = _is_loopback(self.host)
        if auth and self.security == "none" and not loopback:
            raise SettingsError(
                f"refusing to send EMAIL_HOST_PASSWORD in clear text to {self.host}: set "
                "EMAIL_USE_TLS = True (STARTTLS, usually port 587) or EMAIL_USE_SSL = True "
                "(usually port 465)"
            )
        context = None
        if self.security != "none" and (self.ssl_certfile or self.ssl_keyfile):
            context = ssl.create_default_context()
            try:
                context.load_cert_chain(self.ssl_certfile or "", self.ssl_keyfile or None)
            except (OSError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise SettingsError(
                    f"EMAIL_SSL_CERTFILE/EMAIL_SSL_KEYFILE: cannot load the client "
                    f"certificate {self.ssl_certfile!r}: {reason}"
                ) from None
        options: dict[str, Any] = {}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        try:
            return SMTPTransport(
                self.host,
                self.port,
                self.username if auth else None,
                self.password if auth else None,
                security=self.security,  # type: ignore[arg-type]
                ssl_context=context,
                local_hostname=DNS_NAME.get_fqdn(),
                allow_insecure_auth=loopback,
                **options,
            )
        except ConfigurationError as exc:
            raise SettingsError(
                f"Django's EMAIL_* settings / get_connection() options: {exc}"
            ) from exc


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _uses_notifykit_url() -> bool:
    """True when ``settings.NOTIFYKIT`` names the e-mail transport (or is malformed)."""
    raw = getattr(settings, "NOTIFYKIT", None)
    if raw is None:
        return False
    return not isinstance(raw, Mapping) or raw.get("EMAIL_URL") is not None


def _connect(transport: Transport) -> None:
    """Open (and authenticate) the connection of ``transport``, as a health check.

    SMTP transports connect; a failover is healthy when one of its members
    is (tried in order). Transports without a connection (HTTP APIs,
    console, memory) are not contacted: there is nothing to open.
    """
    if isinstance(transport, SMTPTransport):
        transport.check()
        return
    if isinstance(transport, FailoverTransport):
        errors: list[DeliveryError] = []
        for member in transport.transports:
            try:
                _connect(member)
            except DeliveryError as exc:
                errors.append(exc)
            else:
                return
        raise AllTransportsFailed(errors, transport=transport.name)


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """Sends Django ``EmailMessage`` objects through notifykit; a drop-in ``EMAIL_BACKEND``.

    Args:
        host, port, username, password, use_tls, use_ssl, timeout,
            ssl_keyfile, ssl_certfile: as for Django's SMTP backend. When any
            is given (not ``None``), the backend sends through an SMTP
            connection built from them and, for the others, from Django's
            ``EMAIL_*`` settings -- even when ``NOTIFYKIT["EMAIL_URL"]`` is
            set. ``username=""``/``password=""`` mean "no authentication".
            ``use_tls`` and ``use_ssl`` together are an error, as in Django.
        fail_silently: when true, a message that is not delivered
            (:class:`~notifykit.errors.DeliveryError`) is skipped instead of
            raising, and ``open()`` returns ``None`` instead of raising when
            it cannot connect; failures are still in the delivery log. An
            invalid message or a configuration error always raises.
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

    ``open()`` connects (and authenticates) -- a health check, as with
    Django's backend. ``send_messages()`` sends a whole batch over one
    connection. Each delivered Django message gets a ``notifykit_receipt``
    attribute (the :class:`~notifykit.Receipt`, with the provider's message
    id). Delivery errors are both notifykit errors and ``smtplib`` /
    socket errors (see :mod:`notifykit.contrib.django.errors`); a line break
    in a header raises :class:`~notifykit.contrib.django.errors.BadHeaderError`.

    When the backend builds its own SMTP connection, ``host``, ``port``,
    ``username``, ``use_tls``, ``use_ssl``, ``timeout`` (the effective one:
    notifykit never waits forever, so ``None`` becomes the transport's 10 s),
    ``ssl_keyfile`` and ``ssl_certfile`` hold the resolved values, as on
    Django's backend; they are ``None`` when sending through ``NOTIFYKIT``.
    """

    host: str | None
    port: int | None
    username: str | None
    use_tls: bool | None
    use_ssl: bool | None
    timeout: float | None
    ssl_keyfile: str | None
    ssl_certfile: str | None

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        *,
        notifier: Notifier | str | None = None,
        email_url: str | None = None,
        keep_open: bool = False,
        **kwargs: Any,
    ) -> None:
        # Django 6.1 passes ``alias`` (and refuses unknown OPTIONS) through
        # here; fail_silently is ours to implement, so it is not passed on.
        super().__init__(**kwargs)
        self.fail_silently = bool(fail_silently)
        given = {
            name: value
            for name, value in (
                ("host", host),
                ("port", port),
                ("username", username),
                ("password", password),
                ("use_tls", use_tls),
                ("use_ssl", use_ssl),
                ("timeout", timeout),
                ("ssl_keyfile", ssl_keyfile),
                ("ssl_certfile", ssl_certfile),
            )
            if value is not None
        }
        if notifier is not None and email_url is not None:
            raise SettingsError("give the EmailBackend notifier= or email_url=, not both")
        if given and (notifier is not None or email_url is not None):
            raise SettingsError(
                f"give the EmailBackend SMTP options ({', '.join(sorted(given))}) or "
                "notifier=/email_url=, not both"
            )
        self._notifier_option = notifier
        self.email_url = email_url
        self.keep_open = bool(keep_open)
        self._smtp: _SMTPSettings | None = None
        if notifier is None and email_url is None and (given or not _uses_notifykit_url()):
            self._smtp = _SMTPSettings.resolve(given)
        smtp = self._smtp
        self.host = smtp.host if smtp else None
        self.port = smtp.port if smtp else None
        self.username = smtp.username if smtp else None
        self.use_tls = smtp.use_tls if smtp else None
        self.use_ssl = smtp.use_ssl if smtp else None
        self.timeout = (
            (float(smtp.timeout) if smtp.timeout is not None else _DEFAULT_TIMEOUT)
            if smtp
            else None
        )
        self.ssl_keyfile = smtp.ssl_keyfile if smtp else None
        self.ssl_certfile = smtp.ssl_certfile if smtp else None
        self._notifier: Notifier | None = None
        self._is_open = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        where = f"smtp {self.host}:{self.port}" if self._smtp else self.email_url or "NOTIFYKIT"
        return f"<{type(self).__name__} {where}>"

    @property
    def notifier(self) -> Notifier:
        """The Notifier this backend sends through (resolved on first use)."""
        if self._notifier is None:
            self._notifier = self._resolve_notifier()
        return self._notifier

    def _resolve_notifier(self) -> Notifier:
        smtp = self._smtp
        if smtp is not None:
            return get_transport_notifier(smtp, smtp.transport)
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

    def open(self) -> bool | None:
        """Connect (and authenticate); ``True`` when this call opened the connection.

        ``False`` when it was open already; ``None`` when connecting failed
        and ``fail_silently`` is set (Django's contract). Otherwise a failure
        raises, as a notifykit error that is also an smtplib / socket error.
        """
        with self._lock:
            if self._is_open:
                return False
            transport = self.notifier.email
            if transport is None:
                raise SettingsError("NOTIFYKIT has no 'EMAIL_URL': there is no e-mail transport")
            try:
                _connect(transport)
            except DeliveryError as exc:
                if self.fail_silently:
                    logger.warning("notifykit: cannot connect (fail_silently): %s", exc)
                    return None
                raise django_compatible(exc) from (exc.__cause__ or exc)
            self._is_open = True
            return True

    def close(self) -> None:
        """Close the connection (unless ``keep_open``); never raises, like Django's."""
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
            if started is None:
                return 0  # open() failed silently: sending would be pointless
            try:
                sent = 0
                for message in email_messages:
                    if self._send(message):
                        sent += 1
                return sent
            finally:
                if started:
                    self.close()

    def _send(self, message: Any) -> bool:
        if not message.recipients():
            return False
        mail = email_from_django(message)
        try:
            receipt = self.notifier.send(mail)
        except DeliveryError as exc:
            if not self.fail_silently:
                raise django_compatible(exc) from (exc.__cause__ or exc)
            logger.warning("notifykit: message %s not delivered (fail_silently): %s", mail.id, exc)
            return False
        message.notifykit_receipt = receipt
        return True


#: SMTPTransport's own default time-out, used when EMAIL_TIMEOUT is None.
_DEFAULT_TIMEOUT = float(inspect.signature(SMTPTransport).parameters["timeout"].default)


def _check_line_breaks(message: Any) -> None:
    """Raise BadHeaderError for a line break in any header value (header injection)."""
    values: list[tuple[str, Any]] = [("Subject", message.subject), ("From", message.from_email)]
    for name, field_name in (("To", "to"), ("Cc", "cc"), ("Bcc", "bcc"), ("Reply-To", "reply_to")):
        values.extend((name, v) for v in getattr(message, field_name, None) or ())
    for name, value in (message.extra_headers or {}).items():
        if not _LINE_BREAKS.isdisjoint(str(name)):
            raise BadHeaderError(f"Header names can't contain newlines (got {str(name)!r})")
        values.append((str(name), value))
    for name, value in values:
        text = "" if value is None else str(value)
        if not _LINE_BREAKS.isdisjoint(text):
            raise BadHeaderError(
                f"Header values can't contain newlines (got {text!r} for header {name!r})"
            )


def email_from_django(message: Any) -> Email:
    """Convert a Django ``EmailMessage`` / ``EmailMultiAlternatives`` to an :class:`Email`.

    Keeps the subject, body (``content_subtype = "html"`` makes it the HTML
    part), alternatives (the first ``text/html`` is the HTML part; others,
    such as ``text/calendar``, become :class:`~notifykit.Alternative` parts),
    attachments (``(filename, content, mimetype)`` tuples, MIME parts and
    forwarded messages; a part with a ``Content-ID`` becomes an inline
    image), to/cc/bcc/reply-to and extra headers. ``tags`` and ``metadata``
    attributes, as django-anymail names them, become the message's tags and
    metadata.

    As with Django's SMTP backend, the envelope is ``from_email`` (MAIL FROM)
    and ``message.recipients()`` (RCPT TO); extra ``From``, ``To``, ``Cc`` and
    ``Reply-To`` headers change what the headers show only. A line break in
    any header raises :class:`~notifykit.contrib.django.errors.BadHeaderError`.
    """
    _check_line_breaks(message)
    subject = str(message.subject or "")
    body = str(message.body or "")
    from_email = str(message.from_email) if message.from_email else None
    sender = from_email
    envelope_sender: str | None = None
    reply_to = [str(a) for a in message.reply_to or ()]
    to = [str(a) for a in message.to or ()]
    cc = [str(a) for a in message.cc or ()]
    bcc = [str(a) for a in message.bcc or ()]
    envelope_recipients: list[str] | None = None
    headers: dict[str, str] = {}
    for name, raw_value in (message.extra_headers or {}).items():
        lowered = str(name).lower()
        value = str(raw_value)
        if lowered == "from":
            sender, envelope_sender = value, from_email
        elif lowered == "reply-to":
            reply_to = list(parse_addresses(value))
        elif lowered == "subject":
            subject = value
        elif lowered in ("to", "cc"):
            if lowered == "to":
                to = list(parse_addresses(value))
            else:
                cc = list(parse_addresses(value))
            envelope_recipients = [str(a) for a in message.recipients()]
        else:
            headers[str(name)] = value

    text: str | None = None
    html: str | None = None
    alternatives: list[Alternative] = []
    if getattr(message, "content_subtype", "plain") == "html":
        html = body
    else:
        text = body
    for content, mimetype in _alternatives(message):
        kind = mimetype.split(";", 1)[0].strip()
        if kind == "text/html" and not html:
            html = str(content)
        elif kind == "text/plain" and not text:
            text = str(content)
        else:
            alternatives.append(Alternative(content, mimetype))
    if not text and not html:
        text = "\n"  # Django allows an empty body; an empty text part is still a message

    options: dict[str, Any] = {}
    if envelope_sender is not None:
        options["envelope_sender"] = envelope_sender
    if envelope_recipients is not None:
        options["envelope_recipients"] = envelope_recipients
    if alternatives:
        options["alternatives"] = alternatives
    return Email(
        to=to,
        subject=subject,
        text=text or None,
        html=html or None,
        sender=sender,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        headers=headers,
        attachments=[_attachment(a, i) for i, a in enumerate(message.attachments or (), 1)],
        tags=_tags(getattr(message, "tags", ())),
        metadata=dict(getattr(message, "metadata", None) or {}),
        derive_text=False,  # Django sends an HTML body as it is
        **options,
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
    mimetype = mimetype or mimetypes.guess_type(filename or "")[0] or "application/octet-stream"
    content = _content_bytes(content)
    if str(mimetype).lower() == _RFC822:
        return Attachment(filename or None, content, _RFC822)
    return Attachment(filename or _default_name(mimetype, number), content, mimetype)


_RFC822 = "message/rfc822"


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
    mimetype = part.get_content_type()
    filename = part.get_filename()
    if mimetype == _RFC822:  # MIMEMessage: the payload is the forwarded message
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else payload
        return Attachment(filename or None, _content_bytes(inner), _RFC822)
    if part.is_multipart():
        raise InvalidMessage(
            f"attachment {number}: a {mimetype} part cannot be attached; attach its parts, "
            "or the whole message as message/rfc822"
        )
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = b""
    content_id = part.get("Content-ID")
    return Attachment(
        filename or _default_name(mimetype, number),
        payload,
        mimetype,
        str(content_id).strip("<> ") if content_id else None,
    )


def _default_name(mimetype: str, number: int) -> str:
    return f"attachment-{number}{mimetypes.guess_extension(mimetype) or '.bin'}"
