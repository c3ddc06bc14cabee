"""The outbox chaos run: worker processes killed with SIGKILL, SMTP servers that flap.

:func:`run_chaos` enqueues ``messages`` e-mails into a SQLite outbox, starts
``workers`` ``notifykit worker`` processes that deliver through a failover of
two local aiosmtpd servers, and meanwhile:

- kills a random worker with SIGKILL ``kills`` times (and starts a new one);
- makes the servers flap: 4xx replies to MAIL, connections dropped after the
  message arrived (the client sees no reply: ``maybe_delivered``), and server
  restarts that cut every open session;
- refuses every ``rejected_every``-th recipient with a 550 (dead-lettered).

Then it lets the workers drain the outbox and checks, counting what the
servers received (by ``Message-ID``):

- every message is ``sent`` (and arrived at least once) or ``dead`` with a reason;
- no message arrived more often than its recorded attempts allow: once for the
  ``sent`` attempt plus once per try recorded ``maybe_delivered`` (``maybe_tries``).

The failover is configured with ``resend_uncertain=false``: the outbox, not the
transport, retries a send whose reply was lost, so each try that may have
delivered is one recorded attempt, even when the worker is killed during it.
(With the default ``resend_uncertain=true`` one attempt may deliver twice
before a kill; the attempt is still recorded ``maybe_delivered``, but the count
of copies is not bounded by the records.)

Used by ``tests/outbox/test_chaos.py`` (small, bounded) and
``benchmarks/outbox_chaos.py`` (the 10,000-message, 20-kill run).
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from notifykit import Email, Notifier
from notifykit.outbox import SQLiteOutbox
from tests.servers.smtp import SMTPServer

ROOT = Path(__file__).resolve().parents[2]
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)


@dataclass
class ChaosResult:
    """What a chaos run found; :attr:`ok` when nothing was lost or duplicated unexplained."""

    messages: int
    kills: int
    seconds: float
    sent: int = 0
    dead: int = 0
    deliveries: int = 0
    duplicates: int = 0
    maybe_attempts: int = 0
    interrupted_attempts: int = 0
    flaps: int = 0
    received: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    dead_without_reason: list[str] = field(default_factory=list)
    unexpected_dead: list[str] = field(default_factory=list)
    unexplained_duplicates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.dead_without_reason
            or self.unexpected_dead
            or self.unexplained_duplicates
        )

    def summary(self) -> str:
        return (
            f"{self.messages} messages, {self.kills} kills, {self.flaps} server faults, "
            f"{self.seconds:.1f} s: {self.sent} sent, {self.dead} dead-lettered, "
            f"{self.deliveries} deliveries counted by the servers, {self.duplicates} duplicates "
            f"({self.maybe_attempts} attempts recorded maybe_delivered, "
            f"{self.interrupted_attempts} of them interrupted by a kill); lost {len(self.lost)}, "
            f"unexplained duplicates {len(self.unexplained_duplicates)}"
        )


def _start_worker(env: dict[str, str], directory: Path, n: int) -> subprocess.Popen[bytes]:
    with open(directory / f"worker-{n}.log", "wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "notifykit",
                "worker",
                "--lease",
                "2s",
                "--poll-interval",
                "100ms",
                "--retry-initial",
                "100ms",
                "--retry-max",
                "1s",
                "--batch",
                "5",
            ],
            env=env,
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def run_chaos(
    directory: Path,
    *,
    messages: int = 1000,
    workers: int = 3,
    kills: int = 10,
    rejected_every: int = 100,
    seed: int = 20261203,
    timeout: float = 240.0,
) -> ChaosResult:
    """Run the chaos scenario in ``directory``; see the module docstring."""
    rng = random.Random(seed)
    path = directory / "outbox.db"
    started = time.monotonic()
    with SMTPServer() as a, SMTPServer() as b:
        servers = [a, b]
        rejected: set[str] = set()
        with SQLiteOutbox(path) as box:
            notifier = Notifier(outbox=box, sender="shop@example.com")
            ids = []
            for i in range(messages):
                to = f"user{i}@example.com"
                if rejected_every and i % rejected_every == rejected_every - 1:
                    to = f"nobody{i}@example.com"
                    for server in servers:
                        server.fail("RCPT", "550 5.1.1 No such user", match=to, times=None)
                message = Email(to=to, subject=f"chaos {i}", text=f"message {i}")
                ids.append(notifier.enqueue(message))
                if to.startswith("nobody"):
                    rejected.add(message.id)
        smtp = "smtp://127.0.0.1:{}?security=none&timeout=3"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "NOTIFYKIT_OUTBOX": str(path),
            "NOTIFYKIT_SENDER": "shop@example.com",
            "NOTIFYKIT_EMAIL_URL": (
                f"failover({smtp.format(a.port)} {smtp.format(b.port)})"
                "?cooldown=0.5&resend_uncertain=false"
            ),
        }
        procs = [_start_worker(env, directory, n) for n in range(workers)]
        started_workers = workers
        stop_flapping = threading.Event()
        flaps = 0

        def flap() -> None:
            nonlocal flaps
            while not stop_flapping.wait(rng.uniform(0.2, 0.8)):
                server = rng.choice(servers)
                action = rng.random()
                if action < 0.4:
                    server.fail("MAIL", "451 4.3.0 try again later", times=rng.randint(1, 3))
                elif action < 0.8:
                    server.drop("DATA", times=1)  # arrives, but the client never hears 250
                else:
                    server.restart()  # cuts every open session
                flaps += 1

        flapper = threading.Thread(target=flap, daemon=True)
        flapper.start()
        try:
            # Kills are spread over the delivery: the k-th once k/(kills+1) of the rows are done.
            marks = [messages * (k + 1) // (kills + 1) for k in range(kills)]
            deadline = time.monotonic() + timeout
            with SQLiteOutbox(path) as box:
                for mark in marks:
                    while time.monotonic() < deadline:
                        counts = box.counts()
                        if counts["sent"] + counts["dead"] >= mark:
                            break
                        time.sleep(0.02)
                    time.sleep(rng.uniform(0, 0.1))
                    victim = rng.randrange(workers)
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait(30)
                    procs[victim] = _start_worker(env, directory, started_workers)
                    started_workers += 1
            stop_flapping.set()
            flapper.join(10)
            for server in servers:
                server.clear_faults()
                for address in rejected_addresses(rejected, path):
                    server.fail("RCPT", "550 5.1.1 No such user", match=address, times=None)
            deadline = time.monotonic() + timeout
            with SQLiteOutbox(path) as box:
                while time.monotonic() < deadline:
                    counts = box.counts()
                    if counts["queued"] == 0 and counts["leased"] == 0:
                        break
                    time.sleep(0.2)
        finally:
            stop_flapping.set()
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        received = Counter(
            m.group(1).decode()
            for server in servers
            for msg in server.messages
            if (m := _MESSAGE_ID.search(msg.data))
        )
    result = ChaosResult(messages=messages, kills=kills, seconds=time.monotonic() - started)
    result.received = received
    result.flaps = flaps
    result.deliveries = sum(received.values())
    result.duplicates = sum(n - 1 for n in received.values() if n > 1)
    with sqlite3.connect(path) as db:
        rows = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, state, last_error FROM outbox")}
        maybe = Counter(
            dict(
                db.execute(
                    "SELECT outbox_id, SUM(maybe_tries) FROM outbox_attempts GROUP BY outbox_id"
                ).fetchall()
            )
        )
        result.interrupted_attempts = db.execute(
            "SELECT COUNT(*) FROM outbox_attempts WHERE outcome = 'interrupted'"
        ).fetchone()[0]
    result.maybe_attempts = sum(maybe.values())
    for message_id in ids:
        state, error = rows.get(message_id, (None, None))
        arrived = received.get(message_id, 0)
        if state == "sent":
            result.sent += 1
            if arrived == 0:
                result.lost.append(message_id)
        elif state == "dead":
            result.dead += 1
            if not error:
                result.dead_without_reason.append(message_id)
            if message_id not in rejected:
                result.unexpected_dead.append(message_id)
        else:
            result.lost.append(message_id)
        allowed = (1 if state == "sent" else 0) + maybe.get(message_id, 0)
        if arrived > allowed:
            result.unexplained_duplicates.append(message_id)
    return result


def rejected_addresses(ids: set[str], path: Path) -> list[str]:
    """The recipients of the rows ``ids`` (the ones the servers refuse)."""
    if not ids:
        return []
    with sqlite3.connect(path) as db:
        marks = ",".join("?" * len(ids))
        return [
            r[0] for r in db.execute(f"SELECT recipients FROM outbox WHERE id IN ({marks})", [*ids])
        ]
