"""Secrets never leave the async SMTP path: not in the error, its attempts, its chain or a repr."""

from __future__ import annotations

import asyncio
import base64
import string
import traceback
from collections.abc import Iterator

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from tests.servers.smtp import FAKE_USER, SMTPServer

PASSWORDS = st.text(
    alphabet=string.ascii_letters + string.digits + string.punctuation, min_size=6, max_size=40
)


@pytest.fixture(scope="module")
def echoing_server() -> Iterator[SMTPServer]:
    """A plain server with AUTH (no user matches) that is told to echo what it got."""
    with SMTPServer(users={FAKE_USER: "the-only-right-one"}) as server:
        yield server


@settings(derandomize=True, max_examples=40, deadline=None)
@given(password=PASSWORDS)
def test_a_refused_password_echoed_by_the_server_is_masked(
    echoing_server: SMTPServer, password: str
) -> None:
    """The server's 535 reply quotes the password and AUTH PLAIN's base64: asend masks both."""
    plain = base64.b64encode(f"\0{FAKE_USER}\0{password}".encode()).decode()
    echoing_server.clear_faults()
    echoing_server.fail("AUTH", f"535 5.7.8 bad credentials {password} {plain}", times=None)
    smtp = nk.SMTPTransport(
        "127.0.0.1",
        echoing_server.port,
        FAKE_USER,
        password,
        security="none",
        allow_insecure_auth=True,
        timeout=5,
    )
    with pytest.raises(nk.ProviderError) as info:
        asyncio.run(
            smtp.asend(nk.Email(to="a@example.com", subject="s", text="t", sender="b@example.com"))
        )
    error = info.value
    attempts = [str(a) for a in error.attempts]
    chain = traceback.format_exception(error)
    seen = "\n".join([str(error), repr(error), repr(smtp), *attempts, *chain])
    assert password not in seen
    assert plain not in seen
    assert "***" in str(error)
