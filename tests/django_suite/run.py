"""Run Django's own mail tests against notifykit's e-mail backend.

Usage: ``python tests/django_suite/run.py [--cache DIR] [runtests.py options]``
(``nox -s django_suite`` does this). Steps:

1. download the source of the *installed* Django version
   (``pip download --no-binary :all: --no-deps django==X``) into the cache
   folder, unless it is there already;
2. extract the parts of its ``tests/`` folder that ``runtests.py`` needs for
   the ``mail`` tests;
3. copy ``notifykit_mail_tests.py`` next to Django's ``mail/tests.py`` (as
   ``mail/test_notifykit.py``) and run ``runtests.py mail.test_notifykit``.

The exit status is runtests.py's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# What runtests.py needs to run tests/mail: itself, its default settings, the URLconf.
NEEDED = ("runtests.py", "test_sqlite.py", "urls.py", "mail/")


def download(version: str, cache: Path) -> Path:
    """The Django sdist for ``version`` in ``cache``, downloaded when missing."""
    for candidate in sorted(cache.glob(f"[dD]jango-{version}.tar.gz")):
        return candidate
    print(f"django_suite: downloading the Django {version} source into {cache}", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-binary",
            ":all:",
            "--no-deps",
            f"django=={version}",
            "--dest",
            str(cache),
        ],
        check=True,
    )
    found = sorted(cache.glob(f"[dD]jango-{version}.tar.gz"))
    if not found:
        sys.exit(f"django_suite: pip did not leave django-{version}.tar.gz in {cache}")
    return found[0]


def extract(sdist: Path, version: str, cache: Path) -> Path:
    """Extract the needed part of the sdist's tests/ folder; return that folder."""
    root = cache / f"django-{version}-tests"
    tests = root / f"django-{version}" / "tests"
    if (tests / "mail" / "tests.py").is_file():
        return tests
    prefix = f"django-{version}/tests/"
    with tarfile.open(sdist) as archive:
        members = [
            m
            for m in archive.getmembers()
            if m.name.startswith(prefix) and m.name[len(prefix) :].startswith(NEEDED)
        ]
        if hasattr(tarfile, "data_filter"):
            archive.extractall(root, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            archive.extractall(root, members=members)
    if not (tests / "mail" / "tests.py").is_file():
        sys.exit(f"django_suite: {sdist.name} has no tests/mail/tests.py")
    return tests


def main(argv: list[str] | None = None) -> int:
    """Download, extract, copy the notifykit tests in, run them; runtests.py's exit status."""
    import django

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="where the Django source is kept")
    args, runtests_args = parser.parse_known_args(argv)
    version = django.__version__
    cache = args.cache or Path(tempfile.gettempdir()) / "notifykit-django-suite"
    cache.mkdir(parents=True, exist_ok=True)
    tests = extract(download(version, cache), version, cache)
    shutil.copyfile(HERE / "notifykit_mail_tests.py", tests / "mail" / "test_notifykit.py")
    command = [
        sys.executable,
        "runtests.py",
        "--settings=test_sqlite",
        "--parallel=1",
        *(runtests_args or ["-v", "2"]),
        "mail.test_notifykit",
    ]
    print(f"django_suite: Django {version}: {' '.join(command[1:])}", flush=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=tests, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
