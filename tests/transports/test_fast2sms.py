"""Fast2SMSTransport: bulkV2 requests per route, every documented status code, the fake provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("httpx")

import notifykit as nk
from notifykit.transports._http import CheckResult
from notifykit.transports.fast2sms import (
    STATUS_CODES,
    Fast2SMSTransport,
    build_request,
    build_wallet_request,
    indian_number,
    parse_response,
    parse_wallet,
)
from tests.servers.sms_fake import FAST2SMS_KEY, SMSFakeServer
from tests.transports.contract import TransportContract

BASE = "https://www.fast2sms.com"
HEADERS = {
    "authorization": "k-123",
    "content-type": "application/json",
    "accept": "application/json",
}


def dlt_sms(**changes: Any) -> nk.SMS:
    fields: dict[str, Any] = {
        "to": "+919876543210",
        "body": "Order A-1 shipped",
        "sender": "SHOPIN",
        "template_id": "1001",
        "variables": {"order": "A-1"},
    }
    fields.update(changes)
    return nk.SMS(**fields)


def answer(**kwargs: Any) -> bytes:
    return json.dumps(kwargs).encode()


class TestContract(TransportContract):
    """Fast2SMSTransport passes the shared transport contract against the fake provider."""

    secrets = (FAST2SMS_KEY,)

    @pytest.fixture
    def transport(self, sms_fake: SMSFakeServer) -> Iterator[Fast2SMSTransport]:
        self.fake = sms_fake
        with Fast2SMSTransport(FAST2SMS_KEY, base_url=sms_fake.url) as t:
            yield t

    def assert_delivered(self, transport: Any, message: nk.Email | nk.SMS) -> None:
        assert isinstance(message, nk.SMS)
        sent = self.fake.requests[-1].json
        assert message.to[3:] == sent["numbers"]
        assert message.template_id == sent["message"]


# --------------------------------------------------------------------------- build_request


def test_dlt_request_every_field() -> None:
    """The DLT route posts route, sender_id, message id, variables_values, flash and numbers."""
    url, headers, body = build_request(
        dlt_sms(template_id="158923", variables={"name": "Asha", "order": "A-1"}), api_key="k-123"
    )
    assert f"{BASE}/dev/bulkV2" == url
    assert HEADERS == headers
    assert {
        "route": "dlt",
        "sender_id": "SHOPIN",
        "message": "158923",
        "variables_values": "Asha|A-1",
        "flash": "0",
        "numbers": "9876543210",
    } == body


def test_variables_follow_insertion_order() -> None:
    """variables_values keeps the order the variables were written in, not alphabetical order."""
    message = dlt_sms(variables={"z": "1", "a": "2", "m": "3"})
    _, _, body = build_request(message, api_key="k-123")
    assert body is not None
    assert "1|2|3" == body["variables_values"]
    again = nk.SMS.from_dict(json.loads(json.dumps(message.to_dict())))
    _, _, body2 = build_request(again, api_key="k-123")
    assert body2 is not None
    assert "1|2|3" == body2["variables_values"]


def test_no_variables_leaves_the_field_out() -> None:
    """A template without variables sends no variables_values."""
    _, _, body = build_request(dlt_sms(variables={}), api_key="k-123")
    assert body is not None
    assert "variables_values" not in body


def test_pipe_in_a_value_is_refused() -> None:
    """A value holding '|' would shift every later variable, so it is an InvalidMessage."""
    with pytest.raises(nk.InvalidMessage, match=r"\|"):
        build_request(dlt_sms(variables={"order": "A|1"}), api_key="k-123")


def test_transport_sender_id_is_the_default() -> None:
    """Without SMS.sender the transport's sender_id is sent; SMS.sender wins when present."""
    _, _, body = build_request(dlt_sms(sender=None), api_key="k-123", sender_id="SHOPDF")
    assert body is not None
    assert "SHOPDF" == body["sender_id"]
    _, _, body2 = build_request(dlt_sms(sender="ORDERS"), api_key="k-123", sender_id="SHOPDF")
    assert body2 is not None
    assert "ORDERS" == body2["sender_id"]


def test_dlt_needs_template_and_sender() -> None:
    """The DLT route without a message id or a sender ID is an InvalidMessage saying which."""
    with pytest.raises(nk.InvalidMessage, match="template_id"):
        build_request(nk.SMS("+919876543210", "hi", sender="SHOPIN"), api_key="k-123")
    with pytest.raises(nk.InvalidMessage, match="sender"):
        build_request(dlt_sms(sender=None), api_key="k-123")


def test_flash() -> None:
    """flash=True is sent as "1"."""
    _, _, body = build_request(dlt_sms(), api_key="k-123", flash=True)
    assert body is not None
    assert "1" == body["flash"]


def test_quick_route_english() -> None:
    """The quick route sends the text with language english when it fits GSM-7, and no sender."""
    message = nk.SMS("+919876543210", "Your order A-1 has shipped.", sender="SHOPIN")
    _, _, body = build_request(message, api_key="k-123", route="q")
    assert {
        "route": "q",
        "message": "Your order A-1 has shipped.",
        "language": "english",
        "flash": "0",
        "numbers": "9876543210",
    } == body


@pytest.mark.parametrize(
    "text", ["Order “A-1” shipped", "आपका ऑर्डर भेज दिया गया", "Pay ₹500", "Café £5", "Total 5€"]
)
def test_quick_route_unicode(text: str) -> None:
    """UCS-2 text, and GSM-7 text with non-English letters (£, é, €), goes with language unicode."""
    _, _, body = build_request(nk.SMS("+919876543210", text), api_key="k-123", route="q")
    assert body is not None
    assert "unicode" == body["language"]
    assert text == body["message"]


def test_quick_route_needs_text() -> None:
    """A template-only SMS (empty body) cannot go on the quick route."""
    with pytest.raises(nk.InvalidMessage, match="body"):
        build_request(dlt_sms(body=""), api_key="k-123", route="q")


def test_otp_route() -> None:
    """The OTP route sends the code from variables["otp"] (or the only variable), no flash."""
    message = nk.SMS("+919876543210", "", template_id="x", variables={"name": "A", "otp": "4821"})
    _, _, body = build_request(message, api_key="k-123", route="otp")
    assert {"route": "otp", "variables_values": "4821", "numbers": "9876543210"} == body
    single = nk.SMS("+919876543210", "", template_id="x", variables={"code": "99"})
    _, _, body2 = build_request(single, api_key="k-123", route="otp")
    assert body2 is not None
    assert "99" == body2["variables_values"]


@pytest.mark.parametrize("variables", [{}, {"a": "1", "b": "2"}, {"otp": "12a4"}, {"otp": "١٢٣"}])
def test_otp_route_refuses(variables: dict[str, str]) -> None:
    """No code, an ambiguous one, or a code that is not ASCII digits is an InvalidMessage."""
    message = nk.SMS("+919876543210", "Your code", variables=variables)
    with pytest.raises(nk.InvalidMessage, match="OTP"):
        build_request(message, api_key="k-123", route="otp")


@pytest.mark.parametrize("number", ["+14155552671", "+447911123456", "+97433123456"])
def test_non_indian_number_is_rejected(number: str) -> None:
    """A number outside India is a RejectedError naming it, before any request."""
    with pytest.raises(nk.RejectedError) as info:
        build_request(dlt_sms(to=number), api_key="k-123")
    assert number in info.value.rejected


def test_indian_number_is_ten_digits() -> None:
    """+91 numbers become their 10 national digits."""
    assert "9876543210" == indian_number("+919876543210")
    with pytest.raises(nk.RejectedError):
        indian_number("+9112345")


def test_unknown_route() -> None:
    """An unknown route is a ConfigurationError, at construction and in build_request."""
    with pytest.raises(nk.ConfigurationError, match="route"):
        Fast2SMSTransport("k-123", route="v3")
    with pytest.raises(nk.ConfigurationError, match="route"):
        build_request(dlt_sms(), api_key="k-123", route="promo")


@pytest.mark.parametrize("kwargs", [{"sender_id": ""}, {"sender_id": 5}, {"flash": 1}])
def test_bad_options(kwargs: dict[str, Any]) -> None:
    """Empty or mistyped options are ConfigurationErrors at construction."""
    with pytest.raises(nk.ConfigurationError):
        Fast2SMSTransport("k-123", **kwargs)


# --------------------------------------------------------------------------- parse_response


def test_success_returns_request_id() -> None:
    """return true gives the request_id."""
    body = answer(
        **{"return": True, "request_id": "lwdtp7cjyqxvfe9", "message": ["SMS sent successfully."]}
    )
    assert "lwdtp7cjyqxvfe9" == parse_response(200, {}, body)


def test_success_without_id() -> None:
    """A success without request_id is still a send (None, not an error)."""
    assert parse_response(200, {}, answer(**{"return": True})) is None


@pytest.mark.parametrize(("code", "entry"), sorted(STATUS_CODES.items()))
def test_every_documented_status_code(code: int, entry: tuple[type[nk.DeliveryError], str]) -> None:
    """Each documented status_code maps to its kind, whatever the HTTP status, and is the provider_code."""
    kind, _meaning = entry
    http_status = 401 if code in (412, 413) else 400
    body = answer(**{"return": False, "status_code": code, "message": f"text {code}"})
    with pytest.raises(kind) as info:
        parse_response(http_status, {}, body)
    assert kind is type(info.value)
    assert str(code) == info.value.provider_code
    assert f"text {code}" in str(info.value)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (411, nk.RejectedError),
        (412, nk.ProviderError),
        (416, nk.ProviderError),
        (425, nk.RejectedError),
        (500, nk.RejectedError),
        (996, nk.ProviderError),
        (997, nk.RejectedError),
    ],
)
def test_table_spot_checks(code: int, kind: type[nk.DeliveryError]) -> None:
    """The table agrees with providers.md for the codes that matter most (guards the table itself)."""
    assert kind is STATUS_CODES[code][0]


def test_27_codes_documented() -> None:
    """Every one of the 27 documented codes is in the table."""
    assert 27 == len(STATUS_CODES)


def test_status_code_as_string_and_no_message() -> None:
    """A status_code sent as a string works, and a missing message falls back to the documented meaning."""
    with pytest.raises(nk.ProviderError, match="Insufficient wallet balance"):
        parse_response(400, {}, answer(**{"return": False, "status_code": "416"}))


def test_unknown_status_code_is_provider_error() -> None:
    """An undocumented status_code stops this provider (ProviderError) without rejecting the message."""
    with pytest.raises(nk.ProviderError) as info:
        parse_response(400, {}, answer(**{"return": False, "status_code": 777, "message": "new"}))
    assert "777" == info.value.provider_code


def test_error_without_status_code() -> None:
    """return false with no status_code is a ProviderError carrying the HTTP status."""
    with pytest.raises(nk.ProviderError) as info:
        parse_response(400, {}, answer(**{"return": False, "message": "bad"}))
    assert "400" == info.value.provider_code


@pytest.mark.parametrize(
    ("status", "body", "kind", "maybe"),
    [
        (200, b'{"request_id": "x"}', nk.TransientError, True),
        (200, b"[]", nk.TransientError, True),
        (200, b"<html>", nk.TransientError, True),
        (404, b'{"detail": "Not Found"}', nk.ProviderError, False),
        (429, b'{"return": false}', nk.TransientError, False),
        (503, b"", nk.TransientError, False),
    ],
)
def test_malformed_and_transient(
    status: int, body: bytes, kind: type[Exception], maybe: bool
) -> None:
    """No `return` field or non-JSON is transient after a 2xx (ProviderError after a 4xx); 429 and 5xx are transient."""
    with pytest.raises(kind) as info:
        parse_response(status, {}, body)
    assert maybe is getattr(info.value, "maybe_delivered", False)


def test_wallet_parsing() -> None:
    """The wallet answer gives the balance (field `wallet`, or `balance`) or the mapped error."""
    assert "123.45" == parse_wallet(200, {}, answer(**{"return": True, "wallet": "123.45"}))
    assert "7" == parse_wallet(200, {}, answer(**{"return": True, "balance": 7}))
    with pytest.raises(nk.ProviderError):
        parse_wallet(401, {}, answer(**{"return": False, "status_code": 412, "message": "x"}))
    with pytest.raises(nk.TransientError):
        parse_wallet(200, {}, answer(**{"return": True}))


def test_wallet_request() -> None:
    """check() asks GET /dev/wallet with the key in the authorization header only."""
    url, headers, body = build_wallet_request(api_key="k-123")
    assert (f"{BASE}/dev/wallet", "k-123", None) == (url, headers["authorization"], body)


# --------------------------------------------------------------------------- against the fake


@pytest.fixture
def f2s(sms_fake: SMSFakeServer) -> Iterator[Fast2SMSTransport]:
    with Fast2SMSTransport(
        FAST2SMS_KEY, sender_id="SHOPIN", base_url=sms_fake.url, timeout=2.0
    ) as t:
        yield t


def test_send_posts_json_with_header_key(f2s: Fast2SMSTransport, sms_fake: SMSFakeServer) -> None:
    """A send is a JSON POST to /dev/bulkV2, key in the header, never in the URL."""
    message = dlt_sms()
    receipt = f2s.send(message)
    request = sms_fake.requests[0]
    assert ("POST", "/dev/bulkV2") == (request.method, request.path)
    assert FAST2SMS_KEY == request.headers["authorization"]
    assert FAST2SMS_KEY not in request.raw_target
    assert f2s.build_request(message).json == request.json
    assert receipt.provider_message_id is not None
    assert 15 == len(receipt.provider_message_id)


def test_quick_route_through_fake(sms_fake: SMSFakeServer) -> None:
    """A Hindi text goes on the quick route as unicode and is accepted."""
    with Fast2SMSTransport(FAST2SMS_KEY, route="q", base_url=sms_fake.url) as t:
        t.send(nk.SMS("+919876543210", "आपका ऑर्डर भेज दिया गया"))
    assert "unicode" == sms_fake.requests[0].json["language"]


@pytest.mark.parametrize("text", ["Café £5 {ok}", "Pay ₹500"])
def test_quick_route_non_english_is_accepted(sms_fake: SMSFakeServer, text: str) -> None:
    """Texts with letters beyond English reach Fast2SMS as unicode and are not refused with 417."""
    with Fast2SMSTransport(FAST2SMS_KEY, route="q", base_url=sms_fake.url) as t:
        t.send(nk.SMS("+919876543210", text))
    assert "unicode" == sms_fake.requests[0].json["language"]


def test_otp_route_through_fake(sms_fake: SMSFakeServer) -> None:
    """An OTP goes on the otp route and is accepted."""
    with Fast2SMSTransport(FAST2SMS_KEY, route="otp", base_url=sms_fake.url) as t:
        t.send(nk.SMS("+919876543210", "", template_id="x", variables={"otp": "4821"}))
    assert "4821" == sms_fake.requests[0].json["variables_values"]


def test_non_indian_number_makes_no_request(
    f2s: Fast2SMSTransport, sms_fake: SMSFakeServer
) -> None:
    """A non-Indian number is a RejectedError with one attempt, and the server sees nothing."""
    with pytest.raises(nk.RejectedError) as info:
        f2s.send(dlt_sms(to="+447911123456"))
    assert [] == sms_fake.requests
    assert "rejected" == info.value.attempts[0].outcome
    assert "fast2sms" == info.value.transport


def test_wrong_key(sms_fake: SMSFakeServer) -> None:
    """A refused key (HTTP 401, status_code 412) is a ProviderError."""
    with (
        Fast2SMSTransport("wrong-key", sender_id="SHOPIN", base_url=sms_fake.url) as t,
        pytest.raises(nk.ProviderError) as info,
    ):
        t.send(dlt_sms())
    assert "412" == info.value.provider_code
    assert "wrong-key" not in str(info.value)


def test_invalid_number(f2s: Fast2SMSTransport, sms_fake: SMSFakeServer) -> None:
    """A number Fast2SMS refuses (411) is a RejectedError naming the recipient."""
    sms_fake.invalid_numbers.add("9876543210")
    with pytest.raises(nk.RejectedError) as info:
        f2s.send(dlt_sms())
    assert "411" == info.value.provider_code
    assert "+919876543210" in info.value.rejected


def test_dlt_template_mismatch(f2s: Fast2SMSTransport) -> None:
    """The wrong number of variables for the DLT template is a RejectedError (425)."""
    with pytest.raises(nk.RejectedError) as info:
        f2s.send(dlt_sms(variables={"order": "A-1", "extra": "x"}))
    assert "425" == info.value.provider_code


def test_unknown_dlt_message_id(f2s: Fast2SMSTransport) -> None:
    """A DLT message id Fast2SMS does not know is a RejectedError (424)."""
    with pytest.raises(nk.RejectedError) as info:
        f2s.send(dlt_sms(template_id="31337"))
    assert "424" == info.value.provider_code


def test_unapproved_sender(f2s: Fast2SMSTransport) -> None:
    """A sender ID that is not approved is a RejectedError (406)."""
    with pytest.raises(nk.RejectedError) as info:
        f2s.send(dlt_sms(sender="NOPE"))
    assert "406" == info.value.provider_code


def test_insufficient_balance(f2s: Fast2SMSTransport, sms_fake: SMSFakeServer) -> None:
    """An empty wallet is a ProviderError (416): fail over, do not retry."""
    sms_fake.fast2sms_balance = 0.1
    with pytest.raises(nk.ProviderError) as info:
        f2s.send(dlt_sms())
    assert "416" == info.value.provider_code


@pytest.mark.parametrize(
    ("fault", "maybe", "retry_after"),
    [
        ("rate_limit", False, 7.0),
        ("server_error", False, None),
        ("garbage", True, None),
        ("hang", True, None),
        ("drop", True, None),
    ],
)
def test_faults_are_transient(
    sms_fake: SMSFakeServer, fault: str, maybe: bool, retry_after: float | None
) -> None:
    """429, 500, garbage, no answer: TransientError, maybe_delivered once the request went out."""
    sms_fake.script(fault)
    with (
        Fast2SMSTransport(
            FAST2SMS_KEY,
            sender_id="SHOPIN",
            base_url=sms_fake.url,
            timeout=0.1 if fault == "hang" else 5.0,
        ) as t,
        pytest.raises(nk.TransientError) as info,
    ):
        t.send(dlt_sms())
    assert maybe is info.value.maybe_delivered
    assert retry_after == info.value.retry_after


@pytest.mark.parametrize("field", ["wallet", "balance"])
def test_check_returns_wallet(f2s: Fast2SMSTransport, sms_fake: SMSFakeServer, field: str) -> None:
    """check() reads the wallet balance with a GET that sends nothing (both field names)."""
    sms_fake.wallet_field = field
    result = f2s.check()
    assert CheckResult("fast2sms", "API key accepted; wallet balance 100.00", "100.00") == result
    assert ("GET", "/dev/wallet") == (sms_fake.requests[0].method, sms_fake.requests[0].path)


def test_check_with_wrong_key(sms_fake: SMSFakeServer) -> None:
    """check() with a refused key raises ProviderError naming the transport, key masked."""
    with (
        Fast2SMSTransport("wrong-key", base_url=sms_fake.url) as t,
        pytest.raises(nk.ProviderError) as info,
    ):
        t.check()
    assert "fast2sms" == info.value.transport
    assert "wrong-key" not in str(info.value)


def test_str_and_name() -> None:
    """str() is "fast2sms://", the name "fast2sms", and the key appears in neither."""
    t = Fast2SMSTransport("k-secret-1")
    assert ("fast2sms://", "fast2sms") == (str(t), t.name)
    assert "k-secret-1" not in repr(t)
    assert frozenset({"sms"}) == t.channels


def test_templates_map_names_to_message_ids(sms_fake: SMSFakeServer) -> None:
    """templates= maps a template name to the Fast2SMS DLT message id actually sent."""
    with Fast2SMSTransport(
        FAST2SMS_KEY, sender_id="SHOPIN", base_url=sms_fake.url, templates={"order": "1001"}
    ) as t:
        t.send(dlt_sms(template_id="order"))
    assert "1001" == sms_fake.requests[0].json["message"]
    _, _, body = build_request(dlt_sms(template_id="9"), api_key="k-123", templates={"x": "1"})
    assert body is not None
    assert "9" == body["message"]
