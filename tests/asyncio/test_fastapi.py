"""notifykit.contrib.fastapi and examples/fastapi_app.py, with FastAPI's TestClient and aiosmtpd."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("aiosmtplib")
pytest.importorskip("aiosmtpd")

import warnings

from fastapi import FastAPI

with warnings.catch_warnings():
    # Recent Starlette asks for "httpx2" for its test client; httpx still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import notifykit as nk
from notifykit.contrib.fastapi import NotifierDep, lifespan
from tests.servers.smtp import SMTPServer
from tests.test_examples import dead_url, load, smtp_url, subjects, text_of


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("NOTIFYKIT_LOG", "memory://")
    yield from load("fastapi_app")


def test_example_app_sends_the_notice(
    example: ModuleType, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /orders/<n>/ship renders the template and delivers it with asend_email."""
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", smtp_url(smtp_server))
    with TestClient(example.app) as client:
        response = client.post(
            "/orders/A-7/ship", json={"email": "asha@example.com", "name": "Asha"}
        )
        notifier = example.app.state.notifier
        assert isinstance(notifier, nk.Notifier)
        assert 1 == smtp_server.open_connections  # kept alive between requests
    assert 200 == response.status_code, response.text
    assert f"smtp:127.0.0.1:{smtp_server.port}" == response.json()["transport"]
    assert ["Order A-7 has shipped"] == subjects(smtp_server)
    [received] = smtp_server.messages
    assert ("orders@shop.example", ("asha@example.com",)) == (received.mail_from, received.rcpt_tos)
    assert "Hi Asha," in text_of(smtp_server)
    # The lifespan closed the Notifier at shut-down: QUIT, no connection left open.
    assert smtp_server.wait_for(lambda: 0 == smtp_server.open_connections)
    assert example.app.state.notifier is None


def test_example_app_answers_503_when_the_server_is_down(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery error becomes a 503 JSON answer, not a 500 page."""
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", dead_url())
    with TestClient(example.app) as client:
        response = client.post("/orders/A-7/ship", json={"email": "asha@example.com"})
    assert (503, {"error": "the notification could not be sent"}) == (
        response.status_code,
        response.json(),
    )


def test_bad_configuration_stops_the_app_at_start_up() -> None:
    """A factory that does not return a Notifier fails the start-up, with notifykit's error."""
    app = FastAPI(lifespan=lifespan(lambda: "nope"))  # type: ignore[arg-type,return-value]
    with pytest.raises(nk.ConfigurationError, match="not a Notifier"), TestClient(app):
        pass


def test_dependency_without_the_lifespan_is_a_clear_error() -> None:
    """Using NotifierDep in an app without the lifespan names the fix."""
    app = FastAPI()

    @app.get("/")
    async def index(notifier: NotifierDep) -> str:  # pragma: no cover - never reached
        return str(notifier)

    with (
        TestClient(app, raise_server_exceptions=True) as client,
        pytest.raises(nk.ConfigurationError, match="lifespan"),
    ):
        client.get("/")
