"""ConsoleTransport prints the message as it would be sent, text part included."""

from __future__ import annotations

import io

import notifykit as nk
from notifykit.transports.console import ConsoleTransport


def test_html_only_mail_shows_the_derived_text_part() -> None:
    """An HTML-only Email is sent with a text part derived from the HTML: the console shows it."""
    out = io.StringIO()
    message = nk.Email(
        to="asha@example.com",
        subject="Shipped",
        html="<h1>Your order</h1><p>Order <b>A-1042</b> has shipped.</p>",
        sender="shop@example.com",
    )
    receipt = ConsoleTransport(out).send(message)
    printed = out.getvalue()
    assert "--- text/plain (derived from the HTML) ---" in printed
    assert "Order A-1042 has shipped." in printed
    assert message.body_text is not None
    assert message.body_text in printed
    assert receipt.simulated


def test_given_text_is_printed_as_is_and_opt_out_prints_none() -> None:
    """A given text part is labelled plainly; derive_text=False prints no text part."""
    out = io.StringIO()
    ConsoleTransport(out).send(
        nk.Email(
            to="a@example.com", subject="s", text="Hello", html="<p>Hi</p>", sender="b@example.com"
        )
    )
    assert "--- text/plain ---\nHello" in out.getvalue()
    out = io.StringIO()
    ConsoleTransport(out).send(
        nk.Email(
            to="a@example.com",
            subject="s",
            html="<p>Hi</p>",
            sender="b@example.com",
            derive_text=False,
        )
    )
    assert "text/plain" not in out.getvalue()
