"""Development sessions: those CI runs (``nox.options.sessions``); ``nox -s bench``."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
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
]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, with every extra installed."""
    session.install("-e", ".[all,dev]")
    session.run("pytest", *(session.posargs or ["-q"]))


_ASSERT_NO_EXTRAS = (
    "import importlib.util as u, sys; "
    "found = [m for m in ('httpx', 'boto3', 'django', 'flask', 'celery', 'babel', 'dotenv') "
    "if u.find_spec(m)]; sys.exit(f'extras installed: {found}' if found else 0)"
)


@nox.session
def tests_bare(session: nox.Session) -> None:
    """`import notifykit` and the core tests with no optional dependency installed."""
    session.install(".", *BARE_TEST_TOOLS)
    session.run("python", "-c", _ASSERT_NO_EXTRAS)
    session.run("python", "-c", "import notifykit as nk; print(nk.__version__, len(nk.__all__))")
    session.run("pytest", *(session.posargs or ["-q"]))


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
    session.install("-e", ".[django]", "aiosmtpd>=1.4")
    cache = session.create_tmp()  # the downloaded Django source stays here between runs
    session.run("python", "tests/django_suite/run.py", "--cache", cache, *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The bundled e-mails in headless Chromium: contrast, overflow at 375 px, link text.

    Uses the system's browser (Debian: ``apt-get install chromium chromium-driver``,
    which .ci/run does); Selenium is pointed at it and downloads nothing. A
    missing browser fails this session instead of skipping.
    """
    session.install("-e", ".[fast]", *BARE_TEST_TOOLS, "selenium>=4.20")
    session.run(
        "pytest",
        "tests/browser",
        *(session.posargs or ["-q"]),
        env={"NOTIFYKIT_REQUIRE_BROWSER": "1"},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark and write benchmarks/RESULTS.md."""
    session.install("-e", ".[all,dev]", "django", "html2text")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
