"""The Flask extension with Flask's test client and a real aiosmtpd server."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

flask = pytest.importorskip("flask")

from notifykit.contrib.flask import NotifyKit, current_notifier  # noqa: E402
from notifykit.errors import ConfigurationError  # noqa: E402
from notifykit.message import Email  # noqa: E402
from notifykit.notifier import Notifier  # noqa: E402
from notifykit.sinks.memory import MemorySink  # noqa: E402
from notifykit.transports.memory import MemoryTransport  # noqa: E402
from tests.servers.smtp import SMTPServer  # noqa: E402

notifykit = NotifyKit()


def url_of(server: SMTPServer) -> str:
    return f"smtp://127.0.0.1:{server.port}?security=none&local_hostname=client.test"


def create_app(config: dict[str, Any], template_folder: str | None = "templates") -> Any:
    """An application factory, the way Flask projects write one."""
    app = flask.Flask(__name__, template_folder=template_folder)
    app.config.update(config)
    notifykit.init_app(app)

    @app.post("/welcome")
    def welcome() -> str:
        receipt = current_notifier.send(
            Email(to=flask.request.form["email"], subject="Welcome", text="Hello!")
        )
        return receipt.message_id

    @app.post("/shipped")
    def shipped() -> str:
        receipt = current_notifier.send_email(
            "order_shipped.html",
            to=flask.request.form["email"],
            context={"number": flask.request.form["number"]},
        )
        return receipt.message_id

    return app


@pytest.fixture
def app(smtp_server: SMTPServer) -> Iterator[Any]:
    app = create_app(
        {
            "NOTIFYKIT_EMAIL_URL": url_of(smtp_server),
            "NOTIFYKIT_SENDER": "Shop <noreply@shop.example>",
            "NOTIFYKIT_LOG": "memory://",
        }
    )
    yield app
    notifykit.close(app)


def test_a_view_sends_through_the_app_notifier(app: Any, smtp_server: SMTPServer) -> None:
    """A view using current_notifier delivers to the SMTP server with the configured sender."""
    response = app.test_client().post("/welcome", data={"email": "asha@example.com"})

    assert 200 == response.status_code
    [received] = smtp_server.messages
    assert "noreply@shop.example" == received.mail_from
    assert ("asha@example.com",) == received.rcpt_tos
    assert "Welcome" == received.message["Subject"]


def test_the_notifier_outlives_requests(app: Any, smtp_server: SMTPServer) -> None:
    """Requests share one Notifier and one SMTP connection; a request's end closes nothing."""
    client = app.test_client()
    client.post("/welcome", data={"email": "a@example.com"})
    client.post("/welcome", data={"email": "b@example.com"})

    assert 2 == len(smtp_server.messages)
    assert 1 == smtp_server.connections
    assert 1 == smtp_server.open_connections


def test_state_lives_in_app_extensions(app: Any) -> None:
    """The notifier is kept in app.extensions, and the extension object holds no app."""
    with app.app_context():
        notifier = notifykit.notifier
        assert notifier is current_notifier._get_current_object()  # type: ignore[attr-defined]
    assert notifier is app.extensions["notifykit"].notifier
    assert not hasattr(notifykit, "app")


def test_delivery_log_from_config(app: Any) -> None:
    """NOTIFYKIT_LOG sinks receive the events of the app's sends."""
    app.test_client().post("/welcome", data={"email": "asha@example.com"})

    [sink] = notifykit.get_notifier(app).sinks
    assert isinstance(sink, MemorySink)
    assert ["queued", "sent"] == [e.status for e in sink.events]


def test_app_factory_gives_each_app_its_own_notifier(smtp_server: SMTPServer) -> None:
    """One extension object serves several apps, each with its own configuration."""
    with SMTPServer() as other:
        first = create_app(
            {"NOTIFYKIT_EMAIL_URL": url_of(smtp_server), "NOTIFYKIT_SENDER": "a@x.example"}
        )
        second = create_app(
            {"NOTIFYKIT_EMAIL_URL": url_of(other), "NOTIFYKIT_SENDER": "b@x.example"}
        )
        try:
            first.test_client().post("/welcome", data={"email": "asha@example.com"})
            second.test_client().post("/welcome", data={"email": "ravi@example.com"})
            assert notifykit.get_notifier(first) is not notifykit.get_notifier(second)
        finally:
            notifykit.close(first)
            notifykit.close(second)
        assert ["asha@example.com"] == [m.rcpt_tos[0] for m in smtp_server.messages]
        assert ["ravi@example.com"] == [m.rcpt_tos[0] for m in other.messages]


def test_configuration_after_init_app_is_honoured() -> None:
    """Config set after init_app (as factories often do) is read when the notifier is first used."""
    app = flask.Flask(__name__)
    notifykit.init_app(app)
    app.config["NOTIFYKIT_EMAIL_URL"] = "memory://late"

    notifier = notifykit.get_notifier(app)

    assert isinstance(notifier.email, MemoryTransport)
    assert "memory:late" == notifier.email.name


def test_closing_the_app_notifier_ends_the_connection(app: Any, smtp_server: SMTPServer) -> None:
    """close(app) says QUIT; the next use builds a fresh notifier."""
    app.test_client().post("/welcome", data={"email": "a@example.com"})
    before = notifykit.get_notifier(app)

    notifykit.close(app)

    assert smtp_server.wait_for(lambda: smtp_server.open_connections == 0)
    assert notifykit.get_notifier(app) is not before


def test_a_dropped_app_closes_its_notifier(smtp_server: SMTPServer) -> None:
    """When the app is garbage collected its notifier is closed (its connection ends)."""
    app = create_app(
        {"NOTIFYKIT_EMAIL_URL": url_of(smtp_server), "NOTIFYKIT_SENDER": "a@x.example"}
    )
    app.test_client().post("/welcome", data={"email": "a@example.com"})
    assert 1 == smtp_server.open_connections

    del app
    gc.collect()

    assert smtp_server.wait_for(lambda: smtp_server.open_connections == 0)


def test_missing_url_names_the_config_keys() -> None:
    """Without a transport URL the first use says which keys to set."""
    app = flask.Flask(__name__)
    notifykit.init_app(app)

    with pytest.raises(ConfigurationError, match=r"NOTIFYKIT_EMAIL_URL.*NOTIFYKIT_SMS_URL"):
        notifykit.get_notifier(app)


def test_bad_url_names_the_key_and_masks_the_password() -> None:
    """A wrong URL is reported under its config key, without the password."""
    app = flask.Flask(__name__)
    app.config["NOTIFYKIT_EMAIL_URL"] = "smtp://app:hunter22@mail.example.com?colour=red"

    with pytest.raises(ConfigurationError) as info:
        notifykit.init_app(app)  # at start-up, not at the first request
    assert str(info.value).startswith("app.config['NOTIFYKIT_EMAIL_URL']: ")
    assert "notifykit" not in app.extensions
    assert "hunter22" not in str(info.value)


def test_current_notifier_needs_the_extension() -> None:
    """current_notifier in an app without NotifyKit explains how to set it up."""
    app = flask.Flask(__name__)

    with app.app_context(), pytest.raises(ConfigurationError, match="init_app"):
        current_notifier.send(
            Email(to="a@example.com", subject="x", text="x", sender="s@x.example")
        )


def test_init_app_twice_is_refused() -> None:
    """Initialising the same app twice is a configuration error, not a silent replacement."""
    app = flask.Flask(__name__)
    notifykit.init_app(app)

    with pytest.raises(ConfigurationError, match="already initialised"):
        NotifyKit(app)


def test_a_notifier_factory_composes_in_code() -> None:
    """notifier_factory builds the app's notifier from the app, for set-ups a URL cannot say."""
    outbox = MemoryTransport()
    ext = NotifyKit(notifier_factory=lambda app: Notifier(email=outbox, sender=app.config["FROM"]))
    app = flask.Flask(__name__)
    app.config["FROM"] = "Shop <noreply@shop.example>"
    ext.init_app(app)

    with app.app_context():
        current_notifier.send(Email(to="a@example.com", subject="Hi", text="x"))

    assert "Shop <noreply@shop.example>" == outbox.outbox[0].sender  # type: ignore[union-attr]


def test_templates_come_from_the_app_template_folder(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """By default, templates are looked up in the app's template folder."""
    if not hasattr(pytest.importorskip("notifykit.templates"), "TemplateRenderer"):
        pytest.skip("notifykit.templates is not complete yet")
    (tmp_path / "order_shipped.html").write_text(
        "{% block subject %}Order {{ number }} shipped{% endblock %}"
        "{% block html %}<p>Order {{ number }} is on its way.</p>{% endblock %}",
        encoding="utf-8",
    )
    app = create_app(
        {"NOTIFYKIT_EMAIL_URL": url_of(smtp_server), "NOTIFYKIT_SENDER": "a@x.example"},
        template_folder=str(tmp_path),
    )
    try:
        response = app.test_client().post(
            "/shipped", data={"email": "asha@example.com", "number": "42"}
        )
    finally:
        notifykit.close(app)

    assert 200 == response.status_code
    assert "Order 42 shipped" == smtp_server.messages[0].message["Subject"]


def test_relative_log_paths_are_in_the_instance_folder_created_at_start_up(
    tmp_path: Path,
) -> None:
    """sqlite:///notifykit.db is instance/notifykit.db; the folder exists once init_app returns."""
    app = flask.Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(
        NOTIFYKIT_EMAIL_URL="memory://",
        NOTIFYKIT_SENDER="a@x.example",
        NOTIFYKIT_LOG="sqlite:///notifykit.db jsonl:///logs/deliveries.jsonl",
    )
    assert not (tmp_path / "instance").exists()

    notifykit.init_app(app)

    assert (tmp_path / "instance" / "notifykit.db").is_file()  # before any request
    assert (tmp_path / "instance" / "logs").is_dir()
    try:
        with app.app_context():
            current_notifier.send(Email(to="asha@example.com", subject="Hi", text="x"))
        sqlite_sink, _ = notifykit.get_notifier(app).sinks
        assert str(tmp_path / "instance" / "notifykit.db") == str(sqlite_sink.path)  # type: ignore[attr-defined]
    finally:
        notifykit.close(app)
    assert "asha@example.com" in (tmp_path / "instance" / "logs" / "deliveries.jsonl").read_text()


def test_a_log_folder_that_cannot_be_made_fails_at_init_app(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    app = flask.Flask(__name__, instance_path=str(tmp_path / "file" / "instance"))
    app.config.update(NOTIFYKIT_EMAIL_URL="memory://", NOTIFYKIT_LOG="sqlite:///notifykit.db")

    with pytest.raises(ConfigurationError, match=r"NOTIFYKIT_LOG.*cannot create the folder"):
        notifykit.init_app(app)


def test_a_bad_log_url_fails_at_init_app() -> None:
    app = flask.Flask(__name__)
    app.config.update(NOTIFYKIT_EMAIL_URL="memory://", NOTIFYKIT_LOG="mysql://db/log")

    with pytest.raises(ConfigurationError, match=r"NOTIFYKIT_LOG.*unknown log URL"):
        notifykit.init_app(app)


def test_checking_at_init_app_leaves_the_apps_own_sinks_open(tmp_path: Path) -> None:
    """Sink objects in NOTIFYKIT_LOG belong to the app: the start-up check does not close them."""
    from notifykit.sinks.jsonl import JSONLSink

    sink = JSONLSink(tmp_path / "log.jsonl")
    app = flask.Flask(__name__)
    app.config.update(NOTIFYKIT_EMAIL_URL="memory://", NOTIFYKIT_LOG=[sink])

    notifykit.init_app(app)
    try:
        assert not sink.closed
        with app.app_context():
            current_notifier.send(
                Email(to="asha@example.com", subject="Hi", text="x", sender="s@x.example")
            )
    finally:
        notifykit.close(app)
    assert "asha@example.com" in (tmp_path / "log.jsonl").read_text()


def test_templates_reload_in_debug_mode(tmp_path: Path) -> None:
    """Under `flask --debug` an edited template shows at the very next render (no 1 s grace)."""
    import os

    template = tmp_path / "hello.html"
    template.write_text("{% block subject %}Old{% endblock %}{% block text %}x{% endblock %}")
    app = flask.Flask(__name__, template_folder=str(tmp_path))
    app.debug = True
    app.config.update(NOTIFYKIT_EMAIL_URL="memory://", NOTIFYKIT_SENDER="a@x.example")
    notifykit.init_app(app)
    try:
        notifier = notifykit.get_notifier(app)
        assert notifier.templates is not None
        assert "Old" == notifier.templates.render("hello.html").subject
        template.write_text("{% block subject %}New{% endblock %}{% block text %}x{% endblock %}")
        later = os.stat(template).st_mtime + 5
        os.utime(template, (later, later))

        subject = notifier.templates.render("hello.html").subject
    finally:
        notifykit.close(app)
    assert "New" == subject


def test_templates_auto_reload_setting_wins_over_debug() -> None:
    """TEMPLATES_AUTO_RELOAD, when set, decides, as it does for Flask's own templates."""
    from notifykit.contrib.flask import _reload_templates

    app = flask.Flask(__name__)
    assert not _reload_templates(app)
    app.debug = True
    assert _reload_templates(app)
    app.config["TEMPLATES_AUTO_RELOAD"] = False
    assert not _reload_templates(app)
