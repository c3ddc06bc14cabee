"""The scripts in examples/ run as a newcomer runs them, against SMTP servers on 127.0.0.1.

The plain script runs in a subprocess; the Flask app through its test client;
the Django snippet in a subprocess that configures Django with it (Django's
settings are global to a process); the Celery example with an in-memory
broker and a real worker thread.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import notifykit as nk

pytest.importorskip("aiosmtpd")

from tests.servers import closed_port
from tests.servers.smtp import SMTPServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if not EXAMPLES.is_dir():  # an sdist ships tests/ without examples/
    pytest.skip("examples/ is not in this tree", allow_module_level=True)

TIMEOUT = 60


def smtp_url(server: SMTPServer) -> str:
    """The URL of a local test server (plain text, no DNS lookup for EHLO)."""
    return f"smtp://127.0.0.1:{server.port}?security=none&local_hostname=client.test"


def dead_url() -> str:
    """An SMTP URL where nothing listens: connecting is refused at once."""
    return f"smtp://127.0.0.1:{closed_port()}?security=none&timeout=2&local_hostname=client.test"


def subjects(server: SMTPServer) -> list[str]:
    return [str(m.message["Subject"]) for m in server.messages]


def text_of(server: SMTPServer, index: int = 0) -> str:
    part = server.messages[index].message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(server: SMTPServer, index: int = 0) -> str:
    part = server.messages[index].message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def load(name: str) -> Generator[ModuleType, None, None]:
    """Import ``examples/<name>.py`` under a fresh module name; forget it afterwards."""
    module_name = f"example_{name}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # Flask finds the app's folder through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[module_name]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


# ----------------------------------------------------------------------------- plain script


def test_plain_script_fails_over_and_prints_the_log_stats(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """The cron script skips the dead primary, delivers every notice via the backup and prints stats."""
    db = tmp_path / "log.db"
    result = run(
        [str(EXAMPLES / "plain_script.py"), "--db", str(db)],
        cwd=tmp_path,
        PRIMARY_SMTP_URL=dead_url(),
        BACKUP_SMTP_URL=smtp_url(smtp_server),
    )

    assert 0 == result.returncode, result.stdout + result.stderr
    assert [
        "Order A-1042 has shipped",
        "Order A-1043 has shipped",
        "Order A-1044 has shipped",
    ] == subjects(smtp_server)
    assert ("asha@example.com",) == smtp_server.messages[0].rcpt_tos
    assert "Track your parcel: https://t.example/1" in text_of(smtp_server)
    html = html_of(smtp_server)
    assert "Your order is on its way, Asha!" in html
    assert 'class="nk-title" style="' in html  # the bundled layout's CSS, inlined
    backup = f"smtp:127.0.0.1:{smtp_server.port}"
    assert f"  {backup}: 3 sent, 0 failed, success 100%" in result.stdout.splitlines()
    assert "  order_shipped.html: 3 sent, 0 failed, success 100%" in result.stdout.splitlines()
    log = nk.SQLiteSink(str(db))
    try:
        [row] = log.stats()
        assert ("order_shipped.html", 3, 0) == (row.key, row.sent, row.failed)
    finally:
        log.close()


def test_plain_script_exits_1_when_nothing_can_be_sent(tmp_path: Path) -> None:
    """With both servers down the script reports each message and exits with status 1."""
    result = run(
        [str(EXAMPLES / "plain_script.py"), "--primary", dead_url(), "--backup", dead_url()],
        cwd=tmp_path,
    )

    assert 1 == result.returncode, result.stderr
    assert 3 == result.stdout.count("not sent A-104")
    assert (tmp_path / "notifykit.db").exists()  # the default log, in the working directory


# ----------------------------------------------------------------------------- Flask


@pytest.fixture
def flask_example() -> Iterator[ModuleType]:
    pytest.importorskip("flask")
    yield from load("flask_app")


def test_flask_app_sends_the_notice_on_post(
    flask_example: ModuleType, smtp_server: SMTPServer
) -> None:
    """POST /orders/<n>/ship renders the template and delivers it to the configured server."""
    app = flask_example.create_app(
        {"NOTIFYKIT_EMAIL_URL": smtp_url(smtp_server), "NOTIFYKIT_LOG": "memory://"}
    )
    try:
        response = app.test_client().post(
            "/orders/A-7/ship", data={"email": "asha@example.com", "name": "Asha"}
        )
    finally:
        flask_example.notifykit.close(app)

    assert 200 == response.status_code
    assert f"smtp:127.0.0.1:{smtp_server.port}" == response.json["transport"]
    assert ["Order A-7 has shipped"] == subjects(smtp_server)
    [received] = smtp_server.messages
    assert ("orders@shop.example", ("asha@example.com",)) == (received.mail_from, received.rcpt_tos)
    assert "Hi Asha," in text_of(smtp_server)


def test_flask_app_answers_503_when_the_server_is_down(flask_example: ModuleType) -> None:
    """A delivery error becomes a 503 JSON answer, not a 500 page."""
    app = flask_example.create_app(
        {"NOTIFYKIT_EMAIL_URL": dead_url(), "NOTIFYKIT_LOG": "memory://"}
    )
    try:
        response = app.test_client().post("/orders/A-7/ship", data={"email": "asha@example.com"})
    finally:
        flask_example.notifykit.close(app)

    assert (503, {"error": "the notification could not be sent"}) == (
        response.status_code,
        response.json,
    )


# ----------------------------------------------------------------------------- Django

DJANGO_PROJECT = """
import json, sys

import django
from django.conf import settings

sys.path.insert(0, sys.argv[1])
from django_snippet import settings as snippet

settings.configure(
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["testserver"],
    USE_TZ=True,
    ROOT_URLCONF="django_snippet.urls",
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    **{name: getattr(snippet, name) for name in dir(snippet) if name.isupper()},
)
django.setup()

from django.core.management import call_command
from django.test import Client

from notifykit.contrib.django.models import Delivery

call_command("check", tags=["notifykit"], fail_level="ERROR")  # NOTIFYKIT is valid
call_command("migrate", verbosity=0)
client = Client()
signup = client.post("/signup/", {"email": "asha@example.com"})
ship = client.post("/orders/A-9/ship/", {"email": "asha@example.com", "name": "Asha"})
print(json.dumps({
    "status": [signup.status_code, ship.status_code],
    "ship": ship.json(),
    "deliveries": sorted(
        [d.subject, d.status, d.template or "", d.attempts]
        for d in Delivery.objects.all()
    ),
}))
"""


def test_django_snippet_sends_through_the_backend_and_the_notifier(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """In a project configured with the snippet, send_mail() and get_notifier() deliver and log."""
    pytest.importorskip("django")
    url = f"failover({dead_url()} {smtp_url(smtp_server)})?retry_attempts=1"
    result = run(["-c", DJANGO_PROJECT, str(EXAMPLES)], cwd=tmp_path, NOTIFYKIT_EMAIL_URL=url)

    assert 0 == result.returncode, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert [200, 200] == report["status"]
    assert f"smtp:127.0.0.1:{smtp_server.port}" == report["ship"]["transport"]
    assert ["Welcome to Chai and Co.", "Order A-9 has shipped"] == subjects(smtp_server)
    assert {"orders@shop.example"} == {m.mail_from for m in smtp_server.messages}
    assert [
        ["Order A-9 has shipped", "sent", "order_shipped.html", 1],
        ["Welcome to Chai and Co.", "sent", "", 2],  # the first message tried the dead primary
    ] == report["deliveries"]


# ----------------------------------------------------------------------------- Celery


@pytest.fixture(scope="module")
def celery_example() -> Iterator[ModuleType]:
    """The example's module, its app on an in-memory broker, and a real worker thread."""
    pytest.importorskip("celery")
    from celery.contrib.testing.worker import start_worker

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", "memory://")
        patch.setenv("CELERY_RESULT_BACKEND", "cache+memory://")
        modules = load("celery_worker")
        module = next(modules)
    module.app.conf.update(
        task_default_queue=f"examples-{uuid.uuid4().hex}",
        broker_transport_options={"polling_interval": 0.01},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    try:
        with start_worker(module.app, pool="solo", perform_ping_check=False):
            yield module
    finally:
        module.app.close()
        modules.close()


def test_celery_worker_delivers_what_the_producer_enqueues(
    celery_example: ModuleType,
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """send_welcome() returns at once; the worker sends the e-mail and logs it to SQLite."""
    monkeypatch.setenv("NOTIFYKIT_EMAIL_URL", smtp_url(smtp_server))
    monkeypatch.setenv("NOTIFYKIT_DB", str(tmp_path / "log.db"))
    try:
        receipt = celery_example.send_welcome("asha@example.com").get(
            timeout=TIMEOUT, interval=0.01
        )
    finally:
        celery_example.send.close_notifier()  # QUIT, and the log flushed and closed

    assert ["Welcome to Chai and Co."] == subjects(smtp_server)
    assert f"smtp:127.0.0.1:{smtp_server.port}" == receipt["transport"]
    log = nk.SQLiteSink(str(tmp_path / "log.db"))
    try:
        assert ["queued", "sent"] == [e.status for e in log.history(receipt["message_id"])]
    finally:
        log.close()
