"""The MSG91, Fast2SMS and HTTP-plumbing test suites, run again through ``asend``.

The tests of ``tests/transports/test_msg91.py``, ``test_fast2sms.py`` and
``test_http.py`` talk to the loopback SMS fake (real HTTP on 127.0.0.1). Here
they run a second time with ``send``/``close`` of the SMS transports going
through ``asend``/``aclose`` on ``httpx.AsyncClient``: the same request
builders, answer parsers and error mapping serve both paths.
"""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from notifykit.transports.fast2sms import Fast2SMSTransport
from notifykit.transports.msg91 import MSG91Transport
from tests.asyncio.conftest import LoopThread, through_asend
from tests.transports.conftest import *  # noqa: F403 - its fixtures (the SMS fake)
from tests.transports.test_fast2sms import *  # noqa: F403 - the same tests, the async path
from tests.transports.test_http import *  # noqa: F403
from tests.transports.test_msg91 import *  # noqa: F403


@pytest.fixture(autouse=True)
def _async_path(monkeypatch: pytest.MonkeyPatch, loop_thread: LoopThread) -> None:
    through_asend(monkeypatch, loop_thread, MSG91Transport, Fast2SMSTransport)
