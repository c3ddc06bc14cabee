"""Fast2SMS (bulkV2 API): SMS to Indian numbers, DLT, quick and OTP routes.

The module holds only what is Fast2SMS's: :func:`build_request` makes the
HTTP request for one :class:`~notifykit.message.SMS` and :func:`parse_response`
reads the answer; both are pure (no I/O). :class:`Fast2SMSTransport` joins
them through the shared pooled HTTP session of
:mod:`notifykit.transports._http`.

The key goes in the ``authorization`` header of a JSON ``POST``; Fast2SMS
also accepts it in a GET query string, which this module never does (the key
would land in every proxy and server log on the way).

Fast2SMS delivers to Indian numbers only, written as 10 digits: any other
number is a :class:`~notifykit.errors.RejectedError` before a request is made.
Every documented ``status_code`` is mapped in :data:`STATUS_CODES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from notifykit.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidMessage,
    ProviderError,
    RejectedError,
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
    "BULK_PATH",
    "DEFAULT_BASE_URL",
    "ROUTES",
    "STATUS_CODES",
    "WALLET_PATH",
    "Fast2SMSTransport",
    "build_request",
    "build_wallet_request",
    "indian_number",
    "parse_response",
    "parse_wallet",
    "quick_language",
]

DEFAULT_BASE_URL = "https://www.fast2sms.com"
BULK_PATH = "/dev/bulkV2"
WALLET_PATH = "/dev/wallet"

Route = Literal["dlt", "q", "otp"]
#: The routes this transport speaks: DLT template, Quick SMS (free text), OTP.
ROUTES: tuple[str, ...] = ("dlt", "q", "otp")


#: Every documented ``status_code``: (the error class, Fast2SMS's meaning).
STATUS_CODES: dict[int, tuple[type[DeliveryError], str]] = {
    401: (RejectedError, "Sender ID missing"),
    402: (RejectedError, "Message text missing"),
    403: (RejectedError, "Route missing"),
    404: (RejectedError, "Language missing"),
    405: (RejectedError, "Numbers missing"),
    406: (RejectedError, "Invalid sender ID"),
    407: (RejectedError, "Invalid words used in message"),
    408: (RejectedError, "Invalid route"),
    409: (ProviderError, "Invalid route authentication"),
    410: (RejectedError, "Invalid language"),
    411: (RejectedError, "Invalid numbers"),
    412: (ProviderError, "Invalid authentication, check authorization key"),
    413: (ProviderError, "Authorization key disabled"),
    414: (ProviderError, "IP blacklisted in Dev API section"),
    415: (ProviderError, "Account disabled"),
    416: (ProviderError, "Insufficient wallet balance"),
    417: (RejectedError, "Use English letters or change language to unicode"),
    424: (RejectedError, "Invalid message ID (DLT)"),
    425: (RejectedError, "Invalid template"),
    426: (RejectedError, "Invalid link used in variables"),
    500: (RejectedError, "Template / sender id blacklisted at DLT"),
    990: (ProviderError, "Old API used"),
    995: (RejectedError, "Spamming detected (same number repeatedly)"),
    996: (ProviderError, "Complete KYC before using OTP API"),
    997: (RejectedError, "Only numeric variables in OTP route"),
    998: (RejectedError, "Use DLT or Quick route for bulk"),
    999: (ProviderError, "Minimum 100 INR transaction required before API use"),
}


def indian_number(e164: str) -> str:
    """The 10-digit number Fast2SMS wants (``9876543210``) from ``+919876543210``.

    Raises:
        RejectedError: the number is not Indian (+91 and 10 digits); Fast2SMS
            can never deliver it, so no request is made.
    """
    national = e164[3:]
    if not e164.startswith("+91") or len(national) != 10 or not national.isdigit():
        raise RejectedError(
            f"Fast2SMS delivers only to Indian numbers (+91 and 10 digits), not {e164}",
            rejected={e164: "not an Indian number"},
        )
    return national


def _variables_values(message: SMS) -> str:
    values = list(message.variables.values())
    for key, value in message.variables.items():
        if "|" in value:
            raise InvalidMessage(
                f"SMS variable {key!r} contains '|', which Fast2SMS uses to separate values"
            )
    return "|".join(values)


def _otp_value(message: SMS) -> str:
    variables = message.variables
    if "otp" in variables:
        value = variables["otp"]
    elif len(variables) == 1:
        value = next(iter(variables.values()))
    else:
        raise InvalidMessage("Fast2SMS OTP route: give the code as SMS(variables={'otp': '1234'})")
    if not value.isascii() or not value.isdigit():
        raise InvalidMessage("Fast2SMS OTP route: the code must be digits only")
    return value


def quick_language(message: SMS) -> str:
    """The quick route's ``language``: ``"english"`` or ``"unicode"``.

    ``"unicode"`` when the text needs UCS-2 (:attr:`SMS.encoding`), and also
    for GSM-7 texts with letters outside ASCII (``£``, ``é``, ``€``):
    Fast2SMS's ``english`` takes English letters only and refuses the rest
    with status 417, so those go as ``unicode`` at the UCS-2 price rather than
    not at all.
    """
    if message.encoding == "UCS-2" or not message.body.isascii():
        return "unicode"
    return "english"


def build_request(
    message: SMS,
    *,
    api_key: str,
    route: str = "dlt",
    sender_id: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    flash: bool = False,
    templates: Mapping[str, str] | None = None,
) -> HTTPRequest:
    """The bulkV2 request that sends ``message`` on ``route``.

    - ``dlt``: ``sender_id`` is ``message.sender``, else the transport's
      ``sender_id``; ``message`` is the DLT message id registered in Fast2SMS
      (``message.template_id``); ``variables_values`` is
      ``message.variables``' values joined by ``|`` **in the mapping's
      insertion order** (the order the dict was written, kept by
      ``to_dict``/``from_dict``), which must be the template's order.
    - ``q``: ``message`` is ``message.body`` (the text) and ``language`` is
      :func:`quick_language`'s choice. Fast2SMS's own sender is used.
    - ``otp``: ``variables_values`` is the code: ``variables["otp"]``, or the
      only variable.

    Raises:
        RejectedError: a number that is not Indian.
        InvalidMessage: the message lacks what the route needs (a DLT message
            id and sender, a text, a numeric code) or a variable holds ``|``.
        ConfigurationError: an unknown route.
    """
    if route not in ROUTES:
        raise ConfigurationError(f"Fast2SMS route {route!r} is not one of {', '.join(ROUTES)}")
    number = indian_number(message.to)
    body: dict[str, object] = {"route": route}
    if route == "dlt":
        if not message.template_id:
            raise InvalidMessage(
                "Fast2SMS DLT route: the SMS needs template_id (the DLT message id "
                "registered in Fast2SMS)"
            )
        chosen_sender = message.sender or sender_id
        if not chosen_sender:
            raise InvalidMessage(
                "Fast2SMS DLT route: no sender ID; give SMS(sender=...) or "
                "Fast2SMSTransport(sender_id=...)"
            )
        body["sender_id"] = chosen_sender
        body["message"] = localized_template(
            templates or {}, message.template_id, message.metadata.get("locale")
        )
        if message.variables:
            body["variables_values"] = _variables_values(message)
    elif route == "q":
        if not message.body.strip():
            raise InvalidMessage("Fast2SMS quick route sends text: the SMS body is empty")
        body["message"] = message.body
        body["language"] = quick_language(message)
    else:
        body["variables_values"] = _otp_value(message)
    if route != "otp":
        body["flash"] = "1" if flash else "0"
    body["numbers"] = number
    return HTTPRequest(
        f"{base_url.rstrip('/')}{BULK_PATH}",
        {
            "authorization": api_key,
            "content-type": "application/json",
            "accept": "application/json",
        },
        body,
    )


def _merge_numbers(first: dict[str, object], bodies: list[dict[str, object]]) -> dict[str, object]:
    return {**first, "numbers": ",".join(str(body["numbers"]) for body in bodies)}


def _text(value: object) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _is_true(value: object) -> bool | None:
    if value is True or value in ("true", "True", 1):
        return True
    if value is False or value in ("false", "False", 0):
        return False
    return None


def _error(status: int, data: Mapping[str, object]) -> DeliveryError:
    raw = data.get("status_code")
    try:
        code: int | None = int(str(raw))
    except ValueError:
        code = None
    text = _text(data.get("message"))[:300]
    known = STATUS_CODES.get(code) if code is not None else None
    if known is not None:
        kind, meaning = known
        reason = text or meaning
    else:
        # An undocumented code: stop retrying this provider, let a failover try another.
        kind, reason = ProviderError, text or "unknown error"
    return kind(
        f"Fast2SMS refused the request ({code if code is not None else f'HTTP {status}'}: "
        f"{reason})",
        provider_code=code if code is not None else status,
    )


def parse_response(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """Read the bulkV2 answer: the ``request_id``, or raise the matching error.

    ``{"return": true, "request_id": ...}`` returns the id (``None`` if it is
    missing: the SMS was accepted, raising would send it twice).
    ``{"return": false, "status_code": N, ...}`` raises the class
    :data:`STATUS_CODES` gives N, whatever the HTTP status (an undocumented
    N is a :class:`ProviderError`). 429, 5xx and malformed bodies are
    :class:`TransientError`.
    """
    data = decode_json(status, headers, body)
    if not isinstance(data, dict):
        raise malformed(status, "expected a JSON object")
    ok = _is_true(data.get("return"))
    if ok is True:
        request_id = data.get("request_id")
        return str(request_id) if isinstance(request_id, (str, int)) and request_id != "" else None
    if ok is False:
        raise _error(status, data)
    raise malformed(status, "no 'return' field")


def build_wallet_request(*, api_key: str, base_url: str = DEFAULT_BASE_URL) -> HTTPRequest:
    """The GET request :meth:`Fast2SMSTransport.check` makes."""
    return HTTPRequest(
        f"{base_url.rstrip('/')}{WALLET_PATH}",
        {"authorization": api_key, "accept": "application/json"},
        None,
    )


def parse_wallet(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """Read the wallet answer ``{"return": true, "wallet": "123.45"}``.

    The field's name is not confirmed by Fast2SMS's docs, so ``balance`` is
    read too.
    """
    data = decode_json(status, headers, body)
    if not isinstance(data, dict):
        raise malformed(status, "expected a JSON object")
    if _is_true(data.get("return")) is False:
        raise _error(status, data)
    for field in ("wallet", "balance"):
        value = data.get(field)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise malformed(status, "no wallet balance in the answer")


class Fast2SMSTransport(HTTPTransport):
    """Send SMS to Indian numbers through Fast2SMS's bulkV2 API.

    Args:
        api_key: the Fast2SMS API key (sent in the ``authorization`` header only).
        route: ``"dlt"`` (DLT template: the SMS's ``template_id`` is the DLT
            message id registered in Fast2SMS, its ``variables`` the values),
            ``"q"`` (Quick SMS: the SMS's text, no DLT, Fast2SMS's sender) or
            ``"otp"`` (a numeric code through Fast2SMS's fixed template).
        sender_id: the default DLT header for the ``dlt`` route when an SMS has
            no ``sender``.
        base_url: the API root (a local fake in tests).
        http_client: an ``httpx.Client`` to use instead of the pooled one this
            transport creates; it keeps its own settings and is not closed by
            :meth:`close`.
        timeout: seconds allowed to connect, send and read the answer.
        flash: send flash SMS (``dlt`` and ``q`` routes).
        templates: your template names mapped to Fast2SMS DLT message ids
            (``{"otp": "158923"}``), so one SMS with ``template_id="otp"`` can
            fail over between providers that each have their own id for the
            same DLT template.
        name: the transport's name in receipts and errors (``"fast2sms"``).

    The ``request_id`` Fast2SMS returns is the receipt's ``provider_message_id``.
    """

    scheme: ClassVar[str] = "fast2sms"
    key_label: ClassVar[str] = "Fast2SMS API key"

    def __init__(
        self,
        api_key: str,
        route: Route | str = "dlt",
        sender_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        http_client: httpx.Client | None = None,
        timeout: float = 10.0,
        *,
        flash: bool = False,
        templates: Mapping[str, str] | None = None,
        name: str = "fast2sms",
    ) -> None:
        super().__init__(
            api_key, base_url=base_url, http_client=http_client, timeout=timeout, name=name
        )
        if route not in ROUTES:
            raise ConfigurationError(f"Fast2SMS route {route!r} is not one of {', '.join(ROUTES)}")
        self.route = route
        if sender_id is not None and (not isinstance(sender_id, str) or not sender_id.strip()):
            raise ConfigurationError("sender_id: expected a non-empty string")
        self.sender_id = sender_id.strip() if sender_id else None
        if not isinstance(flash, bool):
            raise ConfigurationError("flash: expected True or False")
        self.flash = flash
        self.templates = templates_option(templates)

    def build_request(self, message: SMS) -> HTTPRequest:
        return build_request(
            message,
            api_key=self._key,
            route=self.route,
            sender_id=self.sender_id,
            base_url=self.base_url,
            flash=self.flash,
            templates=self.templates,
        )

    def _parse(self, response: HTTPResponse) -> str | None:
        return parse_response(*response)

    #: The most numbers put in one bulkV2 request by :meth:`send_batch`.
    batch_size: int = DEFAULT_BATCH_SIZE

    def send_batch(self, messages: Sequence[SMS]) -> list[BatchResult]:
        """Send many SMS in as few bulkV2 requests as possible; one result per message.

        bulkV2 takes one text (or DLT message id and variables) for many
        ``numbers``, so only messages whose requests are identical apart from
        the number share a request (at most :attr:`batch_size` numbers, never
        the same number twice); messages with their own variables go one by
        one. Each message gets a :class:`~notifykit.receipt.Receipt` (the
        request id is shared by the group) or the error it met, in order;
        nothing is raised. Fast2SMS accepts or refuses a request as a whole:
        when it rejects a group (code 411, invalid numbers), each message of
        the group is sent on its own to find out which; another failure is
        every message's error and nothing is resent. A rate limit counts one
        slot per request.
        """
        return send_batch(
            self,
            messages,
            recipient_field="numbers",
            merge=_merge_numbers,
            batch_size=self.batch_size,
        )

    def check(self) -> CheckResult:
        """Check the API key without sending: ``GET /dev/wallet`` gives the balance.

        A refused key raises :class:`ProviderError`, an unreachable API
        :class:`TransientError`.
        """

        def run() -> CheckResult:
            request = build_wallet_request(api_key=self._key, base_url=self.base_url)
            balance = parse_wallet(*self._exchange(request, "GET"))
            return CheckResult(self.name, f"API key accepted; wallet balance {balance}", balance)

        return self._checked(run)
