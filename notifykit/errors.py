"""The notifykit error tree.

Every error notifykit raises is a :class:`NotifyKitError`; third-party errors
(smtplib, socket, ssl, httpx, botocore) are translated in one place per family
and chained with ``raise ... from exc``::

    NotifyKitError
    ├── ConfigurationError(ValueError)     bad DSN, impossible option; never retried
    │   └── MissingDependency(ImportError) names the extra: pip install "notifykit-py[sms]"
    ├── InvalidMessage(ValueError)         bad address or number, header injection, empty message
    ├── TemplateError                      unknown template, missing variable
    └── DeliveryError                      .transport, .attempts, .provider_code
        ├── TransientError                 not delivered, try later (.retry_after, .maybe_delivered)
        ├── ProviderError                  this provider cannot send now: auth, account, quota
        ├── RejectedError                  this message will never be accepted
        │   └── Suppressed                 a recipient is on the suppression list
        └── AllTransportsFailed            a composer tried everything; lists every cause

Exceptions also inherit from the matching builtin, so ``except ValueError`` in
host code keeps working. No message, ``repr`` or attribute of these errors ever
holds a password, an API key or an auth header: transports mask secrets before
they build an error, and :func:`mask_exception` also masks the exceptions chained
to it (``__cause__`` and ``__context__``), so a logged traceback holds none either.

A secret is masked in every form it travels in: as written, percent-encoded
(``p%40ss``), escaped as ``repr`` and JSON write it, and base64-encoded at any
alignment (SMTP ``AUTH PLAIN`` and ``AUTH LOGIN`` send credentials that way, and
some servers echo them in their ``535`` reply). See :func:`secret_forms`.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from notifykit.receipt import Attempt

__all__ = [
    "AllTransportsFailed",
    "ConfigurationError",
    "DeliveryError",
    "InvalidMessage",
    "MissingDependency",
    "NotifyKitError",
    "ProviderError",
    "RejectedError",
    "Suppressed",
    "TemplateError",
    "TransientError",
    "mask_exception",
    "mask_text",
    "secret_forms",
]

#: What a masked secret is replaced with.
MASK = "***"
#: Secrets shorter than this are not masked (they would match ordinary text).
MIN_SECRET_LENGTH = 3
# A base64 fragment shorter than this is not masked (it would match ordinary text).
_MIN_BASE64_FRAGMENT = 4
_PERCENT = re.compile("%[0-9A-F]{2}")


def _base64_fragments(data: bytes) -> set[str]:
    """The base64 text that ``data`` becomes inside any longer base64 string.

    Base64 encodes 3 bytes as 4 characters, so how ``data`` looks depends on its
    offset (mod 3) in what was encoded (``AUTH PLAIN`` sends ``\\0user\\0pass``).
    For each offset this keeps only the characters that depend on ``data``
    alone, in the standard and the URL-safe alphabet.
    """
    out: set[str] = set()
    n = len(data)
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii").rstrip("=")
        # Characters fully inside data: bits [6i, 6i+6) within [8*offset, 8*(offset+n)).
        first = -(-8 * offset // 6)  # ceil
        last = (8 * (offset + n)) // 6  # exclusive: characters that need later bytes are out
        fragment = encoded[first:last]
        if len(fragment) >= _MIN_BASE64_FRAGMENT:
            out.add(fragment)
            out.add(fragment.replace("+", "-").replace("/", "_"))
    return out


@functools.lru_cache(maxsize=128)
def _forms(secret: str) -> tuple[str, ...]:
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(_lower_hex(encoded))
    forms.add(repr(secret)[1:-1])
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    try:
        raw = secret.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no byte form to look for
        raw = b""
    if raw:
        forms |= _base64_fragments(raw)
    kept = (f for f in forms if len(f) >= MIN_SECRET_LENGTH)
    # Longest first, so a short form never masks part of a longer one and leaves the rest.
    return tuple(sorted(kept, key=lambda f: (-len(f), f)))


def _lower_hex(text: str) -> str:
    return _PERCENT.sub(lambda m: m.group(0).lower(), text)


def secret_forms(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """Every form in which each secret may appear in a text, longest first.

    The secret as is; percent-encoded (``quote``, ``quote_plus``, upper- and
    lower-case hex); escaped as ``repr()`` and JSON write it; and its base64
    encoding at each of the three byte alignments (the characters that depend
    on the secret alone), in the standard and URL-safe alphabets. Secrets
    shorter than three characters are left out: they would match ordinary text.
    """
    out: set[str] = set()
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH:
            out.update(_forms(secret))
    return tuple(sorted(out, key=lambda f: (-len(f), f)))


def mask_text(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form of every secret (see :func:`secret_forms`) replaced by ``***``."""
    for form in secret_forms(secrets):
        if form in text:
            text = text.replace(form, MASK)
    return text


def _mask_value(value: Any, forms: tuple[str, ...], depth: int = 0) -> Any:
    """``value`` with secrets masked inside str, bytes and (nested) tuples, lists and dicts."""
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, MASK)
        return value
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        for form in forms:
            try:
                needle = form.encode("utf-8")
            except UnicodeEncodeError:
                continue
            if needle in data:
                data = data.replace(needle, MASK.encode())
        return data
    if depth > 4:
        return value
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_mask_value(v, forms, depth + 1) for v in value)
    if isinstance(value, list):
        return [_mask_value(v, forms, depth + 1) for v in value]
    if isinstance(value, dict):
        return {
            _mask_value(k, forms, depth + 1): _mask_value(v, forms, depth + 1)
            for k, v in value.items()
        }
    return value


class _MaskedCause(Exception):
    """Stands in, in an exception chain, for an exception whose text held a secret."""


def _leaks(exc: BaseException, forms: tuple[str, ...]) -> bool:
    try:
        texts = (str(exc), repr(exc), repr(exc.args))
    except Exception:  # a broken __str__: nothing to read, nothing to leak
        return False
    return any(form in text for text in texts for form in forms)


def _mask_one(exc: BaseException, forms: tuple[str, ...]) -> None:
    try:
        exc.args = tuple(_mask_value(a, forms) for a in exc.args)
    except Exception:  # an exception type that refuses new args
        pass
    if isinstance(exc, OSError):
        for attr in ("strerror", "filename", "filename2"):
            value = getattr(exc, attr, None)
            if isinstance(value, (str, bytes)):
                try:
                    setattr(exc, attr, _mask_value(value, forms))
                except (AttributeError, TypeError):
                    pass
    for name, value in list(vars(exc).items()):
        if name.startswith("__") and name != "__notes__":
            continue
        if not isinstance(value, (str, bytes, tuple, list, dict)):
            continue
        try:
            setattr(exc, name, _mask_value(value, forms))
        except (AttributeError, TypeError):
            pass


def mask_exception(exc: BaseException, secrets: Iterable[str | None]) -> None:
    """Mask ``secrets`` in ``exc`` and in every exception chained to it, in place.

    Each exception of the ``__cause__``/``__context__`` chain gets its ``args``,
    its string attributes (an SMTP reply, an ``OSError``'s ``strerror``) and its
    notes masked. An exception whose text still shows a secret after that (its
    ``__str__`` reads hidden state) is replaced in the chain by a stand-in that
    keeps its type name and its masked text. Tracebacks are kept.
    """
    forms = secret_forms(secrets)
    if not forms:
        return
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        _mask_one(current, forms)
        for link in ("__cause__", "__context__"):
            chained = getattr(current, link)
            if chained is None:
                continue
            _mask_one(chained, forms)
            if _leaks(chained, forms):
                stand_in = _MaskedCause(
                    f"{type(chained).__name__}: {_mask_value(_safe_str(chained), forms)}"
                )
                stand_in.__traceback__ = chained.__traceback__
                stand_in.__cause__ = chained.__cause__
                stand_in.__context__ = chained.__context__
                stand_in.__suppress_context__ = chained.__suppress_context__
                setattr(current, link, stand_in)
                chained = stand_in
            stack.append(chained)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "(unprintable)"


class NotifyKitError(Exception):
    """Base class of every error notifykit raises on purpose."""


class ConfigurationError(NotifyKitError, ValueError):
    """A setting, DSN or option is wrong or impossible; retrying will not help."""


class MissingDependency(ConfigurationError, ImportError):
    """An optional dependency is not installed.

    The message names the extra that provides it, e.g.
    ``pip install "notifykit-py[sms]"``.
    """

    def __init__(self, package: str, extra: str, feature: str | None = None) -> None:
        what = feature or package
        super().__init__(
            f"{what} needs the optional dependency {package!r}, which is not installed: "
            f'pip install "notifykit-py[{extra}]"'
        )
        self.package = package
        self.extra = extra


class InvalidMessage(NotifyKitError, ValueError):
    """A message cannot be built: a bad address or number, header injection, no body."""


class TemplateError(NotifyKitError):
    """A template is unknown, broken, or needs a variable the context does not have."""

    def __init__(
        self, message: str, *, template: str | None = None, lineno: int | None = None
    ) -> None:
        super().__init__(message)
        self.template = template
        self.lineno = lineno


class DeliveryError(NotifyKitError):
    """A message was not delivered.

    Attributes:
        transport: the name of the transport that failed (``"smtp:mail.example.com:587"``).
        attempts: every :class:`~notifykit.receipt.Attempt` made for the message.
        provider_code: the provider's own code (an SMTP reply code, an API error
            code), as a string, when there is one.
        maybe_delivered: the message may have reached the provider although no
            answer came back: resending it may deliver it twice.
    """

    #: The :class:`~notifykit.receipt.Attempt` outcome this kind of error maps to.
    kind: str = "failed"

    def __init__(
        self,
        message: str,
        *,
        transport: str | None = None,
        attempts: Sequence[Attempt] = (),
        provider_code: str | int | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transport = transport
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        self.provider_code = None if provider_code is None else str(provider_code)
        self.maybe_delivered = maybe_delivered

    def __str__(self) -> str:
        if self.transport and not self.message.startswith(self.transport):
            return f"{self.transport}: {self.message}"
        return self.message

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        if self.transport:
            parts.append(f"transport={self.transport!r}")
        if self.provider_code is not None:
            parts.append(f"provider_code={self.provider_code!r}")
        if self.maybe_delivered:
            parts.append("maybe_delivered=True")
        return f"{type(self).__name__}({', '.join(parts)})"


class TransientError(DeliveryError):
    """Not delivered now, but the same transport may succeed later.

    Connection refused, time-outs, SMTP 4xx replies, HTTP 429/5xx, throttling.
    ``retry_after`` (seconds) is the provider's own hint, when it gave one.
    """

    kind = "transient"

    def __init__(
        self,
        message: str,
        *,
        transport: str | None = None,
        attempts: Sequence[Attempt] = (),
        provider_code: str | int | None = None,
        maybe_delivered: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            transport=transport,
            attempts=attempts,
            provider_code=provider_code,
            maybe_delivered=maybe_delivered,
        )
        self.retry_after = retry_after


class ProviderError(DeliveryError):
    """This provider cannot send anything now: bad credentials, account paused, quota used.

    Retrying the same provider will not help; a composer moves on to the next one.
    """

    kind = "provider"


class RejectedError(DeliveryError):
    """This message will never be accepted: a bad recipient, content refused.

    Another provider would refuse it too, so composers raise it at once.
    ``rejected`` maps each refused recipient to the provider's reason.
    """

    kind = "rejected"

    def __init__(
        self,
        message: str,
        *,
        transport: str | None = None,
        attempts: Sequence[Attempt] = (),
        provider_code: str | int | None = None,
        rejected: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            message, transport=transport, attempts=attempts, provider_code=provider_code
        )
        self.rejected: dict[str, str] = dict(rejected or {})


class Suppressed(RejectedError):
    """A recipient is on the suppression list (it hard-bounced or complained); nothing was sent.

    ``rejected`` maps each suppressed recipient to the reason it was
    suppressed. Send with ``ignore_suppression=True`` to override.
    """


class AllTransportsFailed(DeliveryError):
    """A composer tried every transport it has and none delivered the message.

    ``errors`` holds the last error of each transport, in the order tried, and
    the message lists each cause.
    """

    kind = "failed"

    def __init__(
        self,
        errors: Sequence[DeliveryError],
        *,
        transport: str | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        self.errors: tuple[DeliveryError, ...] = tuple(errors)
        causes = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors) or "no transport"
        super().__init__(
            f"all transports failed ({causes})",
            transport=transport,
            attempts=attempts,
            # True if ANY attempt may have delivered, not only each transport's last one.
            maybe_delivered=any(e.maybe_delivered for e in self.errors)
            or any(a.maybe_delivered for a in attempts),
        )

    def __str__(self) -> str:
        return self.message
