"""Amazon SES (API v2) transport: boto3 ``sesv2`` ``SendEmail`` with raw MIME.

The message goes to SES exactly as :meth:`Email.to_mime` builds it (raw
content), so both bodies, attachments and inline images arrive byte for byte;
``Destination`` decides who receives it, which is how Bcc works. SES's own
``MessageId`` becomes the receipt's ``provider_message_id``.

Three choices worth knowing:

- **Retries belong to notifykit.** The boto3 client is built with
  ``retries={"total_max_attempts": 1}``: one HTTP request per ``send()``. boto3's
  default would silently retry throttling up to three times inside one call,
  hiding the attempts from the delivery log and stacking its backoff on top of
  :class:`~notifykit.FailoverTransport`'s. (botocore's ``max_attempts`` key counts
  *retries*, so ``{"max_attempts": 1}`` would still allow one retry;
  ``total_max_attempts`` counts requests.)
- **One client per transport**, created on first use under a lock and reused by
  every thread (boto3 clients are thread-safe; sessions are not, so the session
  is only touched under the lock). ``client=`` injects your own client, which
  the transport then never closes.
- **boto3 is imported lazily**, so ``import notifykit`` never pays for it; a
  missing boto3 is a :class:`~notifykit.errors.MissingDependency` naming the
  ``notifykit-py[ses]`` extra.

Every botocore failure is translated in one place, :func:`map_botocore_error`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

import attrs

from notifykit._mime import display_name
from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    MissingDependency,
    ProviderError,
    RejectedError,
    TransientError,
)
from notifykit.message import address_parts
from notifykit.receipt import Receipt
from notifykit.transports._timeouts import DEFAULT_CONNECT_TIMEOUT
from notifykit.transports.base import BaseTransport

if TYPE_CHECKING:
    from types import ModuleType

    from mypy_boto3_sesv2 import SESV2Client

    from notifykit.message import Email, Message

__all__ = [
    "MAX_RAW_MESSAGE_SIZE",
    "MAX_RECIPIENTS",
    "SESQuota",
    "SESTransport",
    "build_send_email_kwargs",
    "map_botocore_error",
    "sanitize_tag",
]

#: SES API v2 refuses a raw message (headers, bodies and encoded attachments)
#: larger than 40 MB.
MAX_RAW_MESSAGE_SIZE = 40 * 1024 * 1024
#: SES refuses a message with more than 50 recipients (To, Cc and Bcc together).
MAX_RECIPIENTS = 50
#: SES message tag names and values: at most 256 characters of [A-Za-z0-9_-].
MAX_TAG_LENGTH = 256

_TAG_INVALID = re.compile(r"[^A-Za-z0-9_-]")

# --------------------------------------------------------------------------- errors

_TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_PROVIDER_CODES = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
        "IncompleteSignature",
        # The same conditions under SES API v1 names, for clients pointed at v1-style
        # endpoints or proxies that answer with them.
        "AccountSendingPausedException",
        "ConfigurationSetDoesNotExist",
        "ConfigurationSetSendingPausedException",
        "MailFromDomainNotVerified",
    }
)
_REJECTED_CODES = frozenset(
    {
        "MessageRejected",
        "BadRequestException",
        "InvalidParameterValue",
    }
)
_DAILY_QUOTA = re.compile(r"daily message quota", re.IGNORECASE)
_NOT_VERIFIED = re.compile(r"not verified|did not have authority to send from", re.IGNORECASE)
_ADDRESS = re.compile(r"[^\s@,;:<>()\[\]\"']+@[^\s@,;:<>()\[\]\"']+")


def _retry_after(response: Mapping[str, Any]) -> float | None:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _identities_named(text: str) -> set[str]:
    return {m.group(0).strip(".").lower() for m in _ADDRESS.finditer(text)}


def _names_sender(text: str, sender: str | None) -> bool:
    """Whether an "is not verified" error is about the sender (or says nothing else)."""
    lowered = text.lower()
    if "send from" in lowered:  # "Did not have authority to send from email …"
        return True
    sender_addr = (sender or "").lower()
    if sender_addr and sender_addr in lowered:
        return True
    domain = sender_addr.rpartition("@")[2]
    if domain and re.search(rf"(?<![\w.@-]){re.escape(domain)}(?![\w-]|\.\w)", lowered):
        return True  # the sender's domain identity, standing alone
    # No address named at all: the identity in question is unknown; the
    # account's verification setup is at fault, not one recipient.
    return not _identities_named(text)


def _client_error(
    code: str, text: str, status: int | None, response: Mapping[str, Any], sender: str | None
) -> DeliveryError:
    detail = f"SES {code}: {text}" if text else f"SES {code}"
    if code in _REJECTED_CODES:
        if _NOT_VERIFIED.search(text):
            # SES names the identities that failed the check. Only an unverified
            # *sender* is the account's problem (ProviderError); unverified
            # recipients (the SES sandbox) are this message's (RejectedError).
            if _names_sender(text, sender):
                return ProviderError(detail, provider_code=code)
            named = _identities_named(text)
            return RejectedError(detail, provider_code=code, rejected=dict.fromkeys(named, text))
        return RejectedError(detail, provider_code=code)
    if code in _PROVIDER_CODES or _DAILY_QUOTA.search(text):
        return ProviderError(detail, provider_code=code)
    if code in _TRANSIENT_CODES:
        return TransientError(detail, provider_code=code, retry_after=_retry_after(response))
    # A code this table does not know: trust the HTTP status. 429 and 5xx mean
    # "try again"; any other 4xx is something about this account or request that
    # a retry will not fix, so move on to the next transport.
    if status is not None and (status == 429 or status >= 500):
        return TransientError(detail, provider_code=code, retry_after=_retry_after(response))
    return ProviderError(detail, provider_code=code)


def map_botocore_error(exc: BaseException, *, sender: str | None = None) -> DeliveryError:
    """Translate a boto3/botocore exception into notifykit's delivery errors.

    This is the single place where botocore's exceptions are interpreted.
    ``sender`` (the bare From address) tells an unverified *sender* (the
    account cannot send: :class:`ProviderError`) from an unverified recipient
    in the SES sandbox (this message cannot be sent: :class:`RejectedError`).

    - ``ClientError``: by error code, as in the table of ``docs/transports.md``;
      an unknown code falls back on the HTTP status (429/5xx transient, other
      4xx provider).
    - ``EndpointConnectionError``, ``ConnectTimeoutError`` and other connection
      failures: :class:`TransientError` (nothing was sent).
    - ``ReadTimeoutError``, ``ConnectionClosedError`` and other failures after
      the request was written: :class:`TransientError` with
      ``maybe_delivered=True``.
    - No or partial credentials: :class:`ProviderError`.

    The caller raises the result ``from exc``.
    """
    from botocore import exceptions as bce
    from botocore.parsers import ResponseParserError

    if isinstance(exc, bce.ClientError):
        response: Mapping[str, Any] = exc.response or {}
        error = response.get("Error", {}) or {}
        code = str(error.get("Code") or "Unknown")
        text = str(error.get("Message") or "").strip()
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return _client_error(code, text, status, response, sender)
    name = type(exc).__name__
    if isinstance(exc, (bce.ReadTimeoutError, bce.ConnectionClosedError)):
        return TransientError(
            f"SES did not answer after the request was sent ({name}: {exc}); "
            "the message may have been delivered",
            provider_code=name,
            maybe_delivered=True,
        )
    if isinstance(exc, bce.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return ProviderError(
            f"the SES endpoint's TLS certificate failed verification ({exc})", provider_code=name
        )
    if isinstance(exc, bce.ConnectionError):  # EndpointConnectionError, ConnectTimeoutError, …
        return TransientError(f"cannot reach SES ({name}: {exc})", provider_code=name)
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return ProviderError(
            f"no usable AWS credentials ({exc}); pass them to SESTransport, put them in the "
            "DSN (ses://KEY:SECRET@?region=…) or configure boto3's credential chain",
            provider_code=name,
        )
    if isinstance(exc, (bce.CredentialRetrievalError, bce.UnknownCredentialError)):
        return ProviderError(f"cannot load AWS credentials ({exc})", provider_code=name)
    if isinstance(exc, bce.ParamValidationError):
        return RejectedError(f"SES refused the request parameters ({exc})", provider_code=name)
    if isinstance(exc, (bce.HTTPClientError, ResponseParserError)):
        # The request was (or may have been) written; the answer is lost or unreadable.
        return TransientError(
            f"SES answer lost ({name}: {exc}); the message may have been delivered",
            provider_code=name,
            maybe_delivered=True,
        )
    return TransientError(f"SES request failed ({name}: {exc})", provider_code=name)


# --------------------------------------------------------------------------- request


def sanitize_tag(text: str) -> str:
    """Make ``text`` a valid SES tag name or value.

    Every character outside ``[A-Za-z0-9_-]`` (spaces, dots, colons, accented
    letters…) becomes ``_`` and the result is cut to 256 characters, so
    ``"order shipped"`` → ``"order_shipped"`` and ``"café"`` → ``"caf_"``.
    """
    return _TAG_INVALID.sub("_", text)[:MAX_TAG_LENGTH]


def _email_tags(message: Email) -> list[dict[str, str]]:
    tags: dict[str, str] = {}
    pairs: list[tuple[str, object]] = [(tag, "true") for tag in message.tags]
    pairs += list(message.metadata.items())
    for raw_name, raw_value in pairs:
        if raw_value is None:
            continue
        if isinstance(raw_value, bool):
            raw_value = "true" if raw_value else "false"
        name, value = sanitize_tag(raw_name), sanitize_tag(str(raw_value))
        if name and value and name not in tags:  # the first of two clashing names wins
            tags[name] = value
    return [{"Name": k, "Value": v} for k, v in tags.items()]


def _ses_address(address: str, field: str) -> str:
    """The bare address in the form SES accepts: ASCII, domain in punycode."""
    bare = address_parts(address).addr  # validated when the Email was built
    local, _, domain = bare.rpartition("@")
    if not local.isascii():
        raise RejectedError(
            f"{field}: SES cannot deliver to an address with a non-ASCII local part ({bare!r})",
            rejected={bare: "non-ASCII local part"},
        )
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise RejectedError(
                f"{field}: the domain of {bare!r} cannot be written in punycode",
                rejected={bare: "invalid internationalised domain"},
            ) from exc
    return f"{local}@{domain}"


def _from_address(sender: str) -> str:
    name = address_parts(sender).name
    bare = _ses_address(sender, "sender")
    # SES wants a non-ASCII display name as RFC 2047 encoded words; names with
    # specials are quoted, and encoded-word look-alikes encoded, as in the MIME.
    return f"{display_name(name)} <{bare}>" if name else bare


def build_send_email_kwargs(
    message: Email,
    *,
    configuration_set: str | None = None,
    tags_from_message: bool = True,
    max_size: int = MAX_RAW_MESSAGE_SIZE,
    max_recipients: int = MAX_RECIPIENTS,
) -> dict[str, Any]:
    """The keyword arguments for ``sesv2.send_email`` that deliver ``message``.

    A pure function (no I/O), so the request can be tested and benchmarked
    without SES. Content is the raw MIME of :meth:`Email.to_mime`; Destination
    holds the bare addresses of to, cc and bcc, each address once (the first
    field it appears in wins), or the message's ``envelope_recipients`` when it
    has them. An ``envelope_sender`` becomes ``FeedbackForwardingEmailAddress``
    (where SES sends bounces and complaints; SES writes its own Return-Path).
    A message SES would refuse for its size (over ``max_size`` bytes of MIME)
    or its number of recipients (more than ``max_recipients``) raises
    :class:`RejectedError` here, before any request.
    """
    if message.sender is None:
        # to_mime() says the same; say it before building the MIME.
        message.to_bytes()
    assert message.sender is not None
    seen: set[str] = set()
    destination: dict[str, list[str]] = {}
    # With raw content the headers come from the MIME and Destination is the
    # envelope: explicit envelope recipients replace to + cc + bcc there.
    fields: tuple[tuple[str, Sequence[str]], ...] = (
        (("ToAddresses", message.envelope_recipients),)
        if message.envelope_recipients is not None
        else (
            ("ToAddresses", message.to),
            ("CcAddresses", message.cc),
            ("BccAddresses", message.bcc),
        )
    )
    for key, addresses in fields:
        bare = []
        for address in addresses:
            ses_address = _ses_address(address, key)
            if ses_address.lower() not in seen:
                seen.add(ses_address.lower())
                bare.append(ses_address)
        if bare:
            destination[key] = bare
    if len(seen) > max_recipients:
        raise RejectedError(
            f"the message has {len(seen)} recipients; SES accepts at most {max_recipients} "
            "per message (split it into several messages)"
        )
    # Base64 makes attachments at least 4/3 their size: refuse a message that is
    # surely too large before spending time encoding it.
    if sum(len(a.content) for a in message.attachments) * 4 // 3 > max_size:
        raise RejectedError(
            f"the message's attachments alone exceed {max_size:,} bytes once encoded; "
            f"SES accepts at most {max_size:,} bytes of MIME"
        )
    raw = message.to_bytes()
    if len(raw) > max_size:
        raise RejectedError(
            f"the message is {len(raw):,} bytes as MIME; SES accepts at most {max_size:,}"
        )
    kwargs: dict[str, Any] = {
        "FromEmailAddress": _from_address(message.sender),
        "Destination": destination,
        "Content": {"Raw": {"Data": raw}},
    }
    if message.envelope_sender is not None:
        # SES writes its own Return-Path; the envelope sender is where SES
        # forwards bounces and complaints.
        kwargs["FeedbackForwardingEmailAddress"] = _ses_address(
            message.envelope_sender, "envelope_sender"
        )
    if message.reply_to:
        kwargs["ReplyToAddresses"] = [_ses_address(a, "reply_to") for a in message.reply_to]
    if configuration_set:
        kwargs["ConfigurationSetName"] = configuration_set
    if tags_from_message:
        tags = _email_tags(message)
        if tags:
            kwargs["EmailTags"] = tags
    return kwargs


# --------------------------------------------------------------------------- transport


def _import_boto3() -> ModuleType:
    try:
        import boto3
    except ImportError as exc:
        raise MissingDependency("boto3", "ses", "SESTransport") from exc
    return boto3


@attrs.frozen
class SESQuota:
    """The SES account's sending limits, as ``GetAccount`` reports them.

    Attributes:
        max_24_hour_send: messages the account may send in 24 hours
            (``-1`` means unlimited).
        max_send_rate: messages per second.
        sent_last_24_hours: messages sent in the past 24 hours.
        sending_enabled: whether the account may send at all (``False`` when
            paused), or ``None`` if SES did not say.
        production_access: ``False`` while the account is in the SES sandbox
            (only verified recipients), or ``None`` if SES did not say.
        enforcement_status: ``"HEALTHY"``, ``"PROBATION"`` or ``"SHUTDOWN"``.
    """

    max_24_hour_send: float
    max_send_rate: float
    sent_last_24_hours: float
    sending_enabled: bool | None = None
    production_access: bool | None = None
    enforcement_status: str | None = None

    @property
    def remaining_24_hours(self) -> float | None:
        """Messages still allowed in the current 24 hours, or ``None`` when unlimited."""
        if self.max_24_hour_send < 0:
            return None
        return max(0.0, self.max_24_hour_send - self.sent_last_24_hours)


class SESTransport(BaseTransport):
    """Send e-mail through Amazon SES (API v2) with raw MIME content.

    Args:
        region: the AWS region (``"ap-south-1"``); ``None`` takes it from
            boto3's configuration (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
            ``~/.aws/config``). No region at all is a :class:`ConfigurationError`.
        configuration_set: the SES configuration set to send with (event
            publishing, dedicated IPs).
        client: a boto3 ``sesv2`` client to use instead of creating one; the
            transport never closes it.
        tags_from_message: map the message's ``tags`` (``name=true``) and
            ``metadata`` (``key=value``) to SES message tags; characters SES does
            not allow become ``_`` (see :func:`sanitize_tag`).
        access_key_id, secret_access_key, session_token: explicit credentials
            (the DSN form ``ses://KEY:SECRET@?region=…``); by default boto3's
            usual chain (environment, shared files, instance role) is used.
            They never appear in ``str()``, ``repr()`` or an error message.
        endpoint_url: another SES endpoint (a VPC endpoint, a local emulator).
        timeout: seconds to wait for SES's answer to each request (botocore's
            ``read_timeout``).
        connect_timeout: seconds to open the connection (TCP and TLS; botocore's
            ``connect_timeout``); default 5, or ``timeout`` when shorter, so an
            unreachable endpoint fails fast and a failover moves on.
    """

    channels: frozenset[str] = frozenset({"email"})
    scheme: ClassVar[str] = "ses"

    def __init__(
        self,
        region: str | None = None,
        configuration_set: str | None = None,
        client: SESV2Client | None = None,
        tags_from_message: bool = True,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
    ) -> None:
        for label, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if value is None and label == "connect_timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(
                    f"SESTransport {label} must be a positive number, not {value!r}"
                )
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigurationError(
                "SESTransport needs both access_key_id and secret_access_key, or neither "
                "(to use boto3's credential chain)"
            )
        if session_token is not None and access_key_id is None:
            raise ConfigurationError(
                "SESTransport session_token needs access_key_id and secret_access_key"
            )
        self.configuration_set = configuration_set or None
        self.tags_from_message = tags_from_message
        if endpoint_url:
            from notifykit.config import _check_http_url

            _check_http_url(endpoint_url, "SESTransport endpoint_url")
        self.endpoint_url = endpoint_url or None
        self.timeout = float(timeout)
        self.connect_timeout = float(
            connect_timeout
            if connect_timeout is not None
            else min(DEFAULT_CONNECT_TIMEOUT, self.timeout)
        )
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        self._lock = threading.Lock()
        self._owns_client = client is None
        self._client: SESV2Client | None = client
        self._session: Any = None
        if client is not None:
            resolved = region or client.meta.region_name
        else:
            boto3 = _import_boto3()
            # A boto3 session resolves the region and credentials chain once, here.
            self._session = boto3.session.Session(
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                aws_session_token=session_token,
                region_name=region,
            )
            resolved = self._session.region_name
        if not resolved:
            raise ConfigurationError(
                "SESTransport needs an AWS region: pass region=..., add ?region=... to the "
                "ses:// URL, or set AWS_REGION"
            )
        self.region: str = resolved
        self.name = f"ses:{self.region}"

    # -- the client

    @property
    def client(self) -> SESV2Client:
        """The boto3 ``sesv2`` client, created on first use and then reused."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._create_client()
            return self._client

    def _create_client(self) -> SESV2Client:
        from botocore.config import Config

        config = Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.timeout,
            # One request per send(): notifykit's Retry decides what to retry.
            retries={"total_max_attempts": 1, "mode": "standard"},
            user_agent_extra="notifykit",
        )
        client: SESV2Client = self._session.client(
            "sesv2", region_name=self.region, endpoint_url=self.endpoint_url, config=config
        )
        return client

    # -- sending

    def build_request(self, message: Email) -> dict[str, Any]:
        """The ``send_email`` keyword arguments for ``message``.

        See :func:`build_send_email_kwargs`; handy to inspect what would be sent.
        """
        return build_send_email_kwargs(
            message,
            configuration_set=self.configuration_set,
            tags_from_message=self.tags_from_message,
        )

    def _send(self, message: Message) -> Receipt:
        email: Email = message  # type: ignore[assignment]  # send() checked the channel
        kwargs = self.build_request(email)
        sender = parseaddr(kwargs["FromEmailAddress"])[1]
        try:
            response = self.client.send_email(**kwargs)
        except Exception as exc:
            if not _is_botocore_error(exc):
                raise
            raise map_botocore_error(exc, sender=sender) from exc
        return Receipt(
            message_id=email.id,
            transport=self.name,
            provider_message_id=response.get("MessageId"),
            accepted=email.recipients,
        )

    def check(self) -> SESQuota:
        """Ask SES for the account's sending quota, without sending anything.

        Proves the credentials, region and endpoint work (``notifykit check
        ses://…`` calls it). Failures raise the same delivery errors as
        :meth:`send`: bad credentials are a :class:`ProviderError`, an
        unreachable endpoint a :class:`TransientError`.
        """
        try:
            account = self.client.get_account()
        except Exception as exc:
            if not _is_botocore_error(exc):
                raise
            error = map_botocore_error(exc)
            self._mask_error(error, cause=exc)
            error.transport = self.name
            raise error from exc
        quota = account.get("SendQuota", {})
        return SESQuota(
            max_24_hour_send=float(quota.get("Max24HourSend", 0.0)),
            max_send_rate=float(quota.get("MaxSendRate", 0.0)),
            sent_last_24_hours=float(quota.get("SentLast24Hours", 0.0)),
            sending_enabled=account.get("SendingEnabled"),
            production_access=account.get("ProductionAccessEnabled"),
            enforcement_status=account.get("EnforcementStatus"),
        )

    def close(self) -> None:
        """Close the client's connections; the next send creates a fresh client.

        An injected client is left open: whoever made it owns it.
        """
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- secrets and names

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._secret_access_key, self._session_token)

    def __str__(self) -> str:
        params = {"region": self.region}
        if self.configuration_set:
            params["configuration_set"] = self.configuration_set
        if self.endpoint_url:
            params["endpoint_url"] = self.endpoint_url
        return f"ses://?{urlencode(params, quote_via=quote, safe='')}"

    def __repr__(self) -> str:
        credentials = " credentials=***" if self._access_key_id else ""
        return f"<{type(self).__name__} {self}{credentials}>"


def _is_botocore_error(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return isinstance(exc, (BotoCoreError, ClientError, ResponseParserError))
