"""A local web app that shows every template as it will arrive (``notifykit preview``).

``PreviewApp(templates_dir)`` is a WSGI application: run it with :func:`serve`
(the standard library's server, loopback by default), mount it in Django
(``notifykit.contrib.django.preview_urls``) or Flask
(``notifykit.contrib.flask.preview_blueprint``). See ``docs/preview.md``.
"""

from __future__ import annotations

import ipaddress
import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from notifykit.preview._checks import GMAIL_CLIP_BYTES
from notifykit.preview._samples import MARKETING_MARK, preview
from notifykit.preview.app import PreviewApp, Request, Response

__all__ = [
    "GMAIL_CLIP_BYTES",
    "MARKETING_MARK",
    "PreviewApp",
    "PreviewServer",
    "Request",
    "Response",
    "is_loopback",
    "make_preview_server",
    "preview",
    "serve_in_thread",
]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class PreviewServer(socketserver.ThreadingMixIn, WSGIServer):
    """The standard library's WSGI server, one thread per request (the page polls)."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def make_preview_server(
    app: PreviewApp, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> PreviewServer:
    """A server for ``app`` bound to ``host:port`` (``port=0``: any free port).

    On a loopback address the app refuses requests whose ``Host`` header is not
    a loopback name (a guard against DNS rebinding), unless ``app`` was given
    its own ``allowed_hosts``.
    """
    if is_loopback(host) and app.allowed_hosts is None:
        app.allowed_hosts = {*LOOPBACK_NAMES, host}
    handler = _QuietHandler if quiet else WSGIRequestHandler
    server = make_server(host, port, app, server_class=PreviewServer, handler_class=handler)
    assert isinstance(server, PreviewServer)
    return server


def serve_in_thread(server: PreviewServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests); stop it with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    return thread
