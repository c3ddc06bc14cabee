"""SESTransport against moto's SES, botocore's Stubber, and dead local endpoints."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from botocore.stub import ANY, Stubber  # noqa: E402

import notifykit as nk  # noqa: E402
from notifykit.retry import Retry  # noqa: E402
from notifykit.transports.failover import FailoverTransport  # noqa: E402
from notifykit.transports.ses import (  # noqa: E402
    MAX_RAW_MESSAGE_SIZE,
    SESQuota,
    SESTransport,
    build_send_email_kwargs,
    sanitize_tag,
)

from .contract import TransportContract  # noqa: E402

# Obviously fake credentials; the secret is long enough to be masked.
KEY_ID = "AKIATESTINGTESTING00"
SECRET = "testing-secret-access-key-not-real"
TOKEN = "testing-session-token-not-real"
REGION = "us-east-1"
SENDER = "Shop <noreply@shop.example>"


# --------------------------------------------------------------------------- ses_conftest helpers


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Isolate boto3 from the developer's AWS set-up and from any network lookup."""
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SESV2",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class MotoSES:
    """moto's SES in one account and region, with the sender's domain verified."""

    def __init__(self) -> None:
        self.admin = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client("sesv2")
        self.admin.create_email_identity(EmailIdentity="shop.example")

    @property
    def sent(self) -> list[Any]:
        """moto's stored raw messages (id, source, destinations, raw_data)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@pytest.fixture
def moto_ses() -> Iterator[MotoSES]:
    with moto.mock_aws():
        yield MotoSES()


def make_transport(**kw: Any) -> SESTransport:
    kw.setdefault("region", REGION)
    kw.setdefault("access_key_id", KEY_ID)
    kw.setdefault("secret_access_key", SECRET)
    return SESTransport(**kw)


def capture_raw(transport: SESTransport) -> list[bytes]:
    """Record the raw MIME bytes of every SendEmail call through botocore's public event hook."""
    captured: list[bytes] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        captured.append(params["Content"]["Raw"]["Data"])

    transport.client.meta.events.register("provide-client-params.sesv2.SendEmail", hook)
    return captured


@pytest.fixture(scope="module")
def stub_session() -> Any:
    """One boto3 session for the stubbed clients: it loads the service model once."""
    return boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="ap-south-1"
    )


@pytest.fixture
def stubbed(stub_session: Any) -> Iterator[tuple[SESTransport, Stubber]]:
    """A transport whose injected client answers from a botocore Stubber (no I/O)."""
    client = stub_session.client("sesv2")
    with Stubber(client) as stubber:
        yield SESTransport(client=client), stubber
        # No answer left unused: each test consumed exactly what it queued.
        stubber.assert_no_pending_responses()
    client.close()


def email(**kw: Any) -> nk.Email:
    kw.setdefault("to", "Asha <asha@example.com>")
    kw.setdefault("subject", "Your order")
    kw.setdefault("text", "Shipped.")
    kw.setdefault("sender", SENDER)
    return nk.Email(**kw)


class DeadEndpoint:
    """A TCP server on 127.0.0.1 that reads an HTTP request and then hangs or hangs up."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(2.0)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            except OSError:
                pass
            self.requests += 1
            if self.mode == "close":
                conn.close()
            else:
                self._conns.append(conn)  # never answer

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def hanging_endpoint() -> Iterator[DeadEndpoint]:
    server = DeadEndpoint("hang")
    yield server
    server.stop()


@pytest.fixture
def closing_endpoint() -> Iterator[DeadEndpoint]:
    server = DeadEndpoint("close")
    yield server
    server.stop()


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- contract


class TestSESContract(TransportContract):
    """SESTransport passes the shared transport contract against moto."""

    secrets = (SECRET, TOKEN)

    @pytest.fixture
    def transport(self, moto_ses: MotoSES) -> Iterator[SESTransport]:
        self.moto = moto_ses
        transport = make_transport(session_token=TOKEN)
        yield transport
        transport.close()

    def assert_delivered(self, transport: Any, message: nk.Email | nk.SMS) -> None:
        assert isinstance(message, nk.Email)
        ids = [
            message_from_bytes(m.raw_data.encode(), policy=policy.default)["Message-ID"]
            for m in self.moto.sent
        ]
        assert message.message_id_header in ids


# --------------------------------------------------------------------------- moto


def test_raw_message_arrives_byte_for_byte(moto_ses: MotoSES) -> None:
    """Attachments, an inline image, cc and bcc reach SES as the exact MIME bytes sent."""
    transport = make_transport()
    captured = capture_raw(transport)
    message = email(
        to=["Asha <asha@example.com>", "ravi@example.com"],
        cc="Meera <meera@example.com>",
        bcc="audit@shop.example",
        subject="Invoice ₹1,250 — order A-17",
        text="Your invoice is attached.",
        html='<p>Invoice attached.</p><img src="cid:logo">',
        attachments=[
            nk.Attachment("invoice.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 20),
            nk.Attachment("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 300, content_id="logo"),
        ],
    )
    receipt = transport.send(message)

    assert 1 == len(moto_ses.sent)
    stored = moto_ses.sent[0]
    assert 1 == len(captured)
    assert captured[0] == stored.raw_data.encode("utf-8")
    assert stored.id == receipt.provider_message_id
    assert "noreply@shop.example" in stored.source
    assert {
        "asha@example.com",
        "ravi@example.com",
        "meera@example.com",
        "audit@shop.example",
    } <= set(stored.destinations)
    parsed = message_from_bytes(captured[0], policy=policy.default)
    assert parsed["Bcc"] is None
    assert ["invoice.pdf", "logo.png"] == sorted(
        part.get_filename() for part in parsed.walk() if part.get_filename()
    )
    assert message.recipients == receipt.accepted
    assert "ses:us-east-1" == receipt.transport


def test_unverified_sender_is_provider_error(moto_ses: MotoSES) -> None:
    """An unverified sender identity is a ProviderError: the account cannot send as it."""
    transport = make_transport()
    with pytest.raises(nk.ProviderError) as info:
        transport.send(email(sender="someone@unverified.example"))
    assert "MessageRejected" == info.value.provider_code
    assert "provider" == info.value.attempts[-1].outcome
    assert [] == moto_ses.sent


def test_client_created_once_and_shared_between_threads(moto_ses: MotoSES) -> None:
    """Concurrent first uses create a single client, and every send reuses it."""
    transport = make_transport()
    barrier = threading.Barrier(6)
    clients: list[Any] = []

    def grab() -> None:
        barrier.wait()
        clients.append(transport.client)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert 6 == len(clients)
    assert 1 == len({id(c) for c in clients})
    transport.send(email())
    transport.send(email())
    assert clients[0] is transport.client
    assert 2 == len(moto_ses.sent)


def test_close_drops_own_client_and_reconnects(moto_ses: MotoSES) -> None:
    """close() discards the transport's own client; the next send builds a fresh one."""
    transport = make_transport()
    first = transport.client
    transport.close()
    transport.send(email())
    assert first is not transport.client
    assert 1 == len(moto_ses.sent)


def test_client_config_leaves_retries_to_notifykit() -> None:
    """The transport's own client makes one request per send and uses the given timeout."""
    transport = make_transport(timeout=3.5)
    config = transport.client.meta.config
    assert 1 == config.retries["total_max_attempts"]
    assert 3.5 == config.connect_timeout
    assert 3.5 == config.read_timeout
    transport.close()


def test_connect_timeout_is_separate_from_the_read_timeout() -> None:
    """Connect fails fast by default (5 s, like SMTP and HTTP); the read time-out stays 10 s."""
    transport = make_transport()
    assert 5.0 == transport.client.meta.config.connect_timeout
    assert 10.0 == transport.client.meta.config.read_timeout
    transport.close()
    transport = make_transport(timeout=20, connect_timeout=1.5)
    assert 1.5 == transport.client.meta.config.connect_timeout
    assert 20.0 == transport.client.meta.config.read_timeout
    transport.close()
    from_url = nk.from_dsn("ses://?region=eu-west-1&connect_timeout=2&timeout=8")
    assert isinstance(from_url, SESTransport)
    assert 2.0 == from_url.connect_timeout
    assert 8.0 == from_url.timeout
    with pytest.raises(nk.ConfigurationError, match="connect_timeout"):
        make_transport(connect_timeout=0)


def test_failover_from_ses_to_memory(moto_ses: MotoSES) -> None:
    """A FailoverTransport moves on from an SES account that cannot send to the next transport."""
    memory = nk.MemoryTransport()
    failover = FailoverTransport([make_transport(), memory], retry=Retry(attempts=1))
    receipt = failover.send(email(sender="someone@unverified.example"))
    assert "memory" == receipt.transport
    assert ["provider", "sent"] == [a.outcome for a in receipt.attempts]
    assert 1 == len(memory.outbox)


def test_failover_from_ses_to_smtp(moto_ses: MotoSES) -> None:
    """A failover of ses:// then smtp:// delivers through SMTP when SES cannot send."""
    smtp = pytest.importorskip("notifykit.transports.smtp")
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    class Collect(Sink):
        def __init__(self) -> None:
            self.received: list[bytes] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.received.append(envelope.original_content)
            return "250 OK"

    handler = Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp_transport = smtp.SMTPTransport("127.0.0.1", port, security="none", timeout=5)
        failover = FailoverTransport([make_transport(), smtp_transport], retry=Retry(attempts=1))
        with failover:
            receipt = failover.send(email(sender="someone@unverified.example"))
        assert smtp_transport.name == receipt.transport
        assert 1 == len(handler.received)
    finally:
        controller.stop()


# --------------------------------------------------------------------------- request building


def test_request_has_bare_destinations_from_and_options() -> None:
    """The request names each recipient once, bare, with reply-to and the configuration set."""
    message = email(
        to=["Asha <asha@example.com>", "ravi@example.com"],
        cc=["Meera <meera@example.com>", "asha@example.com"],
        bcc=["audit@shop.example"],
        reply_to="Support <help@shop.example>",
    )
    kwargs = build_send_email_kwargs(message, configuration_set="transactional")
    assert {
        "ToAddresses": ["asha@example.com", "ravi@example.com"],
        "CcAddresses": ["meera@example.com"],
        "BccAddresses": ["audit@shop.example"],
    } == kwargs["Destination"]
    assert "Shop <noreply@shop.example>" == kwargs["FromEmailAddress"]
    assert ["help@shop.example"] == kwargs["ReplyToAddresses"]
    assert "transactional" == kwargs["ConfigurationSetName"]
    raw = message_from_bytes(kwargs["Content"]["Raw"]["Data"], policy=policy.default)
    assert "Your order" == raw["Subject"]
    assert raw["Bcc"] is None
    assert "EmailTags" not in kwargs


def test_non_ascii_sender_name_and_domain_are_encoded() -> None:
    """A non-ASCII display name is RFC 2047-encoded and a non-ASCII domain becomes punycode."""
    kwargs = build_send_email_kwargs(
        email(sender="Café Zoë <hello@shop.example>", to="priya@bücher.example")
    )
    assert kwargs["FromEmailAddress"].startswith("=?utf-8?")
    assert kwargs["FromEmailAddress"].endswith("<hello@shop.example>")
    assert ["priya@xn--bcher-kva.example"] == kwargs["Destination"]["ToAddresses"]


def test_message_without_sender_is_invalid_before_any_request(
    stubbed: tuple[SESTransport, Stubber],
) -> None:
    """An e-mail with no sender is an InvalidMessage, raised without calling SES."""
    transport, _ = stubbed
    with pytest.raises(nk.InvalidMessage):
        transport.send(nk.Email(to="asha@example.com", subject="s", text="t"))


def test_tags_and_metadata_become_sanitised_email_tags() -> None:
    """Tags map to name=true and metadata to name=value, with invalid characters replaced by '_'."""
    message = email(
        tags=["order shipped", "café"],
        metadata={"order.id": "A-17/3", "priority": 2, "vip": True, "none": None},
    )
    kwargs = build_send_email_kwargs(message)
    assert [
        {"Name": "order_shipped", "Value": "true"},
        {"Name": "caf_", "Value": "true"},
        {"Name": "order_id", "Value": "A-17_3"},
        {"Name": "priority", "Value": "2"},
        {"Name": "vip", "Value": "true"},
    ] == kwargs["EmailTags"]


def test_clashing_tag_names_keep_the_first() -> None:
    """Two names that sanitise to the same SES tag name keep the first one's value."""
    kwargs = build_send_email_kwargs(email(metadata={"a.b": "first", "a:b": "second"}))
    assert [{"Name": "a_b", "Value": "first"}] == kwargs["EmailTags"]


def test_tag_longer_than_256_is_cut() -> None:
    """Tag names and values are cut to SES's 256 characters."""
    assert "x" * 256 == sanitize_tag("x" * 300)
    assert "a-b_c_d" == sanitize_tag("a-b_c d")


def test_tags_from_message_can_be_turned_off() -> None:
    """With tags_from_message=False the request carries no EmailTags."""
    transport = make_transport(tags_from_message=False)
    kwargs = transport.build_request(email(tags=["welcome"], metadata={"k": "v"}))
    assert "EmailTags" not in kwargs


def test_too_many_recipients_rejected_before_any_request(
    stubbed: tuple[SESTransport, Stubber],
) -> None:
    """More than 50 recipients is a RejectedError raised without calling SES."""
    transport, _ = stubbed
    message = email(
        to=[f"user{i}@example.com" for i in range(40)],
        bcc=[f"bcc{i}@example.com" for i in range(11)],
    )
    with pytest.raises(nk.RejectedError, match="51 recipients"):
        transport.send(message)


def test_fifty_recipients_are_allowed() -> None:
    """Exactly 50 distinct recipients fit in one SES message."""
    message = email(to=[f"user{i}@example.com" for i in range(50)], cc="user0@example.com")
    kwargs = build_send_email_kwargs(message)
    assert 50 == len(kwargs["Destination"]["ToAddresses"])


def test_size_limit_counts_the_mime_bytes() -> None:
    """A message whose MIME exceeds the limit is rejected; one just within it is not."""
    message = email(attachments=[nk.Attachment("a.bin", b"\x01" * 3000)])
    size = len(build_send_email_kwargs(message)["Content"]["Raw"]["Data"])
    build_send_email_kwargs(message, max_size=size + 200)  # Date and boundary vary a little
    with pytest.raises(nk.RejectedError, match="bytes as MIME"):
        build_send_email_kwargs(message, max_size=size - 200)


def test_huge_attachments_rejected_before_the_mime_is_built() -> None:
    """Attachments that alone exceed the limit once base64-encoded are refused without serialising."""
    message = email(attachments=[nk.Attachment("a.bin", b"\x01" * 3000)])
    with pytest.raises(nk.RejectedError, match="attachments alone"):
        build_send_email_kwargs(message, max_size=3000)


def test_message_over_40_mb_rejected_before_any_request(
    stubbed: tuple[SESTransport, Stubber],
) -> None:
    """An e-mail over SES's 40 MB raw limit is a RejectedError raised without calling SES."""
    transport, _ = stubbed
    big = nk.Attachment("video.bin", b"\x00" * (MAX_RAW_MESSAGE_SIZE * 3 // 4 + 1024))
    with pytest.raises(nk.RejectedError) as info:
        transport.send(email(attachments=[big]))
    assert "rejected" == info.value.attempts[-1].outcome


# --------------------------------------------------------------------------- stubbed answers


def test_send_returns_ses_message_id(stubbed: tuple[SESTransport, Stubber]) -> None:
    """A successful send returns SES's MessageId with the request SES expects."""
    transport, stubber = stubbed
    transport.configuration_set = "transactional"
    stubber.add_response(
        "send_email",
        {"MessageId": "0100018c-test"},
        expected_params={
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": ["asha@example.com"]},
            "Content": ANY,
            "ConfigurationSetName": "transactional",
            "EmailTags": [{"Name": "welcome", "Value": "true"}],
        },
    )
    receipt = transport.send(email(tags=["welcome"]))
    assert "0100018c-test" == receipt.provider_message_id
    assert "ses:ap-south-1" == receipt.transport


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        ("TooManyRequestsException", "Too many requests", 429, nk.TransientError),
        ("Throttling", "Maximum sending rate exceeded.", 400, nk.TransientError),
        ("LimitExceededException", "Maximum sending rate exceeded", 400, nk.TransientError),
        ("ServiceUnavailable", "Service unavailable", 503, nk.TransientError),
        ("LimitExceededException", "Daily message quota exceeded.", 400, nk.ProviderError),
        ("Throttling", "Daily message quota exceeded.", 400, nk.ProviderError),
        ("AccountSuspendedException", "Account suspended", 400, nk.ProviderError),
        ("SendingPausedException", "Sending paused for this account", 400, nk.ProviderError),
        ("MailFromDomainNotVerifiedException", "MAIL FROM not verified", 400, nk.ProviderError),
        ("NotFoundException", "Configuration set <cs> does not exist", 404, nk.ProviderError),
        ("AccessDeniedException", "not authorized", 403, nk.ProviderError),
        ("UnrecognizedClientException", "invalid security token", 403, nk.ProviderError),
        ("InvalidClientTokenId", "token invalid", 403, nk.ProviderError),
        ("SignatureDoesNotMatch", "signature mismatch", 403, nk.ProviderError),
        ("MessageRejected", "Email address blacklisted", 400, nk.RejectedError),
        ("BadRequestException", "Illegal address", 400, nk.RejectedError),
        ("SomethingNewException", "a new server fault", 502, nk.TransientError),
        ("SomethingNewException", "a new client fault", 400, nk.ProviderError),
    ],
)
def test_client_error_codes_map_to_delivery_kinds(
    stubbed: tuple[SESTransport, Stubber],
    code: str,
    message: str,
    status: int,
    expected: type[nk.DeliveryError],
) -> None:
    """Each SES error code becomes the documented delivery error, with the code kept."""
    transport, stubber = stubbed
    stubber.add_client_error("send_email", code, message, http_status_code=status)
    with pytest.raises(nk.DeliveryError) as info:
        transport.send(email())
    assert expected is type(info.value)
    assert code == info.value.provider_code
    assert "ses:ap-south-1" == info.value.transport
    assert expected.kind == info.value.attempts[-1].outcome
    assert not info.value.maybe_delivered
    assert isinstance(info.value.__cause__, Exception)


def test_throttling_carries_retry_after(stubbed: tuple[SESTransport, Stubber]) -> None:
    """A throttling answer with Retry-After gives TransientError.retry_after in seconds."""
    transport, stubber = stubbed
    stubber.add_client_error(
        "send_email",
        "TooManyRequestsException",
        "slow down",
        http_status_code=429,
        response_meta={"HTTPHeaders": {"retry-after": "7"}},
    )
    with pytest.raises(nk.TransientError) as info:
        transport.send(email())
    assert 7.0 == info.value.retry_after


def test_throttling_without_hint_has_no_retry_after(stubbed: tuple[SESTransport, Stubber]) -> None:
    """Without a Retry-After header, retry_after stays None (the Retry policy decides)."""
    transport, stubber = stubbed
    stubber.add_client_error("send_email", "ThrottlingException", "slow down", 400)
    with pytest.raises(nk.TransientError) as info:
        transport.send(email())
    assert info.value.retry_after is None


def test_unverified_sender_in_real_ses_wording_is_provider_error(
    stubbed: tuple[SESTransport, Stubber],
) -> None:
    """SES's "Email address is not verified" naming the sender is a ProviderError."""
    transport, stubber = stubbed
    stubber.add_client_error(
        "send_email",
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in "
        "region AP-SOUTH-1: noreply@shop.example",
        400,
    )
    with pytest.raises(nk.ProviderError):
        transport.send(email())


def test_unverified_sender_domain_is_provider_error(stubbed: tuple[SESTransport, Stubber]) -> None:
    """An unverified identity that is the sender's domain is a ProviderError."""
    transport, stubber = stubbed
    stubber.add_client_error(
        "send_email",
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in "
        "region AP-SOUTH-1: shop.example",
        400,
    )
    with pytest.raises(nk.ProviderError):
        transport.send(email(to="owner@shop.example.com"))


def test_unverified_recipient_in_sandbox_is_rejected(stubbed: tuple[SESTransport, Stubber]) -> None:
    """In the SES sandbox an unverified recipient rejects this message, naming the recipient."""
    transport, stubber = stubbed
    stubber.add_client_error(
        "send_email",
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in "
        "region AP-SOUTH-1: asha@example.com",
        400,
    )
    with pytest.raises(nk.RejectedError) as info:
        transport.send(email())
    assert ["asha@example.com"] == list(info.value.rejected)


def test_secret_in_provider_message_is_masked(stubbed: tuple[SESTransport, Stubber]) -> None:
    """A secret echoed back by the provider never reaches the error's str, repr or attempts."""
    client = stubbed[0].client
    stubber = stubbed[1]
    transport = SESTransport(client=client, access_key_id=KEY_ID, secret_access_key=SECRET)
    stubber.add_client_error(
        "send_email", "SignatureDoesNotMatch", f"signature computed with {SECRET}", 403
    )
    with pytest.raises(nk.ProviderError) as info:
        transport.send(email())
    for text in (str(info.value), repr(info.value), info.value.attempts[-1].error or ""):
        assert SECRET not in text
    assert "***" in str(info.value)


def test_check_reports_the_sending_quota(stubbed: tuple[SESTransport, Stubber]) -> None:
    """check() returns the account's sending quota from GetAccount without sending."""
    transport, stubber = stubbed
    stubber.add_response(
        "get_account",
        {
            "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 1200.0},
            "SendingEnabled": True,
            "ProductionAccessEnabled": True,
            "EnforcementStatus": "HEALTHY",
        },
    )
    quota = transport.check()
    assert (
        SESQuota(
            max_24_hour_send=50000.0,
            max_send_rate=14.0,
            sent_last_24_hours=1200.0,
            sending_enabled=True,
            production_access=True,
            enforcement_status="HEALTHY",
        )
        == quota
    )
    assert 48800.0 == quota.remaining_24_hours


def test_check_maps_errors_and_names_the_transport(stubbed: tuple[SESTransport, Stubber]) -> None:
    """A failing check() raises the mapped delivery error carrying the transport's name."""
    transport, stubber = stubbed
    stubber.add_client_error("get_account", "UnrecognizedClientException", "bad token", 403)
    with pytest.raises(nk.ProviderError) as info:
        transport.check()
    assert "ses:ap-south-1" == info.value.transport


def test_unlimited_quota_has_no_remaining() -> None:
    """A sandbox-free unlimited quota (-1) reports no remaining count."""
    assert SESQuota(-1.0, 100.0, 5.0).remaining_24_hours is None


# --------------------------------------------------------------------------- network failures


def test_read_timeout_is_maybe_delivered(hanging_endpoint: DeadEndpoint) -> None:
    """A request SES received but never answered is a TransientError with maybe_delivered."""
    transport = make_transport(endpoint_url=hanging_endpoint.url, timeout=0.1)
    with pytest.raises(nk.TransientError) as info:
        transport.send(email())
    assert info.value.maybe_delivered
    assert "ReadTimeoutError" == info.value.provider_code
    assert 1 == hanging_endpoint.requests  # one request: no retry hidden inside boto3
    assert info.value.attempts[-1].maybe_delivered
    transport.close()


def test_connection_closed_is_maybe_delivered(closing_endpoint: DeadEndpoint) -> None:
    """A connection closed after the request was sent is a TransientError with maybe_delivered."""
    transport = make_transport(endpoint_url=closing_endpoint.url, timeout=2)
    with pytest.raises(nk.TransientError) as info:
        transport.send(email())
    assert info.value.maybe_delivered
    assert 1 == closing_endpoint.requests
    transport.close()


def test_connection_refused_is_transient_not_delivered() -> None:
    """An endpoint that refuses connections is a TransientError that surely did not deliver."""
    transport = make_transport(endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(nk.TransientError) as info:
        transport.send(email())
    assert not info.value.maybe_delivered
    assert "EndpointConnectionError" == info.value.provider_code
    transport.close()


def test_no_credentials_is_provider_error() -> None:
    """With no credentials anywhere in boto3's chain, sending is a ProviderError that says so."""
    transport = SESTransport(region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(nk.ProviderError, match="credentials"):
        transport.send(email())
    transport.close()


# --------------------------------------------------------------------------- configuration


def test_region_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without region=, the region comes from boto3's configuration (AWS_DEFAULT_REGION)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert "ses:eu-west-1" == SESTransport().name


def test_no_region_is_configuration_error() -> None:
    """No region anywhere is a ConfigurationError at construction, not at the first send."""
    with pytest.raises(nk.ConfigurationError, match="region"):
        SESTransport()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"access_key_id": KEY_ID},
        {"secret_access_key": SECRET},
        {"session_token": TOKEN},
        {"timeout": 0},
        {"timeout": -1.0},
    ],
)
def test_impossible_options_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    """Half-given credentials or a non-positive timeout are ConfigurationErrors."""
    with pytest.raises(nk.ConfigurationError) as info:
        SESTransport(region=REGION, **kwargs)
    assert SECRET not in str(info.value)


def test_str_and_repr_hide_credentials() -> None:
    """str() is a DSN without credentials and repr() only says credentials were given."""
    transport = make_transport(
        region="ap-south-1", session_token=TOKEN, configuration_set="transactional"
    )
    assert "ses://?region=ap-south-1&configuration_set=transactional" == str(transport)
    assert (
        "<SESTransport ses://?region=ap-south-1&configuration_set=transactional credentials=***>"
        == repr(transport)
    )
    for text in (str(transport), repr(transport), transport.name):
        assert SECRET not in text
        assert TOKEN not in text
        assert KEY_ID not in text


def test_dsn_with_percent_encoded_credentials() -> None:
    """A ses:// URL with percent-encoded KEY:SECRET configures the transport; str() round-trips."""
    from notifykit.config import from_dsn

    secret = "testing/secret+key=="
    url = "ses://AKIATESTING:testing%2Fsecret%2Bkey%3D%3D@?region=ap-south-1&configuration_set=tx"
    transport = from_dsn(url)
    assert isinstance(transport, SESTransport)
    assert (secret,) == transport._secrets()[:1]
    assert "ses://?region=ap-south-1&configuration_set=tx" == str(transport)
    assert str(transport) == str(from_dsn(str(transport)))
    assert secret not in repr(transport)


def test_email_only() -> None:
    """SES carries e-mail only: an SMS is a ConfigurationError."""
    transport = make_transport()
    with pytest.raises(nk.ConfigurationError):
        transport.send(nk.SMS("+919876543210", "hi"))


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without boto3, building the transport is a MissingDependency naming notifykit-py[ses]."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(nk.MissingDependency, match=r"notifykit-py\[ses\]") as info:
        SESTransport(region=REGION)
    assert "ses" == info.value.extra


def test_importing_the_module_does_not_import_boto3() -> None:
    """Importing notifykit's SES module (or notifykit) leaves boto3 unimported until it is used."""
    code = "import sys, notifykit.transports.ses; print('boto3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "False" == out.stdout.strip()


def test_envelope_goes_to_destination_and_feedback_address(moto_ses: MotoSES) -> None:
    """envelope_recipients replace to/cc/bcc in Destination; envelope_sender receives feedback."""
    transport = make_transport()
    message = email(
        to="Team <team@lists.example>",
        envelope_sender="bounces@shop.example",
        envelope_recipients=["asha@example.com", "ravi@bücher.example"],
    )
    kwargs = build_send_email_kwargs(message)
    assert {"ToAddresses": ["asha@example.com", "ravi@xn--bcher-kva.example"]} == kwargs[
        "Destination"
    ]
    assert "bounces@shop.example" == kwargs["FeedbackForwardingEmailAddress"]
    receipt = transport.send(message)
    (stored,) = moto_ses.sent
    # moto also adds the To header's addresses to what it records; SES itself
    # delivers to Destination alone when it is given (how Bcc works).
    assert {"asha@example.com", "ravi@xn--bcher-kva.example"} <= set(stored.destinations)
    assert ("asha@example.com", "ravi@xn--bcher-kva.example") == receipt.accepted
    raw = message_from_bytes(stored.raw_data.encode("utf-8"), policy=policy.default)
    assert "team@lists.example" == raw["To"].addresses[0].addr_spec


def test_sender_name_that_looks_like_an_encoded_word_stays_a_name() -> None:
    """FromEmailAddress encodes an encoded-word look-alike, so SES never decodes it to an address."""
    from email.header import decode_header, make_header

    look_alike = "=?utf-8?q?ceo=40bank.example?="
    kwargs = build_send_email_kwargs(
        email(sender=nk.Recipient("hello@shop.example", name=look_alike))
    )
    name, _, addr = kwargs["FromEmailAddress"].rpartition(" ")
    assert "<hello@shop.example>" == addr
    assert look_alike not in name
    assert look_alike == str(make_header(decode_header(name)))
