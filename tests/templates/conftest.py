"""Shared helpers for the template tests: the real-world corpus and the reference path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from notifykit.templates import TemplateRenderer
from notifykit.templates._inline import normalise
from notifykit.templates._text import html_to_text

# The renderers of these tests use the persistent compile cache, as by default,
# but in a fresh folder: never entries left by another version of the code.
os.environ.setdefault(
    "NOTIFYKIT_TEMPLATE_CACHE", tempfile.mkdtemp(prefix="notifykit-test-template-cache-")
)

#: Real-world e-mail templates (read-only test data): the copy in
#: ``tests/templates/corpus`` (see its README), or the folder ``NOTIFYKIT_CORPUS`` names.
CORPUS = Path(os.environ.get("NOTIFYKIT_CORPUS", Path(__file__).resolve().parent / "corpus"))


@pytest.fixture
def corpus() -> Path:
    """The corpus folder; tests that need it are skipped when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"the template corpus is not at {CORPUS}")
    return CORPUS


def reference_html(renderer: TemplateRenderer, name: str, context: Mapping[str, Any]) -> str:
    """Jinja render, then per-message inlining: what the compiled path must equal."""
    plain = renderer.plain_html(name, context)
    assert plain is not None
    return renderer.inline(name, plain)


def reference_text(renderer: TemplateRenderer, name: str, context: Mapping[str, Any]) -> str:
    """The text derived per message from the Jinja-rendered HTML."""
    plain = renderer.plain_html(name, context)
    assert plain is not None
    return html_to_text(plain)


def assert_equivalent(
    renderer: TemplateRenderer, name: str, context: Mapping[str, Any], engine: str | None = None
) -> None:
    """The renderer's html and text equal the per-message reference (normalised).

    ``engine`` (whose parser normalises both sides) defaults to the renderer's own.
    """
    engine = engine or renderer.inliner or "premailer"
    rendered = renderer.render(name, context)
    assert rendered.html is not None
    assert normalise(reference_html(renderer, name, context), engine) == normalise(
        rendered.html, engine
    )
    if rendered.text_strategy != "block":
        assert reference_text(renderer, name, context) == rendered.text
