"""Shared fixtures: real SMTP servers on 127.0.0.1 (see ``tests/servers/smtp.py``).

Each server fixture starts a fresh server for one test and stops it afterwards.
They skip the test when aiosmtpd (or trustme, for TLS) is not installed, so the
suite also runs with no test extras. Sub-directories add their own fixtures in
their own ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.servers import SilentServer
    from tests.servers.smtp import Certificates, SMTPServer


@pytest.fixture(scope="session")
def certificates() -> Certificates:
    """A throwaway CA and a certificate for 127.0.0.1/localhost, shared by the session."""
    pytest.importorskip("trustme")
    pytest.importorskip("aiosmtpd")
    from tests.servers.smtp import Certificates

    return Certificates()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A plain-text SMTP server without AUTH (connect with ``security="none"``)."""
    pytest.importorskip("aiosmtpd")
    from tests.servers.smtp import SMTPServer

    with SMTPServer() as server:
        yield server


@pytest.fixture
def smtp_tls_server(certificates: Certificates) -> Iterator[SMTPServer]:
    """A server offering STARTTLS and AUTH (``FAKE_USER`` / ``FAKE_PASSWORD``) after it."""
    from tests.servers.smtp import FAKE_PASSWORD, FAKE_USER, SMTPServer

    with SMTPServer(
        security="starttls", certificates=certificates, users={FAKE_USER: FAKE_PASSWORD}
    ) as server:
        yield server


@pytest.fixture
def smtps_server(certificates: Certificates) -> Iterator[SMTPServer]:
    """A server speaking implicit TLS from the first byte, with AUTH (``FAKE_USER``)."""
    from tests.servers.smtp import FAKE_PASSWORD, FAKE_USER, SMTPServer

    with SMTPServer(
        security="ssl", certificates=certificates, users={FAKE_USER: FAKE_PASSWORD}
    ) as server:
        yield server


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A port that accepts TCP connections and never sends a byte."""
    from tests.servers import SilentServer

    with SilentServer() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    from tests.servers import closed_port

    return closed_port()
