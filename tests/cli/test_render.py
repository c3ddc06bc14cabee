"""``notifykit render``: preview files from bundled and user templates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifykit.cli import main

if TYPE_CHECKING:
    from tests.cli.conftest import Runner

SHIPPED = """\
{% block subject %}Order {{ order }} shipped{% endblock %}
{% block html %}<style>p { color: #333; }</style><p>Hi {{ name }}, order {{ order }} is on its way.</p>{% endblock %}
{% block sms %}Order {{ order }} shipped.{% endblock %}
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    directory = tmp_path / "tpl"
    (directory / "orders").mkdir(parents=True)
    (directory / "orders" / "shipped.html").write_text(SHIPPED, encoding="utf-8")
    (directory / "plain.html").write_text(
        "{% block subject %}Hello{% endblock %}{% block html %}<p>Hi</p>{% endblock %}"
    )
    return directory


def test_render_bundled_template_with_its_sample_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled order confirmation renders from its own sample data into three files."""
    assert 0 == main(["render", "order_confirmation", "--out", "previews"])
    out = capsys.readouterr().out
    assert "subject: Order A-10042 confirmed" in out
    previews = tmp_path / "previews"
    assert [
        "order_confirmation.preview.html",
        "order_confirmation.preview.sms.txt",
        "order_confirmation.preview.txt",
    ] == sorted(p.name for p in previews.iterdir())
    html = (previews / "order_confirmation.preview.html").read_text(encoding="utf-8")
    assert "Asha Rao" in html
    assert 'style="' in html  # CSS inlined
    text = (previews / "order_confirmation.preview.txt").read_text(encoding="utf-8")
    assert "Masala chai" in text
    sms = (previews / "order_confirmation.preview.sms.txt").read_text(encoding="utf-8")
    assert "A-10042" in sms


def test_render_user_template_with_a_context_file(
    templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--templates and --context render a user's template; the files are named after it."""
    ctx = tmp_path / "ctx.json"
    ctx.write_text(json.dumps({"order": "B-7", "name": "Ravi"}))
    code = main(
        [
            "render",
            "orders/shipped.html",
            "--templates",
            str(templates),
            "--context",
            str(ctx),
            "--out",
            str(tmp_path / "out"),
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert 0 == code
    assert "Order B-7 shipped" == doc["subject"]
    assert {"html", "text", "sms"} == set(doc["files"])
    assert str(tmp_path / "out" / "shipped.preview.html") == doc["files"]["html"]
    html = Path(doc["files"]["html"]).read_text(encoding="utf-8")
    assert '<p style="color: #333;">Hi Ravi, order B-7 is on its way.</p>' == html.strip()
    assert "Order B-7 shipped.\n" == Path(doc["files"]["sms"]).read_text(encoding="utf-8")


def test_render_without_sms_block_writes_no_sms_file(
    templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template without an sms block gets html and txt previews only, and says so."""
    assert 0 == main(["render", "plain", "--templates", str(templates), "--out", "p"])
    out = capsys.readouterr().out
    assert "(the template has no sms block)" in out
    assert ["plain.preview.html", "plain.preview.txt"] == sorted(
        p.name for p in (tmp_path / "p").iterdir()
    )


def test_render_missing_variable_names_it(
    templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A context without a variable the template uses is exit code 2 naming the variable."""
    ctx = tmp_path / "ctx.json"
    ctx.write_text(json.dumps({"order": "B-7"}))
    code = main(
        ["render", "orders/shipped.html", "--templates", str(templates), "--context", str(ctx)]
    )
    err = capsys.readouterr().err
    assert 2 == code
    assert "'name'" in err
    assert [] == list(tmp_path.glob("**/*.preview.*"))


def test_render_unknown_template_and_bad_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown template, an unreadable or non-object context: exit code 2, one line each."""
    assert 2 == main(["render", "nosuch"])
    assert "unknown template 'nosuch'" in capsys.readouterr().err
    assert 2 == main(["render", "order_confirmation", "--context", "missing.json"])
    assert "cannot read the context file missing.json" in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[1, 2]")
    assert 2 == main(["render", "order_confirmation", "--context", "list.json"])
    assert "must hold a JSON object" in capsys.readouterr().err
    assert 2 == main(["render", "x", "--templates", "no-such-dir"])
    assert "is not a directory" in capsys.readouterr().err


def test_render_open_hands_the_file_url_to_the_browser(run: Runner, tmp_path: Path) -> None:
    """--open opens file://.../NAME.html with the browser named by BROWSER."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(
        f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n", encoding="utf-8"
    )
    result = run(
        "render", "order_confirmation", "--out", "p", "--open",
        env={"BROWSER": f"{sys.executable} {browser} %s"},
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr
    assert (tmp_path / "p" / "order_confirmation.preview.html").as_uri() == opened.read_text()


def test_render_in_the_template_folder_never_overwrites_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`render welcome --templates .` (issue 16) leaves welcome.html as it was."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # the default folder goes here
    source = "{% block subject %}Hi{% endblock %}{% block html %}<p>Hi {{ name }}</p>{% endblock %}"
    (tmp_path / "welcome.html").write_text(source, encoding="utf-8")
    (tmp_path / "welcome.json").write_text('{"name": "Asha"}', encoding="utf-8")

    assert 0 == main(["render", "welcome", "--templates", "."])
    out = capsys.readouterr().out
    assert 0 == main(["render", "welcome", "--templates", ".", "--out", ".", "--force"])
    capsys.readouterr()

    assert source == (tmp_path / "welcome.html").read_text(encoding="utf-8")
    assert '{"name": "Asha"}' == (tmp_path / "welcome.json").read_text(encoding="utf-8")
    # The default is a new temporary folder: nothing was written here but --out's files.
    [html_line] = [line for line in out.splitlines() if line.strip().startswith("html")]
    written = Path(html_line.split(None, 1)[1])
    assert temp == written.parent.parent
    assert written.parent.name.startswith("notifykit-render-welcome-")
    assert "<p>Hi Asha</p>" in written.read_text(encoding="utf-8")
    assert (tmp_path / "welcome.preview.html").is_file()


def test_render_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing preview is kept (exit 2) unless --force; then it is replaced."""
    (tmp_path / "p").mkdir()
    existing = tmp_path / "p" / "order_confirmation.preview.html"
    existing.write_text("mine", encoding="utf-8")

    assert 2 == main(["render", "order_confirmation", "--out", "p"])
    err = capsys.readouterr().err
    assert "already exists: pass --force" in err
    assert "mine" == existing.read_text(encoding="utf-8")
    assert ["order_confirmation.preview.html"] == [p.name for p in (tmp_path / "p").iterdir()]

    assert 0 == main(["render", "order_confirmation", "--out", "p", "--force"])
    assert "Asha Rao" in existing.read_text(encoding="utf-8")


def test_render_never_writes_over_its_context_file_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A context file named like a preview is a source: refused even with --force."""
    source = "{% block subject %}S{% endblock %}{% block html %}<p>x</p>{% endblock %}"
    (tmp_path / "x.html").write_text(source, encoding="utf-8")
    ctx = tmp_path / "x.preview.txt"
    ctx.write_text("{}", encoding="utf-8")

    code = main(["render", "x", "--templates", ".", "--out", ".", "--context", str(ctx), "--force"])

    assert 2 == code
    assert "never writes over" in capsys.readouterr().err
    assert "{}" == ctx.read_text(encoding="utf-8")
    assert source == (tmp_path / "x.html").read_text(encoding="utf-8")
    assert not (tmp_path / "x.preview.html").exists()  # checked before anything is written
