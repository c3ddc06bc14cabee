"""Ingesting delivery reports: 10,000 signed SES notifications into the SQLite log.

Each request goes through the WSGI app (environ in, status out, no HTTP
server) to an :class:`~notifykit.webhooks.SESReceiver` with its defaults
(in-memory seen-id store, certificate cached after the first fetch), which
verifies the SNS signature (SignatureVersion 2, RSA-2048 SHA256), parses the
SES event, drops replays, records the event in a ``SQLiteSink`` file that
already holds the 10,000 sent messages (so each report joins its message)
and updates a ``SQLiteSuppressionList`` file. The notifications are a mix
users see: 90 % Delivery, 5 % hard Bounce, 3 % Transient Bounce, 2 % Complaint.

Reported: events/s over the whole run (the sink's final flush included), the
p50/p99 latency of one request, and, as a same-process baseline, the cost of
only decoding the same bodies (``json.loads`` of the envelope and of the SES
message), so the ratio shows what verification and storage add. A replay of
every notification (all dropped as duplicates) is timed too.

    python benchmarks/webhooks.py            # 10,000 notifications
    python benchmarks/webhooks.py --quick    # 1,000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.sqlite import SQLiteSink
from notifykit.suppression import SQLiteSuppressionList
from notifykit.webhooks import SESReceiver, wsgi_app
from tests.webhooks import sns


def notifications(n: int) -> list[tuple[str, bytes]]:
    """(provider id, signed SNS body) for ``n`` messages."""
    out = []
    for i in range(n):
        pid = f"0102018e{i:08x}-4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8-000000"
        to = f"user{i}@example.com"
        r = i % 100
        if r < 90:
            payload = sns.delivery(pid, to)
        elif r < 95:
            payload = sns.bounce(pid, to, feedback=f"fb-{i}")
        elif r < 98:
            payload = sns.bounce(pid, to, bounce_type="Transient", feedback=f"fb-{i}")
        else:
            payload = sns.complaint(pid, to)
        out.append((pid, sns.body(sns.notification(payload))))
    return out


def environ(body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "text/plain; charset=UTF-8",
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(body),
        "HTTP_USER_AGENT": "Amazon Simple Notification Service Agent",
    }


def run(bodies: list[tuple[str, bytes]], app: Any) -> tuple[float, list[float]]:
    statuses: list[str] = []

    def start_response(status: str, headers: Any) -> None:
        statuses.append(status)

    latencies = []
    t0 = time.perf_counter()
    for _, body in bodies:
        s = time.perf_counter()
        app(environ(body), start_response)
        latencies.append(time.perf_counter() - s)
    elapsed = time.perf_counter() - t0
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise SystemExit(f"{len(bad)} requests failed, e.g. {bad[0]}")
    return elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="1,000 notifications")
    args = parser.parse_args()
    n = 1_000 if args.quick else 10_000
    print(f"Signing {n:,} notifications...", file=sys.stderr)
    bodies = notifications(n)

    # baseline: decode only
    t0 = time.perf_counter()
    for _, body in bodies:
        envelope = json.loads(body)
        json.loads(envelope["Message"])
    baseline = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteSink(os.path.join(tmp, "log.db"))
        for pid, _ in bodies:
            log.record(
                DeliveryEvent(f"m-{pid}", "sent", "email", transport="ses", provider_message_id=pid)
            )
        log.flush()
        store = SQLiteSuppressionList(os.path.join(tmp, "suppress.db"))
        receiver = SESReceiver(
            topics=[sns.TOPIC], fetch_certificate=sns.Fetcher(), sinks=[log], suppression=store
        )
        app = wsgi_app(receiver)
        elapsed, latencies = run(bodies, app)
        f0 = time.perf_counter()
        log.flush()
        elapsed += time.perf_counter() - f0
        replay, replay_latencies = run(bodies, app)
        stats = log.stats(group_by="transport")[0]
        suppressed = len(store.entries())
        log.close()
        store.close()

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1e3

    print(f"SES delivery reports: {n:,} signed SNS notifications through the WSGI app\n")
    print("| run | events/s | p50 ms / request | p99 ms / request | ratio to decode only |")
    print("|---|---:|---:|---:|---:|")
    print(f"| decode only (baseline) | {n / baseline:,.0f} | - | - | 1.0x |")
    print(
        f"| verify + parse + log + suppress | {n / elapsed:,.0f} | {pct(latencies, 50):.2f} "
        f"| {pct(latencies, 99):.2f} | {elapsed / baseline:.1f}x |"
    )
    print(
        f"| replay of all (duplicates dropped) | {n / replay:,.0f} | "
        f"{pct(replay_latencies, 50):.2f} | {pct(replay_latencies, 99):.2f} | "
        f"{replay / baseline:.1f}x |"
    )
    print(
        f"\nLog after the run: {stats.delivered:,} delivered, {stats.bounced:,} bounced, "
        f"{stats.complained:,} complained; {suppressed:,} recipients suppressed."
    )


if __name__ == "__main__":
    main()
