"""The template preview as a Flask blueprint, with Flask's test client: debug only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

flask = pytest.importorskip("flask")

from notifykit.contrib.flask import preview_blueprint  # noqa: E402
from notifykit.transports.memory import MemoryTransport  # noqa: E402
from tests.preview.samples import write_templates  # noqa: E402


def make_app(folder: Path, *, debug: bool, outbox: MemoryTransport | None = None) -> Any:
    app = flask.Flask(__name__)
    app.debug = debug
    app.register_blueprint(
        preview_blueprint(folder, send_via=outbox), url_prefix="/_notifykit/preview"
    )
    return app


def test_not_in_debug_mode_it_is_a_404(tmp_path: Path) -> None:
    """A production app (debug off) does not serve the preview."""
    client = make_app(write_templates(tmp_path), debug=False).test_client()
    assert 404 == client.get("/_notifykit/preview/").status_code
    assert 404 == client.get("/_notifykit/preview/view/welcome.html").status_code


def test_in_debug_mode_the_pages_answer_under_the_prefix(tmp_path: Path) -> None:
    """Index links carry the blueprint's prefix; a template page renders; state is JSON."""
    client = make_app(write_templates(tmp_path), debug=True).test_client()
    index = client.get("/_notifykit/preview/")
    assert 200 == index.status_code
    assert 'href="/_notifykit/preview/view/welcome.html"' in index.get_data(as_text=True)
    page = client.get("/_notifykit/preview/view/invoice.html")
    assert 200 == page.status_code
    assert 'id="error-line">, line 4<' in page.get_data(as_text=True)
    assert "version" in client.get("/_notifykit/preview/api/state").get_json()


def test_send_a_test_through_the_blueprint(tmp_path: Path) -> None:
    """The page's token sends through the configured transport; a wrong one is refused."""
    outbox = MemoryTransport()
    client = make_app(write_templates(tmp_path), debug=True, outbox=outbox).test_client()
    page = client.get("/_notifykit/preview/view/welcome.html").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = {"template": "welcome.html", "to": "asha@example.com"}
    assert 403 == client.post("/_notifykit/preview/send", data={**form, "csrf": "x"}).status_code
    assert 0 == len(outbox)
    ok = client.post("/_notifykit/preview/send", data={**form, "csrf": token.group(1)})
    assert 200 == ok.status_code
    assert 1 == len(outbox)
