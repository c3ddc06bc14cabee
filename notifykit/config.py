"""Configuration by URL and from the environment.

One URL describes a whole transport, composers included::

    smtp://user:pass@mail.example.com:587?security=starttls&timeout=5
    smtps://user:pass@mail.example.com          (implicit TLS, port 465)
    ses://?region=ap-south-1                    (credentials from boto3's chain)
    ses://KEY_ID:SECRET@?region=ap-south-1
    msg91://AUTHKEY@default?sender=SHOPIN&template_id=65e0...
    fast2sms://API_KEY@default?route=dlt&sender_id=SHOPIN
    console://   memory://   file:///var/spool/notifykit   (writes .eml / .txt files)
    failover(smtp://a.example smtp://b.example console://)?cooldown=30&retry_attempts=2
    roundrobin(ses://?region=eu-west-1 ses://?region=us-east-1)

Credentials are percent-encoded (``p%40ss`` for ``p@ss``). Every malformed URL,
unknown scheme, bad port or unknown option is a
:class:`~notifykit.errors.ConfigurationError` that says what is wrong and never
echoes a secret: messages show the URL through :func:`mask_url`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from notifykit.errors import ConfigurationError

if TYPE_CHECKING:
    from notifykit.notifier import Notifier
    from notifykit.sinks.base import LogSink
    from notifykit.transports.base import BaseTransport

__all__ = ["from_dsn", "from_env", "mask_url", "notifier_from_env", "sink_from_url"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^@/?#\s]*)@")
# Schemes whose user part is itself a secret (an API key).
_KEY_IN_USER = frozenset({"msg91", "fast2sms"})


def mask_url(url: str) -> str:
    """``url`` with its secrets replaced by ``***`` (passwords, keys in the user part)."""

    def repl(match: re.Match[str]) -> str:
        scheme, userinfo = match["scheme"], match["userinfo"]
        name = scheme[:-3].lower()
        if name in _KEY_IN_USER:
            return f"{scheme}***@"
        if ":" in userinfo:
            return f"{scheme}{userinfo.split(':', 1)[0]}:***@"
        if name == "ses" and userinfo:
            return f"{scheme}***@"
        return match.group(0)

    return _USERINFO.sub(repl, url)


# -- option converters


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(f"{value!r} must be greater than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{value!r} must be 0 or more")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"{value!r} must be greater than 0")
    return number


def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _security(value: str) -> str:
    if value not in ("starttls", "ssl", "none"):
        raise ValueError(f"{value!r} is not one of starttls, ssl, none")
    return value


_SMTP_OPTIONS: dict[str, Callable[[str], Any]] = {
    "security": _security,
    "timeout": _positive_float,
    "local_hostname": _text,
    "ipv4_only": _bool,
    "max_messages_per_connection": _positive_int,
    "allow_insecure_auth": _bool,
}
_SES_OPTIONS: dict[str, Callable[[str], Any]] = {
    "region": _text,
    "configuration_set": _text,
    "tags_from_message": _bool,
    "endpoint_url": _text,
    "timeout": _positive_float,
}
_MSG91_OPTIONS: dict[str, Callable[[str], Any]] = {
    "sender": _text,
    "template_id": _text,
    "base_url": _text,
    "timeout": _positive_float,
}
_FAST2SMS_OPTIONS: dict[str, Callable[[str], Any]] = {
    "route": _text,
    "sender_id": _text,
    "base_url": _text,
    "timeout": _positive_float,
}
_COMPOSER_OPTIONS: dict[str, Callable[[str], Any]] = {
    "cooldown": _non_negative_float,
    "resend_uncertain": _bool,
    "retry_attempts": _positive_int,
    "retry_initial": _non_negative_float,
    "retry_multiplier": _positive_float,
    "retry_maximum": _non_negative_float,
    "retry_jitter": _non_negative_float,
    "deadline": _positive_float,
}


def _options(query: str, allowed: Mapping[str, Callable[[str], Any]], shown: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError(f"{shown}: malformed query string") from None
    for key, value in pairs:
        if key not in allowed:
            raise ConfigurationError(
                f"{shown}: unknown option {key!r} (known: {', '.join(sorted(allowed))})"
            )
        if key in out:
            raise ConfigurationError(f"{shown}: option {key!r} given twice")
        try:
            out[key] = allowed[key](value)
        except ValueError as exc:
            raise ConfigurationError(f"{shown}: option {key}: {exc}") from None
    return out


# -- composers


def _split_composer(url: str) -> tuple[str, list[str], str] | None:
    """``failover(a b)?q`` -> ("failover", ["a", "b"], "q"); None if not a composer."""
    match = re.match(r"\s*(failover|roundrobin)\s*\(", url)
    if match is None:
        return None
    depth, i = 1, match.end()
    parts: list[str] = []
    current: list[str] = []
    while i < len(url):
        ch = url[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                break
        if ch.isspace() and depth == 1:
            if current:
                parts.append("".join(current))
                current = []
        else:
            current.append(ch)
        i += 1
    else:
        raise ConfigurationError(f"{mask_url(url)}: unbalanced parentheses")
    if current:
        parts.append("".join(current))
    rest = url[i + 1 :].strip()
    if rest and not rest.startswith("?"):
        raise ConfigurationError(
            f"{mask_url(url)}: unexpected text after ')': {mask_url(rest)[:30]!r}"
        )
    return match.group(1), parts, rest[1:]


def _composer(kind: str, parts: list[str], query: str, shown: str) -> BaseTransport:
    from notifykit.retry import Retry
    from notifykit.transports.failover import FailoverTransport, RoundRobinTransport

    if not parts:
        raise ConfigurationError(f"{shown}: {kind}() needs at least one transport URL")
    opts = _options(query, _COMPOSER_OPTIONS, shown)
    retry_fields = {
        name[len("retry_") :]: opts.pop(name) for name in list(opts) if name.startswith("retry_")
    }
    if "deadline" in opts:
        retry_fields["deadline"] = opts.pop("deadline")
    transports = [from_dsn(part) for part in parts]
    cls = FailoverTransport if kind == "failover" else RoundRobinTransport
    return cls(transports, retry=Retry(**retry_fields), **opts)


# -- the entry point


def from_dsn(url: str) -> BaseTransport:
    """Build the transport that ``url`` describes (see the module docstring)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("a transport URL must be a non-empty string")
    url = url.strip()
    composer = _split_composer(url)
    if composer is not None:
        kind, parts, query = composer
        return _composer(kind, parts, query, mask_url(url))
    shown = mask_url(url)
    if "://" not in url:
        raise ConfigurationError(f"{shown}: not a URL (expected scheme://...)")
    try:
        parts_ = urlsplit(url)
        port = parts_.port
    except ValueError as exc:
        reason = "bad port" if "port" in str(exc).lower() else "malformed URL"
        raise ConfigurationError(f"{shown}: {reason}") from None
    scheme = parts_.scheme.lower()
    user = unquote(parts_.username) if parts_.username else None
    password = unquote(parts_.password) if parts_.password is not None else None
    host = parts_.hostname or ""
    if parts_.fragment:
        raise ConfigurationError(f"{shown}: a transport URL has no #fragment")
    builder = _BUILDERS.get(scheme)
    if builder is None:
        raise ConfigurationError(
            f"{shown}: unknown scheme {scheme!r} (known: {', '.join(sorted(_BUILDERS))}, "
            "failover(...), roundrobin(...))"
        )
    return builder(
        _Parsed(
            scheme=scheme,
            user=user,
            password=password,
            host=host,
            port=port,
            path=unquote(parts_.path),
            query=parts_.query,
            shown=shown,
        )
    )


class _Parsed:
    def __init__(
        self,
        *,
        scheme: str,
        user: str | None,
        password: str | None,
        host: str,
        port: int | None,
        path: str,
        query: str,
        shown: str,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.path = path
        self.query = query
        self.shown = shown

    def no_path(self) -> None:
        if self.path not in ("", "/"):
            raise ConfigurationError(f"{self.shown}: unexpected path {self.path!r}")


def _smtp(p: _Parsed) -> BaseTransport:
    from notifykit.transports.smtp import SMTPTransport

    p.no_path()
    if not p.host:
        raise ConfigurationError(f"{p.shown}: an SMTP URL needs a host")
    opts = _options(p.query, _SMTP_OPTIONS, p.shown)
    if p.scheme == "smtps" and opts.setdefault("security", "ssl") != "ssl":
        raise ConfigurationError(f"{p.shown}: smtps:// always uses security=ssl")
    if p.password is not None and not p.user:
        raise ConfigurationError(f"{p.shown}: a password needs a user name")
    return SMTPTransport(
        p.host,
        port=p.port,  # None: SMTPTransport's default for the security (587/465/25)
        username=p.user,
        password=p.password,
        **opts,
    )


def _ses(p: _Parsed) -> BaseTransport:
    from notifykit.transports.ses import SESTransport

    p.no_path()
    opts = _options(p.query, _SES_OPTIONS, p.shown)
    if p.host not in ("", "default"):
        opts.setdefault("region", p.host)
    if (p.user is None) != (p.password is None):
        raise ConfigurationError(f"{p.shown}: give both KEY_ID:SECRET or neither")
    return SESTransport(
        access_key_id=p.user,
        secret_access_key=p.password,
        **opts,
    )


def _key(p: _Parsed, what: str) -> str:
    key = p.user if p.password is None else f"{p.user}:{p.password}"
    if not key:
        raise ConfigurationError(
            f"{p.shown}: the {what} goes in the user part: {p.scheme}://KEY@default"
        )
    if p.host not in ("", "default"):
        raise ConfigurationError(
            f"{p.shown}: the host part must be 'default' (use base_url= to point elsewhere)"
        )
    p.no_path()
    return key


def _msg91(p: _Parsed) -> BaseTransport:
    from notifykit.transports.msg91 import MSG91Transport

    authkey = _key(p, "MSG91 authkey")
    return MSG91Transport(authkey, **_options(p.query, _MSG91_OPTIONS, p.shown))


def _fast2sms(p: _Parsed) -> BaseTransport:
    from notifykit.transports.fast2sms import Fast2SMSTransport

    api_key = _key(p, "Fast2SMS API key")
    return Fast2SMSTransport(api_key, **_options(p.query, _FAST2SMS_OPTIONS, p.shown))


def _console(p: _Parsed) -> BaseTransport:
    from notifykit.transports.console import ConsoleTransport

    _options(p.query, {}, p.shown)
    if p.host or p.path not in ("", "/"):
        raise ConfigurationError(f"{p.shown}: console:// takes no host or path")
    return ConsoleTransport()


def _memory(p: _Parsed) -> BaseTransport:
    from notifykit.transports.memory import MemoryTransport

    _options(p.query, {}, p.shown)
    return MemoryTransport(name=f"memory:{p.host}" if p.host else "memory")


def _file(p: _Parsed) -> BaseTransport:
    from notifykit.transports.file import FileTransport

    _options(p.query, {}, p.shown)
    if p.host not in ("", "localhost"):
        raise ConfigurationError(f"{p.shown}: file:// URLs name a local directory: file:///path")
    if not p.path:
        raise ConfigurationError(f"{p.shown}: file:// needs a directory: file:///var/spool/mail")
    return FileTransport(p.path)


_BUILDERS: dict[str, Callable[[_Parsed], BaseTransport]] = {
    "smtp": _smtp,
    "smtps": _smtp,
    "ses": _ses,
    "msg91": _msg91,
    "fast2sms": _fast2sms,
    "console": _console,
    "memory": _memory,
    "file": _file,
}


# -- sinks and the environment


def _sqlite_or_jsonl_path(url: str, scheme: str) -> str:
    # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy writes them.
    rest = url[len(scheme) + 3 :]
    if not rest.startswith("/") or len(rest) < 2:
        raise ConfigurationError(
            f"{url}: write {scheme}:///relative/path or {scheme}:////absolute/path"
        )
    return rest[1:]


def sink_from_url(url: str) -> LogSink:
    """Build a sink from ``sqlite:///path``, ``jsonl:///path``, ``logging://[logger]`` or ``memory://``."""
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from notifykit.sinks.sqlite import SQLiteSink

        return SQLiteSink(_sqlite_or_jsonl_path(url, scheme))
    if scheme == "jsonl":
        from notifykit.sinks.jsonl import JSONLSink

        return JSONLSink(_sqlite_or_jsonl_path(url, scheme))
    if scheme == "logging":
        from notifykit.sinks.stdlib import LoggingSink

        name = url[len("logging://") :].strip("/")
        return LoggingSink(name) if name else LoggingSink()
    if scheme == "memory":
        from notifykit.sinks.memory import MemorySink

        return MemorySink()
    raise ConfigurationError(
        f"{mask_url(url)}: unknown log URL (use sqlite:///path, jsonl:///path, logging:// or memory://)"
    )


def _load_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """The variables of the dotenv file ``path``; ``{}`` when the default ``.env`` is absent.

    Never silent about a file it cannot use: a file that exists while
    python-dotenv is missing is a :class:`~notifykit.errors.MissingDependency`
    (``pip install "notifykit-py[cli]"``); a file that cannot be read, or a
    file named explicitly (anything but ``.env``) that does not exist, is a
    :class:`~notifykit.errors.ConfigurationError`.
    """
    file = Path(path)
    if not file.exists():
        if os.fspath(path) == ".env":
            return {}
        raise ConfigurationError(f"the dotenv file {os.fspath(path)!r} does not exist")
    try:
        from dotenv import dotenv_values
    except ImportError:
        from notifykit.errors import MissingDependency

        raise MissingDependency("python-dotenv", "cli", f"reading {os.fspath(path)}") from None
    try:
        with open(file, encoding="utf-8") as stream:
            values = dotenv_values(stream=stream)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(
            f"cannot read the dotenv file {os.fspath(path)}: {reason}"
        ) from None
    return {k: v for k, v in values.items() if v is not None}


def notifier_from_env(
    prefix: str = "NOTIFYKIT_",
    environ: Mapping[str, str] | None = None,
    *,
    dotenv: str | os.PathLike[str] | None = ".env",
) -> Notifier:
    """Build a :class:`~notifykit.Notifier` from environment variables.

    Reads ``{prefix}EMAIL_URL``, ``SMS_URL``, ``SENDER``, ``SMS_SENDER``,
    ``DEFAULT_REGION``, ``TEMPLATES`` (a directory) and ``LOG`` (one or more
    sink URLs separated by spaces). ``environ`` defaults to :data:`os.environ`;
    then the values of the ``dotenv`` file (``.env`` by default, when it exists;
    ``None`` for none) fill in what the environment does not set. Reading it
    needs python-dotenv (``pip install "notifykit-py[cli]"``): a file that exists
    without it is a :class:`~notifykit.errors.MissingDependency`, never ignored.
    """
    from notifykit.notifier import Notifier

    if environ is None:
        env: dict[str, str] = {}
        if dotenv is not None:
            env.update(_load_dotenv(dotenv))
        env.update(os.environ)
    else:
        env = dict(environ)

    def get(name: str) -> str | None:
        value = env.get(prefix + name, "").strip()
        return value or None

    email_url, sms_url = get("EMAIL_URL"), get("SMS_URL")
    if email_url is None and sms_url is None:
        raise ConfigurationError(
            f"set {prefix}EMAIL_URL and/or {prefix}SMS_URL (e.g. {prefix}EMAIL_URL=console://)"
        )
    templates = None
    template_dir = get("TEMPLATES")
    if template_dir is not None:
        from notifykit.templates import TemplateRenderer

        if not Path(template_dir).is_dir():
            raise ConfigurationError(f"{prefix}TEMPLATES={template_dir!r} is not a directory")
        templates = TemplateRenderer.from_directory(template_dir)
    sinks = [sink_from_url(u) for u in (get("LOG") or "").split()]
    return Notifier(
        email=from_dsn(email_url) if email_url else None,
        sms=from_dsn(sms_url) if sms_url else None,
        templates=templates,
        sinks=sinks,
        sender=get("SENDER"),
        sms_sender=get("SMS_SENDER"),
        default_region=get("DEFAULT_REGION"),
    )


#: ``notifykit.from_env()``: the same as :meth:`Notifier.from_env() <notifykit.Notifier.from_env>`.
from_env = notifier_from_env
