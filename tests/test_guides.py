"""The README and the guides, copied as a user copies them, against a real local SMTP server.

tests/test_docs.py runs each Python block on its own, with nothing leaving the
process. Here a page's files (Python modules, templates) are written to a
fresh folder, its programs and commands run in subprocesses as written, and
the only change is the port: ``127.0.0.1:1025`` becomes the port of an
aiosmtpd server started for the test (and ``:1026``, "a primary that is
down", a port where nothing listens).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.servers.smtp import SMTPServer

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "docs").is_dir():  # an sdist ships tests/ without docs/
    pytest.skip("docs/ is not in this tree", allow_module_level=True)

pytestmark = pytest.mark.slow

_FENCE = re.compile(r"^```(\w[\w+-]*)\n(.*?)^```", re.M | re.S)
_FILE = re.compile(r"^(?:# |\{# )(?P<path>[\w./-]+\.(?:py|html))(?: #\})?\s*$")


def blocks(page: str, language: str) -> list[str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def files_of(page: str) -> dict[str, str]:
    """The blocks whose first line names a file (``# shop/views.py``, ``{# x.html #}``)."""
    out = {}
    for lang in ("python", "jinja"):
        for body in blocks(page, lang):
            match = _FILE.match(body.splitlines()[0])
            if match:
                out[match["path"]] = body
    return out


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def local(text: str, server: SMTPServer, dead: int) -> str:
    """The page's text with the test server's port for 1025 and a closed one for 1026."""
    return text.replace("127.0.0.1:1025", f"127.0.0.1:{server.port}").replace(
        "127.0.0.1:1026", f"127.0.0.1:{dead}"
    )


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYKIT_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert 0 == result.returncode, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def notifykit(command_line: str) -> list[str]:
    """A ``notifykit ...`` line of a bash block, as argv for this interpreter."""
    argv = shlex.split(command_line.replace("\\\n", " ").split("#", 1)[0])
    assert "notifykit" == argv[0]
    return [sys.executable, "-m", "notifykit", *argv[1:]]


def subjects(server: SMTPServer) -> list[str]:
    return [str(m.message["Subject"]) for m in server.messages]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_quick_start_delivers_a_templated_logged_email(
    project: Path, smtp_server: SMTPServer
) -> None:
    """README: the plain e-mail, the template + log, `log stats`/`log tail` and `send`."""
    pytest.importorskip("aiosmtpd")
    dead = closed_port()
    [template] = blocks("README.md", "jinja")
    (project / "templates").mkdir()
    (project / "templates" / "order_shipped.html").write_text(template, encoding="utf-8")
    programs = blocks("README.md", "python")
    assert 2 == len(programs)
    env = environment()

    first = run([sys.executable, "-c", local(programs[0], smtp_server, dead)], project, env)
    second = run([sys.executable, "-c", local(programs[1], smtp_server, dead)], project, env)
    assert f"smtp:127.0.0.1:{smtp_server.port} <" in second.stdout  # transport, message id

    assert f"smtp:127.0.0.1:{smtp_server.port}" in first.stdout
    assert ["Your order has shipped", "Order A-1042 has shipped"] == subjects(smtp_server)
    shipped = smtp_server.messages[1].message
    assert "multipart/alternative" == shipped.get_content_type()
    html = shipped.get_body(("html",))
    assert html is not None
    assert "Track your parcel" in html.get_content()
    assert 'style="' in html.get_content()  # CSS inlined
    with sqlite3.connect(project / "notifykit.db") as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM events ORDER BY id")]
    assert ["queued", "sent"] == statuses

    commands = [
        line
        for body in blocks("README.md", "bash")
        for line in body.replace("\\\n", " ").splitlines()
        if line.startswith(("notifykit log", "notifykit send"))
    ]
    assert 3 == len(commands), commands
    stats, tail, send = (
        run(notifykit(local(c, smtp_server, dead)), project, env) for c in commands
    )
    assert re.search(r"order_shipped\.html\s+1\s+0\s+0\s+1\s+100%", stats.stdout)
    assert "sent" in tail.stdout
    assert "Hi" == subjects(smtp_server)[-1]
    assert "noreply@shop.example" == smtp_server.messages[-1].mail_from
    assert "sent to you@example.com" in send.stdout


def test_the_getting_started_page_fails_over_and_logs(
    project: Path, smtp_server: SMTPServer
) -> None:
    """docs/index.md: the failover example and the two `log stats` commands it describes."""
    dead = closed_port()
    [program] = blocks("docs/index.md", "python")
    env = environment()

    out = run([sys.executable, "-c", local(program, smtp_server, dead)], project, env).stdout

    assert f"('smtp:127.0.0.1:{dead}', 'transient')" in out
    assert f"('smtp:127.0.0.1:{smtp_server.port}', 'sent')" in out
    assert ["Welcome"] == subjects(smtp_server)
    by_template = run(notifykit("notifykit log stats --db notifykit.db"), project, env).stdout
    by_transport = run(
        notifykit("notifykit log stats --db notifykit.db --by transport"), project, env
    ).stdout
    assert "(none)" in by_template
    assert re.search(rf"smtp:127\.0\.0\.1:{dead}\s+0\s+1\s+0\s+1\s+0%", by_transport)


@pytest.fixture
def flask_server(project: Path, smtp_server: SMTPServer) -> Iterator[tuple[str, Path]]:
    """docs/flask.md's project, run with `flask --app shop --debug run` as the guide says."""
    pytest.importorskip("flask")
    for path, body in files_of("docs/flask.md").items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(body, encoding="utf-8")
    assert (project / "shop" / "__init__.py").is_file()
    assert (project / "shop" / "templates" / "emails" / "order_shipped.html").is_file()
    [run_block] = [b for b in blocks("docs/flask.md", "bash") if "flask --app" in b]
    [export] = [line for line in run_block.splitlines() if line.startswith("export ")]
    name, value = export.removeprefix("export ").split("=", 1)
    assert "flask --app shop --debug run &" in run_block
    port = closed_port()
    env = environment(**{name: local(shlex.split(value)[0], smtp_server, 0)})
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "shop", "--debug", "run", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the debug reloader's child is in this session
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"flask did not start:\n{out}")
                time.sleep(0.1)
        yield base, project
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def post(url: str, **form: str) -> str:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as response:
        body: str = response.read().decode()
        assert 200 == response.status
        return body


def test_the_flask_guide_runs_as_written(
    flask_server: tuple[str, Path], smtp_server: SMTPServer
) -> None:
    """docs/flask.md: both views deliver, the log is in instance/, debug mode reloads templates."""
    base, project = flask_server
    assert (project / "instance" / "notifykit.db").is_file()  # made at start-up

    assert "shipped" == post(f"{base}/orders/A-1042/ship", email="asha@example.com")
    assert "ok" == post(f"{base}/signup", email="ravi@example.com")

    assert ["Order A-1042 has shipped", "Welcome"] == subjects(smtp_server)
    assert "noreply@shop.example" == smtp_server.messages[0].mail_from
    [tail_line] = [
        line
        for b in blocks("docs/flask.md", "bash")
        for line in b.splitlines()
        if line.startswith("notifykit log tail")
    ]
    tail = run(notifykit(tail_line), project, environment()).stdout
    assert "emails/order_shipped.html" in tail
    assert tail.count(" sent ") == 2

    # --debug: an edited template is used at the next request.
    template = project / "shop" / "templates" / "emails" / "order_shipped.html"
    template.write_text(
        template.read_text(encoding="utf-8").replace("has shipped", "is on its way"),
        encoding="utf-8",
    )
    later = template.stat().st_mtime + 5
    os.utime(template, (later, later))
    post(f"{base}/orders/A-1043/ship", email="asha@example.com")
    assert "Order A-1043 is on its way" == subjects(smtp_server)[-1]


def test_the_cli_guide_send_and_render_examples_run_as_written(
    project: Path, smtp_server: SMTPServer
) -> None:
    """docs/cli.md: the files it creates, every `notifykit send` line, then `render`."""
    pytest.importorskip("aiosmtpd")
    dead = closed_port()
    bash = blocks("docs/cli.md", "bash")
    [setup] = [b for b in bash if "> report.html" in b]
    [sends] = [b for b in bash if b.startswith("export NOTIFYKIT_EMAIL_URL")]
    [renders] = [b for b in bash if b.startswith("notifykit render")]
    env = environment(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    setup_script = setup.replace("python -c", f"{shlex.quote(sys.executable)} -c")
    run(["bash", "-c", setup_script], project, env)

    lines = local(sends, smtp_server, dead).replace("\\\n", " ").splitlines()
    export = shlex.split(lines[0].removeprefix("export "))
    env.update(dict(item.split("=", 1) for item in export))
    commands = [line for line in lines[1:] if line.startswith("notifykit ")]
    assert 7 == len(commands), commands
    for command in commands:
        run(notifykit(command), project, env)
    got = subjects(smtp_server)
    assert 8 == len(got), got  # the dry run sends nothing
    assert {"Backup finished", "Report", "Your invoice", "Order A-10042 confirmed"} <= set(got)
    assert 4 == sum(s.startswith("Order A-104") and s.endswith("has shipped") for s in got)
    invoice = next(m for m in smtp_server.messages if m.message["Subject"] == "Your invoice")
    assert ["invoice.pdf"] == [a.get_filename() for a in invoice.message.iter_attachments()]

    env["BROWSER"] = "true"  # --open runs the browser command: a no-op here
    for command in renders.splitlines():
        run(notifykit(command), project, env)
    assert (project / "previews" / "order_shipped.preview.html").is_file()


def test_the_django_guide_runs_as_written(project: Path, smtp_server: SMTPServer) -> None:
    """docs/django.md, steps 1-3 and the commands, in a fresh `startproject` project."""
    pytest.importorskip("django")
    page = "docs/django.md"
    bash = blocks(page, "bash")
    python = blocks(page, "python")
    text = (ROOT / page).read_text(encoding="utf-8")
    env = environment(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    py = shlex.quote(sys.executable)

    # 1. `django-admin startproject mysite .`, as the guide suggests
    assert "`django-admin startproject mysite .`" in text
    run([sys.executable, "-m", "django", "startproject", "mysite", "."], project, env)

    # 2. settings: the app into the existing INSTALLED_APPS, the rest at the end
    [conf] = [b for b in python if 'os.environ["NOTIFYKIT_EMAIL_URL"]' in b]
    apps = re.search(r"^INSTALLED_APPS = \[\n(.*?)^\]\n", conf, re.M | re.S)
    assert apps is not None
    settings = project / "mysite" / "settings.py"
    source = settings.read_text(encoding="utf-8")
    added = "".join(line + "\n" for line in apps[1].splitlines() if line.strip().startswith('"'))
    assert '"notifykit.contrib.django"' in added
    source = source.replace("INSTALLED_APPS = [\n", "INSTALLED_APPS = [\n" + added, 1)
    dirs = '"DIRS": [BASE_DIR / "templates"]'
    assert f"`{dirs}`" in text  # step 3 asks for the project's template folder
    assert "'DIRS': []" in source
    source = source.replace("'DIRS': []", dirs) + "\n" + conf.replace(apps[0], "")
    settings.write_text(source, encoding="utf-8")
    for path, body in files_of(page).items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(body, encoding="utf-8")

    [export] = [b for b in bash if b.startswith("export NOTIFYKIT_EMAIL_URL")]
    env.update(
        dict([shlex.split(local(export, smtp_server, 0).removeprefix("export "))[0].split("=", 1)])
    )
    [setup] = [b for b in bash if "manage.py migrate" in b]
    run(["bash", "-e", "-c", setup.replace("python ", f"{py} ")], project, env)

    # 3. send, in `python manage.py shell`
    [send] = [b for b in python if "get_notifier().send_email(" in b]
    assert "`python manage.py shell`" in text
    run([sys.executable, "manage.py", "shell", "-c", send], project, env)
    got = {str(m.message["Subject"]): m.message for m in smtp_server.messages}
    assert {"Welcome", "Welcome, Asha"} == set(got)
    for message in got.values():
        assert "Shop <noreply@shop.example>" == str(message["From"])
        assert ["asha@example.com"] == [str(a) for a in message.get_all("To")]
    welcome = got["Welcome, Asha"].get_body(("plain",))
    assert welcome is not None
    assert "thanks for signing up" in welcome.get_content()

    # the delivery log, through the management commands
    with sqlite3.connect(project / "db.sqlite3") as db:
        rows = db.execute("SELECT status, template, transport FROM notifykit_delivery").fetchall()
    assert sorted(r[:2] for r in rows) == [("sent", ""), ("sent", "emails/welcome.html")]
    assert all(r[2].startswith("smtp:") for r in rows)
    [stats] = [b for b in bash if b.strip() == "python manage.py notifykit_stats"]
    out = run(shlex.split(stats.replace("python ", f"{py} ")), project, env).stdout
    assert out.startswith("total 2  sent 2  failed 0  queued 0  success 100.0%"), out
    run(
        [sys.executable, "manage.py", "notifykit_cleanup", "--days", "90", "--dry-run"],
        project,
        env,
    )
