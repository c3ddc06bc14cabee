"""Throughput with threads: the SMTP connection pool, Notifier.send_many, rate limits.

Against an aiosmtpd server in a child process on 127.0.0.1 that takes
``--latency`` ms (5 by default) per message before it answers, as a real server
that scans or relays mail does. Default settings everywhere (only
``security="none"`` for the local server): ``SMTPTransport()`` pools up to 4
connections, ``send_many`` runs 4 workers.

(a) one SMTPTransport shared by threads: 1 thread (the baseline) vs 4 threads,
    and 4 threads with ``max_connections=1`` (one connection behind a lock, as
    before the pool). Target: 4 threads >= 2.5x one thread.
(b) ``Notifier.send_many`` of the bundled order confirmation (rendered per
    recipient) vs a loop of ``send_email`` (the baseline).
(c) ``rate="20/s"`` with ``send_many`` and 8 workers: how long the messages
    take, and the most that finished in any one-second window (never above 20).

``--postfix PORT`` adds (a) against a real Postfix listening on
127.0.0.1:PORT (set up to discard mail; see the comment in :func:`main`).

Run: ``python benchmarks/bulk.py [--quick] [-n N] [--latency MS] [--postfix PORT]``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import notifykit as nk
from benchmarks._servers import SMTPServerProcess
from notifykit.cli import _bundled_renderer, _demo_contexts
from notifykit.transports.smtp import DEFAULT_MAX_CONNECTIONS

SENDER = "Shop <noreply@shop.example>"


def email(n: int) -> nk.Email:
    return nk.Email(
        to="asha@example.com",
        subject=f"Order A-{n} shipped",
        text="Your order is on its way.",
        html="<p>Your order is on its way.</p>",
        sender=SENDER,
    )


def threaded(transport: nk.SMTPTransport, threads: int, n: int) -> float:
    """Seconds for ``threads`` threads to send ``n`` messages in all through ``transport``."""
    messages = [email(i) for i in range(n)]
    start = threading.Barrier(threads + 1)

    def work(batch: list[nk.Email]) -> None:
        start.wait()
        for m in batch:
            transport.send(m)

    workers = [threading.Thread(target=work, args=(messages[k::threads],)) for k in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def pool_rows(port: int, n: int, repeats: int) -> dict[str, float]:
    """Seconds for ``n`` messages: 1 thread, 4 threads, 4 threads on one connection."""
    rows: dict[str, float] = {}
    for _ in range(repeats):
        for name, threads, pool in (
            ("1 thread (baseline)", 1, None),
            ("**4 threads, default pool (4 connections)**", 4, None),
            ("4 threads, max_connections=1 (one connection, as before)", 4, 1),
        ):
            smtp = nk.SMTPTransport(
                "127.0.0.1", port, security="none", max_connections=pool or DEFAULT_MAX_CONNECTIONS
            )
            smtp.send(email(-1))  # connect outside the timing
            seconds = threaded(smtp, threads, n)
            smtp.close()
            rows[name] = min(rows.get(name, float("inf")), seconds)
    return rows


def print_pool(rows: dict[str, float], n: int) -> None:
    base = rows["1 thread (baseline)"]
    print("| senders | messages/s | vs one thread |")
    print("|---|---:|---:|")
    for name, seconds in rows.items():
        print(f"| {name} | {n / seconds:,.0f} | {base / seconds:.2f}x |")


def most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one run")
    parser.add_argument("-n", type=int, default=None, help="messages per row")
    parser.add_argument("--latency", type=float, default=5.0, help="server ms per message")
    parser.add_argument("--postfix", type=int, metavar="PORT", help="also a Postfix on this port")
    args = parser.parse_args()
    n = args.n or (120 if args.quick else 400)
    repeats = 1 if args.quick else 3
    delay = args.latency / 1000

    with SMTPServerProcess(delay=delay) as server:
        # (a) the pool
        rows = pool_rows(server.port, n, repeats)
        print(
            f"### (a) One SMTPTransport shared by threads, server latency {args.latency:g} ms "
            f"({n} messages per row, best of {repeats})"
        )
        print()
        print_pool(rows, n)
        if args.postfix:
            # Postfix 3.7 from Debian, on 127.0.0.1:PORT, set up with
            # mynetworks=127.0.0.0/8, default/relay/local_transport=discard: it
            # queues each message (on disk) and throws it away.
            print()
            print(
                f"### (a) The same against a real Postfix on 127.0.0.1:{args.postfix} "
                f"({n} messages per row, best of {repeats})"
            )
            print()
            print_pool(pool_rows(args.postfix, n, repeats), n)

        # (b) send_many of a real template
        renderer = _bundled_renderer()
        contexts = _demo_contexts(3)
        template = "order_confirmation.html"
        renderer.render(template, contexts[0][1])  # compile once, outside the timing
        pairs = [(f"user{i}@example.com", contexts[i % 3][1]) for i in range(n // 2)]
        loop_best = many_best = float("inf")
        for _ in range(repeats):
            smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none")
            with nk.Notifier(email=smtp, templates=renderer, sender=SENDER) as notifier:
                t0 = time.perf_counter()
                for to, context in pairs:
                    notifier.send_email(template, to=to, context=context)
                loop_best = min(loop_best, time.perf_counter() - t0)
                t0 = time.perf_counter()
                results = notifier.send_many(template, pairs)
                many_best = min(many_best, time.perf_counter() - t0)
                assert all(isinstance(r, nk.Receipt) for r in results)
        print()
        print(
            f"### (b) The bundled order confirmation, rendered and sent per recipient "
            f"({len(pairs)} messages, best of {repeats})"
        )
        print()
        print("| sender | messages/s | vs the loop |")
        print("|---|---:|---:|")
        print(f"| loop of send_email (baseline) | {len(pairs) / loop_best:,.0f} | 1.00x |")
        print(
            f"| **send_many (4 workers, default)** | {len(pairs) / many_best:,.0f} | "
            f"{loop_best / many_best:.2f}x |"
        )

        # (c) the rate limit
        count = 30 if args.quick else 60
        smtp = nk.SMTPTransport("127.0.0.1", server.port, security="none", rate="20/s")
        done: list[float] = []
        with nk.Notifier(email=smtp, sender=SENDER, templates=renderer) as notifier:
            t0 = time.perf_counter()
            results = notifier.send_many(
                template,
                [(f"user{i}@example.com", contexts[0][1]) for i in range(count)],
                concurrency=8,
                on_progress=lambda i, r: done.append(time.perf_counter()),
            )
            elapsed = time.perf_counter() - t0
        assert all(isinstance(r, nk.Receipt) for r in results)
        print()
        print(f'### (c) rate="20/s", send_many with 8 workers, {count} messages')
        print()
        print("| measure | value |")
        print("|---|---:|")
        floor = (count - 1) // 20
        print(f"| time for the {count} messages | {elapsed:.2f} s (at least {floor} s at 20/s) |")
        print(f"| most messages finished in any 1 s window | {most_in_window(done, 1.0)} |")


if __name__ == "__main__":
    main()
