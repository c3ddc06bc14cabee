"""Start-up: the persistent compile cache, warm(), and errors that point at the user's lines."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import jinja2
import pytest

from notifykit.errors import ConfigurationError, TemplateError
from notifykit.templates import TemplateRenderer

from .conftest import assert_equivalent

LAYOUT = (
    "<!DOCTYPE html><html><head><style>{% include 'mail.css' %}</style></head>"
    "<body>{% block html %}{% endblock %}</body></html>"
)
CHILD = (
    '{% extends "layout.html" %}{% block subject %}Hi {{ name }}{% endblock %}'
    "{% block html %}<p class='lead'>Hi {{ name }}</p>{% endblock %}"
)


def write(folder: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        (folder / name).write_text(source, encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    write(
        folder,
        {"layout.html": LAYOUT, "mail.css": ".lead{color:#aa0000}", "welcome.html": CHILD},
    )
    return folder


# ----------------------------------------------------------------- the compile cache


def test_a_second_renderer_loads_the_analysis_from_the_cache(site: Path, tmp_path: Path) -> None:
    """The second renderer (another process, in effect) skips the analysis and renders the same."""
    cache = tmp_path / "cache"
    first = TemplateRenderer.from_directory(site, cache_dir=cache)
    expected = first.render("welcome.html", {"name": "Asha"})
    assert "compiled" == expected.strategy
    assert not first._entries["welcome.html"].from_disk
    assert [p.suffix for p in cache.iterdir()] == [".nkc"]
    second = TemplateRenderer.from_directory(site, cache_dir=cache)
    again = second.render("welcome.html", {"name": "Asha"})
    assert second._entries["welcome.html"].from_disk
    assert expected == again
    assert 'style="color: #aa0000;"' in (again.html or "")
    assert_equivalent(second, "welcome.html", {"name": "<b>&"})


@pytest.mark.parametrize(
    ("changed", "source", "expected"),
    [
        ("mail.css", ".lead{color:#0000aa}", "#0000aa"),  # an included stylesheet
        ("layout.html", LAYOUT.replace("<body>", "<body><p>New layout</p>"), "New layout"),
        ("welcome.html", CHILD.replace("Hi {{ name }}</p>", "Hello {{ name }}</p>"), "Hello"),
    ],
)
def test_a_changed_source_is_never_served_from_the_cache(
    site: Path, tmp_path: Path, changed: str, source: str, expected: str
) -> None:
    """The key covers every source the analysis read: the template, its layout, its includes."""
    cache = tmp_path / "cache"
    TemplateRenderer.from_directory(site, cache_dir=cache).render("welcome.html", {"name": "A"})
    write(site, {changed: source})
    renderer = TemplateRenderer.from_directory(site, cache_dir=cache)
    rendered = renderer.render("welcome.html", {"name": "A"})
    assert not renderer._entries["welcome.html"].from_disk
    assert expected in (rendered.html or "")
    assert_equivalent(renderer, "welcome.html", {"name": "A"})


def test_a_linked_stylesheet_that_appears_later_is_seen(tmp_path: Path) -> None:
    """A stylesheet looked for and not found is part of the key too (found later: rebuilt)."""
    folder = tmp_path / "t"
    (folder / "emails").mkdir(parents=True)
    write(folder, {"mail.css": "p{color:#111111}"})
    page = (
        '{% block html %}<html><head><link rel="stylesheet" href="mail.css"></head>'
        "<body><p>{{ x }}</p></body></html>{% endblock %}"
    )
    (folder / "emails" / "t.html").write_text(page, encoding="utf-8")
    cache = tmp_path / "cache"
    before = TemplateRenderer.from_directory(folder, cache_dir=cache).render(
        "emails/t.html", {"x": 1}
    )
    assert "#111111" in (before.html or "")
    (folder / "emails" / "mail.css").write_text("p{color:#222222}", encoding="utf-8")
    renderer = TemplateRenderer.from_directory(folder, cache_dir=cache)
    after = renderer.render("emails/t.html", {"x": 1})
    assert "#222222" in (after.html or "")
    assert not renderer._entries["emails/t.html"].from_disk


def test_templates_that_fall_back_are_cached_too(tmp_path: Path) -> None:
    """The analysis that ends in the per-message path is also spared, and its reason kept."""
    templates = {
        "t": "{% block html %}<style>.a{color:red}</style><p class='{{ c }}'>x</p>{% endblock %}"
    }
    cache = tmp_path / "cache"
    first = TemplateRenderer.from_dict(templates, cache_dir=cache).explain("t")
    renderer = TemplateRenderer.from_dict(templates, cache_dir=cache)
    assert first == renderer.explain("t")
    assert renderer._entries["t"].from_disk
    assert "per_message" == renderer.render("t", {"c": "a"}).strategy


def test_a_damaged_cache_file_is_ignored_and_rewritten(site: Path, tmp_path: Path) -> None:
    """Garbage in the cache folder never breaks a render."""
    cache = tmp_path / "cache"
    expected = TemplateRenderer.from_directory(site, cache_dir=cache).render(
        "welcome.html", {"name": "A"}
    )
    (entry,) = cache.iterdir()
    for garbage in (b"", b"NKTC1\n\x00\x00\x00\x00\x00\x00\x00\x05{]]]", os.urandom(300)):
        entry.write_bytes(garbage)
        renderer = TemplateRenderer.from_directory(site, cache_dir=cache)
        assert expected == renderer.render("welcome.html", {"name": "A"})
        assert not renderer._entries["welcome.html"].from_disk
    assert TemplateRenderer.from_directory(site, cache_dir=cache).render(
        "welcome.html", {"name": "A"}
    )


def test_the_environment_variable_turns_the_cache_off_or_moves_it(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NOTIFYKIT_TEMPLATE_CACHE=off wins over cache_dir=; a path is the default folder."""
    monkeypatch.setenv("NOTIFYKIT_TEMPLATE_CACHE", "off")
    TemplateRenderer.from_directory(site, cache_dir=tmp_path / "c1").render(
        "welcome.html", {"name": "A"}
    )
    assert not (tmp_path / "c1").exists()
    monkeypatch.setenv("NOTIFYKIT_TEMPLATE_CACHE", str(tmp_path / "c2"))
    TemplateRenderer.from_directory(site).render("welcome.html", {"name": "A"})
    assert 1 == len(list((tmp_path / "c2").iterdir()))
    TemplateRenderer.from_directory(site, cache_dir=False).render("welcome.html", {"name": "B"})
    assert 1 == len(list((tmp_path / "c2").iterdir()))


def test_the_default_folder_is_the_platform_cache(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a setting, entries go to $XDG_CACHE_HOME/notifykit/templates (Linux)."""
    if sys.platform in ("win32", "darwin"):
        pytest.skip("the XDG folder is the Linux default")
    monkeypatch.delenv("NOTIFYKIT_TEMPLATE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    TemplateRenderer.from_directory(site).render("welcome.html", {"name": "A"})
    folder = tmp_path / "xdg" / "notifykit" / "templates"
    assert 1 == len(list(folder.glob("*.nkc")))
    assert 0o700 == folder.stat().st_mode & 0o777


def test_an_unwritable_cache_folder_is_a_warning_not_an_error(
    site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rendering goes on without the cache, and says so once."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    renderer = TemplateRenderer.from_directory(site, cache_dir=blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="notifykit.templates"):
        assert "compiled" == renderer.render("welcome.html", {"name": "A"}).strategy
    assert "cannot write its template compile cache" in caplog.text


def test_several_processes_share_one_cache_folder(site: Path, tmp_path: Path) -> None:
    """Four processes compiling at once into one folder: every one renders the same, no stray files."""
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        from notifykit.templates import TemplateRenderer
        for _ in range(3):
            r = TemplateRenderer.from_directory({str(site)!r}, cache_dir={str(cache)!r})
            print(r.render("welcome.html", {{"name": "A"}}).html)
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert 1 == len({*outputs})
    assert [p.suffix for p in cache.iterdir()] == [".nkc"]


# ------------------------------------------------------------------------------- warm


def test_warm_prepares_every_notification_template(site: Path, tmp_path: Path) -> None:
    """warm() compiles each template the loader lists, skips partials, layouts and stylesheets."""
    write(
        site,
        {"partial.html": "<p>{{ x }}</p>", "sms.txt": "{% block sms %}Hi {{ name }}{% endblock %}"},
    )
    renderer = TemplateRenderer.from_directory(site, cache_dir=False)
    plans = renderer.warm()
    assert ["sms.txt", "welcome.html"] == sorted(p.template for p in plans)
    assert {"sms.txt", "welcome.html", "layout.html"} <= set(renderer._entries)
    welcome = next(p for p in plans if p.template == "welcome.html")
    assert ("compiled", "compiled") == (welcome.strategy, welcome.text_strategy)
    assert renderer._entries["welcome.html"].html_ready
    assert renderer._entries["welcome.html"].plain_ready


def test_warm_surfaces_every_broken_template(site: Path) -> None:
    """Errors are raised at start-up, all of them, with the template and line of the first."""
    write(
        site,
        {
            "broken.html": "{% block html %}\n<p>{{ name }</p>\n{% endblock %}",
            "orphan.html": '{% extends "missing.html" %}{% block html %}x{% endblock %}',
        },
    )
    renderer = TemplateRenderer.from_directory(site, cache_dir=False)
    with pytest.raises(TemplateError) as caught:
        renderer.warm()
    message = str(caught.value)
    assert "2 template(s) failed" in message
    assert "'broken.html', line 2" in message
    assert "unknown template 'missing.html'" in message
    assert ("broken.html", 2) == (caught.value.template, caught.value.lineno)


def test_warm_with_names_and_with_a_loader_that_cannot_list() -> None:
    """Names can be given; a FunctionLoader cannot list, which is a ConfigurationError."""
    sources = {"a": "{% block html %}<p>{{ x }}</p>{% endblock %}", "part": "<i>x</i>"}
    renderer = TemplateRenderer(loader=jinja2.FunctionLoader(sources.get), cache_dir=False)
    with pytest.raises(ConfigurationError, match="warm"):
        renderer.warm()
    assert ["a"] == [p.template for p in renderer.warm(["a"])]
    with pytest.raises(TemplateError, match="defines none of the blocks"):
        renderer.warm(["part"])


# ------------------------------------------------------------ errors at the user's lines


def test_a_template_error_traceback_shows_the_users_file_and_line(site: Path) -> None:
    """The traceback shows welcome.html at the line of the error, not the generated code's line."""
    write(
        site,
        {
            "welcome.html": (
                '{% extends "layout.html" %}\n'
                "{% block subject %}Welcome{% endblock %}\n"
                "{% block html %}\n"
                "<p>Hello {{ user.name }},</p>\n"
                "<p>{{ 1 // count }}</p>\n"
                "{% endblock %}\n"
            )
        },
    )
    renderer = TemplateRenderer.from_directory(site, cache_dir=False)
    path = str(site / "welcome.html")
    for context, line, kind in (
        ({"count": 1}, 4, jinja2.UndefinedError),
        ({"user": {"name": "A"}, "count": 0}, 5, ZeroDivisionError),
    ):
        with pytest.raises(TemplateError) as caught:
            renderer.render("welcome.html", context)
        assert f"template 'welcome.html', line {line}:" in str(caught.value)
        cause = caught.value.__cause__
        assert isinstance(cause, kind)
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(cause.__traceback__)]
        assert (path, line) in frames
        assert all(n <= 6 for f, n in frames if f == path), frames
