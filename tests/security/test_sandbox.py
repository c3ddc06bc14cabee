"""The template sandbox: a fixed Jinja, an immutable sandbox, no symlink out of the folder.

Limits on the work and output of a sandboxed render, and the premailer depth
check, are tested further down in this file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jinja2
import pytest

from notifykit.errors import TemplateError
from notifykit.templates import TemplateRenderer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


# --------------------------------------------------------------------------- Jinja version


def test_pyproject_requires_a_jinja_without_the_attr_format_escape() -> None:
    """Jinja 3.1.5 lets ``|attr("format")`` out of the sandbox: 3.1.6 is the floor."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["dependencies"] if d.lower().startswith("jinja2")]
    assert 1 == len(pins), pins
    floor = pins[0].split(">=", 1)[1].split(",")[0].strip()
    assert _version(floor) >= (3, 1, 6), pins[0]


def test_the_attr_format_escape_is_refused() -> None:
    """The 3.1.5 escape (str.format reached through |attr) ends in a TemplateError."""
    assert _version(jinja2.__version__) >= (3, 1, 6)
    payload = (
        "{% block subject %}"
        "{{ '{0.__class__.__init__.__globals__}' | attr('format') }}"
        "{% endblock %}"
    )
    renderer = TemplateRenderer.from_dict({"t": payload}, sandboxed=True)
    try:
        rendered = renderer.render("t", {})
    except TemplateError:
        return
    assert "environ" not in rendered.subject
    assert "__builtins__" not in rendered.subject


# --------------------------------------------------------------------------- immutable


@pytest.mark.parametrize(
    "method",
    [
        "cfg.update({'admin': True})",
        "items.append(9)",
        "items.pop()",
        "cfg.clear()",
        "cfg.setdefault('a', 1)",
    ],
)
def test_the_sandbox_cannot_change_the_callers_objects(method: str) -> None:
    """sandboxed=True is Jinja's immutable sandbox: no mutating method of a list or dict."""
    cfg = {"admin": False}
    items = [1, 2]
    template = f"{{% block subject %}}{{{{ {method} }}}}{{% endblock %}}"
    renderer = TemplateRenderer.from_dict({"t": template}, sandboxed=True)
    with pytest.raises(TemplateError, match="sandbox"):
        renderer.render("t", {"cfg": cfg, "items": items})
    assert {"admin": False} == cfg
    assert [1, 2] == items


def test_the_html_part_is_immutable_too() -> None:
    """The compiled HTML path renders in the same immutable sandbox."""
    cfg = {"admin": False}
    template = "{% block html %}<p>{{ cfg.update({'admin': True}) }}</p>{% endblock %}"
    with pytest.raises(TemplateError):
        TemplateRenderer.from_dict({"t": template}, sandboxed=True).render("t", {"cfg": cfg})
    assert {"admin": False} == cfg


# --------------------------------------------------------------------------- symlinks


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("{% block subject %}TOP-SECRET{% endblock %}", encoding="utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "ok.html").write_text("{% block subject %}fine{% endblock %}", encoding="utf-8")
    (templates / "leak.html").symlink_to(secret)
    (templates / "inside.html").symlink_to(templates / "ok.html")
    (templates / "sub").symlink_to(tmp_path, target_is_directory=True)
    (templates / "mail.html").write_text(
        '{% block html %}<link rel="stylesheet" href="evil.css"><p>x</p>{% endblock %}',
        encoding="utf-8",
    )
    (tmp_path / "outside.css").write_text("p { color: red }", encoding="utf-8")
    (templates / "evil.css").symlink_to(tmp_path / "outside.css")
    return templates


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
@pytest.mark.parametrize("sandboxed", [False, True])
def test_a_symlink_out_of_the_folder_is_refused(folder: Path, sandboxed: bool) -> None:
    """A template that is a symlink to a file outside the folder is a TemplateError."""
    renderer = TemplateRenderer.from_directory(folder, sandboxed=sandboxed)
    with pytest.raises(TemplateError, match="outside the template directory"):
        renderer.render("leak.html")
    with pytest.raises(TemplateError, match="outside the template directory"):
        renderer.render("sub/secret.txt")
    assert "fine" == renderer.render("inside.html").subject  # a symlink inside is fine


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_an_include_or_a_stylesheet_through_a_symlink_is_refused(folder: Path) -> None:
    """Includes and linked stylesheets go through the same check."""
    (folder / "inc.html").write_text(
        "{% block subject %}{% include 'leak.html' %}{% endblock %}", encoding="utf-8"
    )
    renderer = TemplateRenderer.from_directory(folder, sandboxed=True)
    with pytest.raises(TemplateError, match="outside"):
        renderer.render("inc.html")
    with pytest.raises(TemplateError, match="outside"):
        renderer.render("mail.html")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_follow_symlinks_opts_in(folder: Path) -> None:
    """``follow_symlinks=True`` restores Jinja's plain loader."""
    renderer = TemplateRenderer.from_directory(folder, follow_symlinks=True)
    assert "TOP-SECRET" == renderer.render("leak.html").subject


# --------------------------------------------------------------------------- deep HTML

DEEP_TEMPLATE = (
    "{% block subject %}s{% endblock %}"
    "{% block html %}<style>p { color: red }</style><p>before</p>{{ body|safe }}"
    "<p>THE-END</p>{% endblock %}"
)


def _nested(depth: int) -> str:
    return "<div>" * depth + "DEEPEST" + "</div>" * depth + "<p>AFTER</p>"


@pytest.mark.parametrize("compile", [True, False])
def test_premailer_never_sends_html_it_would_truncate(compile: bool) -> None:
    """A |safe body 300 <div>s deep: premailer would drop its end, so the render fails."""
    renderer = TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}, compile=compile)
    with pytest.raises(TemplateError, match="more than 255 deep"):
        renderer.render("t", body=_nested(300))


def test_premailer_keeps_html_just_under_the_limit() -> None:
    """200 deep is inlined whole, every element and the text after it kept."""
    rendered = TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}).render("t", body=_nested(200))
    html = rendered.html or ""
    assert 200 == html.count("<div")
    assert "DEEPEST" in html
    assert "AFTER" in html
    assert "THE-END" in html
    assert 'style="color:red"' in html


def test_a_failed_deep_message_is_not_sent() -> None:
    """Through the Notifier: the message fails with a TemplateError; nothing goes out."""
    import notifykit as nk

    memory = nk.MemoryTransport()
    notifier = nk.Notifier(
        email=memory,
        templates=TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}),
        sender="shop@example.com",
    )
    with pytest.raises(TemplateError):
        notifier.send_email("t", "a@example.com", {"body": _nested(300)})
    assert [] == memory.outbox


def test_css_inline_keeps_deep_html() -> None:
    """css-inline (html5ever) has no such limit: the 300-deep body is sent whole."""
    pytest.importorskip("css_inline")
    renderer = TemplateRenderer.from_dict({"t": DEEP_TEMPLATE}, inliner="css_inline")
    html = renderer.render("t", body=_nested(300)).html or ""
    assert 300 == html.count("<div")
    assert "AFTER" in html
    assert "THE-END" in html
