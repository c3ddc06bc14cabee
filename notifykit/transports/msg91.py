"""MSG91 (Flow API v5): DLT-template SMS, India first, other countries too.

The module holds only what is MSG91's: :func:`build_request` makes the HTTP
request for one :class:`~notifykit.message.SMS` and :func:`parse_response`
reads the answer; both are pure (no I/O), so they are tested and benchmarked
alone. :class:`MSG91Transport` joins them through the shared pooled HTTP
session of :mod:`notifykit.transports._http`.

MSG91 answers errors with HTTP 200 or 4xx depending on the error, so the
status is never trusted alone: the body's ``type`` decides, and the
``message`` text tells which of the three delivery kinds an error is (see
:func:`classify_error`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidMessage,
    ProviderError,
    RejectedError,
    TransientError,
)
from notifykit.message import SMS
from notifykit.transports._batch import DEFAULT_BATCH_SIZE, BatchResult, send_batch
from notifykit.transports._http import (
    CheckResult,
    HTTPRequest,
    HTTPResponse,
    HTTPTransport,
    decode_json,
    localized_template,
    malformed,
    templates_option,
)

if TYPE_CHECKING:
    import httpx


__all__ = [
    "BALANCE_PATH",
    "DEFAULT_BASE_URL",
    "FLOW_PATH",
    "MSG91Transport",
    "build_balance_request",
    "build_request",
    "classify_error",
    "parse_balance",
    "parse_response",
]

DEFAULT_BASE_URL = "https://control.msg91.com"
FLOW_PATH = "/api/v5/flow/"
#: The legacy balance endpoint, asked with the ``authkey`` header (never in the URL).
BALANCE_PATH = "/api/balance.php"

# Substrings of MSG91's error ``message`` (lower-cased), checked in this order.
# Account-level problems come first so "Invalid authkey" is not read as an
# invalid message, and "account blocked" not as a blocked number.
_PROVIDER_HINTS = (
    "authentication",
    "authkey",
    "auth key",
    "unauthori",
    "whitelist",
    "ip not",
    "insufficient",
    "balance",
    "credit",
    "account",
    "suspend",
    "expired",
)
_TRANSIENT_HINTS = (
    "too many",
    "rate limit",
    "throttl",
    "try again",
    "temporar",
    "timed out",
    "timeout",
)
_REJECTED_HINTS = (
    "mobile",
    "number",
    "template",
    "flow",
    "variable",
    "dlt",
    "header",
    "sender",
    "not approved",
    "blacklist",
    "blocked",
    "dnd",
    "invalid",
    "missing",
)


def mobile_number(e164: str) -> str:
    """The number as MSG91 wants it: country code and number, no ``+`` (``919876543210``)."""
    return e164.lstrip("+")


def build_request(
    message: SMS,
    *,
    authkey: str,
    sender: str | None = None,
    template_id: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    short_url: bool | None = None,
    templates: Mapping[str, str] | None = None,
) -> HTTPRequest:
    """The Flow API request that sends ``message``.

    The template is ``message.template_id``, else ``template_id`` (the
    transport's default), looked up in ``templates`` (your name → MSG91's
    template id; an id not in it is sent as is); the sender is ``message.sender``, else ``sender``
    (optional: a flow may define its own). Each of ``message.variables``
    becomes a key of the recipient object, named exactly as in the template.

    Raises:
        InvalidMessage: no template id at all (MSG91's Flow API sends only
            templates), or a variable named ``mobiles`` (it would overwrite
            the number).
    """
    flow = message.template_id or template_id
    if flow and templates:
        flow = localized_template(templates, flow, message.metadata.get("locale"))
    if not flow:
        raise InvalidMessage(
            "MSG91 sends only flow/DLT templates: give the SMS a template_id "
            "(SMS(..., template_id=...)) or the transport a default "
            "(MSG91Transport(..., template_id=...))"
        )
    if "mobiles" in message.variables:
        raise InvalidMessage(
            "SMS variables: 'mobiles' is the recipient's number in MSG91; rename it"
        )
    recipient: dict[str, str] = {"mobiles": mobile_number(message.to)}
    recipient.update(message.variables)
    body: dict[str, object] = {"template_id": flow}
    chosen_sender = message.sender or sender
    if chosen_sender:
        body["sender"] = chosen_sender
    if short_url is not None:
        body["short_url"] = "1" if short_url else "0"
    body["recipients"] = [recipient]
    return HTTPRequest(
        f"{base_url.rstrip('/')}{FLOW_PATH}",
        {"authkey": authkey, "content-type": "application/json", "accept": "application/json"},
        body,
    )


def classify_error(status: int, message: str, code: str | None = None) -> type[DeliveryError]:
    """Which delivery kind a ``{"type": "error"}`` answer is (providers.md, MSG91 table).

    HTTP 401/403 is an account problem whatever the text says; otherwise the
    text decides: authentication, IP whitelisting, balance and account state
    are :class:`ProviderError`; rate limiting and "try again" are
    :class:`TransientError`; numbers, templates, variables, DLT headers and
    approvals are :class:`RejectedError`. An error MSG91 has not documented is
    a :class:`ProviderError`: it stops retries of this provider but lets a
    failover try the next one, where a wrong "rejected" would drop the message.
    """
    if status in (401, 403) or code in ("401", "403"):
        return ProviderError
    text = message.lower()
    if any(hint in text for hint in _PROVIDER_HINTS):
        return ProviderError
    if any(hint in text for hint in _TRANSIENT_HINTS):
        return TransientError
    if any(hint in text for hint in _REJECTED_HINTS):
        return RejectedError
    return ProviderError


def _error(status: int, data: Mapping[str, object]) -> DeliveryError:
    raw_message = data.get("message", data.get("msg"))
    message = str(raw_message) if raw_message not in (None, "") else "unspecified error"
    raw_code = data.get("code")
    code = None if raw_code in (None, "") else str(raw_code)
    kind = classify_error(status, message, code)
    text = f"MSG91 refused the request: {message[:300]}"
    if code is None and not 200 <= status < 300:
        code = str(status)
    return kind(text, provider_code=code)


def parse_response(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """Read the Flow API's answer: the request id, or raise the matching error.

    ``{"type": "success", "message": "<request id>"}`` returns the request id
    (``None`` if MSG91 left it out: the SMS was still accepted, and raising
    would make a composer send it twice). ``{"type": "error", ...}`` raises
    the kind :func:`classify_error` picks, whatever the HTTP status. 429, 5xx
    and malformed bodies are :class:`TransientError` (see
    :func:`~notifykit.transports._http.decode_json`).
    """
    data = decode_json(status, headers, body)
    if not isinstance(data, dict):
        raise malformed(status, "expected a JSON object")
    kind = data.get("type")
    if kind == "success":
        request_id = data.get("message")
        return str(request_id) if isinstance(request_id, (str, int)) and request_id != "" else None
    if kind == "error":
        raise _error(status, data)
    raise malformed(status, f"unknown type {kind!r}")


def build_balance_request(*, authkey: str, base_url: str = DEFAULT_BASE_URL) -> HTTPRequest:
    """The GET request :meth:`MSG91Transport.check` makes (transactional route balance)."""
    return HTTPRequest(
        f"{base_url.rstrip('/')}{BALANCE_PATH}?type=4",
        {"authkey": authkey, "accept": "application/json"},
        None,
    )


def parse_balance(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """Read the balance answer: a bare number, ``{"balance": …}``, or an error object."""
    data = decode_json(status, headers, body)
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return str(data)
    if isinstance(data, dict):
        if data.get("type") == "error" or data.get("msgType") == "error":
            raise _error(status, data)
        balance = data.get("balance")
        if isinstance(balance, (str, int, float)) and not isinstance(balance, bool):
            return str(balance)
    raise malformed(status, "no balance in the answer")


def _merge_recipients(
    first: dict[str, object], bodies: list[dict[str, object]]
) -> dict[str, object]:
    recipients: list[object] = []
    for body in bodies:
        part = body["recipients"]
        assert isinstance(part, list)  # build_request always writes a list
        recipients.extend(part)
    return {**first, "recipients": recipients}


def _optional_str(value: object, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{what}: expected a non-empty string")
    return value.strip()


class MSG91Transport(HTTPTransport):
    """Send SMS through MSG91's Flow API (v5).

    Args:
        authkey: the MSG91 auth key (sent in the ``authkey`` header only).
        sender: the default DLT header (6 letters in India) when an SMS has no
            ``sender``; optional when the flow defines it.
        template_id: the default flow/DLT template id when an SMS has none.
        base_url: the API root (a local fake in tests).
        http_client: an ``httpx.Client`` to use instead of the pooled one this
            transport creates; it keeps its own settings and is not closed by
            :meth:`close`.
        timeout: seconds allowed to connect, send and read the answer.
        short_url: ask MSG91 to shorten links (``True``/``False``); left out
            of the request when ``None``.
        templates: your template names mapped to MSG91 template ids
            (``{"otp": "65e06f45d6fc05278c7d47e2"}``), so one SMS with
            ``template_id="otp"`` can fail over between providers that each
            have their own id for the same DLT template.
        name: the transport's name in receipts and errors (``"msg91"``); give
            two accounts different names.

    The recipient's number goes as country code and number without ``+``;
    the request id MSG91 returns is the receipt's ``provider_message_id``.
    """

    scheme: ClassVar[str] = "msg91"
    key_label: ClassVar[str] = "MSG91 authkey"

    def __init__(
        self,
        authkey: str,
        sender: str | None = None,
        template_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        http_client: httpx.Client | None = None,
        timeout: float = 10.0,
        *,
        short_url: bool | None = None,
        templates: Mapping[str, str] | None = None,
        name: str = "msg91",
    ) -> None:
        super().__init__(
            authkey, base_url=base_url, http_client=http_client, timeout=timeout, name=name
        )
        self.sender = _optional_str(sender, "sender")
        self.template_id = _optional_str(template_id, "template_id")
        if short_url is not None and not isinstance(short_url, bool):
            raise ConfigurationError("short_url: expected True, False or None")
        self.short_url = short_url
        self.templates = templates_option(templates)

    def build_request(self, message: SMS) -> HTTPRequest:
        return build_request(
            message,
            authkey=self._key,
            sender=self.sender,
            template_id=self.template_id,
            base_url=self.base_url,
            short_url=self.short_url,
            templates=self.templates,
        )

    def _parse(self, response: HTTPResponse) -> str | None:
        return parse_response(*response)

    #: The most recipients put in one Flow request by :meth:`send_batch`.
    batch_size: int = DEFAULT_BATCH_SIZE

    def send_batch(self, messages: Sequence[SMS]) -> list[BatchResult]:
        """Send many SMS in as few Flow requests as possible; one result per message.

        Messages with the same flow, sender and options go in one request
        (its ``recipients`` list, each recipient with its own variables), at
        most :attr:`batch_size` per request. Each message gets a
        :class:`~notifykit.receipt.Receipt` (the request id is shared by the
        group) or the error it met, in order; nothing is raised. MSG91 accepts
        or refuses a request as a whole, so when it rejects a group (a bad
        number, variables that do not match), each message of the group is
        sent on its own to find out which one; another failure is every
        message's error and nothing is resent. A rate limit counts one slot
        per request.
        """
        return send_batch(
            self,
            messages,
            recipient_field="recipients",
            merge=_merge_recipients,
            batch_size=self.batch_size,
        )

    def check(self) -> CheckResult:
        """Check the auth key without sending: ask MSG91 for the transactional balance.

        Best effort: MSG91 documents no authenticated "who am I" call on the
        v5 API, so this asks the long-standing balance endpoint
        (``GET /api/balance.php?type=4``) with the ``authkey`` *header*, never
        the key in the URL. A refused key raises :class:`ProviderError`, an
        unreachable API :class:`TransientError`.
        """

        def run() -> CheckResult:
            request = build_balance_request(authkey=self._key, base_url=self.base_url)
            balance = parse_balance(*self._exchange(request, "GET"))
            return CheckResult(self.name, f"authkey accepted; SMS balance {balance}", balance)

        return self._checked(run)
