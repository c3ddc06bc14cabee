"""SMS throughput through MSG91Transport: pooled keep-alive vs a new connection per message.

Every row sends the same DLT SMS to the local fake MSG91 API
(``tests/servers/sms_fake.py``, a real HTTP/1.1 server on 127.0.0.1):

- ``build + parse only``: the in-process baseline, the pure
  ``build_request`` + ``parse_response`` pair with no I/O at all — what the
  transport costs before the network;
- ``keep-alive``: one ``MSG91Transport``, its pooled client reusing one TCP
  connection (what notifykit does);
- ``new client per message``: a fresh ``httpx.Client`` per message, closed
  after it, which is what ``requests.post(...)`` per message does (a new
  session and a new TCP connection each time; building an ``httpx.Client``
  also loads the CA bundle into a new SSL context, even for plain HTTP);
- ``new connection per message``: one client with keep-alive switched off
  (``max_keepalive_connections=0``): only the TCP connection is new each time.

Loopback has no TLS and no latency, so the real-world gap is much larger: over
the internet each new connection also pays a TCP and a TLS handshake (two to
three round trips to Mumbai) that keep-alive pays once.

    python benchmarks/sms.py            # 1,500 messages per row (300 for a new client), best of 3
    python benchmarks/sms.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

import notifykit as nk
from notifykit.transports.msg91 import MSG91Transport, build_request, parse_response
from tests.servers.sms_fake import MSG91_KEY, SMSFakeServer

ANSWER = b'{"type": "success", "message": "5762846b4f8d285d378b4567"}'


def best_of(repeats: int, run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="200 messages per row, one run")
    parser.add_argument("-n", type=int, default=None, help="messages per row")
    args = parser.parse_args()
    n = args.n or (200 if args.quick else 1_500)
    n_slow = max(20, n // 5)  # a new client per message is slow: fewer messages, same rate
    repeats = 1 if args.quick else 3
    message = nk.SMS(
        "+919876543210",
        "Order A-1 shipped",
        sender="SHOPIN",
        template_id="1001",
        variables={"order": "A-1"},
    )

    with SMSFakeServer() as fake:
        fake.msg91_balance = 10**9

        def pure() -> None:
            for _ in range(n):
                build_request(message, authkey=MSG91_KEY, base_url=fake.url)
                parse_response(200, {}, ANSWER)

        def keep_alive() -> None:
            with MSG91Transport(MSG91_KEY, base_url=fake.url) as transport:
                for _ in range(n):
                    transport.send(message)

        def new_connection() -> None:
            limits = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(timeout=10.0, limits=limits) as client:
                transport = MSG91Transport(MSG91_KEY, base_url=fake.url, http_client=client)
                for _ in range(n):
                    transport.send(message)

        def new_client() -> None:
            for _ in range(n_slow):
                with httpx.Client(timeout=10.0) as client:
                    MSG91Transport(MSG91_KEY, base_url=fake.url, http_client=client).send(message)

        rows: list[tuple[str, int, float, int | None]] = [
            ("build + parse only (no I/O)", n, best_of(repeats, pure), None)
        ]
        for name, count, run in (
            ("keep-alive (notifykit)", n, keep_alive),
            ("new connection per message", n, new_connection),
            ("new client per message (like requests.post)", n_slow, new_client),
        ):
            before = fake.connections
            seconds = best_of(repeats, run)
            rows.append((name, count, seconds, (fake.connections - before) // repeats))

    keep = rows[1][2] / rows[1][1]
    print(f"SMS through MSG91Transport to a local fake MSG91 API, best of {repeats}\n")
    print("| path | messages | TCP connections | messages / s | µs / message | vs keep-alive |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, count, seconds, connections in rows:
        per = seconds / count
        conns = "-" if connections is None else f"{connections:,}"
        print(
            f"| {name} | {count:,} | {conns} | {count / seconds:,.0f} | {per * 1e6:,.0f} "
            f"| {per / keep:.2f}x |"
        )
    print(
        f"\nKeep-alive sends {rows[2][2] / rows[2][1] / keep:.1f}x faster than a new connection "
        f"per message and {rows[3][2] / rows[3][1] / keep:.1f}x faster than a new client per "
        "message, on loopback (no TLS, no latency: the real gap is larger)."
    )


if __name__ == "__main__":
    main()
