"""The lease protocol under any interleaving of workers (a hypothesis state machine).

Two workers claim, start attempts, finish them or die silently, in any order;
leases either hold or expire at once. Whatever happens, no row is lost, a sent
row stays sent, and a message is never delivered more often than its records
allow: once per ``sent`` attempt plus once per attempt recorded (or still in
flight, i.e. about to be recorded) as maybe delivered.

The one sequence that matters most (a row taken over from a worker that died
mid-attempt) is also pinned step by step in ``test_outbox.py``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from notifykit import Email
from notifykit.outbox import SQLiteOutbox
from notifykit.receipt import Attempt, Receipt

WORKERS = st.sampled_from(["a", "b"])
#: What the provider does with one attempt, and what the worker will record.
KINDS = st.sampled_from(
    [
        "sent",  # delivered, 250 seen
        "refused",  # not delivered: 4xx before the hand-over
        "lost_reply_delivered",  # delivered, the reply lost: maybe_delivered
        "lost_reply_not_delivered",  # not delivered, the reply lost: maybe_delivered
        "rejected",  # not delivered, 550: dead
    ]
)
DELIVERS = {"sent", "lost_reply_delivered"}


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.outbox = SQLiteOutbox(Path(self.dir.name) / "o.db")
        self.ids: list[str] = []
        self.delivered: Counter[str] = Counter()
        self.held: dict[str, set[str]] = {"a": set(), "b": set()}
        self.pending: list[tuple[str, str, int, str]] = []  # worker, id, number, kind
        self.sent: set[str] = set()

    @initialize()
    def two_rows(self) -> None:
        self.enqueue()
        self.enqueue()

    @rule()
    def enqueue(self) -> None:
        message = Email(to="a@example.com", subject="s", text="t", sender="s@example.com")
        self.ids.append(self.outbox.add(message))

    @rule(worker=WORKERS, expired=st.booleans())
    def claim(self, worker: str, expired: bool) -> None:
        for claim in self.outbox.claim(worker, limit=2, lease=-1 if expired else 1000):
            for others in self.held.values():
                others.discard(claim.id)
            self.held[worker].add(claim.id)

    @rule(worker=WORKERS, kind=KINDS, data=st.data())
    def begin(self, worker: str, kind: str, data: st.DataObject) -> None:
        busy = {p[1] for p in self.pending if p[0] == worker}  # one try at a time
        free = sorted(self.held[worker] - busy)
        if not free:
            return
        id_ = data.draw(st.sampled_from(free))
        number = self.outbox.begin_attempt(worker, id_)
        if number is None:
            self.held[worker].discard(id_)
            return
        if kind in DELIVERS:
            self.delivered[id_] += 1
        self.pending.append((worker, id_, number, kind))

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        worker, id_, number, kind = data.draw(st.sampled_from(self.pending))
        self.pending.remove((worker, id_, number, kind))
        self.held[worker].discard(id_)
        if kind == "sent":
            attempt = Attempt("smtp:x", "sent")
            self.outbox.mark_sent(worker, id_, number, Receipt(id_, "smtp:x", attempts=[attempt]))
            self.sent.add(id_)
            return
        maybe = kind.startswith("lost_reply")
        self.outbox.mark_failed(
            worker,
            id_,
            number,
            outcome="rejected" if kind == "rejected" else "transient",
            error=kind,
            maybe_delivered=maybe,
            retry_at=None if kind == "rejected" else 0.0,
        )

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def die(self, data: st.DataObject) -> None:
        """A worker is killed mid-attempt: its attempt is never finished."""
        worker = data.draw(st.sampled_from(self.pending))[0]
        self.pending = [p for p in self.pending if p[0] != worker]
        self.held[worker].clear()

    @invariant()
    def nothing_is_lost_and_sent_stays_sent(self) -> None:
        for id_ in self.ids:
            entry = self.outbox.get(id_)
            assert entry is not None
            assert entry.state in ("queued", "leased", "sent", "dead")
            if id_ in self.sent:
                assert entry.state == "sent"

    @invariant()
    def copies_are_bounded_by_the_records(self) -> None:
        for id_ in self.ids:
            attempts = self.outbox.attempts(id_)
            allowed = sum(
                1
                for a in attempts
                if a.outcome == "sent" or a.maybe_delivered or a.outcome == "in_flight"
            )
            assert self.delivered[id_] <= allowed, (id_, attempts)
            # Only the latest attempt may be in flight: taking a row over records the
            # previous one as interrupted (maybe delivered) before a new one starts.
            in_flight = [a.number for a in attempts if a.outcome == "in_flight"]
            assert in_flight in ([], [len(attempts)]), (id_, attempts)

    def teardown(self) -> None:
        self.outbox.close()
        self.dir.cleanup()


LeaseMachine.TestCase.settings = settings(
    derandomize=True, max_examples=50, stateful_step_count=20, deadline=None
)
TestLeaseProtocol = LeaseMachine.TestCase
