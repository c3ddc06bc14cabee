"""MSG91 and Fast2SMS delivery reports: sent through the loopback fake, reported back.

The SMS are sent with the real transports against the loopback provider fake,
so the request id in the report is the one the transport logged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("werkzeug")  # the WSGI test client (comes with the flask extra)
pytest.importorskip("httpx")  # the SMS transports (the sms extra)
from werkzeug.test import Client

import notifykit as nk
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.suppression import SQLiteSuppressionList
from notifykit.transports.fast2sms import Fast2SMSTransport
from notifykit.transports.msg91 import MSG91Transport
from notifykit.webhooks import Fast2SMSReceiver, MSG91Receiver, WebhookError, wsgi_app
from tests.servers.sms_fake import FAST2SMS_KEY, MSG91_KEY, SMSFakeServer

SECRET = "test-webhook-secret-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[SMSFakeServer]:
    with SMSFakeServer(hang_limit=5.0) as server:
        yield server


class World:
    def __init__(self, tmp: Path, fake: SMSFakeServer, provider: str) -> None:
        self.log = SQLiteSink(tmp / "log.db")
        self.suppression = SQLiteSuppressionList(str(tmp / "suppress.db"))
        kind = MSG91Receiver if provider == "msg91" else Fast2SMSReceiver
        self.receiver = kind(
            secret=SECRET, sinks=[self.log], suppression=self.suppression, soft_bounce_limit=2
        )
        self.client = Client(wsgi_app(self.receiver))
        transport: nk.transports.base.BaseTransport
        if provider == "msg91":
            transport = MSG91Transport(MSG91_KEY, sender="SHOPIN", base_url=fake.url)
        else:
            transport = Fast2SMSTransport(FAST2SMS_KEY, base_url=fake.url)
        self.notifier = nk.Notifier(sms=transport, sinks=[self.log], suppression=self.suppression)

    def send(self, to: str = "+919876543210") -> nk.Receipt:
        sms = nk.SMS(to, "Order A-1 shipped", template_id="1001", variables={"order": "A-1"})
        if isinstance(self.notifier.sms, Fast2SMSTransport):
            sms = sms.replace(sender="SHOPIN")
        return self.notifier.send(sms, template="shipped")

    def events(self) -> int:
        return sum(1 for e in self.log.tail(10_000) if e.status not in ("queued", "sent"))

    def close(self) -> None:
        self.notifier.close()
        self.suppression.close()


@pytest.fixture
def msg91(tmp_path: Path, fake: SMSFakeServer) -> Iterator[World]:
    w = World(tmp_path, fake, "msg91")
    yield w
    w.close()


@pytest.fixture
def fast2sms(tmp_path: Path, fake: SMSFakeServer) -> Iterator[World]:
    w = World(tmp_path, fake, "fast2sms")
    yield w
    w.close()


def v2_form(request_id: str, number: str, status: str, desc: str) -> bytes:
    data = [
        {
            "senderId": "SHOPIN",
            "requestId": request_id,
            "userId": "270001",
            "campaignName": "API",
            "report": [
                {
                    "date": "2024-05-22 10:06:20",
                    "number": number,
                    "status": status,
                    "desc": desc,
                    "CRQID": "ord-1042-a",
                    "failedReason": "",
                }
            ],
        }
    ]
    return urlencode({"data": json.dumps(data)}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_msg91_v2_delivered(msg91: World) -> None:
    """Webhook v2 (form field data): the SMS row moves to delivered."""
    receipt = msg91.send()
    rid = receipt.provider_message_id
    assert rid is not None
    body = v2_form(rid, "919876543210", "1", "DELIVERED")
    response = msg91.client.post(f"/hooks/msg91?token={SECRET}", data=body, headers=FORM)
    assert response.status_code == 200, response.text
    assert response.json == {"events": 1}
    row = msg91.log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"
    event = msg91.log.history(receipt.message_id)[-1]
    assert (event.recipients, event.channel) == (("+919876543210",), "sms")


def test_msg91_v3_and_new_blocked_number_suppresses(msg91: World) -> None:
    """v3 flat JSON with 17 (blocked) is a hard bounce: the number is suppressed."""
    receipt = msg91.send()
    report = {
        "requestId": receipt.provider_message_id,
        "number": "919876543210",
        "status": "17",
        "desc": "Blocked number",
    }
    response = msg91.client.post(f"/?token={SECRET}", json=report)
    assert response.status_code == 200
    assert msg91.suppression.check(["+91 98765 43210"]) == {"+91 98765 43210": "Blocked number"}
    with pytest.raises(nk.Suppressed):
        msg91.send()
    # Webhook (New), words instead of codes
    other = msg91.send("+919812345678")
    new = {
        "requestId": other.provider_message_id,
        "telNum": "919812345678",
        "status": "delivered",
        "deliveryTime": "2024-05-22 10:06:20",
        "failureReason": "",
    }
    assert msg91.client.post(f"/?token={SECRET}", json=new).json == {"events": 1}
    row = msg91.log.delivery(other.message_id)
    assert row is not None
    assert row.status == "delivered"


def test_msg91_soft_failures_suppress_after_the_limit(msg91: World) -> None:
    """Status 2 (failed) is soft: the second within the window (limit=2) suppresses."""
    for n in range(2):
        assert msg91.suppression.check(["+919876543210"]) == {}
        body = v2_form(f"req{n:021d}", "919876543210", "2", "FAILED")
        assert msg91.client.post(f"/?token={SECRET}", data=body, headers=FORM).status_code == 200
    assert [e.source for e in msg91.suppression.entries()] == ["soft_bounces"]


def test_msg91_secret_wrong_or_missing_is_401(msg91: World) -> None:
    """No token, a wrong one, a wrong basic-auth password: 401, nothing recorded."""
    body = v2_form("r1", "919876543210", "1", "DELIVERED")
    for path, headers in [
        ("/", FORM),
        ("/?token=wrong", FORM),
        (f"/?token={SECRET[:-1]}", FORM),
        ("/", {**FORM, "Authorization": "Basic " + base64.b64encode(b"u:nope").decode()}),
        ("/", {**FORM, "Authorization": "Basic !!!"}),
    ]:
        response = msg91.client.post(path, data=body, headers=headers)
        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers
    assert msg91.events() == 0
    auth = "Basic " + base64.b64encode(f"msg91:{SECRET}".encode()).decode()
    ok = msg91.client.post("/", data=body, headers={**FORM, "Authorization": auth})
    assert ok.status_code == 200


def test_msg91_replay_is_one_event(msg91: World) -> None:
    """The same report twice: one event."""
    body = v2_form("r1", "919876543210", "1", "DELIVERED")
    assert msg91.client.post(f"/?token={SECRET}", data=body, headers=FORM).json == {"events": 1}
    assert msg91.client.post(f"/?token={SECRET}", data=body, headers=FORM).json == {"events": 0}
    assert msg91.events() == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        json.dumps([{"data": [{"meta": "0"}], "event": "delivered"}]).encode(),  # v4
        json.dumps({"number": "919876543210", "status": "1"}).encode(),  # no requestId
        json.dumps({"requestId": "r", "report": "x"}).encode(),
        urlencode({"data": "{not json"}).encode(),
    ],
)
def test_msg91_malformed_is_400(msg91: World, body: bytes) -> None:
    response = msg91.client.post(f"/?token={SECRET}", data=body)
    assert response.status_code == 400, response.text
    assert msg91.events() == 0


def test_fast2sms_standard_json_and_form(fast2sms: World) -> None:
    """The Standard webhook as JSON and as a form; ten-digit numbers are +91."""
    receipt = fast2sms.send()
    report = {
        "request_id": receipt.provider_message_id,
        "mobile": "9876543210",
        "status": "delivered",
        "status_description": "Delivered",
        "delivery_time": "2024-05-22 10:06:20",
        "udf1": "ord-1042",
        "post_attempt": "1",
    }
    assert fast2sms.client.post(f"/?token={SECRET}", json=report).json == {"events": 1}
    row = fast2sms.log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"
    assert fast2sms.log.history(receipt.message_id)[-1].recipients == ("+919876543210",)
    failed = {**report, "status": "rejected", "failure_reason": "DND"}
    body = urlencode(failed).encode()
    assert fast2sms.client.post(f"/?token={SECRET}", data=body, headers=FORM).status_code == 200
    row = fast2sms.log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"  # a late rejection never overrides delivered


def test_fast2sms_clevertap_shape(fast2sms: World) -> None:
    receipt = fast2sms.send()
    body = {
        "payloadVersion": "1",
        "statuses": [
            {
                "msgId": receipt.provider_message_id,
                "status": "delivered",
                "timestamp": "1718712002",
                "description": "Delivered successfully",
            }
        ],
    }
    assert fast2sms.client.post(f"/?token={SECRET}", json=body).json == {"events": 1}
    row = fast2sms.log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"


def test_fast2sms_pending_is_not_an_event(fast2sms: World) -> None:
    body = {"request_id": "Q7fTz2WkLm9Xa1B", "mobile": "9876543210", "status": "pending"}
    assert fast2sms.client.post(f"/?token={SECRET}", json=body).json == {"events": 0}


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(nk.ConfigurationError, match="16 characters"):
        MSG91Receiver(secret="short")
    assert SECRET not in repr(Fast2SMSReceiver(secret=SECRET))


_fuzz = MSG91Receiver(secret=SECRET)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["requestId", "number", "status", "report", "data", "event"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=10,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
)
def test_any_body_is_events_or_a_4xx(data: bytes, ctype: str) -> None:
    """Whatever arrives: events or a WebhookError with a 4xx, never another exception."""
    status = 200
    try:
        _fuzz.handle(data, {"Content-Type": ctype}, token=SECRET)
    except WebhookError as exc:
        status = exc.status
    assert status == 200 or 400 <= status < 500


def test_wrong_secret_never_compares_equal() -> None:
    """The secret check: only the exact secret passes (token or basic auth)."""
    receiver = MSG91Receiver(secret=SECRET)
    body = json.dumps({"requestId": "r", "number": "91987", "status": "1"}).encode()
    for token in ["", SECRET + "x", SECRET.upper(), " " + SECRET]:
        with pytest.raises(WebhookError) as info:
            receiver.handle(body, {}, token=token)
        assert info.value.status == 401
    assert len(receiver.handle(body, {}, token=SECRET)) == 1
