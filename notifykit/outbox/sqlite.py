"""The embedded outbox: one SQLite file, shared safely by threads and processes.

The file is in WAL mode (readers never block the writer), every connection
waits up to ``busy_timeout`` seconds for a lock instead of failing, and every
state change is one ``BEGIN IMMEDIATE`` transaction, so several worker
processes on one machine can share an outbox. The two commits that the
delivery guarantees rest on, the enqueue and the "attempt in flight" record,
are made with ``synchronous=FULL``: once :meth:`SQLiteOutbox.add` returns, the
row survives a crash of the process and of the machine. Other commits use
``synchronous=NORMAL`` (durable against a crash of the process; after a power
cut they may be lost, which only ever makes a row look in flight again, i.e.
``maybe_delivered``, never makes a delivered row look unsent).

SQLite's locking needs a local file system: do not put the file on NFS.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notifykit.errors import ConfigurationError, InvalidMessage
from notifykit.message import SMS, Email, Message, message_from_dict
from notifykit.outbox.base import AttemptOutcome, AttemptRecord, Claim, EntryState, OutboxEntry
from notifykit.receipt import Receipt

if TYPE_CHECKING:
    from notifykit.outbox.base import Sender
    from notifykit.outbox.worker import Worker

__all__ = ["SQLiteOutbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    message TEXT NOT NULL,
    template TEXT,
    recipients TEXT NOT NULL DEFAULT '',
    subject TEXT,
    idempotency_key TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL,
    age_base REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempts_base INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    maybe_delivered INTEGER NOT NULL DEFAULT 0,
    finished_at REAL,
    transport TEXT,
    provider_message_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_queued ON outbox (state, priority DESC, due_at, seq);
CREATE INDEX IF NOT EXISTS outbox_leases ON outbox (state, lease_until);
CREATE TABLE IF NOT EXISTS outbox_attempts (
    outbox_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    worker TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT NOT NULL,
    error TEXT,
    maybe_delivered INTEGER NOT NULL DEFAULT 0,
    maybe_tries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (outbox_id, number)
);
CREATE TABLE IF NOT EXISTS outbox_keys (
    key TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

#: A list of rows (an alias: the class's own ``list`` method hides the builtin there).
_Entries = list[OutboxEntry]
_Attempts = list[AttemptRecord]

_INTERRUPTED = "the worker stopped (or lost its lease) before recording an outcome"


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


def _epoch(value: datetime | float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidMessage(f"{what}: use a timezone-aware datetime (e.g. timezone.utc)")
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidMessage(f"{what}: expected a datetime, got {type(value).__name__}")


class SQLiteOutbox:
    """An :class:`~notifykit.outbox.Outbox` in one SQLite file.

    Args:
        path: the database file (created with its tables when missing).
        busy_timeout: seconds a write waits for another process's lock.
        idempotency_window: seconds an idempotency key keeps another message
            with the same key from being sent (default: one day).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        idempotency_window: float = 24 * 3600.0,
    ) -> None:
        if not isinstance(busy_timeout, (int, float)) or busy_timeout <= 0:
            raise ConfigurationError("SQLiteOutbox(busy_timeout=...) must be a positive number")
        if not isinstance(idempotency_window, (int, float)) or idempotency_window < 0:
            raise ConfigurationError("SQLiteOutbox(idempotency_window=...) must be >= 0")
        self.path = Path(path)
        if str(path) == ":memory:":
            raise ConfigurationError("SQLiteOutbox needs a file: ':memory:' is not durable")
        if not self.path.parent.is_dir():
            raise ConfigurationError(f"SQLiteOutbox: directory {str(self.path.parent)!r} missing")
        self.busy_timeout = float(busy_timeout)
        self.idempotency_window = float(idempotency_window)
        self._local = threading.local()
        # Every connection opened, with its thread: a dead thread's one is closed.
        self._all: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        try:
            self._connection().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"SQLiteOutbox({str(self.path)!r}): {exc}") from None

    # -- connections

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != pid:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise ConfigurationError(f"SQLiteOutbox({str(self.path)!r}): {exc}") from None
            self._local.conn = conn
            self._local.pid = pid
            with self._all_lock:
                kept = []
                for ref, other in self._all:
                    thread = ref()
                    if thread is None or not thread.is_alive():
                        other.close()  # its thread is gone: nobody else uses it
                    else:
                        kept.append((ref, other))
                kept.append((weakref.ref(threading.current_thread()), conn))
                self._all = kept
        return conn

    @contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        if durable:
            db.execute("PRAGMA synchronous = FULL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            if durable:
                db.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        """Close every connection this object opened (in this process)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for _, conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def __enter__(self) -> SQLiteOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteOutbox({str(self.path)!r})"

    # -- workers

    def run(self, notifier: Sender, stop: threading.Event | None = None, **options: Any) -> None:
        """Deliver due messages through ``notifier`` in this thread until ``stop`` is set.

        ``options`` are :class:`~notifykit.outbox.Worker` options (``poll_interval``,
        ``lease``, ``batch``, ``backoff``).
        """
        from notifykit.outbox.worker import Worker

        Worker(self, notifier, **options).run(stop)

    def start(self, notifier: Sender, **options: Any) -> Worker:
        """Start a :class:`~notifykit.outbox.Worker` thread; call its ``stop()`` when done."""
        from notifykit.outbox.worker import Worker

        return Worker(self, notifier, **options).start()

    # -- enqueue and idempotency keys

    def add(
        self,
        message: Message,
        *,
        send_at: datetime | None = None,
        priority: int = 0,
        template: str | None = None,
    ) -> str:
        """Store ``message``; return its id once the commit is durable (``synchronous=FULL``).

        A message whose id is already in the outbox is not stored twice. When
        its ``idempotency_key`` is held by another message (within
        :attr:`idempotency_window`), nothing is stored and that message's id
        is returned.
        """
        if not isinstance(message, (Email, SMS)):
            raise InvalidMessage(f"expected an Email or an SMS, got {type(message).__name__}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidMessage(f"priority: expected an integer, got {priority!r}")
        now = time.time()
        due = _epoch(send_at, "send_at")
        payload = json.dumps(message.to_dict(), ensure_ascii=False, separators=(",", ":"))
        key = message.idempotency_key
        with self._write(durable=True) as db:
            if key is not None:
                holder = self._key_holder(db, key, message.id, now)
                if holder != message.id:
                    return holder
                self._take_key(db, key, message.id, now)
            db.execute(
                "INSERT OR IGNORE INTO outbox (id, channel, message, template, recipients, "
                "subject, idempotency_key, priority, state, created_at, due_at, age_base) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    message.id,
                    message.channel,
                    payload,
                    template,
                    ",".join(message.recipients),
                    message.subject if isinstance(message, Email) else None,
                    key,
                    priority,
                    now,
                    now if due is None else due,
                    now,
                ),
            )
        return message.id

    def _key_holder(self, db: sqlite3.Connection, key: str, message_id: str, now: float) -> str:
        row = db.execute(
            "SELECT message_id, created_at FROM outbox_keys WHERE key = ?", (key,)
        ).fetchone()
        if row is None or row[0] == message_id:
            return message_id
        if row[1] < now - self.idempotency_window:
            return message_id  # expired: the key is free again
        return str(row[0])

    def _take_key(self, db: sqlite3.Connection, key: str, message_id: str, now: float) -> None:
        db.execute(
            "INSERT INTO outbox_keys (key, message_id, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, "
            "created_at = excluded.created_at WHERE outbox_keys.message_id != excluded.message_id",
            (key, message_id, now),
        )

    def reserve_key(self, key: str, message_id: str) -> str:
        """Take ``key`` for ``message_id`` unless another message holds it; the holder's id."""
        now = time.time()
        with self._write(durable=True) as db:
            holder = self._key_holder(db, key, message_id, now)
            if holder == message_id:
                self._take_key(db, key, message_id, now)
        return holder

    def release_key(self, key: str, message_id: str) -> None:
        """Free ``key`` unless ``message_id`` is a live row of this outbox (its worker retries)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM outbox_keys WHERE key = ? AND message_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM outbox WHERE id = ? AND state != 'dead')",
                (key, message_id, message_id),
            )

    # -- the worker's side

    def claim(self, worker: str, *, limit: int, lease: float) -> list[Claim]:
        """Lease up to ``limit`` due rows (or rows whose lease expired) to ``worker``.

        Rows come highest ``priority`` first, then earliest due. A row taken
        over from a worker that died mid-attempt has that attempt marked
        ``interrupted`` and ``maybe_delivered`` in the same transaction.
        """
        now = time.time()
        with self._write() as db:
            rows = db.execute(
                "SELECT seq, priority, due_at FROM outbox WHERE state = 'queued' AND due_at <= ? "
                "ORDER BY priority DESC, due_at, seq LIMIT ?",
                (now, limit),
            ).fetchall()
            rows += db.execute(
                "SELECT seq, priority, due_at FROM outbox WHERE state = 'leased' "
                "AND lease_until < ? LIMIT ?",
                (now, limit),
            ).fetchall()
            if not rows:
                return []
            rows.sort(key=lambda r: (-r[1], r[2], r[0]))
            seqs = [r[0] for r in rows[:limit]]
            marks = ",".join("?" * len(seqs))
            taken = db.execute(
                f"UPDATE outbox SET state = 'leased', lease_owner = ?, lease_until = ? "
                f"WHERE seq IN ({marks}) RETURNING id, message, priority, attempts, "
                "attempts_base, age_base, template, maybe_delivered",
                (worker, now + lease, *seqs),
            ).fetchall()
            ids = [t[0] for t in taken]
            id_marks = ",".join("?" * len(ids))
            crashed = {
                r[0]
                for r in db.execute(
                    f"SELECT DISTINCT outbox_id FROM outbox_attempts WHERE outcome = 'in_flight' "
                    f"AND outbox_id IN ({id_marks})",
                    ids,
                )
            }
            if crashed:
                c_marks = ",".join("?" * len(crashed))
                db.execute(
                    f"UPDATE outbox_attempts SET outcome = 'interrupted', maybe_delivered = 1, "
                    f"maybe_tries = 1, "
                    f"finished_at = ?, error = ? WHERE outcome = 'in_flight' "
                    f"AND outbox_id IN ({c_marks})",
                    (now, _INTERRUPTED, *crashed),
                )
                db.execute(
                    f"UPDATE outbox SET maybe_delivered = 1, last_error = ? "
                    f"WHERE id IN ({c_marks})",
                    (_INTERRUPTED, *crashed),
                )
        claims = []
        for id_, payload, prio, attempts, base, age_base, template, maybe in taken:
            claims.append(
                Claim(
                    id=id_,
                    message=message_from_dict(json.loads(payload)),
                    priority=prio,
                    attempts=attempts - base,
                    created_at=age_base,
                    template=template,
                    maybe_delivered=bool(maybe) or id_ in crashed,
                )
            )
        claims.sort(key=lambda c: -c.priority)
        return claims

    def renew(self, worker: str, ids: Sequence[str], lease: float) -> set[str]:
        """Extend ``worker``'s leases on ``ids``; the ids it lost (taken over or finished)."""
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        with self._write() as db:
            kept = {
                r[0]
                for r in db.execute(
                    f"UPDATE outbox SET lease_until = ? WHERE lease_owner = ? "
                    f"AND state = 'leased' AND id IN ({marks}) RETURNING id",
                    (time.time() + lease, worker, *ids),
                )
            }
        return set(ids) - kept

    def release(self, worker: str, ids: Sequence[str]) -> None:
        """Give back untried rows: queued again, due now, no lease."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._write() as db:
            db.execute(
                f"UPDATE outbox SET state = 'queued', lease_owner = NULL, lease_until = NULL "
                f"WHERE lease_owner = ? AND state = 'leased' AND id IN ({marks})",
                (worker, *ids),
            )

    def begin_attempt(self, worker: str, id: str) -> int | None:
        """Durably record an attempt in flight (``synchronous=FULL``); its number, or None."""
        now = time.time()
        with self._write(durable=True) as db:
            row = db.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ? AND state = 'leased' "
                "AND lease_owner = ? RETURNING attempts",
                (id, worker),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "INSERT INTO outbox_attempts (outbox_id, number, worker, started_at, outcome) "
                "VALUES (?, ?, ?, ?, 'in_flight')",
                (id, row[0], worker, now),
            )
        return int(row[0])

    def mark_sent(self, worker: str, id: str, number: int, receipt: Receipt) -> None:
        """Record attempt ``number`` as delivered; the row is ``sent`` whoever holds it now."""
        now = time.time()
        # A transport may have retried after a lost reply before it got a 250.
        tries = sum(1 for a in receipt.attempts if a.maybe_delivered)
        maybe = int(tries > 0)
        with self._write() as db:
            db.execute(
                "UPDATE outbox_attempts SET outcome = 'sent', finished_at = ?, error = NULL, "
                "maybe_delivered = MAX(maybe_delivered, ?), maybe_tries = maybe_tries + ? "
                "WHERE outbox_id = ? AND number = ?",
                (now, maybe, tries, id, number),
            )
            db.execute(
                "UPDATE outbox SET state = 'sent', finished_at = ?, transport = ?, "
                "provider_message_id = ?, lease_owner = NULL, lease_until = NULL, "
                "maybe_delivered = MAX(maybe_delivered, ?) WHERE id = ? AND state != 'sent'",
                (now, receipt.transport, receipt.provider_message_id, maybe, id),
            )

    def mark_failed(
        self,
        worker: str,
        id: str,
        number: int,
        *,
        outcome: AttemptOutcome,
        error: str,
        maybe_delivered: bool,
        retry_at: float | None,
        maybe_tries: int = 0,
    ) -> None:
        """Record a failed attempt; queue the row again at ``retry_at``, or dead-letter it.

        ``maybe_tries`` is how many tries inside the attempt (a transport's own
        retries) may have delivered the message.
        """
        now = time.time()
        maybe = int(maybe_delivered)
        tries = max(maybe_tries, maybe)
        with self._write() as db:
            db.execute(
                "UPDATE outbox_attempts SET outcome = ?, finished_at = ?, error = ?, "
                "maybe_delivered = MAX(maybe_delivered, ?), maybe_tries = maybe_tries + ? "
                "WHERE outbox_id = ? AND number = ?",
                (outcome, now, error, maybe, tries, id, number),
            )
            if retry_at is None:
                updated = db.execute(
                    "UPDATE outbox SET state = 'dead', finished_at = ?, last_error = ?, "
                    "maybe_delivered = MAX(maybe_delivered, ?), lease_owner = NULL, "
                    "lease_until = NULL WHERE id = ? AND state = 'leased' AND lease_owner = ? "
                    "RETURNING maybe_delivered",
                    (now, error, maybe, id, worker),
                ).fetchone()
                if updated is not None and not updated[0]:
                    # Certainly never delivered: the key may be used again.
                    db.execute("DELETE FROM outbox_keys WHERE message_id = ?", (id,))
            else:
                db.execute(
                    "UPDATE outbox SET state = 'queued', due_at = ?, last_error = ?, "
                    "maybe_delivered = MAX(maybe_delivered, ?), lease_owner = NULL, "
                    "lease_until = NULL WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                    (retry_at, error, maybe, id, worker),
                )

    def next_due(self) -> float | None:
        """When the next queued row falls due, in epoch seconds (None: none queued)."""
        row = (
            self._connection()
            .execute("SELECT MIN(due_at) FROM outbox WHERE state = 'queued'")
            .fetchone()
        )
        return None if row is None or row[0] is None else float(row[0])

    # -- reading and re-driving (the CLI and the admin)

    def get(self, id: str) -> OutboxEntry | None:
        """The row ``id``, or None."""
        rows = self._select("WHERE id = ?", (id,), 1)
        return rows[0] if rows else None

    def list(self, state: EntryState | None = None, *, limit: int = 100) -> _Entries:
        """Rows, newest first, optionally only those in ``state``."""
        if state is None:
            return self._select("", (), limit)
        return self._select("WHERE state = ?", (state,), limit)

    def attempts(self, id: str) -> _Attempts:
        """Every recorded attempt of row ``id``, in order."""
        rows = (
            self._connection()
            .execute(
                "SELECT number, outcome, started_at, finished_at, error, maybe_delivered, worker, "
                "maybe_tries "
                "FROM outbox_attempts WHERE outbox_id = ? ORDER BY number",
                (id,),
            )
            .fetchall()
        )
        return [
            AttemptRecord(
                number=r[0],
                outcome=r[1],
                started_at=_dt(r[2]),  # type: ignore[arg-type]
                finished_at=_dt(r[3]),
                error=r[4],
                maybe_delivered=bool(r[5]),
                worker=r[6],
                maybe_tries=r[7],
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        rows = self._connection().execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        out = {"queued": 0, "leased": 0, "sent": 0, "dead": 0}
        out.update({r[0]: r[1] for r in rows})
        return out

    def retry(self, ids: Sequence[str] | None = None) -> int:
        """Queue dead rows again, due now, with a fresh age and attempt budget.

        ``ids`` names the rows; ``None`` re-drives every dead row. Returns how
        many rows were queued again.
        """
        now = time.time()
        with self._write(durable=True) as db:
            if ids is None:
                cur = db.execute(
                    "UPDATE outbox SET state = 'queued', due_at = ?, age_base = ?, "
                    "attempts_base = attempts, finished_at = NULL WHERE state = 'dead'",
                    (now, now),
                )
            else:
                marks = ",".join("?" * len(ids))
                cur = db.execute(
                    f"UPDATE outbox SET state = 'queued', due_at = ?, age_base = ?, "
                    f"attempts_base = attempts, finished_at = NULL "
                    f"WHERE state = 'dead' AND id IN ({marks})",
                    (now, now, *ids),
                )
            return cur.rowcount

    def purge(self, states: Sequence[EntryState] = ("sent",), *, older_than: float = 0.0) -> int:
        """Delete finished rows (``sent`` and/or ``dead``) finished ``older_than`` seconds ago.

        Expired idempotency keys of deleted rows go too. Returns the rows deleted.
        """
        bad = set(states) - {"sent", "dead"}
        if bad:
            raise ConfigurationError(f"purge: only sent and dead rows can be purged, not {bad}")
        if not states:
            return 0
        cutoff = time.time() - older_than
        marks = ",".join("?" * len(states))
        with self._write() as db:
            ids = [
                r[0]
                for r in db.execute(
                    f"DELETE FROM outbox WHERE state IN ({marks}) AND finished_at <= ? "
                    "RETURNING id",
                    (*states, cutoff),
                )
            ]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cm = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM outbox_attempts WHERE outbox_id IN ({cm})", chunk)
            db.execute(
                "DELETE FROM outbox_keys WHERE created_at < ? AND message_id NOT IN "
                "(SELECT id FROM outbox)",
                (time.time() - self.idempotency_window,),
            )
        return len(ids)

    def _select(self, where: str, params: tuple[Any, ...], limit: int) -> _Entries:
        rows = (
            self._connection()
            .execute(
                "SELECT id, channel, state, priority, created_at, due_at, attempts, recipients, "
                "subject, template, idempotency_key, last_error, maybe_delivered, finished_at, "
                f"transport, provider_message_id FROM outbox {where} ORDER BY seq DESC LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [
            OutboxEntry(
                id=r[0],
                channel=r[1],
                state=r[2],
                priority=r[3],
                created_at=_dt(r[4]),  # type: ignore[arg-type]
                due_at=_dt(r[5]),  # type: ignore[arg-type]
                attempts=r[6],
                recipients=tuple(x for x in r[7].split(",") if x),
                subject=r[8],
                template=r[9],
                idempotency_key=r[10],
                last_error=r[11],
                maybe_delivered=bool(r[12]),
                sent_at=_dt(r[13]) if r[2] == "sent" else None,
                transport=r[14],
                provider_message_id=r[15],
            )
            for r in rows
        ]
