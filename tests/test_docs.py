"""Every ```python block of README.md and docs/*.md is executed or type-checked.

How a block is checked depends on what it is:

- a **doctest** (it starts with ``>>>``) is run by :mod:`doctest` and its
  output compared;
- a **complete program** (it defines every name it uses) is executed, and
  so is a *fragment* whose missing names all have a value in
  :data:`RUNTIME` (``nk``, ``email``...). They run in a temporary working
  directory, with fake provider keys in the environment and inside
  :func:`notifykit.testing.capture_sent`, so nothing leaves the process
  (blocks that import ``notifykit.testing`` set up their own transports and
  run as they are). A few are not run, for the reason in :data:`NOT_EXECUTED`;
- every block but the doctests is **type-checked** with ``mypy --strict``. A
  fragment (a block that uses names an earlier block or the reader's
  application defines: ``email``, ``order``...) is checked with the
  declarations of those names from :data:`DECLARATIONS`, and nothing else.

A block whose first line is a file name (``# shop/tasks.py``) is also that
file, for the type checks and the runs, so the blocks of a page can import
each other. mypy runs once, over every block, with its cache in
``.mypy_cache/docs``: the type checks take seconds.

Other fences must name their language (```bash, ```text, ```jinja...), so
that no Python block goes unchecked by mistake.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import doctest
import importlib.util
import re
import symtable
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import notifykit as nk
from notifykit.testing import capture_sent, no_backoff

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "docs").is_dir():  # an sdist ships tests/ without docs/
    pytest.skip("docs/ is not in this tree", allow_module_level=True)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Fence languages that are not Python and are therefore not checked here.
OTHER_LANGUAGES = frozenset(
    {"bash", "console", "text", "jinja", "html+jinja", "html", "json", "sql", "toml", "ini"}
)

#: What a fragment may use without defining it: names an earlier block of the
#: same page, or the reader's own application, defines. A fragment gets the
#: declarations of the names it uses, and nothing else.
DECLARATIONS: dict[str, str] = {
    # modules the page imported earlier
    "nk": "import notifykit as nk",
    "os": "import os",
    "logging": "import logging",
    "timedelta": "from datetime import timedelta",
    "make_send_task": "from notifykit.contrib.celery import make_send_task",
    # values an earlier block of the page built
    "email": "import notifykit as nk\nemail: nk.Email",
    "sms": "import notifykit as nk\nsms: nk.SMS",
    "message": "import notifykit as nk\nmessage: nk.Email",
    "sink": "import notifykit as nk\nsink: nk.SQLiteSink",
    "notifier": "import notifykit as nk\nnotifier: nk.Notifier",
    "app": "from celery import Celery\napp: Celery",
    "send": "from notifykit.contrib.celery import SendTask\nsend: SendTask",
    # the reader's application
    "order": "from typing import Any\norder: Any  # an Order model, a dict...",
    "customer": "from typing import Any\ncustomer: Any",
    "signup": "def signup(address: str) -> None: ...",
}

#: Values for running fragments: a fragment whose missing names are all here runs.
RUNTIME: dict[str, str] = {
    "nk": "import notifykit as nk",
    "os": "import os",
    "logging": "import logging",
    "timedelta": "from datetime import timedelta",
    "email": (
        "import notifykit as nk\n"
        "email = nk.Email(to='asha@example.com', subject='Your order has shipped',"
        " text='Order A-1042 is on its way.', sender='Shop <noreply@shop.example>')"
    ),
    "message": (
        "import notifykit as nk\n"
        "message = nk.Email(to='asha@example.com', subject='Welcome', text='Thanks!',"
        " sender='Shop <noreply@shop.example>')"
    ),
    "sms": (
        "import notifykit as nk\n"
        "sms = nk.SMS('+919876543210', 'Order A-1042 has shipped', sender='SHOPIN',"
        " template_id='order_shipped', variables={'order': 'A-1042'})"
    ),
    "sink": "import notifykit as nk\nsink = nk.SQLiteSink('notifykit.db')",
}

#: Blocks that could run but are only type-checked: (page, text in the block) -> why.
NOT_EXECUTED: dict[tuple[str, str], str] = {
    ("docs/transports.md", "ses.check()"): "asks Amazon SES for the account's quota",
    ("docs/celery.md", "from shop.tasks import send"): (
        "enqueues on a Redis broker (tests/test_examples.py runs a Celery worker)"
    ),
    ("docs/django.md", "send_mail("): (
        "needs a configured Django project (tests/test_examples.py runs examples/django_snippet)"
    ),
    ("docs/sms.md", "msg91.parse_response("): "ends by raising ProviderError, as it says",
    ("docs/logging.md", 'nk.JSONLSink("/var/log/'): "writes to /var/log",
    ("docs/outbox.md", "transaction.atomic()"): (
        "needs a configured Django project (tests/contrib/django_tests/test_outbox.py runs it)"
    ),
    ("docs/outbox.md", "OutboxHandOff(send"): (
        "runs a worker forever against a Redis broker (tests/outbox/test_celery_handoff.py)"
    ),
    ("README.md", 'from_directory("templates/")'): (
        "needs the README's template file (tests/test_guides.py runs it against a local server)"
    ),
}

#: Environment for executed blocks: fake keys, and Notifier.from_env() sends to memory.
ENVIRONMENT = {
    "NOTIFYKIT_EMAIL_URL": "memory://",
    "STAGING_NOTIFY_EMAIL_URL": "memory://",
    "SMTP_PASSWORD": "fake-smtp-password",
    "BACKUP_PASSWORD": "fake-backup-password",
    "MSG91_AUTHKEY": "fake-msg91-authkey",
    "FAST2SMS_KEY": "fake-fast2sms-key",
}

#: Libraries without type information: mypy sees Any.
UNTYPED_MODULES = [
    "django.*",
    "celery.*",
    "kombu.*",
    "dotenv.*",
    "premailer.*",
    "cssutils.*",
    "css_inline.*",
    "aiosmtpd.*",
    "moto.*",
    "html2text.*",
]

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FILE_NAME = re.compile(r"^# (?P<path>[\w/]+\.py)\s*$")
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, the line of its first code line, and its text."""

    page: str
    line: int
    language: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        return self.source.lstrip().startswith(">>>")

    @property
    def file_name(self) -> str | None:
        """The path the block's first line names (``# shop/tasks.py``), if any."""
        match = _FILE_NAME.match(self.source.split("\n", 1)[0])
        return match["path"] if match else None

    def free_names(self) -> set[str]:
        """Names the block uses but never binds (builtins aside)."""
        return free_names(self.source)

    @property
    def path(self) -> str:
        """Where the block is written for the type checks: its file name, or a module of its own."""
        if self.file_name:
            return self.file_name
        stem = re.sub(r"\W", "_", Path(self.page).stem)
        return f"doc_{stem}_{self.line}.py"


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown page, in order."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line[indent:] for line in lines[i + 1 : end]]
        language = match["info"].strip().split(" ")[0]
        blocks.append(Block(page, i + 2, language, "\n".join(body) + "\n"))
        i = end + 1
    return blocks


def free_names(source: str) -> set[str]:
    """The global names ``source`` reads without binding them, builtins aside.

    A block that does not parse has none: it is then run, and the run reports
    the syntax error at its line of the page.
    """
    try:
        top = symtable.symtable(source, "<block>", "exec")
    except SyntaxError:
        return set()
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    free: set[str] = set()

    def visit(table: symtable.SymbolTable, is_top: bool) -> None:
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if not symbol.is_referenced() or not (is_top or symbol.is_global()):
                continue
            if name not in bound and name not in _BUILTINS:
                free.add(name)
        for child in table.get_children():
            visit(child, False)

    visit(top, True)
    return free


ALL_BLOCKS = [block for page in PAGES for block in read_blocks(page)]
PYTHON = [b for b in ALL_BLOCKS if b.language == "python"]
DOCTESTS = [b for b in PYTHON if b.is_doctest]
TYPED = [b for b in PYTHON if not b.is_doctest]
#: Blocks that run: complete programs, and fragments that RUNTIME completes.
RUNNABLE = [b for b in TYPED if b.free_names() <= RUNTIME.keys()]
#: Packages that blocks with a file name make (``shop``), importable by other blocks.
DOC_PACKAGES = {b.file_name.split("/")[0].removesuffix(".py") for b in TYPED if b.file_name}


def not_executed_reason(block: Block) -> str | None:
    for (page, text), reason in NOT_EXECUTED.items():
        if block.page == page and text in block.source:
            return reason
    return None


def test_the_pages_have_python_blocks() -> None:
    """The extraction finds the pages' Python blocks (a broken parser would check nothing)."""
    assert {"README.md", "docs/index.md", "docs/failover.md"} <= {b.page for b in PYTHON}
    assert len(PYTHON) >= 30


def test_every_fence_names_its_language() -> None:
    """Every fence says what it holds, so a Python block cannot hide behind a bare fence."""
    unknown = [
        f"{b.id}: {b.language or '(no language)'}"
        for b in ALL_BLOCKS
        if b.language != "python" and b.language not in OTHER_LANGUAGES
    ]
    assert [] == unknown


def test_every_name_a_fragment_uses_is_declared() -> None:
    """A fragment uses only names it defines or that DECLARATIONS declares."""
    undeclared = [
        f"{b.id}: {name}" for b in TYPED for name in sorted(b.free_names() - DECLARATIONS.keys())
    ]
    assert [] == undeclared


def test_every_declaration_is_used() -> None:
    """DECLARATIONS and RUNTIME hold only names some block uses; RUNTIME's are declared too."""
    used = {name for b in TYPED for name in b.free_names()}
    assert set() == DECLARATIONS.keys() - used
    assert set() == RUNTIME.keys() - DECLARATIONS.keys()


def test_every_not_executed_entry_matches_a_runnable_block() -> None:
    """Each NOT_EXECUTED entry still names a block that could run (stale entries are removed)."""
    matched = {
        key for key in NOT_EXECUTED for b in RUNNABLE if b.page == key[0] and key[1] in b.source
    }
    assert set(NOT_EXECUTED) == matched


def test_block_file_names_are_unique() -> None:
    """Two blocks never claim the same file (``# shop/views.py``)."""
    names = [b.file_name for b in TYPED if b.file_name]
    assert sorted(set(names)) == sorted(names)


# ----------------------------------------------------------------------------- execution


def _close_everything(namespace: dict[str, object]) -> None:
    """Close what a block left open: notifiers (their transports and sinks), transports, sinks."""
    for value in namespace.values():
        kind = type(value)  # not isinstance(): a proxy (Flask's current_notifier) would resolve
        if issubclass(kind, (nk.Notifier, nk.BaseTransport, nk.SQLiteSink, nk.JSONLSink)):
            value.close()  # type: ignore[attr-defined]


def _skip_if_missing_imports(block: Block) -> None:
    """Skip a block that imports an optional library this environment lacks."""
    for node in ast.walk(ast.parse(block.source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in DOC_PACKAGES and importlib.util.find_spec(top) is None:
                pytest.skip(f"{top} is not installed")


def write_doc_files(directory: Path) -> None:
    """Write the blocks that are files (``# shop/tasks.py``) under ``directory``."""
    for block in TYPED:
        if block.file_name:
            path = directory / block.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.source, encoding="utf-8")


@pytest.fixture
def block_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch working directory, the pages' files importable, an environment that sends nothing."""
    monkeypatch.chdir(tmp_path)
    for name in ("NOTIFYKIT_SMS_URL", "NOTIFYKIT_LOG", "NOTIFYKIT_TEMPLATES", "NOTIFYKIT_SENDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    files = tmp_path / "doc_files"
    write_doc_files(files)
    monkeypatch.syspath_prepend(str(files))
    yield tmp_path
    for name in list(sys.modules):
        if name.split(".")[0] in DOC_PACKAGES:
            del sys.modules[name]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_block_runs(block: Block, block_sandbox: Path) -> None:
    """A block that defines what it uses, or whose missing names RUNTIME gives, runs cleanly."""
    reason = not_executed_reason(block)
    if reason is not None:
        pytest.skip(f"type-checked only: {reason}")
    # Line numbers in tracebacks (and syntax errors) are the page's.
    code = compile("\n" * (block.line - 1) + block.source, block.page, "exec")
    _skip_if_missing_imports(block)
    prelude = "\n".join(RUNTIME[name] for name in sorted(block.free_names()))
    namespace: dict[str, object] = {"__name__": f"docs_block_{block.line}"}
    own_transports = "notifykit.testing" in block.source
    capture = contextlib.nullcontext() if own_transports else capture_sent()
    try:
        with no_backoff(), capture:
            exec(prelude, namespace)
            exec(code, namespace)
    except nk.MissingDependency as exc:
        pytest.skip(str(exc))
    finally:
        _close_everything(namespace)


@pytest.mark.parametrize("block", DOCTESTS, ids=lambda b: b.id)
def test_doctest_block_prints_what_it_shows(block: Block, block_sandbox: Path) -> None:
    """A ``>>>`` block gives the output it shows (``nk`` is notifykit, as on every page)."""
    test = doctest.DocTestParser().get_doctest(
        block.source, {"nk": nk}, block.id, block.page, block.line - 1
    )
    output: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=output.append)
    report = "".join(output)
    if result.failed and "MissingDependency" in report:
        pytest.skip(report.strip().splitlines()[-1])
    assert 0 == result.failed, report


# ----------------------------------------------------------------------------- type checks


def _mypy_config(directory: Path) -> Path:
    config = directory / "mypy.ini"
    sections = [
        "[mypy]",
        "strict = True",
        "python_version = 3.10",
        "warn_unused_ignores = True",
        # Report errors in the blocks only, not in the libraries they import.
        "follow_imports = silent",
        "show_error_codes = True",
        "",
        f"[mypy-{','.join(UNTYPED_MODULES)}]",
        "ignore_missing_imports = True",
    ]
    config.write_text("\n".join(sections) + "\n", encoding="utf-8")
    return config


def _module_source(block: Block) -> tuple[str, int]:
    """The module to check for ``block`` and how many lines precede the block in it."""
    lines: list[str] = []
    for name in sorted(block.free_names()):
        lines.extend(DECLARATIONS.get(name, "").splitlines())
    return "\n".join([*lines, block.source]), len(lines)


@pytest.fixture(scope="module")
def mypy_errors() -> Iterator[dict[str, list[str]]]:
    """Run mypy once over every block; map each block's id to its errors, in page lines."""
    api = pytest.importorskip("mypy.api")
    with tempfile.TemporaryDirectory(prefix="notifykit-docs-") as tmp:
        directory = Path(tmp)
        files: dict[Path, tuple[Block, int]] = {}
        for block in TYPED:
            path = directory / block.path
            path.parent.mkdir(parents=True, exist_ok=True)
            source, offset = _module_source(block)
            path.write_text(source, encoding="utf-8")
            files[path.resolve()] = (block, offset)
        for path in directory.rglob("*"):  # a file block's folders are packages
            if path.is_dir():
                (path / "__init__.py").touch()
        stdout, stderr, status = api.run(
            [
                "--config-file",
                str(_mypy_config(directory)),
                "--cache-dir",
                str(ROOT / ".mypy_cache" / "docs"),
                "--no-error-summary",
                "--show-absolute-path",
                *map(str, files),
            ]
        )
        assert status in (0, 1), f"mypy crashed:\n{stdout}\n{stderr}"
        errors: dict[str, list[str]] = {b.id: [] for b in TYPED}
        for line in stdout.splitlines():
            match = re.match(r"^(?P<path>.+?\.py):(?P<line>\d+): (?P<message>.*)$", line)
            if match is None:
                continue
            where = files.get(Path(match["path"]).resolve())
            assert where is not None, f"mypy reports on a file that is not a block: {line}"
            block, offset = where
            number = int(match["line"]) - offset
            errors[block.id].append(
                f"{block.page}:{block.line + number - 1}: {match['message']}"
                if number >= 1
                else f"{block.page}:{block.line} (a declaration): {match['message']}"
            )
        yield errors


@pytest.mark.parametrize("block", TYPED, ids=lambda b: b.id)
def test_block_type_checks(block: Block, mypy_errors: dict[str, list[str]]) -> None:
    """The block passes ``mypy --strict`` (a fragment with the declarations of what it uses)."""
    assert [] == [e for e in mypy_errors[block.id] if ": note: " not in e]
