"""The embedded delivery log: :class:`SQLiteSink`.

Nothing to install and nothing to run: one SQLite file holds every event and
one row per message whose status follows the events (``queued`` → ``sent`` or
``failed``), and answers "how are my e-mails doing?" with :meth:`~SQLiteSink.stats`.

Schema (version 1, kept in ``PRAGMA user_version``)
---------------------------------------------------
``events``
    one row per :class:`~notifykit.sinks.DeliveryEvent`, append-only: ``id``
    (the order of arrival), ``message_id``, ``status``, ``channel``,
    ``transport``, ``recipients`` (JSON list), ``subject``, ``template``,
    ``attempt``, ``error``, ``error_kind``, ``provider_message_id``,
    ``duration``, ``at``, ``tags`` (JSON list), ``metadata`` (JSON object),
    ``maybe_delivered`` (0/1), ``rejected`` (JSON object or NULL).
``deliveries``
    one row per message, projected from its events: ``message_id`` (primary
    key), ``channel``, ``status`` (``queued``, ``sent`` or ``failed``, then
    what the provider reports: ``deferred``, ``delivered``, ``bounced``,
    ``rejected_by_provider``, ``complained``; a report only moves it forward),
    ``recipients``, ``subject``, ``template``, ``transport`` (the last one
    tried, or the one that sent it), ``provider_message_id``, ``attempts`` (the
    highest attempt number seen), ``last_error``, ``error_kind``,
    ``maybe_delivered``, ``rejected``, ``tags``, ``metadata``, ``duration``
    (of the whole send), ``created_at``, ``updated_at``, ``sent_at``.
    Version 2 adds an index on ``provider_message_id``: a provider's report
    (``delivered``, ``bounced``...) finds its message by it, and its event row
    takes that message's id.
``attempts`` (a view)
    the events that are attempts: ``attempt_failed`` and ``sent``.

Times are ISO 8601 text in UTC with microseconds
(``2024-05-01T09:30:00.000000+00:00``): readable in the ``sqlite3`` shell,
sorted correctly as text, and understood by SQLite's date functions. An event
whose ``at`` has no time zone is taken to be in UTC.

How writing stays off the sending path
--------------------------------------
``record()`` appends the event to an in-memory queue and returns (about a
microsecond). One writer thread per sink takes everything queued and writes it
in one transaction (up to ``max_batch`` events), so under load many events
share one commit; when fewer are waiting it first gives the next ones 5 ms to
arrive (a commit costs more than many rows, so at a steady pace of messages
this cuts the CPU the log costs by about 40 %; a read or ``flush()`` does not wait for it).
The database runs in WAL mode with ``synchronous=NORMAL``:
a commit does not wait for the disk, readers in other processes
(``notifykit log tail``) do not block the writer, and a committed event
survives a crash of the process (not necessarily a power cut).

The queue is bounded (``max_queue`` events). When it is full, ``record()``
blocks for up to ``block_timeout`` seconds waiting for the writer (back
pressure: sending slows down to the speed of the disk rather than memory
growing without bound or events being dropped), and only then raises a
:class:`~notifykit.errors.NotifyKitError`, which the Notifier logs and counts.

Nothing queued is lost on the way out: :meth:`~SQLiteSink.close` (called by the
Notifier's ``close()``) writes everything, and so does interpreter exit for a
sink that was never closed, and garbage collection of a sink nobody holds any
more. Only a hard kill (``SIGKILL``, ``os._exit``) loses what is still queued:
up to ``max_queue + max_batch`` events right after a burst (measured by
``benchmarks/sqlite_kill.py``). ``durability="sync"`` trades throughput for
none: each ``record()`` commits its event, in the caller's thread, before it
returns (``"fsync"`` also waits for the disk, for power cuts).
After ``fork()`` (Gunicorn, Celery prefork) the child starts with an empty
queue and its own connection and writer thread; what the parent had queued is
written by the parent (an in-memory log starts empty in the child).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal, NamedTuple

import attrs

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.sinks.base import DELIVERY_STATUSES, DeliveryEvent

__all__ = ["SCHEMA_VERSION", "DeliveryRecord", "Durability", "GroupBy", "SQLiteSink", "StatsRow"]

logger = logging.getLogger("notifykit")

#: The schema version this module writes (``PRAGMA user_version``).
SCHEMA_VERSION = 2

GroupBy = Literal["template", "transport", "channel"]
Durability = Literal["batched", "sync", "fsync"]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    transport TEXT,
    recipients TEXT NOT NULL,
    subject TEXT,
    template TEXT,
    attempt INTEGER NOT NULL,
    error TEXT,
    error_kind TEXT,
    provider_message_id TEXT,
    duration REAL,
    at TEXT NOT NULL,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    maybe_delivered INTEGER NOT NULL,
    rejected TEXT
);
CREATE INDEX IF NOT EXISTS events_message_id ON events (message_id);
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT,
    template TEXT,
    transport TEXT,
    provider_message_id TEXT,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    error_kind TEXT,
    maybe_delivered INTEGER NOT NULL,
    rejected TEXT,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    duration REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_created_at ON deliveries (created_at);
CREATE INDEX IF NOT EXISTS deliveries_updated_at ON deliveries (updated_at);
CREATE VIEW IF NOT EXISTS attempts AS
    SELECT * FROM events WHERE status IN ('attempt_failed', 'sent');
"""

# Version 2: delivery reports (notifykit.webhooks) find their message by the
# provider's id.
_SCHEMA_V2 = """
CREATE INDEX IF NOT EXISTS deliveries_provider_message_id ON deliveries (provider_message_id);
"""

# Each entry upgrades the schema from version n - 1 to n, inside one transaction.
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}

_EVENT_COLUMNS = (
    "message_id, status, channel, transport, recipients, subject, template, attempt, error, "
    "error_kind, provider_message_id, duration, at, tags, metadata, maybe_delivered, rejected"
)
_INSERT_EVENT = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 17)})"

# The projection of one event onto its message's row. Parameters:
# ?1 message_id ?2 channel ?3 row status ?4 recipients ?5 subject ?6 template
# ?7 transport ?8 provider_message_id ?9 attempt ?10 error ?11 error_kind
# ?12 maybe_delivered ?13 rejected ?14 tags ?15 metadata ?16 duration ?17 at
# ?18 sent_at ?19 the event's own status.
# The latest queued/sent/failed event sets the status (a message sent again
# after failing is queued again, then sent); attempt_failed never changes it.
_UPSERT_DELIVERY = """
INSERT INTO deliveries (message_id, channel, status, recipients, subject, template, transport,
    provider_message_id, attempts, last_error, error_kind, maybe_delivered, rejected, tags,
    metadata, duration, created_at, updated_at, sent_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18)
ON CONFLICT (message_id) DO UPDATE SET
    status = CASE WHEN ?19 = 'attempt_failed' THEN deliveries.status ELSE excluded.status END,
    subject = COALESCE(deliveries.subject, excluded.subject),
    template = COALESCE(deliveries.template, excluded.template),
    transport = COALESCE(excluded.transport, deliveries.transport),
    provider_message_id = COALESCE(excluded.provider_message_id, deliveries.provider_message_id),
    attempts = MAX(deliveries.attempts, excluded.attempts),
    last_error = COALESCE(excluded.last_error, deliveries.last_error),
    error_kind = COALESCE(excluded.error_kind, deliveries.error_kind),
    maybe_delivered = MAX(deliveries.maybe_delivered, excluded.maybe_delivered),
    rejected = COALESCE(excluded.rejected, deliveries.rejected),
    duration = COALESCE(excluded.duration, deliveries.duration),
    created_at = MIN(deliveries.created_at, excluded.created_at),
    updated_at = MAX(deliveries.updated_at, excluded.updated_at),
    sent_at = COALESCE(excluded.sent_at, deliveries.sent_at)
"""

# A status a provider reports later (delivered, bounced, ...), see
# notifykit.sinks.base. Its event row takes the notifykit message id of the
# message sent with that provider id, when the log has it (the webhook
# receiver only knows the provider's id); otherwise it keeps its own.
_INSERT_REPORT_EVENT = f"""
INSERT INTO events ({_EVENT_COLUMNS}) VALUES (
    COALESCE((SELECT message_id FROM deliveries WHERE provider_message_id = ?11
              ORDER BY created_at DESC LIMIT 1), ?1),
    ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
"""

# How far along a message is: a report only ever moves its row forward, so a
# late or replayed "delivered" never hides a bounce or a complaint (SNS and
# the SMS providers do not keep order). opened/clicked never change the status.
# The Django model (notifykit.contrib.django) follows the same order.
STATUS_PROGRESS: dict[str, int] = {
    "queued": 0,
    "sent": 1,
    "deferred": 2,
    "delivered": 3,
    "bounced": 4,
    "rejected_by_provider": 4,
    "complained": 5,
}
_PROGRESS = (
    "CASE {0} "
    + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_PROGRESS.items())
    + " ELSE {1} END"
)
# A row in another state (failed) is never moved; a report that is not a
# status (opened, clicked) never moves one. An e-mail can bounce after it was
# delivered (an asynchronous DSN); an SMS delivered is final (a late "failed"
# report must not undo it).
_MOVES = (
    f"({_PROGRESS.format('?2', -1)}) > ({_PROGRESS.format('status', 9)})"
    " AND NOT (channel = 'sms' AND status = 'delivered')"
)

# Parameters: ?1 provider_message_id ?2 status ?3 reason ?4 bounce kind ?5 at.
_UPDATE_REPORTED = f"""
UPDATE deliveries SET
    last_error = CASE WHEN {_MOVES} THEN COALESCE(?3, last_error) ELSE last_error END,
    error_kind = CASE WHEN {_MOVES} THEN ?4 ELSE error_kind END,
    status = CASE WHEN {_MOVES} THEN ?2 ELSE status END,
    updated_at = MAX(updated_at, ?5)
WHERE provider_message_id = ?1
"""

# The statuses counted as "went out" in the stats: sent and everything after.
_OUT = "('sent', 'delivered', 'bounced', 'complained', 'deferred', 'rejected_by_provider')"

# What happened after "sent", per template, channel or transport (messages).
_STATS_REPORTED = f"""
SELECT {{column}}, SUM(status IN ('delivered', 'complained')), SUM(status = 'bounced'),
    SUM(status = 'complained'), SUM(status IN {_OUT}), SUM(status IN {_OUT} AND status != 'sent')
FROM deliveries
WHERE ?1 IS NULL OR created_at >= ?1
GROUP BY {{column}}
"""

# How long the writer thread waits for more events before it commits a batch
# smaller than max_batch: at a message every few hundred microseconds, one
# commit per event cost more CPU than the send itself (benchmarks/sinks.py).
_LINGER = 0.005

# Tries at writing one batch before its events are counted as dropped.
_WRITE_TRIES = 3

_ROW_STATUS = {"queued": "queued", "attempt_failed": "queued", "sent": "sent", "failed": "failed"}

_DELIVERY_COLUMNS = (
    "message_id, channel, status, recipients, subject, template, transport, "
    "provider_message_id, attempts, last_error, error_kind, maybe_delivered, rejected, tags, "
    "metadata, duration, created_at, updated_at, sent_at"
)

# Message outcomes, by a column of the deliveries row.
_STATS_BY_MESSAGE = f"""
SELECT {{column}}, SUM(status IN {_OUT}), SUM(status = 'failed'), SUM(status = 'queued'), COUNT(*)
FROM deliveries
WHERE ?1 IS NULL OR created_at >= ?1
GROUP BY {{column}}
ORDER BY COUNT(*) DESC, {{column}}
"""

# Attempt outcomes, by transport. A final `failed` event that names a transport
# counts as that transport's failure only when no attempt_failed event already
# stands for the same attempt, so the count is right whether or not the
# Notifier logs the last failed attempt separately.
_STATS_BY_TRANSPORT = """
SELECT transport, SUM(status = 'sent'), SUM(status != 'sent'), 0, COUNT(*)
FROM events AS e
WHERE (?1 IS NULL OR at >= ?1) AND transport IS NOT NULL AND (
    status IN ('sent', 'attempt_failed')
    OR (status = 'failed' AND NOT EXISTS (
        SELECT 1 FROM events AS a
        WHERE a.message_id = e.message_id AND a.status = 'attempt_failed'
            AND a.attempt = e.attempt)))
GROUP BY transport
ORDER BY COUNT(*) DESC, transport
"""

_GROUP_COLUMNS = {"template": "template", "channel": "channel"}


class StatsRow(NamedTuple):
    """Outcomes for one template, channel or transport (see :meth:`SQLiteSink.stats`).

    Attributes:
        key: the template name, channel or transport (``None`` for messages
            sent without a template).
        sent: messages sent (by transport: successful attempts).
        failed: messages that finally failed (by transport: failed attempts).
        queued: messages still in flight, or whose outcome was never logged
            (always 0 by transport).
        total: ``sent + failed + queued``.
        success_rate: ``sent / (sent + failed)``, from 0.0 to 1.0; ``None``
            when nothing has an outcome yet. In-flight messages are left out so
            that a burst of sending does not look like a burst of failures.
        delivered: messages the provider reported delivered (a complaint
            counts as delivered too); by transport, messages it sent.
        bounced: messages whose latest report is a bounce.
        complained: messages the recipient marked as spam.
        delivery_rate, bounce_rate, complaint_rate: each of the three over the
            messages that went out (``sent`` and every later status); ``None``
            when none did, or when no provider reported anything for them
            (a transport without delivery reports: unknown, not 0%).
    """

    key: str | None
    sent: int
    failed: int
    queued: int
    total: int
    success_rate: float | None
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    delivery_rate: float | None = None
    bounce_rate: float | None = None
    complaint_rate: float | None = None


@attrs.frozen
class DeliveryRecord:
    """One message's row in ``deliveries`` (see :meth:`SQLiteSink.delivery`)."""

    message_id: str
    channel: str
    status: str
    recipients: tuple[str, ...]
    subject: str | None
    template: str | None
    transport: str | None
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    error_kind: str | None
    maybe_delivered: bool
    rejected: dict[str, str] = attrs.field(hash=False)
    tags: tuple[str, ...]
    metadata: dict[str, Any] = attrs.field(hash=False)
    duration: float | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    elif at.tzinfo is not timezone.utc:
        at = at.astimezone(timezone.utc)
    return at.isoformat(timespec="microseconds")


def _cutoff(when: datetime | timedelta) -> str:
    if isinstance(when, timedelta):
        return _iso(datetime.now(timezone.utc) - when)
    if isinstance(when, datetime):
        return _iso(when)
    raise ConfigurationError(f"expected a datetime or a timedelta, got {when!r}")


def _params(event: DeliveryEvent) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The parameters of the event's INSERT and of its deliveries UPSERT."""
    at = _iso(event.at)
    status = event.status
    recipients = _encode(event.recipients)
    tags = _encode(event.tags) if event.tags else "[]"
    metadata = _encode(dict(event.metadata)) if event.metadata else "{}"
    rejected = _encode(dict(event.rejected)) if event.rejected else None
    maybe = 1 if event.maybe_delivered else 0
    row = (
        event.message_id,
        status,
        event.channel,
        event.transport,
        recipients,
        event.subject,
        event.template,
        event.attempt,
        event.error,
        event.error_kind,
        event.provider_message_id,
        event.duration,
        at,
        tags,
        metadata,
        maybe,
        rejected,
    )
    if status in DELIVERY_STATUSES:
        return row, (event.provider_message_id, status, event.error, event.error_kind, at)
    final = status in ("sent", "failed")
    delivery = (
        event.message_id,
        event.channel,
        _ROW_STATUS.get(status, status),
        recipients,
        event.subject,
        event.template,
        event.transport,
        event.provider_message_id,
        event.attempt,
        event.error,
        event.error_kind,
        maybe,
        rejected,
        tags,
        metadata,
        event.duration if final else None,
        at,
        at if status == "sent" else None,
        status,
    )
    return row, delivery


def _escape_surrogates(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with every lone surrogate in its strings written as ``\\udXXX``."""
    return tuple(
        v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v
        for v in values
    )


def _event_from_row(row: Sequence[Any]) -> DeliveryEvent:
    return DeliveryEvent(
        message_id=row[0],
        status=row[1],
        channel=row[2],
        transport=row[3],
        recipients=json.loads(row[4]),
        subject=row[5],
        template=row[6],
        attempt=row[7],
        error=row[8],
        error_kind=row[9],
        provider_message_id=row[10],
        duration=row[11],
        at=datetime.fromisoformat(row[12]),
        tags=json.loads(row[13]),
        metadata=json.loads(row[14]),
        maybe_delivered=bool(row[15]),
        rejected=json.loads(row[16]) if row[16] else {},
    )


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _record_from_row(row: Sequence[Any]) -> DeliveryRecord:
    created, updated = datetime.fromisoformat(row[16]), datetime.fromisoformat(row[17])
    return DeliveryRecord(
        message_id=row[0],
        channel=row[1],
        status=row[2],
        recipients=tuple(json.loads(row[3])),
        subject=row[4],
        template=row[5],
        transport=row[6],
        provider_message_id=row[7],
        attempts=row[8],
        last_error=row[9],
        error_kind=row[10],
        maybe_delivered=bool(row[11]),
        rejected=json.loads(row[12]) if row[12] else {},
        tags=tuple(json.loads(row[13])),
        metadata=json.loads(row[14]),
        duration=row[15],
        created_at=created,
        updated_at=updated,
        sent_at=_time(row[18]),
    )


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back, if SQLite has not already: never hide the error that led here.

    On a full disk SQLite rolls the transaction back itself; a ROLLBACK then
    fails with "cannot rollback - no transaction is active", which used to
    replace the real cause ("database or disk is full").
    """
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _connect(path: str, timeout: float, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open ``path``, switch it to WAL and bring its schema up to date."""
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open the SQLite delivery log {path!r}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        _migrate(conn, path)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise ConfigurationError(
                f"cannot use {path!r} as a SQLite delivery log: {exc}"
            ) from exc
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    # BEGIN IMMEDIATE takes the write lock first, so that two processes opening
    # a new file at once do not both create (or upgrade) the schema.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{path!r} holds a delivery log of schema version {version}, written by a "
                f"newer notifykit; this one knows versions up to {SCHEMA_VERSION}"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


class _Writer:
    """The queue, the connection and the writer thread of one sink.

    It holds no reference to its :class:`SQLiteSink`, so the sink can be
    garbage-collected while the thread runs; the sink's finalizer then stops it.
    """

    def __init__(
        self,
        path: str,
        timeout: float,
        max_queue: int,
        max_batch: int,
        block_timeout: float,
        durability: Durability = "batched",
    ) -> None:
        self.path = path
        self.sync = durability != "batched"
        self.synchronous = "FULL" if durability == "fsync" else "NORMAL"
        # "" is a private temporary database: like ":memory:", it lives as long
        # as its connection.
        self.memory = path in ("", ":memory:")
        self.timeout = timeout
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.block_timeout = block_timeout
        self.dropped = 0
        self.closed = False
        self._reset()
        self._conn: sqlite3.Connection | None = _connect(path, timeout, self.synchronous)
        _live_writers.add(self)

    def _reset(self) -> None:
        """Fresh locks, queue and counters (at start, and in a child after fork)."""
        self.lock = threading.Lock()  # guards the queue, the counters and the flags
        self.has_work = threading.Condition(self.lock)
        self.has_room = threading.Condition(self.lock)
        self.written_cond = threading.Condition(self.lock)
        self.pending: deque[DeliveryEvent] = deque()
        self.enqueued = 0  # events ever queued
        self.written = 0  # events ever taken out and written (or dropped)
        self.stopping = False
        self.idle = False
        self.flushing = 0  # threads in flush(): the writer commits without lingering
        self.thread: threading.Thread | None = None
        self.db_lock = threading.Lock()  # guards the connection

    def after_fork_in_child(self) -> None:
        """Start over in a forked child: the parent writes what it had queued.

        The inherited connection is neither used nor closed: SQLite forbids
        using it across fork, and closing it could checkpoint or delete the WAL
        the parent is still writing.
        """
        if self._conn is not None:
            _abandoned.append(self._conn)
            self._conn = None
        self._reset()

    # -- the sending side ---------------------------------------------------

    def put(self, event: DeliveryEvent) -> None:
        if self.sync:
            self.put_now(event)
            return
        with self.lock:
            if self.closed:
                raise NotifyKitError(f"SQLiteSink({self.path!r}) is closed")
            if len(self.pending) >= self.max_queue and not self.has_room.wait_for(
                lambda: len(self.pending) < self.max_queue or self.closed,
                timeout=self.block_timeout,
            ):
                raise NotifyKitError(
                    f"SQLiteSink({self.path!r}): {self.max_queue} events are waiting to be "
                    f"written and none was written for {self.block_timeout}s; this event "
                    f"was not logged (is the disk full or the database locked?)"
                )
            if self.closed:
                raise NotifyKitError(f"SQLiteSink({self.path!r}) is closed")
            self.pending.append(event)
            self.enqueued += 1
            if self.thread is None:
                thread = threading.Thread(
                    target=self._run, name="notifykit-sqlite-writer", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError as exc:  # e.g. during interpreter shutdown
                    self.pending.pop()
                    self.enqueued -= 1
                    raise NotifyKitError(
                        f"SQLiteSink({self.path!r}) cannot start its writer thread: {exc}"
                    ) from exc
                self.thread = thread
            elif self.idle:
                self.has_work.notify()

    def put_now(self, event: DeliveryEvent) -> None:
        """Synchronous durability: the event is committed when this returns."""
        if self.closed:
            raise NotifyKitError(f"SQLiteSink({self.path!r}) is closed")
        try:
            failures = self._write([event])
        except Exception as exc:
            raise NotifyKitError(
                f"SQLiteSink({self.path!r}): an event of message {event.message_id!r} was "
                f"not logged: {exc}"
            ) from exc
        if failures:
            raise NotifyKitError(
                f"SQLiteSink({self.path!r}): an event of message {event.message_id!r} was "
                f"not logged: {failures[0]}"
            ) from failures[0]

    def flush(self, timeout: float | None) -> bool:
        with self.lock:
            target = self.enqueued
            self.flushing += 1
            self.has_work.notify()  # no lingering for what a reader waits for
            try:
                return self.written_cond.wait_for(lambda: self.written >= target, timeout)
            finally:
                self.flushing -= 1

    def stop(self, timeout: float | None, close_connection: bool) -> bool:
        """Refuse new events, write every queued one, stop the thread."""
        with self.lock:
            self.closed = True
            self.stopping = True
            self.has_work.notify()
            self.has_room.notify_all()
            thread = self.thread
        done = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            done = not thread.is_alive()
        if done and close_connection:
            with self.db_lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
        return done

    # -- the writer thread --------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.pending and not self.stopping:
                    self.idle = True
                    self.has_work.wait()
                self.idle = False
                if not self.pending:
                    return
                if len(self.pending) < self.max_batch and not self.stopping and not self.flushing:
                    # Group commit: let the events of the next few messages join
                    # this transaction (a commit costs far more than a row).
                    # put() does not wake us meanwhile; flush() and stop() do.
                    self.has_work.wait(_LINGER)
                count = min(len(self.pending), self.max_batch)
                batch = [self.pending.popleft() for _ in range(count)]
                self.has_room.notify_all()
            try:
                failures = self._write(batch)
            except Exception:  # the thread must outlive any error
                self.dropped += len(batch)
                logger.exception("SQLiteSink(%r): %d events were not logged", self.path, count)
            else:
                self.dropped += len(failures)
            finally:
                with self.lock:
                    self.written += count
                    self.written_cond.notify_all()

    def _write(self, batch: list[DeliveryEvent]) -> list[Exception]:
        """Write ``batch`` in one transaction; returns the errors of the events lost.

        A bad event (one SQLite refuses, or that cannot be encoded) costs only
        itself: when the batch fails for any reason other than the database
        being locked or full, its events are written one by one. Text with a
        lone surrogate (from ``json.loads`` of bad input) is stored with the
        surrogate escaped (``\\udc80``) rather than lost. Raises only when the
        whole batch is lost (locked or full past the retries).
        """
        failures: list[Exception] = []
        rows: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        for event in batch:
            try:
                row, delivery = _params(event)
            except Exception as exc:  # an event that cannot be encoded is dropped alone
                failures.append(exc)
                logger.error(
                    "SQLiteSink(%r): cannot log an event of message %r: %s",
                    self.path,
                    event.message_id,
                    exc,
                )
                continue
            rows.append(row)
            deliveries.append(delivery)
        if not rows:
            return failures
        with self.db_lock:
            conn = self.connection()
            for attempt in range(1, _WRITE_TRIES + 1):
                try:
                    self._commit(conn, rows, deliveries)
                    return failures
                except sqlite3.OperationalError as exc:
                    # "database is locked" past the busy timeout, or a full
                    # disk: worth another go before the batch is given up.
                    if attempt == _WRITE_TRIES:
                        raise
                    logger.warning(
                        "SQLiteSink(%r): writing %d events failed (%s); trying again",
                        self.path,
                        len(rows),
                        exc,
                    )
                except Exception:
                    break  # one bad event: find it below
            for row, delivery in zip(rows, deliveries, strict=True):
                try:
                    self._commit_one(conn, row, delivery)
                except Exception as exc:
                    failures.append(exc)
                    logger.error(
                        "SQLiteSink(%r): cannot log an event of message %r: %s",
                        self.path,
                        row[0],
                        exc,
                    )
        return failures

    @classmethod
    def _commit_one(
        cls, conn: sqlite3.Connection, row: tuple[Any, ...], delivery: tuple[Any, ...]
    ) -> None:
        try:
            cls._commit(conn, [row], [delivery])
        except UnicodeEncodeError:
            cls._commit(conn, [_escape_surrogates(row)], [_escape_surrogates(delivery)])

    @staticmethod
    def _commit(
        conn: sqlite3.Connection,
        rows: list[tuple[Any, ...]],
        deliveries: list[tuple[Any, ...]],
    ) -> None:
        # IMMEDIATE: take the write lock up front, so that waiting for another
        # process is handled by busy_timeout instead of failing half-way.
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Provider reports after the rest, so a report finds a message
            # whose "sent" came in the same batch.
            reports = [i for i, row in enumerate(rows) if row[1] in DELIVERY_STATUSES]
            if reports:
                skip = set(reports)
                rest = [i for i in range(len(rows)) if i not in skip]
                rows, deliveries, report_rows, updates = (
                    [rows[i] for i in rest],
                    [deliveries[i] for i in rest],
                    [rows[i] for i in reports],
                    [deliveries[i] for i in reports],
                )
            conn.executemany(_INSERT_EVENT, rows)
            conn.executemany(_UPSERT_DELIVERY, deliveries)
            if reports:
                conn.executemany(_INSERT_REPORT_EVENT, report_rows)
                conn.executemany(_UPDATE_REPORTED, updates)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    # -- reading ------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """The open connection (reopened after fork); call with ``db_lock`` held."""
        if self._conn is None:
            if self.memory and self.closed:
                raise NotifyKitError("this in-memory SQLiteSink is closed and its data gone")
            self._conn = _connect(self.path, self.timeout, self.synchronous)
        return self._conn

    def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn`` on a connection; after close, on a short-lived one (files only)."""
        with self.db_lock:
            if self._conn is not None or not self.closed or self.memory:
                return fn(self.connection())
        conn = _connect(self.path, self.timeout)
        try:
            return fn(conn)
        finally:
            conn.close()


# Writers alive in this process, to start them over in a child after fork.
_live_writers: weakref.WeakSet[_Writer] = weakref.WeakSet()
# Connections inherited through fork: kept, never used, never closed (see above).
_abandoned: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    for writer in list(_live_writers):
        writer.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _finalize(writer: _Writer) -> None:
    # Called when the sink is garbage-collected, and at interpreter exit for a
    # sink still alive then (weakref.finalize registers itself with atexit).
    writer.stop(timeout=60.0, close_connection=True)


class SQLiteSink:
    """The embedded delivery log: every event and one row per message in SQLite.

    Args:
        path: the database file (created if needed), or ``":memory:"`` (the
            default) for a log that lives as long as the sink, for tests.
        timeout: seconds to wait for another process holding the database's
            write lock before a write fails (SQLite's busy timeout).
        max_queue: events that may wait for the writer before ``record()``
            blocks.
        max_batch: the most events written in one transaction.
        block_timeout: seconds ``record()`` waits for room in a full queue
            before it gives up on the event and raises.
        durability: ``"batched"`` (the default): ``record()`` queues the event
            and a writer thread commits it shortly after, many events per
            transaction; a hard kill of the process (``SIGKILL``, the OOM
            killer) loses what is still queued. ``"sync"``: ``record()``
            commits the event before it returns (one transaction per event, in
            the calling thread), so an event whose ``record()`` returned
            survives a kill of the process; slower (see docs/logging.md for
            both loss windows, measured). ``"fsync"``: like ``"sync"``, with
            ``PRAGMA synchronous=FULL`` so a commit also survives a power cut.

    ``record()`` only queues the event; a writer thread, started on the first
    event, writes it (see the module docstring for the why and the
    guarantees). The read methods (:meth:`stats`, :meth:`history`,
    :meth:`tail`, :meth:`delivery`) and :meth:`purge` first wait for what is
    queued to be written, so they see every event recorded before the call.
    Reading still works after :meth:`close`.

    Several processes may share one file (each with its own sink): WAL mode
    lets them read while one writes, and writes wait for each other up to
    ``timeout``.

    Raises:
        ConfigurationError: the file cannot be opened, is not a SQLite
            database, or was written by a newer notifykit (a higher schema
            version), or an argument is out of range.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        timeout: float = 5.0,
        max_queue: int = 10_000,
        max_batch: int = 1_000,
        block_timeout: float = 5.0,
        durability: Durability = "batched",
    ) -> None:
        if max_queue < 1 or max_batch < 1:
            raise ConfigurationError("max_queue and max_batch must be at least 1")
        if timeout < 0 or block_timeout < 0:
            raise ConfigurationError("timeout and block_timeout must not be negative")
        if durability not in ("batched", "sync", "fsync"):
            raise ConfigurationError(
                f"durability must be 'batched', 'sync' or 'fsync', not {durability!r}"
            )
        self.path = os.fspath(path)
        self.durability: Durability = durability
        self._writer = _Writer(self.path, timeout, max_queue, max_batch, block_timeout, durability)
        self._finalizer = weakref.finalize(self, _finalize, self._writer)

    # -- writing ------------------------------------------------------------

    def record(self, event: DeliveryEvent) -> None:
        """Queue ``event`` for the writer thread and return at once.

        With ``durability="sync"`` (or ``"fsync"``), commit it before returning.

        Raises:
            NotifyKitError: the sink is closed, or the queue stayed full for
                ``block_timeout`` seconds; with ``durability="sync"``, the
                event could not be written (the error says why).
        """
        self._writer.put(event)

    async def arecord(self, event: DeliveryEvent) -> None:
        """:meth:`record` from async code (``Notifier.asend``): ``"batched"`` queues on
        the loop; ``"sync"``/``"fsync"`` wait for the commit in a worker thread."""
        if self.durability == "batched":
            self.record(event)
        else:
            import asyncio

            await asyncio.to_thread(self.record, event)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every event recorded before this call is written.

        Returns:
            True when they are, False if ``timeout`` seconds passed first.
        """
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write every queued event, then stop the writer thread.

        Later ``record()`` calls raise; reading still works. Closing twice is
        harmless.
        """
        self._writer.stop(timeout, close_connection=not self._writer.memory)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._writer.closed

    @property
    def dropped(self) -> int:
        """Events that could not be written (each one was logged on ``notifykit``).

        The :class:`~notifykit.Notifier` adds it to its ``sink_failures``. With
        ``durability="sync"`` a failure raises from ``record()`` instead, so
        this stays 0.
        """
        return self._writer.dropped

    def __enter__(self) -> SQLiteSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.durability == "batched":
            return f"SQLiteSink({self.path!r})"
        return f"SQLiteSink({self.path!r}, durability={self.durability!r})"

    # -- reading ------------------------------------------------------------

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        self.flush()
        return self._writer.read(fn)

    def stats(
        self,
        since: datetime | timedelta | None = None,
        group_by: GroupBy = "template",
    ) -> list[StatsRow]:
        """Sent and failed counts and success rate, per template, channel or transport.

        By template and by channel the unit is the **message** (its row in
        ``deliveries``): a message that failed over to a backup and went out
        counts once, as sent. A message still ``queued`` (in flight, or whose
        outcome never got logged) counts in ``queued`` and ``total`` but not in
        the success rate.

        By transport the unit is the **attempt**, because that is what a
        transport is judged on: each ``sent`` event is a success for its
        transport, each ``attempt_failed`` event a failure, so a primary that
        keeps failing over shows up even though every message went out.

        Each row also counts what providers reported after ``sent`` (through
        :mod:`notifykit.webhooks`): ``delivered``, ``bounced`` and
        ``complained`` messages and their rates over the messages that went
        out. These are always per message, by transport the one that sent it.

        Args:
            since: only messages created (attempts made) at or after this
                time; a timedelta means "in the last ...".
            group_by: ``"template"``, ``"channel"`` or ``"transport"``.

        Returns:
            One :class:`StatsRow` per key, the busiest first.
        """
        if group_by == "transport":
            sql = _STATS_BY_TRANSPORT
        elif group_by in _GROUP_COLUMNS:
            sql = _STATS_BY_MESSAGE.format(column=_GROUP_COLUMNS[group_by])
        else:
            raise ConfigurationError(
                f"group_by must be 'template', 'transport' or 'channel', not {group_by!r}"
            )
        cutoff = None if since is None else _cutoff(since)
        reported_sql = _STATS_REPORTED.format(column=group_by)

        def query(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            return (
                conn.execute(sql, (cutoff,)).fetchall(),
                conn.execute(reported_sql, (cutoff,)).fetchall(),
            )

        rows, reported = self._read(query)
        after = {r[0]: r[1:] for r in reported}
        result = []
        for key, sent, failed, queued, total in rows:
            decided = sent + failed
            rate = sent / decided if decided else None
            delivered, bounced, complained, out, reported = after.get(key, (0, 0, 0, 0, 0))
            if not reported:  # no provider reports here: rates unknown, not 0
                out = 0
            result.append(
                StatsRow(
                    key,
                    sent,
                    failed,
                    queued,
                    total,
                    rate,
                    delivered,
                    bounced,
                    complained,
                    delivered / out if out else None,
                    bounced / out if out else None,
                    complained / out if out else None,
                )
            )
        return result

    def history(self, message_id: str) -> list[DeliveryEvent]:
        """Every event of one message, in the order they were recorded."""
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE message_id = ? ORDER BY id"
        rows = self._read(lambda conn: conn.execute(sql, (message_id,)).fetchall())
        return [_event_from_row(row) for row in rows]

    def delivery(self, message_id: str) -> DeliveryRecord | None:
        """The ``deliveries`` row of one message (its current status), or ``None``."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ?"
        row = self._read(lambda conn: conn.execute(sql, (message_id,)).fetchone())
        return None if row is None else _record_from_row(row)

    def tail(self, n: int = 20) -> list[DeliveryEvent]:
        """The latest ``n`` events, oldest first (what ``notifykit log tail`` prints)."""
        if n < 0:
            raise ConfigurationError(f"n must not be negative, not {n}")
        sql = f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT ?"
        rows = self._read(lambda conn: conn.execute(sql, (n,)).fetchall())
        return [_event_from_row(row) for row in reversed(rows)]

    def purge(self, older_than: datetime | timedelta) -> int:
        """Delete the messages not updated since ``older_than``, with all their events.

        A timedelta means "older than this much": ``purge(timedelta(days=90))``.
        A message is kept or deleted whole, so a history is never cut in half.
        The file does not shrink (SQLite reuses the pages); run ``VACUUM`` for
        that.

        Returns:
            The number of messages (``deliveries`` rows) deleted.
        """
        cutoff = _cutoff(older_than)

        def delete(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "DELETE FROM events WHERE message_id IN "
                    "(SELECT message_id FROM deliveries WHERE updated_at < ?)",
                    (cutoff,),
                )
                count = conn.execute(
                    "DELETE FROM deliveries WHERE updated_at < ?", (cutoff,)
                ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return int(count)

        return int(self._read(delete))
