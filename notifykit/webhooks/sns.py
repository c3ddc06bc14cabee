"""Amazon SNS message verification (SignatureVersion 1 and 2).

:class:`SNSVerifier` checks that an SNS envelope was signed by Amazon SNS:

1. ``SigningCertURL`` must be ``https://sns.<region>.amazonaws.com[.cn]/...pem``
   (no user, no port, no query), in the region of ``TopicArn``;
2. the certificate is fetched (by the injectable ``fetch_certificate``, with a
   timeout and a size limit) and cached by URL;
3. the string to sign is built from the envelope's fields in the documented
   order, and the base64 ``Signature`` is checked with RSA PKCS#1 v1.5 over
   SHA1 (``SignatureVersion`` 1) or SHA256 (2).

Any failure is a :class:`~notifykit.webhooks.WebhookError` with status 403
(400 for a malformed envelope). ``cryptography`` is needed (the ``webhooks``
extra); it is imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from notifykit.errors import MissingDependency
from notifykit.webhooks._base import WebhookError

__all__ = ["CertificateFetcher", "SNSVerifier", "check_sns_url", "fetch_certificate"]

#: Fetches a certificate (PEM bytes) by URL; the default uses urllib over HTTPS.
CertificateFetcher = Callable[[str], bytes]

_SNS_HOST = re.compile(r"^sns\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$")
_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:sns:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):[\w.-]{1,256}$")

_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
_MAX_CERT = 64 * 1024


def topic_region(arn: str) -> str:
    """The region of an SNS topic ARN, or a 400 for something else."""
    match = _ARN.match(arn)
    if not match:
        raise WebhookError("sns: TopicArn is not an SNS topic ARN")
    return match.group(1)


def check_sns_url(url: str, region: str, *, pem: bool) -> None:
    """Refuse (403) a URL that is not ``https://sns.<region>.amazonaws.com/...``.

    With ``pem`` the path must end in ``.pem`` and there must be no query.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookError("sns: malformed URL in the envelope", status=403) from None
    host = parts.hostname or ""
    match = _SNS_HOST.match(host)
    if (
        parts.scheme != "https"
        or not match
        or parts.netloc != host
        or port is not None
        or parts.username is not None
        or parts.fragment
    ):
        raise WebhookError(
            f"sns: {'SigningCertURL' if pem else 'SubscribeURL'} is not an https URL on "
            f"sns.<region>.amazonaws.com: {url[:200]!r}",
            status=403,
        )
    if match.group(1) != region:
        raise WebhookError(
            f"sns: URL region {match.group(1)!r} is not the topic's region {region!r}", status=403
        )
    if pem and (not parts.path.endswith(".pem") or parts.query):
        raise WebhookError("sns: SigningCertURL does not name a .pem file", status=403)


def fetch_certificate(url: str, timeout: float = 5.0) -> bytes:
    """GET ``url`` over HTTPS (certificate checked), at most 64 KiB, within ``timeout``."""
    request = urllib.request.Request(url, headers={"User-Agent": "notifykit"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(_MAX_CERT + 1)
    if len(data) > _MAX_CERT:
        raise ValueError("certificate over 64 KiB")
    return data


def string_to_sign(envelope: Mapping[str, str]) -> bytes:
    """The bytes SNS signs: ``Name\\nvalue\\n`` for each signed field present, in order."""
    fields = _NOTIFICATION_FIELDS if envelope["Type"] == "Notification" else _CONFIRMATION_FIELDS
    out = []
    for name in fields:
        if name in envelope:
            out.append(f"{name}\n{envelope[name]}\n")
    return "".join(out).encode("utf-8", "surrogateescape")


class SNSVerifier:
    """Verifies SNS envelopes; certificates cached by URL.

    Args:
        fetch_certificate: ``url -> PEM bytes``; the default fetches over
            HTTPS with a 5 s timeout. Tests pass a function that returns a
            locally generated certificate.
        cache_size: certificates kept (SNS rotates them rarely).
        check_validity: refuse a certificate outside its validity dates.
    """

    def __init__(
        self,
        fetch_certificate: CertificateFetcher = fetch_certificate,
        *,
        cache_size: int = 16,
        check_validity: bool = True,
    ) -> None:
        self.fetch_certificate = fetch_certificate
        self.cache_size = cache_size
        self.check_validity = check_validity
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.fetches = 0

    def verify(self, envelope: Mapping[str, Any]) -> None:
        """Raise :class:`WebhookError` unless ``envelope`` is signed by SNS."""
        if envelope.get("Type") not in _TYPES:
            raise WebhookError("sns: unknown or missing message Type")
        required = [
            "Message",
            "MessageId",
            "Timestamp",
            "TopicArn",
            "Signature",
            "SigningCertURL",
            "SignatureVersion",
        ]
        if envelope["Type"] != "Notification":
            required += ["SubscribeURL", "Token"]
        for name in required:
            if not isinstance(envelope.get(name), str):
                raise WebhookError(f"sns: envelope field {name} missing or not a string")
        if "Subject" in envelope and not isinstance(envelope["Subject"], str):
            raise WebhookError("sns: envelope field Subject is not a string")
        version = envelope["SignatureVersion"]
        if version not in ("1", "2"):
            raise WebhookError(f"sns: unsupported SignatureVersion {version[:10]!r}", status=403)
        region = topic_region(envelope["TopicArn"])
        url = envelope["SigningCertURL"]
        check_sns_url(url, region, pem=True)
        try:
            signature = base64.b64decode(envelope["Signature"], validate=True)
        except (binascii.Error, ValueError):
            raise WebhookError("sns: Signature is not base64", status=403) from None
        key = self._public_key(url)
        padding, hashes, invalid = _crypto()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        try:
            key.verify(signature, string_to_sign(envelope), padding.PKCS1v15(), algorithm)
        except invalid:
            raise WebhookError("sns: the signature does not verify", status=403) from None
        except (TypeError, ValueError) as exc:
            raise WebhookError(
                f"sns: the signature cannot be checked ({exc})", status=403
            ) from None

    def _public_key(self, url: str) -> Any:
        with self._lock:
            key = self._cache.get(url)
            if key is not None:
                self._cache.move_to_end(url)
                return key
        try:
            pem = self.fetch_certificate(url)
        except Exception as exc:
            # SNS retries on 5xx: a certificate host that is down should not drop events.
            raise WebhookError(
                f"sns: cannot fetch the signing certificate ({type(exc).__name__})", status=503
            ) from None
        self.fetches += 1
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError as exc:
            raise MissingDependency("cryptography", "webhooks", "SNS signature checks") from exc
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise WebhookError(
                "sns: the signing certificate is not a PEM certificate", status=403
            ) from None
        if self.check_validity:
            now = datetime.now(timezone.utc)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise WebhookError(
                    "sns: the signing certificate is expired or not yet valid", status=403
                )
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookError("sns: the signing certificate has no RSA key", status=403)
        with self._lock:
            self._cache[url] = key
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return key


@functools.cache
def _crypto() -> tuple[Any, Any, type[Exception]]:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
    except ImportError as exc:
        raise MissingDependency("cryptography", "webhooks", "SNS signature checks") from exc
    return padding, hashes, InvalidSignature


def check_subscribe_url(url: str, topic_arn: str) -> None:
    """Refuse (403) a SubscribeURL that is not SNS's ConfirmSubscription for ``topic_arn``."""
    region = topic_region(topic_arn)
    check_sns_url(url, region, pem=False)
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [topic_arn]:
        raise WebhookError(
            "sns: SubscribeURL is not a ConfirmSubscription for this topic", status=403
        )
