"""WSGI and ASGI apps around a :class:`~notifykit.webhooks.Receiver`.

Each app answers ``POST`` only: 200 with ``{"events": n}`` when the request
was processed (a replay too: 0 events), the :class:`WebhookError`'s status
(401/403/400/413...) with a one-line reason when it was refused, 500 for a bug
or a configuration error such as a missing ``cryptography`` (logged; the
reason is not sent, and the provider retries). The secret token may be given as the
``token`` query parameter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.webhooks._base import MAX_BODY, Receiver, WebhookError

__all__ = ["asgi_app", "respond", "wsgi_app"]

logger = logging.getLogger("notifykit.webhooks")


def respond(
    receiver: Receiver, body: bytes, headers: Iterable[tuple[str, str]], token: str | None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run the receiver; the HTTP status, headers and body to answer with."""
    try:
        events = receiver.handle(body, headers, token=token)
    except WebhookError as exc:
        logger.warning("%s webhook refused (%d): %s", receiver.provider, exc.status, exc)
        extra = list(exc.headers.items())
        return (
            exc.status,
            [("Content-Type", "text/plain; charset=utf-8"), *extra],
            (f"{exc}\n".encode()),
        )
    except ConfigurationError as exc:  # e.g. MissingDependency: ours to fix, SNS retries
        logger.error("%s webhook cannot work: %s", receiver.provider, exc)
        return 500, [("Content-Type", "text/plain; charset=utf-8")], b"misconfigured\n"
    except NotifyKitError as exc:
        logger.warning("%s webhook refused: %s", receiver.provider, exc)
        return 400, [("Content-Type", "text/plain; charset=utf-8")], f"{exc}\n".encode()
    except Exception:
        logger.exception("%s webhook: internal error", receiver.provider)
        return 500, [("Content-Type", "text/plain; charset=utf-8")], b"internal error\n"
    document = json.dumps({"events": len(events)}).encode()
    return 200, [("Content-Type", "application/json")], document


def _token(query: str) -> str | None:
    values = parse_qs(query).get("token")
    return values[-1] if values else None


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Content Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def wsgi_app(receiver: Receiver) -> Callable[..., Iterable[bytes]]:
    """A WSGI application that feeds ``receiver`` (mount it at the webhook's path)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            status, headers, body = (
                405,
                [("Allow", "POST"), ("Content-Type", "text/plain")],
                b"POST only\n",
            )
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                status, headers, body = 400, [("Content-Type", "text/plain")], b"bad length\n"
            elif length > MAX_BODY:
                status, headers, body = 413, [("Content-Type", "text/plain")], b"too large\n"
            else:
                data = environ["wsgi.input"].read(length) if length else b""
                request_headers = [
                    (k[5:].replace("_", "-"), v)
                    for k, v in environ.items()
                    if k.startswith("HTTP_") and isinstance(v, str)
                ]
                if environ.get("CONTENT_TYPE"):
                    request_headers.append(("content-type", environ["CONTENT_TYPE"]))
                token = _token(environ.get("QUERY_STRING", ""))
                status, headers, body = respond(receiver, data, request_headers, token)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    return app


def asgi_app(receiver: Receiver) -> Callable[..., Any]:
    """An ASGI application that feeds ``receiver``; it runs in a worker thread
    (a certificate fetch or a SQLite write must not block the event loop).
    """

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status: int
        headers: list[tuple[str, str]]
        if scope.get("method") != "POST":
            status, headers, body = 405, [("Allow", "POST")], b"POST only\n"
        else:
            chunks: list[bytes] = []
            size = 0
            too_large = False
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    too_large = True
                else:
                    chunks.append(chunk)
                if not message.get("more_body"):
                    break
            if too_large:
                status, headers, body = 413, [], b"too large\n"
            else:
                request_headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])
                ]
                token = _token(scope.get("query_string", b"").decode("latin-1"))
                status, headers, body = await asyncio.get_running_loop().run_in_executor(
                    None, respond, receiver, b"".join(chunks), request_headers, token
                )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app
