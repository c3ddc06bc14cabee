"""Errors of the Django e-mail backend that both notifykit and Django code can catch.

Django documents ``send_mail()`` raising :class:`smtplib.SMTPException`, and
projects catch ``SMTPException``, ``OSError``, ``ConnectionError``,
``socket.timeout`` or ``ssl.SSLError`` around it. notifykit code catches
:class:`~notifykit.errors.TransientError`, ``ProviderError``... The backend
therefore raises errors that are both: :func:`django_compatible` turns a
notifykit :class:`~notifykit.errors.DeliveryError` into an instance of a class
deriving from

- the notifykit error's own class (``TransientError``, ``RejectedError``...),
- :class:`smtplib.SMTPException` -- or the smtplib exception that caused it,
  such as ``SMTPAuthenticationError`` or ``SMTPRecipientsRefused``, with its
  ``smtp_code``/``smtp_error``/``recipients`` attributes,
- and, when the cause was a socket or TLS error Django's backend would have
  let through (``ConnectionRefusedError``, ``TimeoutError``, ``ssl.SSLError``,
  ``socket.gaierror``), that class too, with its ``errno``.

Its message, ``repr`` and attributes are the notifykit error's (secrets masked).
:class:`BadHeaderError` is both Django's ``BadHeaderError`` and notifykit's
:class:`~notifykit.errors.InvalidMessage`.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from typing import Any

from notifykit.errors import AllTransportsFailed, DeliveryError, InvalidMessage

try:  # Django's own class; Django 7 may drop it (it is a ValueError either way)
    from django.core.mail import BadHeaderError as _DjangoBadHeaderError
except ImportError:  # pragma: no cover - depends on the Django version
    _DjangoBadHeaderError = ValueError

__all__ = ["BadHeaderError", "django_compatible"]


class BadHeaderError(InvalidMessage, _DjangoBadHeaderError):  # type: ignore[misc]
    """A header value holds a line break (header injection).

    Both :class:`django.core.mail.BadHeaderError` (so Django's documented
    ``except BadHeaderError`` works) and notifykit's
    :class:`~notifykit.errors.InvalidMessage`; a ``ValueError`` either way.
    """


# Causes kept as an extra base because Django's SMTP backend lets them through
# unwrapped (they are OSErrors, not SMTPExceptions). Most specific first.
_SOCKET_ERRORS: tuple[type[OSError], ...] = (
    ssl.SSLCertVerificationError,
    ssl.SSLError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    ConnectionError,
    TimeoutError,
)

_lock = threading.Lock()
_classes: dict[
    tuple[type[DeliveryError], type[OSError], type[OSError] | None], type[DeliveryError]
] = {}


def _stdlib_causes(exc: BaseException) -> list[OSError]:
    """The smtplib/socket/ssl exceptions behind ``exc`` (its cause chain), outermost first."""
    if isinstance(exc, AllTransportsFailed):
        chains = [_stdlib_causes(e) for e in exc.errors]
        kinds = {tuple(type(c) for c in chain) for chain in chains}
        # Only when every transport failed the same way does one cause speak for all.
        return chains[-1] if chains and len(kinds) == 1 else []
    found: list[OSError] = []
    current = exc.__cause__ or exc.__context__
    while current is not None and len(found) < 5:
        if isinstance(current, OSError) and not isinstance(current, DeliveryError):
            found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _bases(causes: list[OSError]) -> tuple[type[OSError], type[OSError] | None]:
    """(the smtplib class, the socket/TLS class or None) that ``causes`` call for."""
    smtp_base: type[OSError] = next(
        (type(c) for c in causes if isinstance(c, smtplib.SMTPException)), smtplib.SMTPException
    )
    extra = next(
        (kind for c in causes for kind in _SOCKET_ERRORS if isinstance(c, kind)),
        None,
    )
    return smtp_base, extra


def _compat_class(
    kind: type[DeliveryError], smtp_base: type[OSError], extra: type[OSError] | None
) -> type[DeliveryError]:
    key = (kind, smtp_base, extra)
    with _lock:
        made = _classes.get(key)
        if made is None:
            bases = (kind, smtp_base) if extra is None else (kind, smtp_base, extra)
            made = type(
                kind.__name__,
                bases,
                {
                    "__module__": kind.__module__,
                    "__qualname__": kind.__qualname__,
                    "__doc__": f"{kind.__name__}, also {', '.join(b.__name__ for b in bases[1:])}.",
                    "__reduce__": _reduce,
                    "_compat_bases": key,
                },
            )
            _classes[key] = made
    return made


def _reduce(self: DeliveryError) -> tuple[Any, ...]:
    kind, smtp_base, extra = type(self)._compat_bases  # type: ignore[attr-defined]
    errno = getattr(self, "errno", None)
    errno_args = (errno, getattr(self, "strerror", None)) if errno is not None else ()
    return (_rebuild, (kind, smtp_base, extra, errno_args, dict(self.__dict__)))


def _rebuild(
    kind: type[DeliveryError],
    smtp_base: type[OSError],
    extra: type[OSError] | None,
    errno_args: tuple[Any, ...],
    state: dict[str, Any],
) -> DeliveryError:
    cls = _compat_class(kind, smtp_base, extra)
    new = cls.__new__(cls)
    if errno_args:
        OSError.__init__(new, *errno_args)
    new.__dict__.update(state)
    new.args = (state.get("message", ""),)
    return new


def django_compatible(exc: DeliveryError) -> DeliveryError:
    """``exc`` as an instance of a class that is also an smtplib/socket error (see above).

    The result carries ``exc``'s attributes (``transport``, ``attempts``,
    ``provider_code``...) and the causes' (``smtp_code``, ``recipients``,
    ``errno``...). Already compatible errors are returned as they are.
    """
    if isinstance(exc, smtplib.SMTPException):
        return exc
    causes = _stdlib_causes(exc)
    smtp_base, extra = _bases(causes)
    cls = _compat_class(type(exc), smtp_base, extra)
    new = cls.__new__(cls)
    for cause in reversed(causes):  # the outermost cause's attributes win
        if cause.errno is not None and not isinstance(cause, smtplib.SMTPException):
            OSError.__init__(new, cause.errno, cause.strerror)
        for name in ("smtp_code", "smtp_error", "recipients", "sender", "library", "reason"):
            if name in cause.__dict__:
                new.__dict__[name] = cause.__dict__[name]
    new.__dict__.update(exc.__dict__)
    new.args = exc.args
    new.__traceback__ = exc.__traceback__
    return new
