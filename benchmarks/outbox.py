"""The outbox: durable enqueue cost and worker throughput vs a direct ``send``.

Every row sends the same order e-mail (text + HTML, as in ``benchmarks/smtp.py``)
to one local aiosmtpd server in a separate process, through one
``SMTPTransport`` with its default settings; every message is a distinct
``Email`` (built beforehand, outside the timings):

- ``Notifier.send`` (the baseline): the message goes out in the caller's call;
- ``Notifier.enqueue``: what the caller pays instead: one durable commit
  (``synchronous=FULL``) into a default ``SQLiteOutbox``;
- ``Worker`` drain: the time a default ``Worker`` (one thread) takes to deliver
  the enqueued messages: claim, "attempt in flight" commit, send, outcome commit.

Run::

    python benchmarks/outbox.py            # 1,000 messages per row, best of 3
    python benchmarks/outbox.py --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import notifykit as nk  # noqa: E402
from benchmarks._servers import SMTPServerProcess  # noqa: E402
from benchmarks.smtp import SENDER, SUBJECT, TO, render  # noqa: E402
from notifykit.outbox import SQLiteOutbox, Worker  # noqa: E402
from notifykit.transports.smtp import SMTPTransport  # noqa: E402


def emails(n: int, html: str, text: str) -> list[nk.Email]:
    return [nk.Email(to=TO, subject=SUBJECT, text=text, html=html, sender=SENDER) for _ in range(n)]


def notifier(port: int, outbox: SQLiteOutbox | None) -> nk.Notifier:
    return nk.Notifier(email=SMTPTransport("127.0.0.1", port, security="none"), outbox=outbox)


def direct(port: int, batch: list[nk.Email]) -> float:
    with notifier(port, None) as n:
        n.send(batch[0].replace())  # connect outside the timing, as the others do
        t0 = time.perf_counter()
        for email in batch:
            n.send(email)
        return time.perf_counter() - t0


def enqueue_and_drain(port: int, batch: list[nk.Email], directory: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        outbox = SQLiteOutbox(Path(tmp) / "outbox.db")
        with notifier(port, outbox) as n:
            n.send(batch[0].replace())
            t0 = time.perf_counter()
            for email in batch:
                n.enqueue(email)
            enqueue = time.perf_counter() - t0
            worker = Worker(outbox, n)
            t0 = time.perf_counter()
            worker.start()
            while outbox.counts()["sent"] < len(batch):
                time.sleep(0.005)
            drain = time.perf_counter() - t0
            worker.stop()
        outbox.close()
    return enqueue, drain


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="messages per row")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, runs = (200, 1) if args.quick else (args.n, args.runs)
    html, text = render()
    best_direct = best_enqueue = best_drain = float("inf")
    directory = Path(tempfile.gettempdir())
    with SMTPServerProcess() as server:
        for _ in range(runs):
            best_direct = min(best_direct, direct(server.port, emails(n, html, text)))
            enqueue, drain = enqueue_and_drain(server.port, emails(n, html, text), directory)
            best_enqueue = min(best_enqueue, enqueue)
            best_drain = min(best_drain, drain)
    rows = [
        ("Notifier.send, direct (baseline)", best_direct),
        ("Notifier.enqueue (durable commit, what the caller waits for)", best_enqueue),
        ("Worker drain (claim, in-flight commit, send, outcome commit)", best_drain),
    ]
    print(f"### Outbox vs direct send ({n} messages per row, best of {runs})")
    print()
    print("| path | messages/s | µs/message | time vs direct send |")
    print("|---|---:|---:|---:|")
    for label, seconds in rows:
        per = seconds / n
        print(f"| {label} | {n / seconds:,.0f} | {per * 1e6:,.0f} | {seconds / best_direct:.2f}x |")
    print()
    print(
        f"Durable enqueue costs {best_enqueue / n * 1e6:,.0f} µs per message "
        f"({best_enqueue / best_direct:.2f}x a direct send); a default worker delivers "
        f"{n / best_drain:,.0f} messages/s ({best_drain / best_direct:.2f}x the time of "
        "sending directly)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
