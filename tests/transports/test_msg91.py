"""MSG91Transport: the Flow API v5 request, every documented answer, and the fake provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("httpx")

import notifykit as nk
from notifykit.transports._http import CheckResult
from notifykit.transports.msg91 import (
    MSG91Transport,
    build_balance_request,
    build_request,
    classify_error,
    parse_balance,
    parse_response,
)
from tests.servers.sms_fake import MSG91_KEY, SMSFakeServer
from tests.transports.contract import TransportContract

BASE = "https://control.msg91.com"


def order_sms(**changes: Any) -> nk.SMS:
    fields: dict[str, Any] = {
        "to": "+919876543210",
        "body": "Order A-1 shipped",
        "template_id": "1001",
        "variables": {"order": "A-1"},
    }
    fields.update(changes)
    return nk.SMS(**fields)


def body_of(**kwargs: Any) -> bytes:
    return json.dumps(kwargs).encode()


class TestContract(TransportContract):
    """MSG91Transport passes the shared transport contract against the fake provider."""

    secrets = (MSG91_KEY,)

    @pytest.fixture
    def transport(self, sms_fake: SMSFakeServer) -> Iterator[MSG91Transport]:
        self.fake = sms_fake
        with MSG91Transport(MSG91_KEY, base_url=sms_fake.url) as t:
            yield t

    def assert_delivered(self, transport: Any, message: nk.Email | nk.SMS) -> None:
        assert isinstance(message, nk.SMS)
        recipient = self.fake.requests[-1].json["recipients"][0]
        assert message.to.lstrip("+") == recipient["mobiles"]
        assert message.template_id == self.fake.requests[-1].json["template_id"]


# --------------------------------------------------------------------------- build_request


def test_build_request_every_field() -> None:
    """The request is a POST body with template_id, sender, recipients and the three headers."""
    request = build_request(
        order_sms(sender="SHOPIN", variables={"order": "A-1", "name": "Asha"}),
        authkey="k-123",
    )
    url, headers, body = request
    assert f"{BASE}/api/v5/flow/" == url
    assert {
        "authkey": "k-123",
        "content-type": "application/json",
        "accept": "application/json",
    } == headers
    assert {
        "template_id": "1001",
        "sender": "SHOPIN",
        "recipients": [{"mobiles": "919876543210", "order": "A-1", "name": "Asha"}],
    } == body


def test_number_is_country_code_without_plus() -> None:
    """Any country's number goes as country code and number with no '+'."""
    _, _, body = build_request(order_sms(to="+44 7911 123456"), authkey="k-123")
    assert body is not None
    assert "447911123456" == body["recipients"][0]["mobiles"]


def test_national_number_with_default_region() -> None:
    """A national Indian number parsed with default_region IN gets the 91 prefix."""
    message = order_sms(to="098765 43210", default_region="IN")
    _, _, body = build_request(message, authkey="k-123")
    assert body is not None
    assert "919876543210" == body["recipients"][0]["mobiles"]


def test_message_template_and_sender_win_over_defaults() -> None:
    """The SMS's own template_id and sender are used before the transport's defaults."""
    _, _, body = build_request(
        order_sms(sender="ORDERS"), authkey="k-123", sender="SHOPIN", template_id="9999"
    )
    assert body is not None
    assert ("1001", "ORDERS") == (body["template_id"], body["sender"])


def test_defaults_fill_in() -> None:
    """Without a template_id or sender on the SMS, the transport's defaults are sent."""
    message = nk.SMS("+919876543210", "Hi", variables={"order": "A-1"})
    _, _, body = build_request(message, authkey="k-123", sender="SHOPIN", template_id="9999")
    assert body is not None
    assert ("9999", "SHOPIN") == (body["template_id"], body["sender"])


def test_no_sender_leaves_it_to_the_flow() -> None:
    """With no sender anywhere the key is left out, so the flow's own header applies."""
    _, _, body = build_request(order_sms(), authkey="k-123")
    assert body is not None
    assert "sender" not in body
    assert "short_url" not in body


@pytest.mark.parametrize(("short_url", "expected"), [(True, "1"), (False, "0")])
def test_short_url(short_url: bool, expected: str) -> None:
    """short_url is sent as "1" or "0" when set."""
    _, _, body = build_request(order_sms(), authkey="k-123", short_url=short_url)
    assert body is not None
    assert expected == body["short_url"]


def test_base_url_trailing_slash() -> None:
    """A base_url with a trailing slash does not double it."""
    url, _, _ = build_request(order_sms(), authkey="k-123", base_url="http://127.0.0.1:1/")
    assert "http://127.0.0.1:1/api/v5/flow/" == url


def test_no_template_is_invalid_message() -> None:
    """MSG91 sends only templates: an SMS with no template_id and no default says what to set."""
    with pytest.raises(nk.InvalidMessage, match="template_id"):
        build_request(nk.SMS("+919876543210", "free text"), authkey="k-123")


def test_variable_named_mobiles_is_refused() -> None:
    """A variable called 'mobiles' would overwrite the number, so it is an InvalidMessage."""
    with pytest.raises(nk.InvalidMessage, match="mobiles"):
        build_request(order_sms(variables={"mobiles": "1"}), authkey="k-123")


def test_transport_build_request_uses_its_settings() -> None:
    """MSG91Transport.build_request applies its key, defaults and base_url without I/O."""
    t = MSG91Transport("k-123", sender="SHOPIN", template_id="7", base_url="http://h.example")
    url, headers, body = t.build_request(nk.SMS("+919876543210", "x"))
    assert "http://h.example/api/v5/flow/" == url
    assert "k-123" == headers["authkey"]
    assert body is not None
    assert ("7", "SHOPIN") == (body["template_id"], body["sender"])


# --------------------------------------------------------------------------- parse_response


def test_success_returns_request_id() -> None:
    """type success gives MSG91's request id."""
    answer = body_of(type="success", message="5762846b4f8d285d378b4567")
    assert "5762846b4f8d285d378b4567" == parse_response(200, {}, answer)


def test_success_without_id_is_still_success() -> None:
    """A success with no request id is still a send (raising would make a failover resend it)."""
    assert parse_response(200, {}, body_of(type="success")) is None


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (401, "Authentication failure", nk.ProviderError),
        (200, "AuthenticationFailure", nk.ProviderError),
        (200, "Invalid authkey", nk.ProviderError),
        (403, "Forbidden", nk.ProviderError),
        (401, "some new wording", nk.ProviderError),
        (200, "IP not whitelisted", nk.ProviderError),
        (400, "Your IP is not in the whitelist", nk.ProviderError),
        (200, "Insufficient balance", nk.ProviderError),
        (400, "Account suspended", nk.ProviderError),
        (400, "Your account is blocked", nk.ProviderError),
        (200, "Mobile no. not found", nk.RejectedError),
        (400, "Invalid mobile number", nk.RejectedError),
        (200, "Number is blocked (DND)", nk.RejectedError),
        (400, "Template ID missing", nk.RejectedError),
        (400, "Invalid template", nk.RejectedError),
        (400, "Template variables mismatch", nk.RejectedError),
        (200, "Flow is not approved", nk.RejectedError),
        (400, "DLT template not approved", nk.RejectedError),
        (400, "Sender ID (DLT header) not approved", nk.RejectedError),
        (400, "Too many requests", nk.TransientError),
        (200, "Please try again later", nk.TransientError),
        (400, "Something nobody documented", nk.ProviderError),
    ],
)
def test_every_documented_error(status: int, message: str, kind: type[nk.DeliveryError]) -> None:
    """Each documented MSG91 error maps to its kind whatever the HTTP status, reading `type`."""
    with pytest.raises(kind) as info:
        parse_response(status, {}, body_of(type="error", message=message))
    assert kind is type(info.value)
    assert message in str(info.value)


def test_error_code_is_the_provider_code() -> None:
    """MSG91's own `code` becomes provider_code; without one, the HTTP status does."""
    with pytest.raises(nk.ProviderError) as info:
        parse_response(200, {}, body_of(type="error", message="Invalid authkey", code="418"))
    assert "418" == info.value.provider_code
    with pytest.raises(nk.RejectedError) as info2:
        parse_response(400, {}, body_of(type="error", message="Invalid template"))
    assert "400" == info2.value.provider_code


def test_error_with_200_is_not_success() -> None:
    """HTTP 200 with type error is an error: the status alone is never trusted."""
    with pytest.raises(nk.RejectedError):
        parse_response(200, {}, body_of(type="error", message="Mobile no. not found"))


@pytest.mark.parametrize(
    ("status", "body", "kind", "maybe"),
    [
        (200, b'{"message": "no type"}', nk.TransientError, True),
        (200, b'{"type": "queued"}', nk.TransientError, True),
        (200, b"[1, 2]", nk.TransientError, True),
        (200, b"<html>", nk.TransientError, True),
        (404, b'{"detail": "Not Found"}', nk.ProviderError, False),
        (400, b'{"type": 3}', nk.ProviderError, False),
    ],
)
def test_malformed_answers(
    status: int, body: bytes, kind: type[nk.DeliveryError], maybe: bool
) -> None:
    """No known `type`: transient (maybe delivered) after a 2xx, ProviderError after a 4xx (wrong endpoint)."""
    with pytest.raises(kind) as info:
        parse_response(status, {}, body)
    assert kind is type(info.value)
    assert maybe is info.value.maybe_delivered


def test_rate_limit_and_server_errors() -> None:
    """429 (with Retry-After) and 5xx are transient even when the body says error."""
    with pytest.raises(nk.TransientError) as info:
        parse_response(
            429, {"retry-after": "3"}, body_of(type="error", message="Too many requests")
        )
    assert 3.0 == info.value.retry_after
    with pytest.raises(nk.TransientError):
        parse_response(500, {}, body_of(type="error", message="Invalid template"))


def test_classify_error_code_401_wins() -> None:
    """A `code` of 401 is an account problem even if the text talks about a template."""
    assert nk.ProviderError is classify_error(200, "Invalid template", "401")


def test_balance_parsing() -> None:
    """The balance answer is a bare number, a {"balance"} object or an error object."""
    assert "1234" == parse_balance(200, {}, b"1234")
    assert "12.5" == parse_balance(200, {}, b'{"balance": 12.5}')
    with pytest.raises(nk.ProviderError):
        parse_balance(401, {}, body_of(type="error", message="Authentication failure"))
    with pytest.raises(nk.ProviderError):
        parse_balance(200, {}, body_of(msgType="error", msg="Invalid authkey"))
    with pytest.raises(nk.TransientError):
        parse_balance(200, {}, b'{"nothing": 1}')


def test_balance_request_keeps_key_out_of_url() -> None:
    """check()'s request carries the authkey in a header, never in the URL."""
    url, headers, body = build_balance_request(authkey="k-123")
    assert f"{BASE}/api/balance.php?type=4" == url
    assert "k-123" not in url
    assert "k-123" == headers["authkey"]
    assert body is None


# --------------------------------------------------------------------------- against the fake


@pytest.fixture
def msg91(sms_fake: SMSFakeServer) -> Iterator[MSG91Transport]:
    with MSG91Transport(MSG91_KEY, sender="SHOPIN", base_url=sms_fake.url, timeout=2.0) as t:
        yield t


def test_send_records_request_id(msg91: MSG91Transport, sms_fake: SMSFakeServer) -> None:
    """A send posts exactly build_request's body and keeps the request id as provider_message_id."""
    message = order_sms()
    receipt = msg91.send(message)
    assert msg91.build_request(message).json == sms_fake.requests[0].json
    assert "/api/v5/flow/" == sms_fake.requests[0].path
    assert receipt.provider_message_id is not None
    assert 24 == len(receipt.provider_message_id)
    assert ("+919876543210",) == receipt.accepted
    assert "msg91" == receipt.transport


def test_otp_flow_with_two_variables(msg91: MSG91Transport, sms_fake: SMSFakeServer) -> None:
    """Every variable reaches MSG91 as a recipient key named as in the template."""
    message = order_sms(
        template_id="65e06f45d6fc05278c7d47e2", variables={"otp": "1234", "name": "Asha"}
    )
    msg91.send(message)
    assert {"mobiles": "919876543210", "otp": "1234", "name": "Asha"} == (
        sms_fake.requests[0].json["recipients"][0]
    )


@pytest.mark.parametrize("variant", ["401", "200"])
def test_wrong_key_is_provider_error(sms_fake: SMSFakeServer, variant: str) -> None:
    """A refused authkey (HTTP 401, or HTTP 200 "Invalid authkey") is a ProviderError."""
    sms_fake.msg91_auth_variant = variant
    with (
        MSG91Transport("wrong-key", base_url=sms_fake.url) as t,
        pytest.raises(nk.ProviderError) as info,
    ):
        t.send(order_sms())
    assert "provider" == info.value.attempts[0].outcome
    assert "wrong-key" not in str(info.value)


def test_invalid_number_is_rejected(msg91: MSG91Transport, sms_fake: SMSFakeServer) -> None:
    """A number the operator refuses is a RejectedError naming that recipient."""
    sms_fake.invalid_numbers.add("919876543210")
    with pytest.raises(nk.RejectedError) as info:
        msg91.send(order_sms())
    assert "+919876543210" in info.value.rejected
    assert "rejected" == info.value.attempts[0].outcome


def test_template_variable_mismatch_is_rejected(msg91: MSG91Transport) -> None:
    """Variables that do not match the DLT template are a RejectedError."""
    with pytest.raises(nk.RejectedError, match="mismatch"):
        msg91.send(order_sms(variables={"ORDER": "A-1"}))


def test_unknown_template_is_rejected(msg91: MSG91Transport) -> None:
    """A template id MSG91 does not know is a RejectedError."""
    with pytest.raises(nk.RejectedError, match="Invalid template"):
        msg91.send(order_sms(template_id="404404"))


def test_unapproved_header_is_rejected(msg91: MSG91Transport) -> None:
    """A DLT header that is not approved is a RejectedError."""
    with pytest.raises(nk.RejectedError, match="not approved"):
        msg91.send(order_sms(sender="NOPE"))


def test_insufficient_balance_is_provider_error(
    msg91: MSG91Transport, sms_fake: SMSFakeServer
) -> None:
    """An empty account is a ProviderError (fail over, do not retry), though MSG91 says HTTP 200."""
    sms_fake.msg91_balance = 0
    with pytest.raises(nk.ProviderError, match="Insufficient balance"):
        msg91.send(order_sms())


@pytest.mark.parametrize(
    ("fault", "maybe"),
    [
        ("rate_limit", False),
        ("server_error", False),
        ("garbage", True),
        ("hang", True),
        ("drop", True),
    ],
)
def test_faults_are_transient(sms_fake: SMSFakeServer, fault: str, maybe: bool) -> None:
    """429, 500, garbage JSON, a lost answer: all TransientError, maybe_delivered after hand-over."""
    sms_fake.script(fault)
    with (
        MSG91Transport(
            MSG91_KEY, base_url=sms_fake.url, timeout=0.1 if fault == "hang" else 5.0
        ) as t,
        pytest.raises(nk.TransientError) as info,
    ):
        t.send(order_sms())
    assert maybe is info.value.maybe_delivered
    assert "transient" == info.value.attempts[0].outcome


def test_check_returns_balance(msg91: MSG91Transport, sms_fake: SMSFakeServer) -> None:
    """check() proves the key with a GET that sends nothing, the key in a header only."""
    result = msg91.check()
    assert CheckResult("msg91", "authkey accepted; SMS balance 1000", "1000") == result
    request = sms_fake.requests[0]
    assert ("GET", "/api/balance.php") == (request.method, request.path)
    assert MSG91_KEY not in request.raw_target
    assert MSG91_KEY == request.headers["authkey"]
    assert 1000 == sms_fake.msg91_balance


def test_check_with_wrong_key(sms_fake: SMSFakeServer) -> None:
    """check() with a refused key raises ProviderError naming the transport, key masked."""
    with (
        MSG91Transport("wrong-key", base_url=sms_fake.url, name="msg91-backup") as t,
        pytest.raises(nk.ProviderError) as info,
    ):
        t.check()
    assert "msg91-backup" == info.value.transport
    assert "wrong-key" not in str(info.value)


def test_str_and_name() -> None:
    """str() is the scheme only, the name is "msg91" unless given, and neither shows the key."""
    t = MSG91Transport("k-secret-1")
    assert "msg91://" == str(t)
    assert "<MSG91Transport msg91://>" == repr(t)
    assert "msg91" == t.name
    assert "backup" == MSG91Transport("k-secret-1", name="backup").name
    assert frozenset({"sms"}) == t.channels


def test_refuses_email() -> None:
    """An Email given to MSG91Transport is a ConfigurationError before any request."""
    email = nk.Email(to="a@b.example", subject="s", text="t", sender="c@d.example")
    with pytest.raises(nk.ConfigurationError):
        MSG91Transport("k-secret-1", base_url="http://127.0.0.1:9").send(email)


@pytest.mark.parametrize(
    "kwargs", [{"sender": ""}, {"template_id": "  "}, {"short_url": "yes"}, {"sender": 5.0}]
)
def test_bad_defaults(kwargs: dict[str, Any]) -> None:
    """Empty or mistyped defaults are ConfigurationErrors at construction."""
    with pytest.raises(nk.ConfigurationError):
        MSG91Transport("k-secret-1", **kwargs)


def test_templates_map_names_to_msg91_ids() -> None:
    """templates= maps a template name to MSG91's id; an id not in the map is sent unchanged."""
    t = MSG91Transport("k-secret-1", templates={"otp": "65e06f45d6fc05278c7d47e2"})
    assert (
        "65e06f45d6fc05278c7d47e2"
        == t.build_request(order_sms(template_id="otp")).json["template_id"]
    )
    assert "1001" == t.build_request(order_sms()).json["template_id"]
    default = MSG91Transport("k-secret-1", template_id="otp", templates={"otp": "65e0"})
    assert "65e0" == default.build_request(nk.SMS("+919876543210", "x")).json["template_id"]


@pytest.mark.parametrize("templates", [{"otp": ""}, ["otp"], {1: "x"}])
def test_bad_templates_option(templates: Any) -> None:
    """A templates option that is not a mapping of names to non-empty ids is a ConfigurationError."""
    with pytest.raises(nk.ConfigurationError, match="templates"):
        MSG91Transport("k-secret-1", templates=templates)
