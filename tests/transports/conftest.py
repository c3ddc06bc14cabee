"""Fixtures for the transport tests: the fake SMS provider server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.sms_fake import SMSFakeServer


@pytest.fixture
def sms_fake() -> Iterator[SMSFakeServer]:
    """A fake MSG91 + Fast2SMS API on 127.0.0.1, stopped (threads joined) after the test."""
    with SMSFakeServer(hang_limit=5.0) as server:
        yield server
