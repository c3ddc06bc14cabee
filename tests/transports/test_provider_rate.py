"""rate=auto: an SES transport keeps to the MaxSendRate SES reports (botocore Stubber, no I/O)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

import notifykit as nk
from notifykit.ratelimit import ProviderRate

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from notifykit.transports.ses import SESTransport  # noqa: E402

QUOTA = {
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 2.0, "SentLast24Hours": 0.0},
    "SendingEnabled": True,
}


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SESTransport, Stubber]]:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session(
        aws_access_key_id="AKIATESTINGTESTING00",
        aws_secret_access_key="testing-secret-not-real",
        region_name="ap-south-1",
    )
    client = session.client("sesv2")
    with Stubber(client) as stubber:
        yield SESTransport(client=client), stubber
        stubber.assert_no_pending_responses()
    client.close()


def email(n: int) -> nk.Email:
    return nk.Email(to="a@example.com", subject=f"n{n}", text="t", sender="shop@example.com")


def send_all(transport: SESTransport, stubber: Any, count: int) -> float:
    for n in range(count):
        stubber.add_response("send_email", {"MessageId": f"id-{n}"})
    t0 = time.monotonic()
    for n in range(count):
        transport.send(email(n))
    return time.monotonic() - t0


def test_rate_auto_reads_max_send_rate_once(stubbed: tuple[SESTransport, Stubber]) -> None:
    """MaxSendRate 2/s: asked once, then three messages take at least a second."""
    transport, stubber = stubbed
    transport.rate_limit = ProviderRate().for_transport(transport)
    stubber.add_response("get_account", QUOTA)
    assert send_all(transport, stubber, 3) >= 0.95  # the third waits for the next second
    assert "auto (2/s)" == str(transport.rate_limit)
    send_all(transport, stubber, 1)  # no second get_account: the stubber would complain


def test_rate_auto_without_an_answer_sends_and_warns(
    stubbed: tuple[SESTransport, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    """SES does not say: sending goes on without a limit, with a WARNING; not asked again at once."""
    transport, stubber = stubbed
    transport.rate_limit = ProviderRate().for_transport(transport)
    stubber.add_client_error("get_account", "ServiceUnavailable", "down", 503)
    with caplog.at_level(logging.WARNING, logger="notifykit"):
        send_all(transport, stubber, 3)
    assert any("sending rate" in r.getMessage() for r in caplog.records)
    assert "auto" == str(transport.rate_limit)


def test_rate_auto_in_a_url_is_for_ses_only() -> None:
    ses = nk.from_dsn("ses://ap-south-1?rate=auto")
    assert isinstance(ses.rate_limit, ProviderRate)
    with pytest.raises(nk.ConfigurationError, match="rate=auto needs a provider"):
        nk.from_dsn("smtp://127.0.0.1:2525?security=none&rate=auto")
