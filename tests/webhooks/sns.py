"""A fake SNS signer: a locally generated CA and certificate, real RSA signatures."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any

import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from notifykit.webhooks.sns import string_to_sign

REGION = "eu-west-1"
ACCOUNT = "111122223333"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ses-events"
OTHER_TOPIC = f"arn:aws:sns:{REGION}:999988887777:someone-elses"
CERT_URL = (
    f"https://sns.{REGION}.amazonaws.com/"
    "SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
)
SES_ID = "0102018e0a1b2c3d-4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8-000000"

_CA = trustme.CA(key_type=trustme.KeyType.RSA)
_LEAF = _CA.issue_cert(f"sns.{REGION}.amazonaws.com", key_type=trustme.KeyType.RSA)
CERT_PEM = _LEAF.cert_chain_pems[0].bytes()
_KEY: Any = serialization.load_pem_private_key(_LEAF.private_key_pem.bytes(), password=None)
assert isinstance(_KEY, rsa.RSAPrivateKey)
# a second key: a signature by it must not verify against the certificate
_OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Fetcher:
    """The injectable certificate fetcher: serves CERT_PEM at CERT_URL, counts calls."""

    def __init__(self, pem: bytes = CERT_PEM) -> None:
        self.pem = pem
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if url != CERT_URL:
            raise OSError(f"no certificate at {url}")
        return self.pem


def sign(envelope: dict[str, Any], version: str = "2", key: Any = None) -> dict[str, Any]:
    """Fill SignatureVersion, SigningCertURL and Signature like SNS does."""
    envelope.setdefault("SigningCertURL", CERT_URL)
    envelope["SignatureVersion"] = version
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signer: rsa.RSAPrivateKey = key or _KEY
    signature = signer.sign(string_to_sign(envelope), padding.PKCS1v15(), algorithm)
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def notification(
    payload: Mapping[str, Any] | str,
    *,
    topic: str = TOPIC,
    message_id: str | None = None,
    version: str = "2",
    subject: str | None = "Amazon SES Email Event Notification",
) -> dict[str, Any]:
    """A signed SNS Notification carrying ``payload`` (an SES event, as a JSON string)."""
    envelope: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": payload if isinstance(payload, str) else json.dumps(payload),
        "Timestamp": "2024-03-05T09:12:44.118Z",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&"
        f"SubscriptionArn={topic}:3c2b1a09",
    }
    if subject is not None:
        envelope["Subject"] = subject
    return sign(envelope, version)


def confirmation(
    *, topic: str = TOPIC, kind: str = "SubscriptionConfirmation", url: str | None = None
) -> dict[str, Any]:
    """A signed SubscriptionConfirmation (or UnsubscribeConfirmation)."""
    token = "2336412f37fb687f5d51e6e2425dacbbaa4a6d1bc0e2b5f4c9e8a7d6"
    envelope = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": url
        or f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}"
        f"&Token={token}",
        "Timestamp": "2024-03-05T09:10:02.331Z",
    }
    return sign(envelope)


def headers(envelope: Mapping[str, Any]) -> dict[str, str]:
    """The headers SNS sends with ``envelope``."""
    return {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": envelope["Type"],
        "x-amz-sns-message-id": envelope["MessageId"],
        "x-amz-sns-topic-arn": envelope["TopicArn"],
        "User-Agent": "Amazon Simple Notification Service Agent",
    }


def mail(message_id: Any = SES_ID, to: tuple[str, ...] = ("nobody@example.net",)) -> dict[str, Any]:
    return {
        "timestamp": "2024-03-05T09:12:40.002Z",
        "source": "Acme <no-reply@acme.example>",
        "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/acme.example",
        "sendingAccountId": ACCOUNT,
        "messageId": message_id,
        "destination": list(to),
    }


def bounce(
    message_id: Any = SES_ID,
    to: str = "nobody@example.net",
    *,
    bounce_type: str = "Permanent",
    sub_type: str = "NoEmail",
    key: str = "eventType",
    feedback: str = "0102018e0a1b2f90-aa11bb22-cc33-4d44-8e55-ff6677889900-000000",
    action: str = "failed",
    status: str = "5.1.1",
) -> dict[str, Any]:
    return {
        key: "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": to,
                    "action": action,
                    "status": status,
                    "diagnosticCode": f"smtp; 550 5.1.1 <{to}>: Recipient address rejected",
                }
            ],
            "timestamp": "2024-03-05T09:12:47.512Z",
            "feedbackId": feedback,
            "reportingMTA": "dns; b224-13.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": mail(message_id, (to,)),
    }


def complaint(
    message_id: Any = SES_ID, to: str = "jane@example.org", feedback_type: str = "abuse"
) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": to}],
            "timestamp": "2024-03-06T02:31:09.000Z",
            "feedbackId": "0102018e0e77aa10-1234abcd-5678-4ef0-9abc-def012345678-000000",
            "complaintSubType": None,
            "userAgent": "Example Feedback Loop (V0.01)",
            "complaintFeedbackType": feedback_type,
            "arrivalDate": "2024-03-06T02:30:55.000Z",
        },
        "mail": mail(message_id, (to,)),
    }


def delivery(
    message_id: Any = SES_ID, to: str = "ann@example.com", key: str = "eventType"
) -> dict[str, Any]:
    return {
        key: "Delivery",
        "mail": mail(message_id, (to,)),
        "delivery": {
            "timestamp": "2024-03-05T09:12:41.377Z",
            "processingTimeMillis": 1375,
            "recipients": [to],
            "smtpResponse": "250 2.0.0 OK 1709629961 x12si345",
            "reportingMTA": "b224-13.smtp-out.eu-west-1.amazonses.com",
        },
    }


def delay(message_id: Any = SES_ID, to: str = "bob@example.com") -> dict[str, Any]:
    return {
        "eventType": "DeliveryDelay",
        "mail": mail(message_id, (to,)),
        "deliveryDelay": {
            "timestamp": "2024-03-05T09:22:41.000Z",
            "delayType": "MailboxFull",
            "expirationTime": "2024-03-05T23:12:40.000Z",
            "reportingMTA": "198.51.100.23",
            "delayedRecipients": [
                {
                    "emailAddress": to,
                    "status": "4.2.2",
                    "diagnosticCode": "smtp; 452 4.2.2 The email account is over quota",
                }
            ],
        },
    }


def reject(message_id: Any = SES_ID, to: str = "ann@example.com") -> dict[str, Any]:
    return {
        "eventType": "Reject",
        "mail": mail(message_id, (to,)),
        "reject": {"reason": "Bad content"},
    }


def body(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


OTHER_KEY = _OTHER_KEY
