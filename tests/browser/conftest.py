"""The browser fixture: one headless system Chromium for the whole session.

The tests skip when selenium or chromium/chromedriver is missing (the regular
``tests`` session), unless ``NOTIFYKIT_REQUIRE_BROWSER=1`` is set, as
``nox -s browser`` does: there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.chromium import missing_browser

if TYPE_CHECKING:
    from tests.browser.chromium import Browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """A headless Chromium with a fresh profile (see tests/browser/chromium.py)."""
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("NOTIFYKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NOTIFYKIT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from tests.browser.chromium import chromium_browser

    with chromium_browser() as b:
        yield b
