"""notifykit's pytest plugin (registered through the ``pytest11`` entry point).

Provides the ``notifykit_outbox`` fixture: inside the test, every message sent
through a notifykit transport is captured in the list it returns and not
delivered, and retry waits are zero.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifykit.message import Message
from notifykit.testing import capture_sent, no_backoff


@pytest.fixture
def notifykit_outbox() -> Iterator[list[Message]]:
    """The messages this test sent through notifykit, captured instead of delivered."""
    with no_backoff(), capture_sent() as outbox:
        yield outbox
