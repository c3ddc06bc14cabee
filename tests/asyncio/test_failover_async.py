"""The failover and round-robin test suites, run again through ``asend``.

Every test of ``tests/transports/test_failover.py`` (scripted transports, a
fake clock), ``test_failover_simulated.py`` and ``test_failover_smtp.py``
(real aiosmtpd servers with scripted faults) is collected here a second time
with ``FailoverTransport.send``/``close`` running ``asend``/``aclose`` on an
event loop, and the inner SMTP transports on aiosmtplib: both paths make the
same decisions because they share one implementation of them
(``FailoverTransport._decide``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

from notifykit.transports.failover import FailoverTransport
from notifykit.transports.smtp import SMTPTransport
from tests.asyncio.conftest import LoopThread, through_asend
from tests.transports.test_failover import *  # noqa: F403 - the same tests, the async path
from tests.transports.test_failover_simulated import *  # noqa: F403
from tests.transports.test_failover_smtp import *  # noqa: F403


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> None:
    through_asend(monkeypatch, loop_thread, FailoverTransport, SMTPTransport)
