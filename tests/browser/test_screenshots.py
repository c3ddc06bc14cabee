"""scripts/screenshots.py makes the README's pictures: PNGs of the e-mail at 600 and 375 px."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.browser.chromium import Browser

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_script_writes_checked_screenshots(browser: Browser, tmp_path: Path) -> None:
    # browser: skips (or fails under NOTIFYKIT_REQUIRE_BROWSER) like the other browser tests
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    desktop = png_size(tmp_path / "order_confirmation-desktop.png")
    mobile = png_size(tmp_path / "order_confirmation-mobile.png")
    assert 600 == desktop[0]
    assert 375 == mobile[0]
    assert desktop[1] > 600  # the whole e-mail, not an empty window
    assert mobile[1] > desktop[1]  # narrower, so taller
