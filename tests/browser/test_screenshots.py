"""scripts/screenshots.py makes the README's pictures: PNGs of the e-mail at 600 and 375 px."""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.browser.chromium import Browser

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notifykit_screenshots", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_writes_checked_screenshots(browser: Browser, tmp_path: Path) -> None:
    """take() renders, checks and photographs the e-mail (main() adds only the browser)."""
    assert load_script().take(browser, tmp_path) is True

    desktop = png_size(tmp_path / "order_confirmation-desktop.png")
    mobile = png_size(tmp_path / "order_confirmation-mobile.png")
    assert 600 == desktop[0]
    assert 375 == mobile[0]
    assert desktop[1] > 600  # the whole e-mail, not an empty window
    assert mobile[1] > desktop[1]  # narrower, so taller


def test_the_script_without_a_browser_says_why(tmp_path: Path) -> None:
    """No chromium on PATH: exit 2 and the apt-get line, no traceback."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    env.pop("NOTIFYKIT_CHROMIUM", None)
    env.pop("NOTIFYKIT_CHROMEDRIVER", None)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )

    assert 2 == result.returncode
    assert "Traceback" not in result.stderr
    assert "chromium" in result.stderr or "selenium is not installed" in result.stderr
    assert [] == list(tmp_path.iterdir())
