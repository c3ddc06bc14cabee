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
        └── AllTransportsFailed            a composer tried everything; lists every cause

Exceptions also inherit from the matching builtin, so ``except ValueError`` in
host code keeps working. No message, ``repr`` or attribute of these errors ever
holds a password, an API key or an auth header: transports mask secrets before
they build an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
    "TemplateError",
    "TransientError",
]


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
            maybe_delivered=any(e.maybe_delivered for e in self.errors),
        )

    def __str__(self) -> str:
        return self.message
