"""The contract every transport in notifykit passes.

A test module subclasses :class:`TransportContract`, provides the
``transport`` fixture (a transport that can deliver, pointed at a real local
server or fake provider), and lists the ``secrets`` that must never leak.
``assert_delivered`` may be overridden to check that the server really got the
message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import notifykit as nk


class TransportContract:
    """Behaviour shared by every transport; subclass it and provide ``transport``."""

    #: Secrets given to the transport; none may appear in str/repr/errors.
    secrets: ClassVar[tuple[str, ...]] = ()

    @pytest.fixture
    def transport(self) -> Iterator[Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def make_email(self) -> nk.Email:
        return nk.Email(
            to="Asha <asha@example.com>",
            subject="Contract check",
            text="Hello from the contract test.",
            html="<p>Hello from the <b>contract</b> test.</p>",
            sender="Shop <noreply@shop.example>",
        )

    def make_sms(self) -> nk.SMS:
        return nk.SMS(
            "+919876543210",
            "Your order has shipped.",
            sender="SHOPIN",
            template_id="1001",
            variables={"order": "A-1"},
        )

    def make_message(self, channel: str) -> nk.Email | nk.SMS:
        return self.make_email() if channel == "email" else self.make_sms()

    def assert_delivered(self, transport: Any, message: nk.Email | nk.SMS) -> None:
        """Check the far side received ``message``; override where it can be seen."""

    def _channel(self, transport: Any) -> str:
        return "email" if "email" in getattr(transport, "channels", {"email"}) else "sms"

    def test_is_a_transport(self, transport: Any) -> None:
        """The transport satisfies the Transport protocol and has a string name."""
        assert isinstance(transport, nk.Transport)
        assert isinstance(transport.name, str)
        assert transport.name

    def test_send_returns_receipt(self, transport: Any) -> None:
        """A successful send returns a Receipt naming the message, the transport and one sent attempt."""
        message = self.make_message(self._channel(transport))
        receipt = transport.send(message)
        assert message.id == receipt.message_id
        inner = {t.name for t in getattr(transport, "transports", ())}
        assert receipt.transport in ({transport.name} | inner)
        assert "sent" == receipt.attempts[-1].outcome
        assert set(message.recipients) >= set(receipt.accepted)
        self.assert_delivered(transport, message)

    def test_refuses_other_channel(self, transport: Any) -> None:
        """A message for a channel the transport does not carry is a ConfigurationError, not a send."""
        channels = getattr(transport, "channels", frozenset({"email", "sms"}))
        other = {"email", "sms"} - set(channels)
        if not other:
            pytest.skip("carries both channels")
        with pytest.raises(nk.ConfigurationError):
            transport.send(self.make_message(other.pop()))

    def test_context_manager_and_reuse(self, transport: Any) -> None:
        """The transport is a context manager; close() is idempotent and a closed transport can send again."""
        message = self.make_message(self._channel(transport))
        with transport as t:
            assert t is transport
            t.send(message)
        transport.close()
        transport.close()
        receipt = transport.send(self.make_message(self._channel(transport)))
        assert "sent" == receipt.attempts[-1].outcome

    def test_no_secret_in_str_or_repr(self, transport: Any) -> None:
        """No secret given to the transport appears in its str(), repr() or name."""
        for text in (str(transport), repr(transport), transport.name):
            for secret in self.secrets:
                assert secret not in text
