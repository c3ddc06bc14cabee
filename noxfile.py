"""Development sessions: those CI runs (``nox.options.sessions``); ``nox -s bench``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nox

# uv creates the virtualenvs and installs into them (`python3 -m pip install nox uv`,
# as the README's test command does); without uv, nox falls back to virtualenv.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
# What CI runs (.ci/run and the README list the same sessions in this order).
nox.options.sessions = [
    "tests",
    "tests_bare",
    "typing",
    "lint",
    "docs",
    "demo",
    "django_suite",
    "browser",
]

# The test tools the bare run needs: no optional dependency of notifykit's among them.
BARE_TEST_TOOLS = [
    "pytest>=8",
    "pytest-timeout>=2.2",
    "hypothesis>=6.100",
    "aiosmtpd>=1.4",
    "trustme>=1.1",
    "pytest-xdist>=3.5",
]

# pytest's default arguments: one worker per CPU (the tests are xdist-safe: random
# ports, tmp_path, no shared files); worksteal evens out the few long tests.
PYTEST_ARGS = ["-q", "-n", "auto", "--dist", "worksteal"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, with every extra installed."""
    session.install("-e", ".[all,dev]")
    session.run("pytest", *(session.posargs or PYTEST_ARGS))


# The optional dependencies (import names) of the extras the bare run must not have.
# aiosmtpd (demo) and cryptography (webhooks) are missing here: the bare run's own test
# tools bring them (aiosmtpd for the test servers; trustme needs cryptography), so for
# those _ASSERT_NOT_IMPORTED checks that `import notifykit` leaves them alone.
_EXTRAS = (
    "httpx",
    "boto3",
    "django",
    "flask",
    "celery",
    "babel",
    "dotenv",
    "aiosmtplib",
    "fastapi",
)
_ASSERT_NO_EXTRAS = (
    "import importlib.util as u, sys; "
    f"found = [m for m in {_EXTRAS!r} "
    "if u.find_spec(m)]; sys.exit(f'extras installed: {found}' if found else 0)"
)
_ASSERT_NOT_IMPORTED = (
    "import sys, notifykit; "
    f"found = sorted(set({(*_EXTRAS, 'aiosmtpd', 'cryptography')!r}) & set(sys.modules)); "
    "sys.exit(f'import notifykit imported {found}' if found else 0)"
)


@nox.session
def tests_bare(session: nox.Session) -> None:
    """`import notifykit` and the core tests with no optional dependency installed."""
    session.install(".", *BARE_TEST_TOOLS)
    session.run("python", "-c", _ASSERT_NO_EXTRAS)
    session.run("python", "-c", _ASSERT_NOT_IMPORTED)
    session.run("python", "-c", "import notifykit as nk; print(nk.__version__, len(nk.__all__))")
    session.run("pytest", *(session.posargs or PYTEST_ARGS))


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[all,dev]")
    session.run("mypy", "--strict", "notifykit", "tests/typing")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    session.install("-e", ".[all]", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.25")
    site = os.path.join(session.create_tmp(), "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main job, from a fresh virtualenv: install with the demo extra, run the demo."""
    session.install(".[demo]")
    session.run("notifykit", "demo")


@nox.session
def django_suite(session: nox.Session) -> None:
    """Django's own mail tests (tests/mail of the installed Django) against notifykit's backend."""
    # pip: run.py fetches the Django source with `pip download` (uv's venvs have no pip).
    session.install("-e", ".[django]", "aiosmtpd>=1.4", "pip")
    cache = session.create_tmp()  # the downloaded Django source stays here between runs
    session.run("python", "tests/django_suite/run.py", "--cache", cache, *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The bundled e-mails in headless Chromium: contrast, overflow at 375 px, link text.

    Uses the system's browser (Debian: ``apt-get install chromium chromium-driver``,
    which .ci/run does); Selenium is pointed at it and downloads nothing. A
    missing browser fails this session instead of skipping. When .ci/run installs
    the browser in the background, ``NOTIFYKIT_BROWSER_INSTALL`` names the file
    where that install's exit status appears; this session waits for it.
    """
    session.install("-e", ".[fast]", *BARE_TEST_TOOLS, "selenium>=4.20")
    _wait_for_browser_install(session)
    session.run(
        "pytest",
        "tests/browser",
        *(session.posargs or ["-q"]),
        env={"NOTIFYKIT_REQUIRE_BROWSER": "1"},
    )


def _wait_for_browser_install(session: nox.Session, limit: float = 900) -> None:
    """Wait (at most ``limit`` seconds) for .ci/run's background chromium install."""
    status = os.environ.get("NOTIFYKIT_BROWSER_INSTALL")
    if not status:
        return
    path, deadline = Path(status), time.monotonic() + limit
    if not path.exists():
        session.log("waiting for the background chromium install (.ci/run)")
    while not path.exists():
        if time.monotonic() > deadline:
            session.error(f"the chromium install did not finish in {limit:.0f} s")
        time.sleep(1)
    code = path.read_text().strip()
    if code != "0":
        log = path.with_suffix(".log")
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        session.error(f"the chromium install failed (exit {code}):\n{tail}")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark and write benchmarks/RESULTS.md."""
    session.install("-e", ".[all,dev]", "django", "html2text")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
