"""notifykit for Flask (``pip install "notifykit-py[flask]"``).

::

    from flask import Flask
    from notifykit.contrib.flask import NotifyKit, current_notifier

    notifykit = NotifyKit()

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["NOTIFYKIT_EMAIL_URL"] = "smtp://app:secret@smtp.example.com"
        app.config["NOTIFYKIT_SENDER"] = "Shop <noreply@shop.example>"
        notifykit.init_app(app)
        return app

    @bp.post("/orders/<number>/ship")
    def ship(number):
        current_notifier.send_email("emails/order_shipped.html", to=..., context={...})

Configuration is read from ``app.config`` (the same names as the
``NOTIFYKIT_*`` environment variables): ``NOTIFYKIT_EMAIL_URL``,
``NOTIFYKIT_SMS_URL``, ``NOTIFYKIT_SENDER``, ``NOTIFYKIT_SMS_SENDER``,
``NOTIFYKIT_DEFAULT_REGION``, ``NOTIFYKIT_LOG`` (sink URLs, or sinks) and
``NOTIFYKIT_TEMPLATES`` (by default the app's and its blueprints' template
folders). Relative ``sqlite:///`` and ``jsonl:///`` log paths are in the app's
instance folder (created if needed). When a transport URL is configured
before ``init_app``, the configuration is checked there, so a mistake stops
the app at start-up. Templates are reloaded when edited if
``TEMPLATES_AUTO_RELOAD`` is true or, when it is unset, in debug mode, as
Flask does for its own. The Notifier is built on first use, so configuration
set after ``init_app`` (the application-factory pattern) is honoured, and lives in
``app.extensions["notifykit"]`` -- never on the extension object, which can
serve many apps. It is shared by every request (connections and circuit
breakers persist) and closed when the app goes away (at interpreter exit at
the latest), or by :meth:`NotifyKit.close`.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Flask, current_app
from werkzeug.local import LocalProxy

from notifykit.contrib._lazy import LazyNotifier
from notifykit.errors import ConfigurationError
from notifykit.notifier import Notifier
from notifykit.sinks.base import LogSink
from notifykit.webhooks._base import Receiver

__all__ = ["NotifyKit", "current_notifier", "notifier_from_config", "webhook_blueprint"]

EXTENSION = "notifykit"

#: The configuration keys and their defaults (set with ``app.config.setdefault``).
DEFAULTS: dict[str, Any] = {
    "NOTIFYKIT_EMAIL_URL": None,
    "NOTIFYKIT_SMS_URL": None,
    "NOTIFYKIT_SENDER": None,
    "NOTIFYKIT_SMS_SENDER": None,
    "NOTIFYKIT_DEFAULT_REGION": None,
    "NOTIFYKIT_LOG": None,
    "NOTIFYKIT_TEMPLATES": None,
}

NotifierFactory = Callable[[Flask], Notifier]


def _where(key: str) -> str:
    return f"app.config[{key!r}]"


def _optional_str(app: Flask, key: str) -> str | None:
    value = app.config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{_where(key)} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _template_folders(app: Flask) -> list[Path]:
    """The app's template folder, then each blueprint's, as Flask searches them."""
    folders: list[Path] = []
    for owner in (app, *app.iter_blueprints()):
        if owner.template_folder is not None:
            folder = Path(owner.root_path) / owner.template_folder
            if folder.is_dir() and folder not in folders:
                folders.append(folder)
    return folders


def _reload_templates(app: Flask) -> bool:
    """Reload edited templates as Flask does: ``TEMPLATES_AUTO_RELOAD``, else in debug mode."""
    setting = app.config.get("TEMPLATES_AUTO_RELOAD")
    return bool(app.debug if setting is None else setting)


def _templates(app: Flask) -> Any:
    from notifykit.contrib._folders import FolderRenderer

    key = "NOTIFYKIT_TEMPLATES"
    value = app.config.get(key)
    debug = _reload_templates(app)
    if value is None or value is True:
        return FolderRenderer(_template_folders(app), debug=debug)
    if value is False:
        return None
    if callable(getattr(value, "render", None)):
        return value
    items: Sequence[Any] = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigurationError(
            f"{_where(key)} must be a folder, a list of folders, False or a TemplateRenderer; "
            f"got {value!r}"
        )
    folders: list[Path] = []
    for item in items:
        folder = Path(app.root_path) / item  # relative to the app, like template_folder
        if not folder.is_dir():
            raise ConfigurationError(f"{_where(key)}: {str(folder)!r} is not a directory")
        folders.append(folder)
    return FolderRenderer(folders, debug=debug)


def _in_instance_folder(app: Flask, url: str) -> str:
    """``sqlite:///notifykit.db`` -> the file in the app's instance folder, folders created.

    Relative paths of file sinks (``sqlite://``, ``jsonl://``) are relative to
    ``app.instance_path``, as Flask-SQLAlchemy does, never to the working
    directory; the folder that holds the file is created at start-up.
    """
    from notifykit.config import _sqlite_or_jsonl_path

    scheme = url.strip().split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("sqlite", "jsonl"):
        return url
    path = Path(_sqlite_or_jsonl_path(url.strip(), scheme))
    if not path.is_absolute():
        path = Path(app.instance_path) / path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the folder {str(path.parent)!r} for {scheme}:// ({exc.strerror or exc})"
        ) from None
    return f"{scheme}:///{path}"  # an absolute path: four slashes


def _sinks(app: Flask) -> list[LogSink]:
    from notifykit.config import sink_from_url

    key = "NOTIFYKIT_LOG"
    value = app.config.get(key)
    if value is None:
        return []
    items: Sequence[Any] = value.split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigurationError(f"{_where(key)} must be sink URLs or a list of sinks")
    sinks: list[LogSink] = []
    for item in items:
        if isinstance(item, str):
            try:
                sinks.append(sink_from_url(_in_instance_folder(app, item)))
            except ConfigurationError as exc:
                raise ConfigurationError(f"{_where(key)}: {exc}") from exc
        elif callable(getattr(item, "record", None)):
            sinks.append(item)
        else:
            raise ConfigurationError(f"{_where(key)}: {item!r} is neither a URL nor a LogSink")
    return sinks


def notifier_from_config(app: Flask) -> Notifier:
    """Build a Notifier from ``app.config`` (see the module docstring).

    Every error is a :class:`~notifykit.errors.ConfigurationError` that names
    the ``app.config`` key at fault.
    """
    from notifykit.config import from_dsn

    transports: dict[str, Any] = {}
    for key in ("NOTIFYKIT_EMAIL_URL", "NOTIFYKIT_SMS_URL"):
        url = _optional_str(app, key)
        if url is not None:
            try:
                transports[key] = from_dsn(url)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{_where(key)}: {exc}") from exc
    if not transports:
        raise ConfigurationError(
            "set app.config['NOTIFYKIT_EMAIL_URL'] and/or app.config['NOTIFYKIT_SMS_URL'] "
            "(e.g. 'smtp://user:password@smtp.example.com', or 'console://' in development)"
        )
    sender = _optional_str(app, "NOTIFYKIT_SENDER")
    try:
        return Notifier(
            email=transports.get("NOTIFYKIT_EMAIL_URL"),
            sms=transports.get("NOTIFYKIT_SMS_URL"),
            templates=_templates(app),
            sinks=_sinks(app),
            sender=sender,
            sms_sender=_optional_str(app, "NOTIFYKIT_SMS_SENDER"),
            default_region=_optional_str(app, "NOTIFYKIT_DEFAULT_REGION"),
        )
    except ValueError as exc:  # InvalidMessage: a malformed sender
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"{_where('NOTIFYKIT_SENDER')}: {exc}") from exc


def _check_config(app: Flask) -> None:
    """Build a Notifier from ``app.config`` and close what that built (never the app's objects)."""
    notifier = notifier_from_config(app)
    given = app.config.get("NOTIFYKIT_LOG")
    theirs = [] if given is None or isinstance(given, str) else list(given)
    for transport in (notifier.email, notifier.sms):
        if transport is not None:
            transport.close()
    for sink in notifier.sinks:
        close = getattr(sink, "close", None)
        if callable(close) and not any(sink is obj for obj in theirs):
            close()


class _State:
    """What the extension keeps per app, in ``app.extensions["notifykit"]``.

    It refers to its app weakly, so an app that is dropped is collected and
    its Notifier closed.
    """

    def __init__(self, app: Flask, factory: NotifierFactory) -> None:
        self._app = weakref.ref(app)
        self._factory = factory
        self._lazy = LazyNotifier(self._build, "the notifier factory")

    def _build(self) -> Notifier:
        app = self._app()
        if app is None:  # pragma: no cover - only reachable during collection
            raise ConfigurationError("the Flask app of this notifier is gone")
        return self._factory(app)

    @property
    def notifier(self) -> Notifier:
        return self._lazy.get()

    def close(self) -> None:
        self._lazy.close()


class NotifyKit:
    """The Flask extension: ``NotifyKit(app)``, or ``NotifyKit()`` then ``init_app(app)``.

    Args:
        app: the app to set up now (or call :meth:`init_app` later, once per app).
        notifier_factory: builds the app's Notifier from the app; by default
            :func:`notifier_from_config`. Give your own to compose transports
            in code (a ``FailoverTransport`` with a custom ``Retry``...).
    """

    def __init__(
        self, app: Flask | None = None, *, notifier_factory: NotifierFactory | None = None
    ) -> None:
        self.notifier_factory: NotifierFactory = notifier_factory or notifier_from_config
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app``; the Notifier is built on first use.

        With the default factory and a transport URL already in ``app.config``,
        the configuration is checked now (a :class:`~notifykit.errors.ConfigurationError`
        at start-up, not at the first request) and log folders are created.
        """
        if EXTENSION in app.extensions:
            raise ConfigurationError("NotifyKit is already initialised on this app")
        for key, default in DEFAULTS.items():
            app.config.setdefault(key, default)
        if self.notifier_factory is notifier_from_config and (
            app.config.get("NOTIFYKIT_EMAIL_URL") is not None
            or app.config.get("NOTIFYKIT_SMS_URL") is not None
        ):
            # Fail at start-up, not at the first request: build the notifier from
            # the configuration as it is now (creating log folders), then close
            # it. The app's own notifier is built at first use, so configuration
            # changed after init_app() still counts.
            with app.app_context():
                _check_config(app)
        state = _State(app, self.notifier_factory)
        app.extensions[EXTENSION] = state
        # Close the notifier (QUIT, flush sinks) when the app goes away, at
        # interpreter exit at the latest -- not per request: its connections
        # are meant to outlive requests.
        weakref.finalize(app, state.close)

    def get_notifier(self, app: Flask | None = None) -> Notifier:
        """The Notifier of ``app`` (by default the current app)."""
        return _state(app).notifier

    @property
    def notifier(self) -> Notifier:
        """The current app's Notifier (inside an app or request context)."""
        return _state(None).notifier

    def close(self, app: Flask | None = None) -> None:
        """Close ``app``'s Notifier now; the next use builds a new one."""
        _state(app).close()


def _state(app: Flask | None) -> _State:
    if app is None:
        app = cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]
    state = app.extensions.get(EXTENSION)
    if not isinstance(state, _State):
        raise ConfigurationError(
            "NotifyKit is not initialised on this app: call NotifyKit(app) or "
            "notifykit.init_app(app) in your app factory"
        )
    return state


def _current_notifier() -> Notifier:
    return _state(None).notifier


#: The current app's Notifier, for use inside an app or request context.
current_notifier: Notifier = cast(Notifier, LocalProxy(_current_notifier))


def preview_blueprint(
    templates: str | Path | None = None, *, name: str = "notifykit_preview", **options: Any
) -> Any:
    """A blueprint serving the template preview (:class:`notifykit.preview.PreviewApp`).

    Register it with a prefix: ``app.register_blueprint(preview_blueprint("templates/emails"),
    url_prefix="/_notifykit/preview")``. It answers only while ``app.debug`` is true
    (404 otherwise), like a development tool should.
    """
    from flask import Blueprint, Response, abort, request

    from notifykit.preview import PreviewApp, Request

    preview = PreviewApp(templates, **options)
    bp = Blueprint(name, __name__)

    @bp.route("/", defaults={"subpath": ""}, methods=["GET", "POST"])
    @bp.route("/<path:subpath>", methods=["GET", "POST"])
    def page(subpath: str) -> Response:
        if not current_app.debug:
            abort(404)
        sub = "/" + subpath
        prefix = request.path[: len(request.path) - len(sub)] if subpath else request.path
        answer = preview.handle(
            Request(
                method=request.method,
                path=sub,
                prefix=prefix.rstrip("/"),
                query=request.args.to_dict(),
                form=request.form.to_dict() if request.method == "POST" else {},
            )
        )
        return Response(
            answer.body,
            status=answer.status,
            content_type=answer.content_type,
            headers=answer.headers,
        )

    return bp


def webhook_blueprint(
    receivers: Mapping[str, Receiver], name: str = "notifykit_webhooks"
) -> Blueprint:
    """A blueprint with ``POST /<name>`` and ``/<name>/<token>`` for each receiver.

    ::

        app.register_blueprint(
            webhook_blueprint({"ses": SESReceiver(topics=[...], sinks=[...])}),
            url_prefix="/hooks",
        )

    The raw body is read (never parsed by Flask); the answer is the
    receiver's (see :mod:`notifykit.webhooks.apps`).
    """
    from flask import request

    from notifykit.webhooks import MAX_BODY
    from notifykit.webhooks.apps import respond

    bp = Blueprint(name, __name__)

    def endpoint(receiver: Receiver) -> Callable[..., Any]:
        def view(token: str | None = None) -> Any:
            if (request.content_length or 0) > MAX_BODY:
                return "too large\n", 413
            token = token or request.args.get("token")
            data = request.get_data(cache=False)
            status, headers, body = respond(receiver, data, request.headers.items(), token)
            return body, status, headers

        return view

    for key, receiver in receivers.items():
        view = endpoint(receiver)
        bp.add_url_rule(f"/{key}", f"{key}", view, methods=["POST"])
        bp.add_url_rule(f"/{key}/<token>", f"{key}_token", view, methods=["POST"])
    return bp
