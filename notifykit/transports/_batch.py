"""Batch sends for the SMS providers whose endpoint takes many numbers per request.

MSG91's Flow API takes a list of ``recipients`` (each with its own variables)
and Fast2SMS's bulkV2 takes comma-separated ``numbers`` (one text and one set
of variables for all). :func:`send_batch` builds each message's own request
(so each message is validated exactly as :meth:`send` would), groups the
requests that differ only in their recipient part, and sends each group as one
request.

What the providers answer decides what can be reported per recipient: a batch
request is accepted or refused **as a whole**, with one request id. So:

- accepted: every message of the group gets a :class:`Receipt` carrying the
  shared request id as ``provider_message_id``;
- refused as rejected (an invalid or blocked number, a template mismatch):
  nothing was sent, and the provider does not say which recipient was at
  fault, so each message of the group is sent on its own, and each gets its
  own receipt or error (one bad number never sinks the rest);
- any other failure (provider, transient, maybe delivered): every message of
  the group gets that error. Nothing is resent: a time-out after the request
  left may have delivered all of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from notifykit.errors import DeliveryError, NotifyKitError, RejectedError
from notifykit.message import SMS
from notifykit.receipt import Attempt, Receipt
from notifykit.transports import base

if TYPE_CHECKING:
    from notifykit.transports._http import HTTPRequest, HTTPTransport

#: One entry per message given to ``send_batch``: its receipt or its error.
BatchResult = Receipt | NotifyKitError

#: The most recipients put in one request.
DEFAULT_BATCH_SIZE = 100


def send_batch(
    transport: HTTPTransport,
    messages: Sequence[SMS],
    *,
    recipient_field: str,
    merge: Callable[[dict[str, object], list[dict[str, object]]], dict[str, object]],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[BatchResult]:
    """Send ``messages`` through ``transport``, as few requests as the provider allows.

    ``recipient_field`` is the key of the request body that holds the
    recipient (``recipients`` for MSG91, ``numbers`` for Fast2SMS); requests
    whose bodies are equal apart from it form a group, and ``merge(first,
    bodies)`` makes the one body that sends the whole group.
    """
    results: list[BatchResult | None] = [None] * len(messages)

    def one(index: int) -> None:
        try:
            results[index] = transport.send(messages[index])
        except NotifyKitError as exc:
            results[index] = exc

    groups: dict[str, list[list[tuple[int, HTTPRequest]]]] = {}
    for index, message in enumerate(messages):
        request = None
        if isinstance(message, SMS) and not base._captures:
            try:
                request = transport.build_request(message)
            except NotifyKitError:
                request = None  # send() raises the same error, with the transport's name
        if request is None or not isinstance(request.json, dict):
            one(index)
            continue
        rest = {k: v for k, v in request.json.items() if k != recipient_field}
        key = json.dumps([request.url, rest], sort_keys=True, default=str)
        chunks = groups.setdefault(key, [[]])
        numbers = {_recipient(r.json, recipient_field) for _, r in chunks[-1]}
        if len(chunks[-1]) >= batch_size or _recipient(request.json, recipient_field) in numbers:
            chunks.append([])  # a number twice in one request reads as spam to providers
        chunks[-1].append((index, request))

    for chunks in groups.values():
        for chunk in chunks:
            if len(chunk) == 1:
                one(chunk[0][0])
                continue
            for index, outcome in _send_group(transport, messages, chunk, merge):
                if outcome is None:
                    one(index)
                else:
                    results[index] = outcome
    return [r for r in results if r is not None]


def _recipient(body: object, field: str) -> str:
    assert isinstance(body, dict)
    return json.dumps(body.get(field), sort_keys=True, default=str)


def _send_group(
    transport: HTTPTransport,
    messages: Sequence[SMS],
    chunk: list[tuple[int, HTTPRequest]],
    merge: Callable[[dict[str, object], list[dict[str, object]]], dict[str, object]],
) -> list[tuple[int, BatchResult | None]]:
    """One request for the whole chunk; ``None`` for a message to send on its own."""
    from notifykit.transports._http import HTTPRequest

    first = chunk[0][1]
    bodies = [r.json for _, r in chunk if r.json is not None]  # send_batch kept dict bodies only
    merged = HTTPRequest(first.url, first.headers, merge(bodies[0], bodies))
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    try:
        if transport.rate_limit is not None:
            with transport.rate_limit.slot():  # one request, one slot
                request_id = transport._parse(transport._exchange(merged))
        else:
            request_id = transport._parse(transport._exchange(merged))
    except DeliveryError as exc:
        if isinstance(exc, RejectedError) and not exc.maybe_delivered:
            # Refused as a whole, nothing sent; the answer does not say who was at fault.
            return [(index, None) for index, _ in chunk]
        transport._finish_error(exc, started, time.perf_counter() - t0)
        return [(index, exc) for index, _ in chunk]
    duration = time.perf_counter() - t0
    attempt = Attempt(transport.name, "sent", None, started, duration)
    return [
        (
            index,
            Receipt(
                message_id=messages[index].id,
                transport=transport.name,
                provider_message_id=request_id,
                accepted=(messages[index].to,),
                attempts=(attempt,),
            ),
        )
        for index, _ in chunk
    ]
