"""The async SMTP pool closes its sockets itself, never leaving them to the garbage collector.

aiosmtplib's ``close()`` starts a graceful TLS shutdown that needs more turns of
the event loop; when the loop ended first (``asyncio.run`` returning right after
``aclose()``), the socket was left open and reported later, during an unrelated
test, as an unclosed ``_SelectorSocketTransport``. Each test here holds the
connection's socket and checks that it is closed when notifykit says it is done.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

import notifykit as nk
from notifykit.transports.smtp import SMTPTransport
from tests.servers.smtp import FAKE_PASSWORD, FAKE_USER, Certificates, SMTPServer


def email() -> nk.Email:
    return nk.Email(to="asha@example.com", subject="Hi", text="t", sender="s@example.com")


def transport(
    server: SMTPServer, certificates: Certificates | None, **options: Any
) -> SMTPTransport:
    if server.security != "none":
        assert certificates is not None
        options.update(
            username=FAKE_USER, password=FAKE_PASSWORD, ssl_context=certificates.client_context()
        )
    options.setdefault("timeout", 5)
    return SMTPTransport("127.0.0.1", server.port, security=server.security, **options)


def idle_socket(smtp: SMTPTransport) -> Any:
    """The socket under the one idle connection of this loop's pool."""
    [(conn, _)] = smtp._async_pool().idle
    sock = conn.transport.get_extra_info("socket")
    assert sock.fileno() != -1
    return sock


@pytest.fixture(params=["none", "starttls", "ssl"])
def server(request: pytest.FixtureRequest, certificates: Certificates) -> Any:
    if request.param == "none":
        return request.getfixturevalue("smtp_server")
    return request.getfixturevalue(
        "smtp_tls_server" if request.param == "starttls" else "smtps_server"
    )


@pytest.mark.parametrize("quit_answered", [True, False], ids=["221", "no-reply-to-QUIT"])
def test_the_socket_is_closed_when_aclose_returns(
    server: SMTPServer, certificates: Certificates, quit_answered: bool
) -> None:
    """After ``await aclose()``, the loop may end at once: nothing is left open."""
    smtp = transport(server, certificates, timeout=0.5)

    async def main() -> Any:
        await smtp.asend(email())
        sock = idle_socket(smtp)
        if not quit_answered:
            server.hang("QUIT")
        await smtp.aclose()
        assert -1 == sock.fileno(), "aclose() returned with the socket still open"
        return sock

    sock = asyncio.run(main())
    assert -1 == sock.fileno()
    assert 1 == len(server.messages)
    assert server.wait_for(lambda: 0 == server.open_connections)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_connection_dropped_after_a_failure_is_closed_at_once(
    security: str, certificates: Certificates, request: pytest.FixtureRequest
) -> None:
    """A TLS connection given up mid-dialogue (here: no reply to MAIL) is not left half-closed."""
    server: SMTPServer = request.getfixturevalue(
        "smtp_tls_server" if security == "starttls" else "smtps_server"
    )
    smtp = transport(server, certificates, timeout=0.5)

    async def main() -> None:
        await smtp.asend(email())
        sock = idle_socket(smtp)
        server.hang("MAIL")
        with pytest.raises(nk.DeliveryError):
            await smtp.asend(email())
        assert not smtp._async_pool().idle
        await asyncio.sleep(0)  # the loop's next callback closes it
        assert -1 == sock.fileno(), "the dropped connection's socket is still open"
        await smtp.aclose()

    asyncio.run(main())
