"""BaseTransport._deliver completes a transport's receipt without losing any of its fields."""

from __future__ import annotations

import attrs

import notifykit as nk
from notifykit.message import Message
from notifykit.receipt import Attempt, Receipt
from notifykit.transports.base import BaseTransport


@attrs.frozen
class _TaggedReceipt(Receipt):
    tag: str = "kept"


class _Fixed(BaseTransport):
    name = "fixed"
    channels = frozenset({"email"})

    def __init__(self, receipt: Receipt, simulated: bool = False) -> None:
        self.receipt = receipt
        self.simulated = simulated  # type: ignore[misc]

    def _send(self, message: Message) -> Receipt:
        return self.receipt


def _email() -> nk.Email:
    return nk.Email(to="a@example.com", subject="s", text="t", sender="b@example.com")


def test_the_attempt_is_added_and_every_field_kept() -> None:
    given = Receipt("m1", "fixed", "<p@x>", ["a@example.com"], {"c@example.com": "550 no"})
    got = _Fixed(given).send(_email())
    assert (got.message_id, got.transport, got.provider_message_id) == ("m1", "fixed", "<p@x>")
    assert got.accepted == ("a@example.com",)
    assert got.rejected == {"c@example.com": "550 no"}
    assert [(a.transport, a.outcome) for a in got.attempts] == [("fixed", "sent")]
    assert got.attempts[0].duration >= 0
    assert got.simulated is False


def test_a_simulated_transport_marks_its_receipt_and_keeps_given_attempts() -> None:
    attempt = Attempt("inner", "sent")
    got = _Fixed(Receipt("m2", "fixed", attempts=[attempt]), simulated=True).send(_email())
    assert got.simulated is True
    assert got.attempts == (attempt,)


def test_a_receipt_subclass_keeps_its_own_fields() -> None:
    got = _Fixed(_TaggedReceipt("m3", "fixed", tag="mine"), simulated=True).send(_email())
    assert isinstance(got, _TaggedReceipt)
    assert got.tag == "mine"
    assert got.simulated is True
    assert len(got.attempts) == 1


def test_needs_smtputf8_fast_path_and_the_parsed_path() -> None:
    assert _email().needs_smtputf8 is False
    # A non-ASCII display name or domain alone never needs SMTPUTF8.
    idn = nk.Email(to="Zoë <a@bücher.example>", subject="s", text="t", sender="b@example.com")
    assert idn.needs_smtputf8 is False
    local = nk.Email(to="josé@example.com", subject="s", text="t", sender="b@example.com")
    assert local.needs_smtputf8 is True
