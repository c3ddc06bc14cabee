"""The core never imports notifykit.contrib: integrations depend on the core, not back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import notifykit

CORE = Path(notifykit.__file__).parent
CORE_FILES = sorted(p for p in CORE.rglob("*.py") if "contrib" not in p.relative_to(CORE).parts)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                package = path.relative_to(CORE.parent).with_suffix("").parts[: -node.level]
                base = ".".join(package)
                names.add(f"{base}.{node.module}" if node.module else base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return names


def test_core_files_are_found() -> None:
    """The AST check below looks at the real core (the notifier and the transports among it)."""
    rel = {p.relative_to(CORE).as_posix() for p in CORE_FILES}
    assert {"notifier.py", "transports/failover.py", "transports/smtp.py"} <= rel


def test_no_core_file_imports_contrib() -> None:
    """No import statement in the core names notifykit.contrib, even lazily inside a function."""
    offenders = {
        p.relative_to(CORE).as_posix(): sorted(
            m for m in _imported_modules(p) if m.startswith("notifykit.contrib")
        )
        for p in CORE_FILES
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_ast_check_catches_a_lazy_import(tmp_path: Path) -> None:
    """The checker itself sees an import of contrib inside a method (the old send_later)."""
    fake = tmp_path / "probe.py"
    source = (
        "def f():\n    from notifykit.contrib.celery import send_later\n    return send_later\n"
    )
    fake.write_text(source, encoding="utf-8")
    assert "notifykit.contrib.celery" in _imported_modules(fake)


def test_using_the_core_loads_no_contrib_module() -> None:
    """Importing notifykit and sending, failing over and enqueueing loads no notifykit.contrib."""
    code = """
import sys
import notifykit as nk
from notifykit.transports.failover import FailoverTransport
from notifykit.transports.memory import MemoryTransport

class Task:
    def apply_async(self, args, kwargs, **options):
        return ("queued", args[0]["to"], kwargs)

notifier = nk.Notifier(email=FailoverTransport([MemoryTransport()]), sender="a@example.com")
notifier.send(nk.Email(to="b@example.com", subject="s", text="t"))
queued = notifier.send_later(nk.Email(to="c@example.com", subject="s", text="t"), task=Task())
assert queued[0] == "queued", queued
loaded = sorted(m for m in sys.modules if m.startswith("notifykit.contrib"))
print(loaded)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
