"""The suppression list: recipients notifykit will not send to any more.

Sending again to an address that hard-bounced, or to someone who marked a
message as spam, is how a sender's reputation (and an Amazon SES account) is
lost. The webhook receivers (:mod:`notifykit.webhooks`) add such recipients
here; :meth:`notifykit.Notifier.send` refuses a message to any of them with
:class:`~notifykit.errors.Suppressed`, unless it is sent with
``ignore_suppression=True``.

A store is any object with the methods of :class:`SuppressionStore`;
:class:`SQLiteSuppressionList` (one SQLite file, safe to share between
processes) is the default and the Django integration has a model-backed one.

Recipients are compared in a normal form (:func:`normalize_recipient`): an
e-mail address in lower case without its display name, a phone number as its
digits only (``+91 98765-43210`` → ``919876543210``).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

import attrs

from notifykit.errors import ConfigurationError
from notifykit.sinks.base import DeliveryEvent

__all__ = [
    "SQLiteSuppressionList",
    "Suppression",
    "SuppressionStore",
    "apply_report",
    "normalize_recipient",
    "read_import",
]

logger = logging.getLogger("notifykit")


def normalize_recipient(recipient: str) -> str:
    """The form recipients are stored and compared in (see the module docstring)."""
    text = recipient.strip()
    if "@" in text:
        if text.endswith(">") and "<" in text:
            text = text.rpartition("<")[2][:-1]
        return text.strip().lower()
    return "".join(ch for ch in text if ch.isdigit())


@attrs.frozen
class Suppression:
    """One suppressed recipient.

    Attributes:
        recipient: the normalised address or number.
        reason: why (the provider's raw reason, or what the operator typed).
        source: ``"bounce"``, ``"complaint"``, ``"soft_bounces"``,
            ``"manual"`` or ``"import"``.
        created_at: when it was added (UTC).
    """

    recipient: str
    reason: str
    source: str
    created_at: datetime


@runtime_checkable
class SuppressionStore(Protocol):
    """What a suppression store must do. All recipients arrive un-normalised."""

    def check(self, recipients: Iterable[str]) -> dict[str, str]:
        """The suppressed ones among ``recipients``, each (as given) with its reason."""
        ...

    def add(self, recipient: str, reason: str, *, source: str = "manual") -> bool:
        """Suppress ``recipient``; False if it already was (the first reason stays)."""
        ...

    def remove(self, recipient: str) -> bool:
        """Lift the suppression; False if there was none."""
        ...

    def entries(self) -> list[Suppression]:
        """Every suppressed recipient, oldest first."""
        ...

    def note_soft_bounce(self, recipient: str, at: datetime, window: timedelta) -> int:
        """Record one soft bounce at ``at``; return how many fell within ``window`` before it."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    recipient TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS soft_bounces (
    recipient TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS soft_bounces_recipient ON soft_bounces (recipient, at);
"""


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


# Connections inherited through fork: kept, never used nor closed (SQLite forbids both).
_abandoned: list[sqlite3.Connection] = []


class _SQLiteStore:
    """One SQLite connection, guarded by a lock, opened again in a child after fork."""

    def __init__(self, path: str, timeout: float, schema: str, what: str) -> None:
        self.path = path
        self._timeout = timeout
        self._schema = schema
        self._what = what
        self._lock = threading.Lock()
        self._memory = path in ("", ":memory:")
        self._conn = self._open()
        self._pid = os.getpid()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # as SQLiteSink: crash-safe
            for statement in self._schema.split(";"):
                if statement.strip():
                    conn.execute(statement)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot use {self.path!r} as {self._what}: {exc}") from exc
        return conn

    def _c(self) -> sqlite3.Connection:
        """The connection (call with ``_lock`` held); a file is reopened after fork."""
        if self._pid != os.getpid() and not self._memory:
            _abandoned.append(self._conn)
            self._conn = self._open()
            self._pid = os.getpid()
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


class SQLiteSuppressionList(_SQLiteStore):
    """A :class:`SuppressionStore` in one SQLite file (tables ``suppressions``, ``soft_bounces``).

    Args:
        path: the database file (created if needed), or ``":memory:"``. It may
            be the delivery log's file: the tables do not collide.
        timeout: seconds to wait for another process's write lock.

    Raises:
        ConfigurationError: the file cannot be opened or is not SQLite.
    """

    def __init__(self, path: str = ":memory:", *, timeout: float = 5.0) -> None:
        super().__init__(str(path), timeout, _SCHEMA, "a suppression list")

    def check(self, recipients: Iterable[str]) -> dict[str, str]:
        """The suppressed ones among ``recipients``, each (as given) with its reason."""
        wanted = {normalize_recipient(r): r for r in recipients}
        wanted.pop("", None)
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        with self._lock:
            rows = (
                self._c()
                .execute(
                    f"SELECT recipient, reason FROM suppressions WHERE recipient IN ({marks})",
                    tuple(wanted),
                )
                .fetchall()
            )
        return {wanted[key]: reason for key, reason in rows}

    def add(self, recipient: str, reason: str, *, source: str = "manual") -> bool:
        """Suppress ``recipient``; False if it already was."""
        key = normalize_recipient(recipient)
        local, at, domain = key.rpartition("@")
        if not (local and domain) if at else not 8 <= len(key) <= 15:
            raise ConfigurationError(
                f"{recipient[:100]!r} is not an e-mail address or a phone number "
                "(8 to 15 digits with the country code)"
            )
        with self._lock:
            cursor = self._c().execute(
                "INSERT OR IGNORE INTO suppressions (recipient, reason, source, created_at) "
                "VALUES (?, ?, ?, ?)",
                (key, reason, source, _iso(datetime.now(timezone.utc))),
            )
        return cursor.rowcount == 1

    def remove(self, recipient: str) -> bool:
        """Lift the suppression (and forget its soft bounces); False if there was none."""
        key = normalize_recipient(recipient)
        with self._lock:
            self._c().execute("BEGIN IMMEDIATE")
            try:
                count = (
                    self._c()
                    .execute("DELETE FROM suppressions WHERE recipient = ?", (key,))
                    .rowcount
                )
                self._c().execute("DELETE FROM soft_bounces WHERE recipient = ?", (key,))
                self._c().execute("COMMIT")
            except BaseException:
                self._c().execute("ROLLBACK")
                raise
        return count == 1

    def entries(self) -> list[Suppression]:
        """Every suppressed recipient, oldest first."""
        with self._lock:
            rows = (
                self._c()
                .execute(
                    "SELECT recipient, reason, source, created_at FROM suppressions "
                    "ORDER BY created_at, recipient"
                )
                .fetchall()
            )
        return [Suppression(r, why, src, datetime.fromisoformat(at)) for r, why, src, at in rows]

    def note_soft_bounce(self, recipient: str, at: datetime, window: timedelta) -> int:
        """Record one soft bounce; how many ``recipient`` had within ``window`` up to ``at``."""
        key = normalize_recipient(recipient)
        when = _iso(at)
        since = _iso(at - window)
        with self._lock:
            self._c().execute("BEGIN IMMEDIATE")
            try:
                self._c().execute(
                    "DELETE FROM soft_bounces WHERE recipient = ? AND at < ?", (key, since)
                )
                self._c().execute(
                    "INSERT INTO soft_bounces (recipient, at) VALUES (?, ?)", (key, when)
                )
                count = (
                    self._c()
                    .execute(
                        "SELECT COUNT(*) FROM soft_bounces "
                        "WHERE recipient = ? AND at >= ? AND at <= ?",
                        (key, since, when),
                    )
                    .fetchone()[0]
                )
                self._c().execute("COMMIT")
            except BaseException:
                self._c().execute("ROLLBACK")
                raise
        return int(count)

    def __enter__(self) -> SQLiteSuppressionList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteSuppressionList({self.path!r})"


def apply_report(
    store: SuppressionStore,
    event: DeliveryEvent,
    *,
    soft_bounce_limit: int = 3,
    soft_bounce_window: timedelta = timedelta(days=7),
) -> list[str]:
    """Update ``store`` from one delivery report; returns the recipients it added.

    A hard bounce or a complaint suppresses the event's recipients at once; a
    soft bounce does once the recipient has ``soft_bounce_limit`` of them
    within ``soft_bounce_window``. Nothing else suppresses (an undetermined
    bounce, a provider's rejection of the message, a delay).
    """
    added: list[str] = []
    reason = event.error or event.status
    for recipient in event.recipients:
        if event.status == "complained":
            source = "complaint"
        elif event.status == "bounced" and event.error_kind == "hard":
            source = "bounce"
        elif event.status == "bounced" and event.error_kind == "soft":
            count = store.note_soft_bounce(recipient, event.at, soft_bounce_window)
            if count < soft_bounce_limit:
                continue
            source = "soft_bounces"
            reason = f"{count} soft bounces within {soft_bounce_window}; last: {reason}"
        else:
            continue
        try:
            if store.add(recipient, reason, source=source):
                added.append(recipient)
        except ConfigurationError:  # a report naming something that is not an address
            logger.warning("suppression: cannot suppress %r (not an address or number)", recipient)
    return added


def read_import(text: str) -> list[tuple[str, str]]:
    """Parse an import file: one recipient a line, or CSV ``recipient,reason``.

    Blank lines and lines starting with ``#`` are skipped; a first line
    ``recipient,...`` is taken as a header.
    """
    rows: list[tuple[str, str]] = []
    for n, fields in enumerate(csv.reader(io.StringIO(text))):
        if not fields or not fields[0].strip() or fields[0].lstrip().startswith("#"):
            continue
        if n == 0 and fields[0].strip().lower() in ("recipient", "email", "address", "phone"):
            continue
        reason = fields[1].strip() if len(fields) > 1 and fields[1].strip() else "imported"
        rows.append((fields[0].strip(), reason))
    return rows
