"""What every receiver shares: errors, the seen-id store, authentication, recording."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.sinks.base import DeliveryEvent, LogSink
from notifykit.suppression import SuppressionStore, _SQLiteStore, apply_report

__all__ = [
    "MAX_BODY",
    "Receiver",
    "SQLiteSeenStore",
    "SeenStore",
    "WebhookError",
]

logger = logging.getLogger("notifykit.webhooks")

#: The largest request body a receiver reads (bytes); larger is a 413.
MAX_BODY = 1024 * 1024


class WebhookError(NotifyKitError):
    """A webhook request was refused: bad signature, unknown topic, malformed body.

    Attributes:
        status: the HTTP status to answer with (4xx: the provider should not
            retry; 5xx: it should).
        headers: extra response headers (``WWW-Authenticate`` for a 401).
    """

    def __init__(
        self, message: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})


@runtime_checkable
class SeenStore(Protocol):
    """Remembers which notifications were processed, so a replay is one event.

    ``claim`` must be atomic: of two concurrent claims of the same key, one
    wins.
    """

    def claim(self, keys: Sequence[str]) -> list[bool]:
        """Mark ``keys`` as seen; for each, True if it was new."""
        ...

    def release(self, keys: Sequence[str]) -> None:
        """Forget ``keys`` (their processing failed; a retry should go through)."""
        ...


class SQLiteSeenStore(_SQLiteStore):
    """A :class:`SeenStore` in a SQLite table (``webhook_seen``).

    Args:
        path: the database file, or ``":memory:"`` (the default: one process
            only, forgotten on restart). Use a file, possibly the same as the
            suppression list's, when several processes receive webhooks.
        timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: str = ":memory:", *, timeout: float = 5.0) -> None:
        super().__init__(
            path,
            timeout,
            "CREATE TABLE IF NOT EXISTS webhook_seen (key TEXT PRIMARY KEY, at TEXT NOT NULL)",
            "a webhook seen-id store",
        )

    def claim(self, keys: Sequence[str]) -> list[bool]:
        """Insert each key; True for those that were not there yet."""
        now = datetime.now(timezone.utc).isoformat()
        with self._lock:
            self._c().execute("BEGIN IMMEDIATE")
            try:
                fresh = [
                    self._c()
                    .execute(
                        "INSERT OR IGNORE INTO webhook_seen (key, at) VALUES (?, ?)", (key, now)
                    )
                    .rowcount
                    == 1
                    for key in keys
                ]
                self._c().execute("COMMIT")
            except BaseException:
                self._c().execute("ROLLBACK")
                raise
        return fresh

    def release(self, keys: Sequence[str]) -> None:
        """Delete the keys."""
        with self._lock:
            self._c().executemany("DELETE FROM webhook_seen WHERE key = ?", [(k,) for k in keys])

    def purge(self, older_than: timedelta) -> int:
        """Forget keys seen more than ``older_than`` ago; returns how many."""
        cutoff = (datetime.now(timezone.utc) - older_than).isoformat()
        with self._lock:
            return int(
                self._c().execute("DELETE FROM webhook_seen WHERE at < ?", (cutoff,)).rowcount
            )

    def __repr__(self) -> str:
        return f"SQLiteSeenStore({self.path!r})"


def lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names in lower case (a framework's header object or pairs)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k).lower(): str(v) for k, v in items}


def decode_json(body: bytes, what: str) -> Any:
    """``body`` as JSON, or a 400."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WebhookError(f"{what}: the body is not valid UTF-8 JSON ({exc})") from None


def decode_form(body: bytes, what: str) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (last value of each field), or a 400."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookError(f"{what}: the form body cannot be decoded ({exc})") from None
    return {k: v[-1] for k, v in fields.items()}


def check_secret(
    secret: bytes | None,
    headers: Mapping[str, str],
    token: str | None,
    realm: str,
) -> None:
    """Accept the shared secret as a URL token or a basic-auth password, in constant time.

    Raises:
        WebhookError: 401 (with a basic-auth challenge) when neither is given
            or neither matches.
    """
    if secret is None:
        return
    candidates: list[bytes] = []
    if token:
        candidates.append(token.encode("utf-8", "surrogateescape"))
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        candidates.append(decoded.partition(b":")[2])
    # compare_digest on every candidate, so timing tells nothing about which matched
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(candidate, secret)
    if not ok:
        raise WebhookError(
            f"{realm}: missing or wrong webhook secret",
            status=401,
            headers={"WWW-Authenticate": f'Basic realm="{realm}"'},
        )


class Receiver:
    """The framework-agnostic part of a webhook endpoint.

    Subclasses parse one provider's format (:meth:`parse`); :meth:`handle`
    authenticates, parses, drops what was already processed, records the new
    events in the sinks and updates the suppression list.

    Args:
        sinks: where the events go (e.g. the same ``SQLiteSink`` the Notifier
            logs to, so the reports join the messages).
        suppression: a suppression store (:mod:`notifykit.suppression`) to add
            hard-bounced and complaining recipients to, or ``None``.
        seen: where processed notification ids are kept (a path, or a
            :class:`SeenStore`); the default is an in-memory store.
        soft_bounce_limit, soft_bounce_window: suppress a recipient after this
            many soft bounces within this window.
    """

    provider: str = "?"

    def __init__(
        self,
        *,
        sinks: Iterable[LogSink] = (),
        suppression: SuppressionStore | None = None,
        seen: SeenStore | str | None = None,
        soft_bounce_limit: int = 3,
        soft_bounce_window: timedelta = timedelta(days=7),
    ) -> None:
        self.sinks = tuple(sinks)
        for sink in self.sinks:
            if not callable(getattr(sink, "record", None)):
                raise ConfigurationError(f"{sink!r} is not a LogSink (it has no record() method)")
        self.suppression = suppression
        if seen is None or isinstance(seen, str):
            seen = SQLiteSeenStore(seen or ":memory:")
        self.seen: SeenStore = seen
        if soft_bounce_limit < 1:
            raise ConfigurationError("soft_bounce_limit must be at least 1")
        self.soft_bounce_limit = soft_bounce_limit
        self.soft_bounce_window = soft_bounce_window

    # -- to implement -------------------------------------------------------

    def parse(
        self, body: bytes, headers: Mapping[str, str], token: str | None
    ) -> tuple[list[str], list[tuple[str, DeliveryEvent]]]:
        """Authenticate and parse one request.

        Returns:
            The ids of the notification (dedupe keys covering the whole
            request; may be empty) and the events, each with its own dedupe
            key.

        Raises:
            WebhookError: the request is refused.
        """
        raise NotImplementedError

    # -- the shared path ----------------------------------------------------

    def handle(
        self,
        body: bytes,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        token: str | None = None,
    ) -> list[DeliveryEvent]:
        """Process one webhook request; returns the new events (none for a replay).

        Args:
            body: the raw request body.
            headers: the request headers (any case).
            token: the secret token from the URL, for providers that
                authenticate with one.

        Raises:
            WebhookError: refused (its ``status`` is the HTTP answer); nothing
                was recorded.
        """
        if not isinstance(body, bytes | bytearray):
            raise WebhookError(f"{self.provider}: the body must be bytes")
        if len(body) > MAX_BODY:
            raise WebhookError(f"{self.provider}: body over {MAX_BODY} bytes", status=413)
        request_keys, keyed = self.parse(bytes(body), lower_headers(headers), token)
        if request_keys and not all(self.seen.claim(request_keys)):
            logger.info("%s: notification %s already processed", self.provider, request_keys[0])
            return []
        claimed = self.seen.claim([key for key, _ in keyed]) if keyed else []
        events = [event for (_, event), new in zip(keyed, claimed, strict=True) if new]
        mine = [key for (key, _), new in zip(keyed, claimed, strict=True) if new]
        try:
            for event in events:
                for sink in self.sinks:
                    sink.record(event)
            if self.suppression is not None:
                for event in events:
                    apply_report(
                        self.suppression,
                        event,
                        soft_bounce_limit=self.soft_bounce_limit,
                        soft_bounce_window=self.soft_bounce_window,
                    )
        except Exception as exc:
            # Let the provider retry: forget the ids so the retry is not a "replay".
            self.seen.release(request_keys + mine)
            logger.exception("%s: recording delivery reports failed", self.provider)
            raise WebhookError(
                f"{self.provider}: the reports could not be recorded ({type(exc).__name__})",
                status=503,
            ) from exc
        return events

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sinks={len(self.sinks)})"


def utc(text: object) -> datetime | None:
    """A provider timestamp (ISO 8601, ``Z`` or offset, or ``YYYY-MM-DD HH:MM:SS``) in UTC."""
    if not isinstance(text, str) or not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and value[-6] == " ":  # "... +0000"
        value = value[:-6] + value[-5:-2] + ":" + value[-2:]
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc)
