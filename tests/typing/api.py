"""The README's and the docs' main examples, type-checked by ``nox -s typing`` (never run)."""

from __future__ import annotations

from typing import Any

import notifykit as nk
from notifykit.testing import ScriptedTransport, capture_sent, no_backoff


def quick_start() -> None:
    email = nk.Email(
        to="Asha <asha@example.com>",
        subject="Your order has shipped",
        text="Order A-1042 is on its way.",
        html="<p>Order <b>A-1042</b> is on its way.</p>",
        sender="Shop <noreply@shop.example>",
    )
    transport = nk.from_dsn("failover(smtp://127.0.0.1:1025?security=none console://)")
    with transport:
        receipt = transport.send(email)
    outcomes: list[str] = [a.outcome for a in receipt.attempts]
    print(receipt.transport, outcomes)


def with_templates_and_log(order: dict[str, Any]) -> None:
    notifier = nk.Notifier(
        email=nk.from_dsn("smtp://user:pass@smtp.example.com:587"),
        templates=nk.TemplateRenderer.from_directory("templates/"),
        sinks=[nk.SQLiteSink("notifykit.db")],
        sender="Shop <noreply@shop.example>",
    )
    receipt: nk.Receipt = notifier.send_email(
        "order_shipped.html", to="asha@example.com", context={"order": order}
    )
    results = notifier.notify(
        "order_shipped.html", to=nk.Recipient(email="a@example.com", phone="+919876543210")
    )
    for channel, outcome in results.items():
        print(channel, isinstance(outcome, nk.Receipt), receipt.provider_message_id)
    notifier.close()


def failover_in_code(email: nk.Email) -> nk.Receipt:
    transport = nk.FailoverTransport(
        [
            nk.SMTPTransport("smtp.primary.example", username="app", password="x"),
            nk.SMTPTransport("smtp.backup.example", username="app", password="x"),
            nk.ConsoleTransport(),
        ],
        retry=nk.Retry(
            attempts=3, initial=1.0, multiplier=2.0, maximum=30.0, jitter=0.1, deadline=10
        ),
        cooldown=60.0,
    )
    try:
        return transport.send(email)
    except nk.AllTransportsFailed as exc:
        for error in exc.errors:
            print(error.transport, error.provider_code, error.maybe_delivered)
        raise


def sms_failover() -> nk.Receipt:
    sms = nk.FailoverTransport(
        [
            nk.MSG91Transport(authkey="fake-authkey", sender="SHOPIN"),
            nk.Fast2SMSTransport(api_key="fake-key", route="dlt", sender_id="SHOPIN"),
        ]
    )
    message = nk.SMS("98765 43210", "Order shipped", default_region="IN", template_id="1107")
    segments: int = message.segments
    print(segments, message.encoding)
    return sms.send(message)


def testing_kit(email: nk.Email) -> None:
    flaky = ScriptedTransport([nk.TransientError("451 busy"), "ok"])
    with no_backoff():
        nk.FailoverTransport([flaky]).send(email)
    with capture_sent() as outbox:
        nk.MemoryTransport().send(email)
    assert len(outbox) == 1


def bulk_pool_and_rate(rows: list[dict[str, Any]]) -> None:
    smtp = nk.SMTPTransport("smtp.example.com", connect_timeout=5, max_connections=4, rate="14/s")
    limit: nk.RateLimit | None = smtp.rate_limit
    notifier = nk.Notifier(email=smtp, templates=nk.TemplateRenderer.from_directory("t/"))
    results = notifier.send_many(
        "order_shipped.html",
        [(row["email"], row) for row in rows],
        concurrency=4,
        on_progress=lambda index, result: print(index, isinstance(result, nk.Receipt)),
    )
    simulated = [r.simulated for r in results if isinstance(r, nk.Receipt)]
    failover = nk.FailoverTransport([smtp], probe_timeout=3.0)
    print(limit, simulated, failover.probe_timeout, nk.ConsoleTransport.simulated)
