"""Batch sends: MSG91 Flow and Fast2SMS bulkV2 take many numbers per request.

Against the loopback fake provider (tests/servers/sms_fake.py), which accepts
or refuses a batch request as a whole, as the providers do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("httpx")

import notifykit as nk
from notifykit.sinks.memory import MemorySink
from notifykit.transports.fast2sms import Fast2SMSTransport
from notifykit.transports.msg91 import MSG91Transport
from tests.servers.sms_fake import FAST2SMS_KEY, MSG91_KEY, SMSFakeServer

NUMBERS = [f"+9198765432{i:02d}" for i in range(10)]


@pytest.fixture
def msg91(sms_fake: SMSFakeServer) -> Iterator[MSG91Transport]:
    with MSG91Transport(MSG91_KEY, base_url=sms_fake.url, sender="SHOPIN") as transport:
        yield transport


@pytest.fixture
def fast2sms(sms_fake: SMSFakeServer) -> Iterator[Fast2SMSTransport]:
    with Fast2SMSTransport(FAST2SMS_KEY, base_url=sms_fake.url, sender_id="SHOPIN") as transport:
        yield transport


def otp(to: str, code: str, **changes: object) -> nk.SMS:
    fields: dict[str, object] = {
        "to": to,
        "body": f"Your code is {code}",
        "template_id": "65e06f45d6fc05278c7d47e2",
        "variables": {"otp": code, "name": "Asha"},
    }
    fields.update(changes)
    return nk.SMS(**fields)  # type: ignore[arg-type]


def test_msg91_one_request_with_per_recipient_variables(
    msg91: MSG91Transport, sms_fake: SMSFakeServer
) -> None:
    """Ten SMS of one flow go in one request, each recipient with its own variables."""
    messages = [otp(n, f"{1000 + i}") for i, n in enumerate(NUMBERS)]
    results = msg91.send_batch(messages)
    assert 1 == len(sms_fake.requests)
    body = sms_fake.requests[0].json
    assert [n.lstrip("+") for n in NUMBERS] == [r["mobiles"] for r in body["recipients"]]
    assert [f"{1000 + i}" for i in range(10)] == [r["otp"] for r in body["recipients"]]
    assert all(isinstance(r, nk.Receipt) for r in results)
    receipts = [r for r in results if isinstance(r, nk.Receipt)]
    assert [m.id for m in messages] == [r.message_id for r in receipts]
    assert [(m.to,) for m in messages] == [r.accepted for r in receipts]
    assert 1 == len({r.provider_message_id for r in receipts})  # the request id, shared
    assert receipts[0].provider_message_id
    assert 1000 - 10 == sms_fake.msg91_balance


def test_msg91_groups_by_flow_and_chunks(msg91: MSG91Transport, sms_fake: SMSFakeServer) -> None:
    """Different flows go in different requests; no request holds more than batch_size."""
    msg91.batch_size = 4
    messages = [otp(n, "1234") for n in NUMBERS[:6]] + [
        nk.SMS(to=n, body="x", template_id="1001", variables={"order": "A-1"}) for n in NUMBERS[6:]
    ]
    results = msg91.send_batch(messages)
    assert all(isinstance(r, nk.Receipt) for r in results)
    sizes = sorted(len(req.json["recipients"]) for req in sms_fake.requests)
    assert [2, 4, 4] == sizes
    flows = {req.json["template_id"] for req in sms_fake.requests}
    assert {"65e06f45d6fc05278c7d47e2", "1001"} == flows


def test_msg91_a_bad_number_fails_alone(msg91: MSG91Transport, sms_fake: SMSFakeServer) -> None:
    """The provider refuses the whole batch; each SMS is then sent alone and only the bad one fails."""
    sms_fake.invalid_numbers.add(NUMBERS[3].lstrip("+"))
    messages = [otp(n, "1234") for n in NUMBERS[:5]]
    results = msg91.send_batch(messages)
    assert isinstance(results[3], nk.RejectedError)
    assert NUMBERS[3] in results[3].rejected
    assert results[3].transport == "msg91"
    assert all(isinstance(r, nk.Receipt) for i, r in enumerate(results) if i != 3)
    assert 1 + 5 == len(sms_fake.requests)  # the refused batch, then one request each
    assert 1000 - 4 == sms_fake.msg91_balance


def test_msg91_provider_error_is_every_message_error_and_nothing_is_resent(
    sms_fake: SMSFakeServer,
) -> None:
    """A refused key fails every message with the masked error; no per-message retries."""
    with MSG91Transport("wrong-key-000", base_url=sms_fake.url) as transport:
        results = transport.send_batch([otp(n, "1234") for n in NUMBERS[:4]])
    assert all(isinstance(r, nk.ProviderError) for r in results)
    assert 1 == len(sms_fake.requests)
    assert all("wrong-key-000" not in str(r) for r in results)


def test_msg91_invalid_message_is_its_own_error(msg91: MSG91Transport) -> None:
    """An SMS without a flow fails alone before any request; the others are sent."""
    messages = [otp(NUMBERS[0], "1"), nk.SMS(to=NUMBERS[1], body="no flow"), otp(NUMBERS[2], "3")]
    results = msg91.send_batch(messages)
    assert isinstance(results[0], nk.Receipt)
    assert isinstance(results[1], nk.InvalidMessage)
    assert isinstance(results[2], nk.Receipt)


def test_fast2sms_same_text_one_request(
    fast2sms: Fast2SMSTransport, sms_fake: SMSFakeServer
) -> None:
    """DLT SMS with the same template and values share a bulkV2 request (comma numbers)."""
    messages = [
        nk.SMS(to=n, body="x", template_id="1001", variables={"order": "A-1"}) for n in NUMBERS
    ]
    results = fast2sms.send_batch(messages)
    assert 1 == len(sms_fake.requests)
    assert ",".join(n[3:] for n in NUMBERS) == sms_fake.requests[0].json["numbers"]
    assert all(isinstance(r, nk.Receipt) for r in results)
    assert 1 == len({r.provider_message_id for r in results if isinstance(r, nk.Receipt)})


def test_fast2sms_different_values_and_duplicates_split(
    fast2sms: Fast2SMSTransport, sms_fake: SMSFakeServer
) -> None:
    """bulkV2 has one set of values per request, and a number twice reads as spam: split."""
    messages = [
        nk.SMS(to=NUMBERS[0], body="x", template_id="1001", variables={"order": "A-1"}),
        nk.SMS(to=NUMBERS[1], body="x", template_id="1001", variables={"order": "A-1"}),
        nk.SMS(to=NUMBERS[2], body="x", template_id="1001", variables={"order": "B-2"}),
        nk.SMS(to=NUMBERS[0], body="x", template_id="1001", variables={"order": "A-1"}),
    ]
    results = fast2sms.send_batch(messages)
    assert all(isinstance(r, nk.Receipt) for r in results), results
    numbers = sorted(req.json["numbers"] for req in sms_fake.requests)
    assert sorted([f"{NUMBERS[0][3:]},{NUMBERS[1][3:]}", NUMBERS[2][3:], NUMBERS[0][3:]]) == numbers


def test_fast2sms_a_bad_number_fails_alone(
    fast2sms: Fast2SMSTransport, sms_fake: SMSFakeServer
) -> None:
    """411 for the batch: each SMS is sent alone; only the refused number fails."""
    sms_fake.invalid_numbers.add(NUMBERS[1][3:])
    messages = [
        nk.SMS(to=n, body="x", template_id="1001", variables={"order": "A-1"}) for n in NUMBERS[:3]
    ]
    results = fast2sms.send_batch(messages)
    assert isinstance(results[0], nk.Receipt)
    assert isinstance(results[1], nk.RejectedError)
    assert isinstance(results[2], nk.Receipt)


def test_a_timeout_is_maybe_delivered_for_all_and_never_resent(sms_fake: SMSFakeServer) -> None:
    """The batch may have been delivered: every message says so and nothing is sent again."""
    sms_fake.script("hang")
    with MSG91Transport(MSG91_KEY, base_url=sms_fake.url, timeout=0.5) as transport:
        results = transport.send_batch([otp(n, "1234") for n in NUMBERS[:3]])
    assert all(isinstance(r, nk.DeliveryError) and r.maybe_delivered for r in results), results
    assert 1 == len(sms_fake.requests)


TEMPLATES = {
    "sale.html": (
        "{% block subject %}Sale{% endblock %}"
        "{% block text %}The sale starts at 10.{% endblock %}"
        "{% block sms %}The sale starts at 10.{% endblock %}"
    ),
    "broken.html": "{% block sms %}{{ missing.attr }}{% endblock %}",
}


def test_send_many_uses_the_batch_endpoint_and_logs_each(
    fast2sms: Fast2SMSTransport, sms_fake: SMSFakeServer
) -> None:
    """send_many(channel="sms") sends one bulkV2 request; every message is logged and reported."""
    fast2sms.route = "q"
    sink = MemorySink()
    renderer = nk.TemplateRenderer.from_dict(TEMPLATES, inliner=None)
    notifier = nk.Notifier(sms=fast2sms, templates=renderer, sinks=[sink], default_region="IN")
    rows: list[tuple[object, dict[str, object] | None]] = [(n, {}) for n in NUMBERS[:6]]
    rows[2] = ("12", {})  # not a phone number: fails alone, before any request
    progress: list[int] = []
    results = notifier.send_many(
        "sale.html", rows, channel="sms", on_progress=lambda i, r: progress.append(i)
    )
    assert 1 == len(sms_fake.requests)
    assert 5 == len(sms_fake.requests[0].json["numbers"].split(","))
    assert isinstance(results[2], nk.InvalidMessage)
    assert [isinstance(r, nk.Receipt) for r in results] == [True, True, False, True, True, True]
    assert list(range(6)) == progress
    statuses = [e.status for e in sink.events]
    assert 5 == statuses.count("sent")
    assert 1 == statuses.count("failed")
    assert 5 == statuses.count("queued")


def test_send_many_batch_rejection_falls_back_per_message(
    msg91: MSG91Transport, sms_fake: SMSFakeServer
) -> None:
    """A rejected batch through send_many: the good numbers arrive, the bad one is a failed event."""
    sms_fake.invalid_numbers.add(NUMBERS[1].lstrip("+"))
    sink = MemorySink()
    renderer = nk.TemplateRenderer.from_dict(TEMPLATES, inliner=None)
    notifier = nk.Notifier(sms=msg91, templates=renderer, sinks=[sink])
    results = notifier.send_many(
        "sale.html",
        [(n, None) for n in NUMBERS[:3]],
        channel="sms",
        template_id="1001",
        variables={"order": "A-1"},
    )
    assert [nk.Receipt, nk.RejectedError, nk.Receipt] == [
        type(r) if isinstance(r, nk.Receipt) else nk.RejectedError for r in results
    ]
    assert isinstance(results[1], nk.RejectedError)
    failed = [e for e in sink.events if e.status == "failed"]
    assert 1 == len(failed)
    assert "rejected" == failed[0].error_kind
