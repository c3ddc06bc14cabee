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

from collections.abc import Iterator

import pytest

pytest.importorskip("aiosmtpd")
pytest.importorskip("aiosmtplib")

from notifykit.transports.failover import FailoverTransport
from notifykit.transports.smtp import SMTPTransport
from tests.asyncio.conftest import LoopThread, through_asend
from tests.transports.test_failover import *  # noqa: F403 - the same tests, the async path
from tests.transports.test_failover_simulated import *  # noqa: F403
from tests.transports.test_failover_smtp import *  # noqa: F403
from tests.transports.test_failover_smtp import _opened


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> Iterator[None]:
    through_asend(monkeypatch, loop_thread, FailoverTransport, SMTPTransport)
    yield
    # What test_failover_smtp's own (underscored, so not star-imported) fixture does,
    # here while close() still runs aclose() on the loop that holds the connections.
    while _opened:
        _opened.pop().close()
