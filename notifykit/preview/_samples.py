"""Where the preview finds templates and the sample data they render with.

Templates: every ``.html``/``.htm``/``.jinja``/``.jinja2``/``.j2``/``.txt``
file under the folder, except names starting with ``_``, files in a
``layouts``, ``partials``, ``includes`` or ``macros`` folder, and the
``*.preview.*`` sample files themselves.

Samples, per template ``orders/shipped.html`` (first found wins for the file;
``previews.py`` cases are added to it):

- ``orders/shipped.preview.json``, ``.preview.toml``, ``.preview.yaml`` or
  ``.preview.yml`` (YAML only when PyYAML is installed), or
  ``orders/shipped.json`` (the ``notifykit render`` convention): one context,
  or several named ones under a top-level ``"_cases"`` mapping (the other
  top-level keys are shared by every case);
- ``previews.py`` at the top of the folder: functions decorated with
  :func:`notifykit.preview.preview`, each returning one context.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Case", "Samples", "preview"]

TEMPLATE_SUFFIXES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".txt")
SKIPPED_FOLDERS = frozenset({"layouts", "partials", "includes", "macros", "__pycache__"})
DATA_SUFFIXES = (".preview.json", ".preview.toml", ".preview.yaml", ".preview.yml")
PREVIEWS_MODULE = "previews.py"
#: A template whose source contains this comment is marketing: it needs an unsubscribe link.
MARKETING_MARK = "notifykit: marketing"
#: At most this many files are looked at for the live-reload fingerprint.
MAX_WATCHED = 5000

_F = TypeVar("_F", bound=Callable[..., Any])


def preview(template: str, case: str = "default") -> Callable[[_F], _F]:
    """Mark a function in ``previews.py`` as a sample context for ``template``.

    The function takes no argument and returns a mapping; ``case`` names it
    when a template has several (``"new user"``, ``"trial ending"``)::

        @preview("welcome.html", "with a coupon")
        def welcome_coupon():
            return {"name": "Asha", "coupon": "CHAI10"}
    """

    def mark(func: _F) -> _F:
        func.__notifykit_preview__ = (template, case)  # type: ignore[attr-defined]
        return func

    return mark


@dataclass
class Case:
    """One named sample context for a template, or why it could not be loaded."""

    name: str
    source: str
    context: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class _Module:
    stamp: tuple[int, int]
    cases: dict[str, list[tuple[str, Callable[[], Any]]]] = field(default_factory=dict)
    error: str | None = None


def _stem(name: str) -> str:
    for suffix in TEMPLATE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _optional(module: str, hint: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(hint) from None


def _read_data(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            toml = importlib.import_module("tomllib")
        else:  # pragma: no cover - Python 3.10
            toml = _optional("tomli", "reading TOML on Python 3.10 needs tomli (pip install tomli)")
        return toml.loads(text)
    yaml = _optional("yaml", "PyYAML is not installed (pip install pyyaml) to read YAML")
    return yaml.safe_load(text)


class Samples:
    """The templates under ``root`` and their sample cases, re-read when files change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._module: _Module | None = None

    # ------------------------------------------------------------------ listing
    def templates(self) -> list[str]:
        """Every template name under the folder, sorted (``"orders/shipped.html"``)."""
        names = []
        for path in self._walk():
            rel = path.relative_to(self.root).as_posix()
            base = path.name
            if base.startswith("_") or ".preview." in base:
                continue
            if path.suffix not in TEMPLATE_SUFFIXES:
                continue
            names.append(rel)
        return sorted(names)

    def _walk(self) -> Iterator[Path]:
        count = 0
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith("."))
            for file in sorted(files):
                count += 1
                if count > MAX_WATCHED:
                    return
                yield Path(folder) / file

    def fingerprint(self) -> str:
        """Changes whenever a file under the folder is added, removed or modified."""
        digest = hashlib.sha256()
        for path in self._walk():
            try:
                st = path.stat()
            except OSError:
                continue
            digest.update(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\n".encode("utf-8", "replace"))
        return digest.hexdigest()[:16]

    def is_marketing(self, name: str) -> bool:
        """Whether the template's source carries ``{# notifykit: marketing #}``."""
        try:
            return MARKETING_MARK in (self.root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            return False

    # ------------------------------------------------------------------ cases
    def cases(self, name: str) -> list[Case]:
        """The sample cases for template ``name`` (a single empty one when there is none)."""
        found: list[Case] = []
        stem = _stem(name)
        candidates = [self.root / f"{stem}{s}" for s in DATA_SUFFIXES]
        candidates.append(self.root / f"{stem}.json")
        for path in candidates:
            if path.is_file():
                found.extend(self._file_cases(path))
                break
        module = self._load_module()
        for case, func in module.cases.get(name, []):
            found.append(self._call(case, func))
        if not found:
            found.append(Case("default", "(no sample data: an empty context)", context={}))
        return found

    def module_error(self) -> str | None:
        """Why ``previews.py`` could not be imported, if it could not."""
        return self._load_module().error

    def _file_cases(self, path: Path) -> list[Case]:
        source = path.relative_to(self.root).as_posix()
        try:
            data = _read_data(path)
        except (OSError, UnicodeError, ValueError) as exc:  # TOMLDecodeError is a ValueError
            return [Case("default", source, error=f"{source}: {type(exc).__name__}: {exc}")]
        except Exception as exc:  # a YAML parser error
            return [Case("default", source, error=f"{source}: {type(exc).__name__}: {exc}")]
        if not isinstance(data, dict):
            return [Case("default", source, error=f"{source}: the sample data is not a mapping")]
        named = data.get("_cases")
        if isinstance(named, dict):
            shared = {k: v for k, v in data.items() if k != "_cases"}
            cases = []
            for case, context in named.items():
                if isinstance(context, dict):
                    cases.append(Case(str(case), source, context={**shared, **context}))
                else:
                    cases.append(
                        Case(str(case), source, error=f"{source}: {case!r} is not a mapping")
                    )
            return cases
        return [Case("default", source, context=data)]

    def _call(self, case: str, func: Callable[[], Any]) -> Case:
        source = f"{PREVIEWS_MODULE}:{getattr(func, '__name__', '?')}"
        try:
            context = func()
        except Exception as exc:
            return Case(case, source, error=f"{source} raised {type(exc).__name__}: {exc}")
        if not isinstance(context, dict):
            return Case(
                case, source, error=f"{source} returned {type(context).__name__}, not a dict"
            )
        return Case(case, source, context=context)

    def _load_module(self) -> _Module:
        path = self.root / PREVIEWS_MODULE
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)
        if self._module is not None and self._module.stamp == stamp:
            return self._module
        module = _Module(stamp)
        if stamp != (0, 0):
            module_name = f"_notifykit_previews_{abs(hash(str(path)))}"
            try:
                spec = importlib.util.spec_from_file_location(module_name, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = loaded
                try:
                    spec.loader.exec_module(loaded)
                finally:
                    sys.modules.pop(module_name, None)
            except Exception as exc:  # the user's module: any error is shown, not raised
                module.error = f"{PREVIEWS_MODULE}: {type(exc).__name__}: {exc}"
            else:
                for value in vars(loaded).values():
                    mark = getattr(value, "__notifykit_preview__", None)
                    if callable(value) and isinstance(mark, tuple) and len(mark) == 2:
                        template, case = mark
                        module.cases.setdefault(str(template), []).append((str(case), value))
        self._module = module
        return module
