"""Async SMTP (aiosmtplib) vs the sync transport with threads: 100 sends at once.

Against an aiosmtpd server in a child process on 127.0.0.1 that takes
``--latency`` ms (5 by default) per message before it answers. Both sides use
one ``SMTPTransport`` with its DEFAULT settings (only ``security="none"`` for
the local server; the pool holds up to 4 connections):

- sync (the baseline): a ``ThreadPoolExecutor`` of 100 threads calling ``send``;
- async: 100 tasks calling ``asend`` on one event loop (``asyncio.Semaphore``
  of 100 bounding the concurrency, as the thread pool does).

For each: messages per second (wall clock) and client CPU per message
(``time.process_time()`` of this process, the server is another process).
Best of 3 runs per row, the rows interleaved.

Run: ``python benchmarks/async_smtp.py [--quick] [-n N] [--latency MS]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import notifykit as nk
from benchmarks._servers import SMTPServerProcess

SENDER = "Shop <noreply@shop.example>"
CONCURRENCY = 100


def email(n: int) -> nk.Email:
    return nk.Email(
        to=f"user{n}@example.com",
        subject=f"Order A-{n} shipped",
        text="Your order is on its way.\n" * 10,
        html="<p>Your order is on its way.</p>" * 10,
        sender=SENDER,
    )


def transport(port: int) -> nk.SMTPTransport:
    return nk.SMTPTransport("127.0.0.1", port, security="none", local_hostname="bench.test")


def run_sync(port: int, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for ``n`` sends by a pool of 100 threads."""
    messages = [email(i) for i in range(n)]
    with transport(port) as smtp, ThreadPoolExecutor(CONCURRENCY) as pool:
        smtp.send(email(-1))  # connect outside the timing
        c0, t0 = time.process_time(), time.perf_counter()
        for receipt in pool.map(smtp.send, messages):
            assert receipt.accepted
        return time.perf_counter() - t0, time.process_time() - c0


def run_async(port: int, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for ``n`` sends by 100 concurrent tasks."""
    messages = [email(i) for i in range(n)]

    async def main() -> tuple[float, float]:
        async with transport(port) as smtp:
            await smtp.asend(email(-1))
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(message: nk.Email) -> nk.Receipt:
                async with gate:
                    return await smtp.asend(message)

            c0, t0 = time.process_time(), time.perf_counter()
            receipts = await asyncio.gather(*(one(m) for m in messages))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert all(r.accepted for r in receipts)
            return wall, cpu

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one run")
    parser.add_argument("-n", type=int, default=None, help="messages per row")
    parser.add_argument("--latency", type=float, default=5.0, help="server ms per message")
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 1000)
    repeats = 1 if args.quick else 3
    rows = {
        "sync `send`, 100 threads (baseline)": run_sync,
        "**async `asend`, 100 tasks on one loop**": run_async,
    }
    best = {name: (float("inf"), float("inf")) for name in rows}
    with SMTPServerProcess(delay=args.latency / 1000) as server:
        for _ in range(repeats):
            for name, run in rows.items():
                wall, cpu = run(server.port, n)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    print(
        f"### 100 concurrent sends, one SMTPTransport (default pool of 4 connections), "
        f"server latency {args.latency:g} ms ({n} messages per row, best of {repeats})"
    )
    print()
    print("| | messages/s | vs baseline | client CPU per message | vs baseline |")
    print("|---|---:|---:|---:|---:|")
    base_wall, base_cpu = best["sync `send`, 100 threads (baseline)"]
    for name, (wall, cpu) in best.items():
        print(
            f"| {name} | {n / wall:,.0f} | {base_wall / wall:.2f}x | "
            f"{cpu / n * 1e6:,.0f} µs | {cpu / base_cpu:.2f}x |"
        )


if __name__ == "__main__":
    main()
