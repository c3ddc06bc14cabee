"""Under DEBUG, an edited notification template shows at the next render, as Django's own do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from notifykit.contrib.django import get_notifier, reset_notifier


@pytest.fixture(autouse=True)
def _fresh_notifier() -> Any:
    reset_notifier()
    yield
    reset_notifier()


@pytest.mark.parametrize("debug", [True, False])
def test_debug_reloads_edited_templates_at_once(settings: Any, tmp_path: Path, debug: bool) -> None:
    template = tmp_path / "hello.html"
    template.write_text("{% block subject %}Old{% endblock %}{% block text %}x{% endblock %}")
    settings.DEBUG = debug
    settings.NOTIFYKIT = {"EMAIL_URL": "memory://", "SINKS": [], "TEMPLATES": [tmp_path]}
    renderer: Any = get_notifier().templates
    assert "Old" == renderer.render("hello.html").subject

    template.write_text("{% block subject %}New{% endblock %}{% block text %}x{% endblock %}")
    later = os.stat(template).st_mtime + 5
    os.utime(template, (later, later))

    assert renderer.debug is debug
    if debug:  # no 1 s grace: the very next render sees the edit
        assert "New" == renderer.render("hello.html").subject
