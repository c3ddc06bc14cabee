"""Failover benchmark: what a dead provider costs, against local SMTP servers.

Three measurements, all in one process against aiosmtpd servers running in
child processes on 127.0.0.1:

(a) steady state with a dead primary (a closed port): per-message time of a
    ``FailoverTransport([dead, backup])`` once the primary rests, vs sending
    straight to the backup. Target: < 5 % overhead.
(b) the hand-written pattern notifykit replaces: every message retries the dead
    primary 3 times with 1 s / 2 s / 4 s sleeps (scaled down by ``--scale``,
    1/100 by default) before using the backup.
(c) the primary dies mid-run: how long the first message after its death takes
    to be delivered, and what the following messages cost.

Run: ``python benchmarks/failover.py [--quick] [-n N] [--scale S]``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import notifykit as nk
from benchmarks._servers import SMTPServerProcess


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp(port: int) -> nk.SMTPTransport:
    return nk.SMTPTransport("127.0.0.1", port, security="none", timeout=5)


def email(n: int) -> nk.Email:
    return nk.Email(
        to="asha@example.com",
        subject=f"Order {n} shipped",
        text="Your order is on its way.",
        html="<p>Your order is on its way.</p>",
        sender="Shop <noreply@shop.example>",
    )


def per_message(send: Callable[[nk.Email], object], n: int, repeats: int) -> float:
    messages = [email(i) for i in range(n)]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for m in messages:
            send(m)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def interleaved(
    a: Callable[[nk.Email], object], b: Callable[[nk.Email], object], n: int
) -> tuple[float, float]:
    """Per-message time of ``a`` and ``b``, alternating message by message.

    Alternating (and swapping which goes first) cancels the drift of a busy
    machine, which block-by-block timing on 2 cores does not.
    """
    messages = [email(i) for i in range(n)]
    ta = tb = 0.0
    clock = time.perf_counter
    for i, m in enumerate(messages):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t0 = clock()
        first(m)
        t1 = clock()
        second(m)
        t2 = clock()
        if first is a:
            ta += t1 - t0
            tb += t2 - t1
        else:
            tb += t1 - t0
            ta += t2 - t1
    return ta / n, tb / n


def naive_sender(
    dead: nk.SMTPTransport, backup: nk.SMTPTransport, scale: float
) -> Callable[[nk.Email], object]:
    """The seeds' pattern: try the primary 3 times with 1/2/4 s sleeps, then the backup."""

    def send(message: nk.Email) -> object:
        for wait in (1.0, 2.0, 4.0):
            try:
                return dead.send(message)
            except nk.TransientError:
                time.sleep(wait * scale)
        return backup.send(message)

    return send


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one run")
    parser.add_argument("-n", type=int, default=None, help="messages per row")
    parser.add_argument("--scale", type=float, default=0.01, help="scale of the naive sleeps")
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 2000)
    repeats = 1 if args.quick else 3
    naive_n = max(5, n // 100)

    with SMTPServerProcess() as backup_server:
        backup = smtp(backup_server.port)
        dead = smtp(closed_port())
        failover = nk.FailoverTransport(
            [dead, backup], retry=nk.Retry(attempts=3, initial=args.scale, jitter=0), cooldown=3600
        )
        failover.send(email(-1))  # the primary fails once and rests
        backup.send(email(-1))  # connect the direct path too
        base_name = "straight to the backup (baseline)"
        fo_name = "**FailoverTransport, dead primary resting**"
        rows: dict[str, float] = {base_name: float("inf"), fo_name: float("inf")}
        for _ in range(repeats):
            direct, through = interleaved(backup.send, failover.send, n)
            rows[base_name] = min(rows[base_name], direct)
            rows[fo_name] = min(rows[fo_name], through)
        naive = naive_sender(smtp(closed_port()), backup, args.scale)
        rows[f"naive retry loop (1/2/4 s sleeps x {args.scale:g})"] = per_message(naive, naive_n, 1)
        failover.close()
        backup.close()

    base = rows["straight to the backup (baseline)"]
    print(f"## (a, b) Per-message cost with a dead primary ({n} messages, best of {repeats})")
    print()
    print("| sender | µs/message | vs straight to the backup |")
    print("|---|---:|---:|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds * 1e6:,.0f} | {seconds / base:.3f}x |")
    overhead = rows["**FailoverTransport, dead primary resting**"] / base - 1
    print()
    print(f"Failover overhead in steady state: {overhead * 100:+.1f} % (target < 5 %).")
    naive_unscaled = (rows[f"naive retry loop (1/2/4 s sleeps x {args.scale:g})"]) / args.scale
    print(
        f"The naive loop at full scale would cost about {naive_unscaled:,.1f} s per message "
        "(7 s of sleeps plus three refused connections)."
    )

    # (c) the primary dies mid-run
    with SMTPServerProcess() as primary_server, SMTPServerProcess() as backup_server:
        primary, backup = smtp(primary_server.port), smtp(backup_server.port)
        failover = nk.FailoverTransport(
            [primary, backup],
            retry=nk.Retry(attempts=3, initial=args.scale, jitter=0),
            cooldown=3600,
        )
        for i in range(50):
            assert primary.name == failover.send(email(i)).transport
        primary_server.stop()  # the primary dies; the open connection drops
        t0 = time.perf_counter()
        first = failover.send(email(50))
        first_latency = time.perf_counter() - t0
        after = per_message(failover.send, 200, 1)
        failover.close()
    tried = [f"{a.outcome}" for a in first.attempts]
    print()
    print("## (c) The primary dies mid-run")
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| time to first delivery after the death | {first_latency * 1e3:,.1f} ms |")
    print(f"| attempts of that message | {' → '.join(tried)} |")
    sleeps_ms = 3 * args.scale * 1e3
    print(f"| of which backoff sleeps (Retry initial={args.scale:g} s) | {sleeps_ms:,.1f} ms |")
    print(f"| each following message (primary skipped) | {after * 1e6:,.0f} µs |")


if __name__ == "__main__":
    main()
