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

Credentials may be percent-encoded (``p%40ss`` for ``p@ss``); written raw, the
user part runs to the last ``@`` of the URL, so a secret holding ``/``, ``#``,
``?`` or ``@`` is read whole. Every malformed URL, unknown scheme, bad port,
unknown option or non-finite number is a
:class:`~notifykit.errors.ConfigurationError` that says what is wrong and never
echoes a secret: messages show the URL through :func:`mask_url`. Composers nest
at most :data:`MAX_NESTING` deep.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from notifykit.errors import ConfigurationError

if TYPE_CHECKING:
    from notifykit.notifier import Notifier
    from notifykit.sinks.base import LogSink
    from notifykit.transports.base import BaseTransport

__all__ = ["from_dsn", "from_env", "mask_url", "notifier_from_env", "sink_from_url"]

# Schemes whose user part is itself a secret (an API key), and whose host part
# is one too when the key was written there by mistake (``msg91://KEY``).
_KEY_IN_USER = frozenset({"msg91", "fast2sms"})
# Schemes whose user name (without a password) is not a secret.
_PLAIN_USER = frozenset({"smtp", "smtps"})
# Schemes with no credentials: their path may hold an ``@`` (file:///a@b).
_NO_CREDENTIALS = frozenset({"file", "console", "memory", "sqlite", "jsonl", "logging"})
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_SPACE = re.compile(r"\s")
# A query pair; its value is masked when the name looks like a credential's.
_QUERY_PAIR = re.compile(r"(?<=[?&])([A-Za-z0-9_.-]{1,64})=([^&\s]*)")
_SECRET_NAME = re.compile(r"key|secret|pass|pwd|token|auth|credential|signature", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_OPTION_NAME = re.compile(r"[a-z][a-z_]{0,39}")
#: Composers nested deeper than this are refused (``failover(failover(...))``).
MAX_NESTING = 16


def _mask_query(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match[1]
        return f"{name}=***" if _SECRET_NAME.search(name) and match[2] else match[0]

    return _QUERY_PAIR.sub(repl, text)


def _mask_one_url(scheme: str, rest: str) -> str:
    """``rest`` (what follows ``scheme://``, up to the next space) with its secrets masked."""
    name = scheme.lower()
    if name in _NO_CREDENTIALS:
        return rest
    at = rest.rfind("@")  # the user part runs to the LAST @: a secret may hold / ? # @
    if at >= 0:
        userinfo, after = rest[:at], rest[at + 1 :]
        user, colon, _ = userinfo.partition(":")
        if name in _KEY_IN_USER:
            masked = "***"
        elif colon:
            masked = f"{user}:***"
        elif name in _PLAIN_USER or not userinfo:
            masked = userinfo
        else:  # ses://KEY_ID@ (a half-written credential), unknown schemes: may be a key
            masked = "***"
        return f"{masked}@{_mask_query(after)}"
    if name in _KEY_IN_USER:
        # msg91://KEY (no @): the host is the key, unless it is "default".
        host, question, query = rest.partition("?")
        if host.rstrip("/").lower() not in ("", "default"):
            host = "***"
        return host + question + _mask_query(question + query)[len(question) :]
    return _mask_query(rest)


def mask_url(url: str) -> str:
    """``url`` with its secrets replaced by ``***`` (passwords, keys in the user part).

    Works on any text: every ``scheme://...`` in it (up to the next space) is
    masked, so a composer URL or an error message can be passed whole. The
    user part runs to the last ``@`` of the URL, so a secret holding ``/``,
    ``?``, ``#`` or ``@`` is masked whole; the values of query options named
    like credentials (``api_key=``, ``authkey=``, ``secret=``, ``token=``...)
    are masked too. Runs in linear time.
    """
    out: list[str] = []
    pos = 0
    i = url.find("://")
    while i != -1:
        start = i
        while start > pos and url[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < i and not url[start].isalpha():
            start += 1
        if start == i:  # no scheme before this "://"
            i = url.find("://", i + 3)
            continue
        space = _SPACE.search(url, i + 3)
        end = space.start() if space else len(url)
        out.append(url[pos:i])
        out.append("://")
        out.append(_mask_one_url(url[start:i], url[i + 3 : end]))
        pos = end
        i = url.find("://", end)
    out.append(url[pos:])
    return "".join(out)


# -- option converters


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _finite(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value[:20]!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value[:20]!r} is not a finite number")
    return number


def _positive_float(value: str) -> float:
    number = _finite(value)
    if number <= 0:
        raise ValueError(f"{value!r} must be greater than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = _finite(value)
    if number < 0:
        raise ValueError(f"{value!r} must be 0 or more")
    return number


def _positive_int(value: str) -> int:
    if not value.strip().isdigit() or len(value) > 18:
        raise ValueError(f"{value[:20]!r} is not a whole number of reasonable size")
    number = int(value)
    if number <= 0:
        raise ValueError(f"{value!r} must be greater than 0")
    return number


def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _check_http_url(value: str, what: str = "the URL") -> str:
    """``value`` if it is an http(s) URL with a valid host; else a ConfigurationError.

    The message never repeats the URL: it may hold credentials.
    """
    problem = _http_url_problem(value)
    if problem:
        raise ConfigurationError(f"{what} is not a usable http:// or https:// URL: {problem}")
    return value


def _http_url_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "it is empty or not a string"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "malformed URL or bad port"
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme must be http or https"
    host = parts.hostname or ""
    if not host:
        return "it has no host"
    if port == 0:
        return "bad port"
    if ":" not in host:  # not an IPv6 literal: each DNS label 1-63 characters
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return "the host name is not a valid DNS name"
        labels = ascii_host.rstrip(".").split(".")
        if len(ascii_host) > 253 or not all(0 < len(label) <= 63 for label in labels):
            return "the host name is not a valid DNS name"
    return None


def _http_url(value: str) -> str:
    problem = _http_url_problem(value)
    if problem:
        raise ValueError(f"not a usable http:// or https:// URL ({problem})")
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
    "connect_timeout": _positive_float,
    "max_connections": _positive_int,
}
_SES_OPTIONS: dict[str, Callable[[str], Any]] = {
    "region": _text,
    "configuration_set": _text,
    "tags_from_message": _bool,
    "endpoint_url": _http_url,
    "timeout": _positive_float,
    "connect_timeout": _positive_float,
}
_MSG91_OPTIONS: dict[str, Callable[[str], Any]] = {
    "sender": _text,
    "template_id": _text,
    "base_url": _http_url,
    "timeout": _positive_float,
}
_FAST2SMS_OPTIONS: dict[str, Callable[[str], Any]] = {
    "route": _text,
    "sender_id": _text,
    "base_url": _http_url,
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
    "probe_timeout": _positive_float,
}


def _options(query: str, allowed: Mapping[str, Callable[[str], Any]], shown: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError(f"{shown}: malformed query string") from None
    for key, value in pairs:
        if key not in allowed:
            # A pasted key can land where a name goes: show only names that look like one.
            named = f"{key!r}" if _OPTION_NAME.fullmatch(key) else "(name not shown)"
            raise ConfigurationError(
                f"{shown}: unknown option {named} (known: {', '.join(sorted(allowed)) or 'none'})"
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


def _composer(kind: str, parts: list[str], query: str, shown: str, depth: int) -> BaseTransport:
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
    transports = [_from_dsn(part, depth + 1) for part in parts]
    cls = FailoverTransport if kind == "failover" else RoundRobinTransport
    return cls(transports, retry=Retry(**retry_fields), **opts)


# -- the entry point


def from_dsn(url: str) -> BaseTransport:
    """Build the transport that ``url`` describes (see the module docstring)."""
    return _from_dsn(url, 1)


def _from_dsn(url: str, depth: int) -> BaseTransport:
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("a transport URL must be a non-empty string")
    url = url.strip()
    from notifykit.ratelimit import split_rate  # ?rate=14/s works on every transport

    url, rate = split_rate(url)
    if rate is not None:
        limited = _from_dsn(url, depth)
        limited.rate_limit = rate.for_transport(limited)  # rate=auto: ask the provider (SES)
        return limited
    composer = _split_composer(url)
    if composer is not None:
        if depth > MAX_NESTING:
            raise ConfigurationError(f"composers are nested more than {MAX_NESTING} deep")
        kind, parts, query = composer
        return _composer(kind, parts, query, mask_url(url), depth)
    parsed = _parse(url)
    builder = _BUILDERS.get(parsed.scheme)
    if builder is None:
        raise ConfigurationError(
            f"{parsed.shown}: unknown scheme {parsed.scheme!r} (known: "
            f"{', '.join(sorted(_BUILDERS))}, failover(...), roundrobin(...))"
        )
    return builder(parsed)


def _parse(url: str) -> _Parsed:
    """Split ``scheme://[user[:password]@]host[:port][/path][?query]``.

    Not :func:`urllib.parse.urlsplit`: a secret may hold ``/``, ``?``, ``#`` or
    a raw ``@`` (AWS secret keys often hold ``/``), which urlsplit reads as the
    start of the path, query or fragment, or as the end of the user part. Here
    the user part runs to the LAST ``@`` of the URL (for schemes that have
    credentials), and the host, port, path and query are read after it.
    """
    shown = mask_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not _SCHEME.fullmatch(scheme):
        raise ConfigurationError(f"{shown}: not a URL (expected scheme://...)")
    scheme = scheme.lower()
    if any(not c.isprintable() or c.isspace() for c in url):
        raise ConfigurationError(f"{shown}: a URL must not hold spaces or control characters")
    user = password = None
    if scheme not in _NO_CREDENTIALS:
        at = rest.rfind("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            raw_user, colon, raw_password = userinfo.partition(":")
            user = unquote(raw_user)
            password = unquote(raw_password) if colon else None
    authority_end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            authority_end = min(authority_end, found)
    hostport, tail = rest[:authority_end], rest[authority_end:]
    if scheme in _NO_CREDENTIALS and "@" in hostport:
        raise ConfigurationError(f"{shown}: {scheme}:// URLs take no user name or password")
    path_query, hash_, _ = tail.partition("#")
    if hash_:
        raise ConfigurationError(f"{shown}: a transport URL has no #fragment")
    path, _, query = path_query.partition("?")
    host, port = _host_port(hostport, shown)
    return _Parsed(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        path=unquote(path),
        query=query,
        shown=shown,
    )


def _host_port(hostport: str, shown: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            raise ConfigurationError(f"{shown}: malformed URL (an IPv6 address lacks its ']')")
        host, after = hostport[1:close], hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise ConfigurationError(f"{shown}: malformed URL (text after the IPv6 address)")
        port_text = after[1:] if after else ""
    else:
        host, _, port_text = hostport.partition(":")
        if ":" in port_text:
            raise ConfigurationError(f"{shown}: malformed URL (write an IPv6 address in [ ])")
    if any(c in host for c in "[]@%\\"):
        raise ConfigurationError(f"{shown}: malformed host name")
    if not port_text:
        return host.lower(), None
    if (
        not (port_text.isascii() and port_text.isdigit())
        or len(port_text) > 5
        or not 0 < int(port_text) < 65536
    ):
        raise ConfigurationError(f"{shown}: bad port")
    return host.lower(), int(port_text)


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
    """Build a sink from ``sqlite:///path``, ``jsonl:///path``, ``logging://[logger]`` or ``memory://``.

    ``sqlite:///path?durability=sync`` (or ``fsync``, ``batched``: the default)
    picks :class:`~notifykit.sinks.sqlite.SQLiteSink`'s ``durability``.
    """
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from notifykit.sinks.sqlite import SQLiteSink

        # sqlite:///path?durability=sync|fsync|batched (the one option)
        base, _, query = url.partition("?")
        durability = "batched"
        for key, values in parse_qs(query, keep_blank_values=True).items():
            if key != "durability":
                raise ConfigurationError(
                    f"{mask_url(url)}: unknown option {key!r}"
                    " (a sqlite:// log URL takes durability=)"
                )
            durability = values[-1]
            if durability not in ("batched", "sync", "fsync"):
                raise ConfigurationError(
                    f"{mask_url(url)}: durability must be batched, sync or fsync, "
                    f"not {durability!r}"
                )
        return SQLiteSink(
            _sqlite_or_jsonl_path(base, scheme),
            durability=cast("Literal['batched', 'sync', 'fsync']", durability),
        )
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
