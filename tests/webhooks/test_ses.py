"""SES through SNS: signed notifications in, log rows, stats and suppressions out.

Every request goes through the WSGI app with werkzeug's test client; the SNS
certificate is a locally generated one served by an injected fetcher.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("werkzeug")  # the WSGI test client (comes with the flask extra)
from werkzeug.test import Client

import notifykit as nk
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.suppression import SQLiteSuppressionList
from notifykit.webhooks import SESReceiver, WebhookError, asgi_app, wsgi_app
from tests.webhooks import sns
from tests.webhooks.sns import TOPIC, Fetcher


class World:
    """A Notifier and a receiver sharing one SQLite log and one suppression list."""

    def __init__(self, tmp: Path, **options: Any) -> None:
        self.log = SQLiteSink(tmp / "log.db")
        self.suppression = SQLiteSuppressionList(str(tmp / "suppress.db"))
        self.fetcher = Fetcher()
        self.confirmed: list[str] = []
        self.receiver = SESReceiver(
            topics=[TOPIC],
            fetch_certificate=self.fetcher,
            confirm=self.confirmed.append,
            sinks=[self.log],
            suppression=self.suppression,
            seen=str(tmp / "seen.db"),
            **options,
        )
        self.client = Client(wsgi_app(self.receiver))
        self.notifier = nk.Notifier(
            email=nk.MemoryTransport(),
            sinks=[self.log],
            sender="no-reply@acme.example",
            suppression=self.suppression,
        )

    def send(self, to: str, template: str = "receipt") -> nk.Receipt:
        email = nk.Email(to=to, subject="Your receipt", text="t")
        return self.notifier.send(email, template=template)

    def post(self, envelope: dict[str, Any], **headers: str) -> Any:
        return self.client.post(
            "/hooks/ses", data=sns.body(envelope), headers={**sns.headers(envelope), **headers}
        )

    def events(self) -> int:
        return sum(1 for e in self.log.tail(10_000) if e.status not in ("queued", "sent"))

    def close(self) -> None:
        self.log.close()
        self.suppression.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_hard_bounce_moves_the_row_suppresses_and_blocks_the_next_send(world: World) -> None:
    """A Permanent bounce: row ``bounced``/hard, address suppressed, next send refused."""
    receipt = world.send("nobody@example.net")
    pid = receipt.provider_message_id
    assert pid is not None
    response = world.post(sns.notification(sns.bounce(pid)))
    assert response.status_code == 200
    assert response.json == {"events": 1}
    row = world.log.delivery(receipt.message_id)
    assert row is not None
    assert (row.status, row.error_kind) == ("bounced", "hard")
    assert "550 5.1.1" in (row.last_error or "")
    assert world.suppression.check(["Nobody@Example.net"]) == {"Nobody@Example.net": row.last_error}
    with pytest.raises(nk.Suppressed) as info:
        world.send("nobody@example.net")
    assert isinstance(info.value, nk.RejectedError)
    assert "n***@example.net" in str(info.value)
    refused = world.log.tail(1)[0]
    assert (refused.status, refused.error_kind) == ("failed", "rejected")
    # the user asked for it (e.g. a password reset): sent anyway
    email = nk.Email(to="nobody@example.net", subject="Reset", text="t")
    assert world.notifier.send(email, ignore_suppression=True).transport


def test_every_ses_event_in_both_formats(world: World) -> None:
    """Delivery/Complaint/DeliveryDelay/Reject/Bounce, identity and event-publishing shapes."""
    cases = [
        (sns.delivery, {"key": "notificationType"}, "delivered"),
        (sns.delivery, {"key": "eventType"}, "delivered"),
        (sns.complaint, {}, "complained"),
        (sns.delay, {}, "deferred"),
        (sns.reject, {}, "rejected_by_provider"),
        (sns.bounce, {"key": "notificationType", "bounce_type": "Transient"}, "bounced"),
    ]
    for n, (build, options, status) in enumerate(cases):
        receipt = world.send(f"user{n}@example.com")
        payload = build(receipt.provider_message_id, f"user{n}@example.com", **options)
        assert world.post(sns.notification(payload)).status_code == 200
        row = world.log.delivery(receipt.message_id)
        assert row is not None
        assert row.status == status, (build.__name__, options)
        history = world.log.history(receipt.message_id)
        assert history[-1].status == status
        assert history[-1].recipients == (f"user{n}@example.com",)
    # complaint suppresses, the transient bounce (once) does not
    assert world.suppression.check(["user2@example.com", "user5@example.com"]) == {
        "user2@example.com": "abuse"
    }


def test_signature_version_1_sha1(world: World) -> None:
    """Topics still on SignatureVersion 1 (SHA1) verify too."""
    receipt = world.send("ann@example.com")
    envelope = sns.notification(sns.delivery(receipt.provider_message_id), version="1")
    assert world.post(envelope).status_code == 200
    row = world.log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"


def test_stats_by_template_and_transport(world: World) -> None:
    """Rates follow the reports: 2 delivered, 1 bounced, 1 complained out of 4."""
    receipts = [world.send(f"s{i}@example.com", template="welcome") for i in range(4)]
    ids = [r.provider_message_id for r in receipts]
    world.post(sns.notification(sns.delivery(ids[0], "s0@example.com")))
    world.post(sns.notification(sns.delivery(ids[1], "s1@example.com")))
    world.post(sns.notification(sns.bounce(ids[2], "s2@example.com", feedback="f2")))
    world.post(sns.notification(sns.complaint(ids[3], "s3@example.com")))
    (row,) = world.log.stats()
    assert (row.delivered, row.bounced, row.complained) == (3, 1, 1)
    assert (row.delivery_rate, row.bounce_rate, row.complaint_rate) == (0.75, 0.25, 0.25)
    (by_transport,) = world.log.stats(group_by="transport")
    assert by_transport.bounce_rate == 0.25


def test_a_replay_is_one_event(world: World) -> None:
    """The same notification twice (an SNS retry, a replay): 200 both times, one event."""
    receipt = world.send("ann@example.com")
    envelope = sns.notification(sns.delivery(receipt.provider_message_id))
    assert world.post(envelope).json == {"events": 1}
    assert world.post(envelope).json == {"events": 0}
    assert world.events() == 1
    # the same SES event under another SNS id (both SES paths enabled): still one
    again = sns.notification(sns.delivery(receipt.provider_message_id))
    assert world.post(again).json == {"events": 0}
    assert world.events() == 1


def test_the_certificate_is_fetched_once(world: World) -> None:
    """Certificates are cached by URL."""
    for n in range(3):
        world.post(sns.notification(sns.delivery(f"id-{n}")))
    assert world.fetcher.urls == [sns.CERT_URL]


def _refused(world: World, envelope: dict[str, Any], status: int, **headers: str) -> str:
    before_events, before_supp = world.events(), world.suppression.entries()
    response = world.post(envelope, **headers)
    assert response.status_code == status, response.text
    assert world.events() == before_events
    assert world.suppression.entries() == before_supp
    return str(response.text)


def test_tampered_notifications_are_403_and_change_nothing(world: World) -> None:
    """Any change to a signed field, or a signature by another key, is refused."""
    good = sns.notification(sns.bounce())
    for field, value in [
        ("Message", json.dumps(sns.bounce(to="victim@example.com"))),
        ("Timestamp", "2024-03-05T09:12:44.119Z"),
        ("Subject", "x"),
        ("MessageId", "a9c4d1e2-7b3f-5c60-8d9e-0f1a2b3c4d5f"),
    ]:
        tampered = {**good, field: value}
        text = _refused(world, tampered, 403, **{"x-amz-sns-message-id": tampered["MessageId"]})
        assert "signature does not verify" in text
    forged = sns.sign({k: v for k, v in good.items() if k != "Signature"}, key=sns.OTHER_KEY)
    _refused(world, forged, 403)
    _refused(world, {**good, "Signature": "not base64!"}, 403)
    _refused(world, {**good, "SignatureVersion": "3"}, 403)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.txt",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-0123.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.eu-west-1.amazonaws.com/x.pem?evil=1",
    ],
)
def test_a_certificate_url_off_the_sns_host_is_never_fetched(world: World, url: str) -> None:
    """SigningCertURL must be https://sns.<topic region>.amazonaws.com/....pem."""
    envelope = sns.notification(sns.delivery())
    envelope["SigningCertURL"] = url
    sns.sign(envelope)
    _refused(world, envelope, 403)
    assert world.fetcher.urls == []


def test_an_unknown_topic_is_refused_and_never_confirmed(world: World) -> None:
    """Someone else's topic: 403 for notifications and confirmations; nothing fetched."""
    _refused(world, sns.notification(sns.bounce(), topic=sns.OTHER_TOPIC), 403)
    text = _refused(world, sns.confirmation(topic=sns.OTHER_TOPIC), 403)
    assert "not one this endpoint accepts" in text
    assert world.confirmed == []
    assert world.fetcher.urls == []


def test_subscription_confirmation_for_an_allowed_topic(world: World) -> None:
    """Verified, the SubscribeURL checked, then confirmed through the injected function."""
    envelope = sns.confirmation()
    assert world.post(envelope).status_code == 200
    assert world.confirmed == [envelope["SubscribeURL"]]
    # an UnsubscribeConfirmation is logged, never "confirmed" (that would re-subscribe)
    assert world.post(sns.confirmation(kind="UnsubscribeConfirmation")).status_code == 200
    assert len(world.confirmed) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/?Action=ConfirmSubscription&TopicArn=" + TOPIC,
        "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&TopicArn=" + TOPIC,
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
        + sns.OTHER_TOPIC,
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC,
    ],
)
def test_a_subscribe_url_that_is_not_sns_is_never_fetched(world: World, url: str) -> None:
    """Even correctly signed, a SubscribeURL elsewhere (SSRF) is refused."""
    _refused(world, sns.confirmation(url=url), 403)
    assert world.confirmed == []


def test_confirmation_can_be_left_to_the_operator(tmp_path: Path, caplog: Any) -> None:
    """confirm=None: nothing fetched, topic and token logged."""
    receiver = SESReceiver(topics=[TOPIC], fetch_certificate=Fetcher(), confirm=None)
    with caplog.at_level("WARNING", logger="notifykit.webhooks"):
        assert receiver.handle(sns.body(sns.confirmation()), {}) == []
    assert "awaits confirmation" in caplog.text


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b'{"Type": "Notification"}', 400),
        (json.dumps({"Type": "Notification", "TopicArn": TOPIC}).encode(), 400),
        (json.dumps({"Type": "Nope", "TopicArn": TOPIC}).encode(), 400),
        (json.dumps({"Type": "Notification", "TopicArn": "arn:x"}).encode(), 403),
        (b"[" * 100_000, 400),
    ],
)
def test_malformed_bodies_are_400(world: World, data: bytes, status: int) -> None:
    """Garbage in: a clear 4xx, never a 500, nothing recorded."""
    response = world.client.post("/hooks/ses", data=data)
    assert response.status_code == status, response.text
    assert world.events() == 0


def test_a_signed_message_that_is_not_ses_json(world: World) -> None:
    """A verified notification whose Message is not SES JSON is a 400; the set-up note is 200."""
    _refused(world, sns.notification("hello"), 400)
    _refused(world, sns.notification({"mail": {}}), 400)
    ok = sns.notification("Successfully validated SNS topic for Amazon SES event publishing.")
    assert world.post(ok).json == {"events": 0}


def test_headers_must_match_the_body(world: World) -> None:
    """x-amz-sns-message-type/-id disagreeing with the body, or raw delivery: 400."""
    envelope = sns.notification(sns.delivery())
    _refused(world, envelope, 400, **{"x-amz-sns-message-type": "SubscriptionConfirmation"})
    _refused(world, envelope, 400, **{"x-amz-sns-message-id": "other"})
    _refused(world, envelope, 400, **{"x-amz-sns-rawdelivery": "true"})


def test_only_post(world: World) -> None:
    """GET is 405; a body over the limit is 413."""
    assert world.client.get("/hooks/ses").status_code == 405
    assert world.client.post("/hooks/ses", data=b"x" * (1024 * 1024 + 1)).status_code == 413


def test_basic_auth_secret(tmp_path: Path) -> None:
    """With secret=..., a missing password is a 401 challenge (SNS then retries with it)."""
    w = World(tmp_path, secret="correct-horse-battery-staple")
    try:
        envelope = sns.notification(sns.delivery())
        response = _refused_status(w, envelope)
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
        ok = w.client.post(
            "/", data=sns.body(envelope), auth=("sns", "correct-horse-battery-staple")
        )
        assert ok.status_code == 200
    finally:
        w.close()


def _refused_status(world: World, envelope: dict[str, Any]) -> Any:
    response = world.post(envelope)
    assert response.status_code == 401
    return response


def test_a_bounce_with_a_delayed_recipient_is_soft(world: World) -> None:
    """AWS's example: a Permanent bounce listing a delayed/4.x.x recipient is not hard."""
    receipt = world.send("later@example.com")
    payload = sns.bounce(
        receipt.provider_message_id, "later@example.com", action="delayed", status="4.0.0"
    )
    world.post(sns.notification(payload))
    row = world.log.delivery(receipt.message_id)
    assert row is not None
    assert row.error_kind == "soft"
    assert world.suppression.check(["later@example.com"]) == {}


def test_soft_bounces_suppress_after_the_limit(world: World) -> None:
    """Three Transient bounces in the window (the default limit) suppress; two do not."""
    for n in range(3):
        assert world.suppression.check(["full@example.com"]) == {}
        payload = sns.bounce(
            f"id-{n}",
            "full@example.com",
            bounce_type="Transient",
            sub_type="MailboxFull",
            feedback=f"fb-{n}",
        )
        assert world.post(sns.notification(payload)).status_code == 200
    (entry,) = world.suppression.entries()
    assert (entry.recipient, entry.source) == ("full@example.com", "soft_bounces")


def test_a_sink_failure_is_503_and_the_retry_goes_through(tmp_path: Path) -> None:
    """If recording fails, SNS gets a 5xx (it retries) and the retry is not taken for a replay."""

    class Flaky:
        def __init__(self) -> None:
            self.fail = True
            self.events: list[nk.DeliveryEvent] = []

        def record(self, event: nk.DeliveryEvent) -> None:
            if self.fail:
                raise OSError("disk full")
            self.events.append(event)

    sink = Flaky()
    receiver = SESReceiver(topics=[TOPIC], fetch_certificate=Fetcher(), sinks=[sink])
    client = Client(wsgi_app(receiver))
    envelope = sns.notification(sns.delivery())
    assert client.post("/", data=sns.body(envelope)).status_code == 503
    sink.fail = False
    assert client.post("/", data=sns.body(envelope)).json == {"events": 1}
    assert len(sink.events) == 1


def test_asgi_app(world: World) -> None:
    """The ASGI app answers the same way (driven with raw ASGI messages)."""
    app = asgi_app(world.receiver)
    receipt = world.send("ann@example.com")

    async def call(method: str, body: bytes) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        chunks = [body[:10], body[10:]]

        async def receive() -> dict[str, Any]:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "headers": [], "query_string": b""}
        await app(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    envelope = sns.notification(sns.delivery(receipt.provider_message_id))
    assert asyncio.run(call("POST", sns.body(envelope))) == (200, b'{"events": 1}')
    assert asyncio.run(call("POST", b"garbage"))[0] == 400
    assert asyncio.run(call("GET", b""))[0] == 405
    row = world.log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "delivered"


def test_configuration_errors() -> None:
    """No topics, or a topic that is not an ARN: ConfigurationError at construction."""
    with pytest.raises(nk.ConfigurationError, match="topics"):
        SESReceiver(topics=[])
    with pytest.raises(nk.ConfigurationError, match="not an SNS topic ARN"):
        SESReceiver(topics=["ses-events"])


_fuzz_receiver = SESReceiver(topics=[TOPIC], fetch_certificate=Fetcher())


@settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from(
                [
                    "Type",
                    "MessageId",
                    "TopicArn",
                    "Message",
                    "Timestamp",
                    "Signature",
                    "SignatureVersion",
                    "SigningCertURL",
                    "Subject",
                ]
            ),
            st.one_of(st.text(max_size=30), st.integers(), st.none(), st.just(TOPIC)),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_no_body_gets_past_the_verifier_or_raises_anything_else(data: bytes) -> None:
    """Any body: a WebhookError with a 4xx, never an event, never another exception."""
    with pytest.raises(WebhookError) as info:
        _fuzz_receiver.handle(data, {})
    assert 400 <= info.value.status < 500


def test_without_cryptography_it_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cryptography: MissingDependency naming the extra; the apps answer 500 (SNS retries)."""
    import sys

    monkeypatch.setitem(sys.modules, "cryptography", None)
    receiver = SESReceiver(topics=[TOPIC], fetch_certificate=Fetcher())
    body = sns.body(sns.notification(sns.delivery()))
    with pytest.raises(nk.MissingDependency, match=r"notifykit-py\[webhooks\]"):
        receiver.handle(body, {})
    assert Client(wsgi_app(receiver)).post("/", data=body).status_code == 500


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    """Neither the basic-auth secret nor a wrong password shows in a repr or an error."""
    receiver = SESReceiver(topics=[TOPIC], fetch_certificate=Fetcher(), secret="s3cr3t-pass-word")
    assert "s3cr3t" not in repr(receiver)
    with pytest.raises(WebhookError) as info:
        receiver.handle(b"{}", {"Authorization": "Basic dXNlcjp3cm9uZy1wYXNzd29yZA=="})
    assert info.value.status == 401
    assert "wrong-password" not in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_without_subject_and_max_age(tmp_path: Path) -> None:
    """Identity notifications may have no Subject (not signed then); max_age refuses old ones."""
    from datetime import timedelta

    receiver = SESReceiver(topics=[TOPIC], fetch_certificate=Fetcher(), max_age=timedelta(hours=1))
    envelope = sns.notification(sns.delivery(key="notificationType"), subject=None)
    with pytest.raises(WebhookError, match="too old") as info:  # 2024 timestamp
        receiver.handle(sns.body(envelope), {})
    assert info.value.status == 403
    from datetime import datetime, timezone

    fresh = sns.notification(sns.delivery(key="notificationType"), subject=None)
    fresh["Timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    sns.sign(fresh)
    (event,) = receiver.handle(sns.body(fresh), {})
    assert event.status == "delivered"
    assert event.metadata["sns_message_id"] == fresh["MessageId"]
