"""The persistent compile cache: what the template analysis found, kept on disk.

The analysis behind the compiled path (:mod:`._compile`) costs tens of
milliseconds per template, in every process. Its result — the compiled
template's Python code, the code of the blocks the ``subject``/``text``/``sms``
parts render alone, and a few facts — depends only on the template's
sources (the template, its layouts, includes, imported macros and linked
stylesheets), on notifykit's code, on the inlining engine and Jinja, and on
the options of the environment. So it is stored in a file named by a digest of
all that, and the next process loads it instead of redoing the analysis.

- **Where**: ``TemplateRenderer(cache_dir=…)``; by default the folder named
  by the ``NOTIFYKIT_TEMPLATE_CACHE`` environment variable, else the
  platform's cache folder (``$XDG_CACHE_HOME/notifykit/templates`` or
  ``~/.cache/notifykit/templates`` on Linux, ``~/Library/Caches/…`` on macOS,
  ``%LOCALAPPDATA%\\notifykit\\cache\\templates`` on Windows).
  ``NOTIFYKIT_TEMPLATE_CACHE=off`` (or ``0``, ``false``, ``no``, empty)
  turns it off whatever the code says; ``cache_dir=False`` turns it off for
  one renderer.
- **Keys**: the template's name and source, the digest of every other source
  read while compiling (checked again on load; the blocks' code is used only
  if each template is still read from the same file, which its tracebacks
  name), notifykit's version and the
  files of its template modules, the files of Jinja, markupsafe and the
  engine's packages (a reinstall changes them), the Python version, and the
  environment's syntax options, extensions, filters and tests.
- **Several processes**: each entry is written to a temporary file in the
  same folder and renamed into place (atomic), so a reader sees a whole entry
  or none. A file that cannot be read is ignored (and rewritten).
- **Trust**: the files hold Python code that is executed. The default folder
  is the user's own (created with mode ``0o700``); point ``cache_dir`` only at a
  folder no one else can write.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CompileCache", "code_fingerprint", "resolve_folder", "source_digest"]

_log = logging.getLogger("notifykit.templates")

#: Bumped whenever what is stored changes meaning.
FORMAT = 2
_MAGIC = b"NKTC2\n"
ENV_VAR = "NOTIFYKIT_TEMPLATE_CACHE"
_OFF = frozenset({"", "0", "off", "false", "no", "none"})

# Modules whose code decides what the analysis finds and what the compiled code does.
_OWN = ("_cache", "_compile", "_html", "_inline", "_repair", "_text", "renderer")
_THIRD_PARTY = ("jinja2", "markupsafe", "css_inline", "premailer", "cssutils", "cssselect", "lxml")
_fingerprint: str | None = None


def default_folder() -> Path:
    """The platform's cache folder for notifykit's compiled templates."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "notifykit" / "cache" / "templates"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "notifykit" / "templates"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "notifykit" / "templates"


def resolve_folder(cache_dir: str | os.PathLike[str] | bool | None) -> Path | None:
    """The folder to use (``None``: no persistent cache), as documented above."""
    setting = os.environ.get(ENV_VAR)
    if setting is not None and setting.strip().lower() in _OFF:
        return None
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        if setting is not None:
            return Path(setting).expanduser()
        try:
            return default_folder()
        except RuntimeError:  # no home directory
            return None
    return Path(cache_dir)


def source_digest(source: str) -> str:
    """The digest a cached entry keeps for each source it was built from."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def _file_stamp(path: str | None) -> str:
    if not path:
        return "-"
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def code_fingerprint() -> str:
    """notifykit's version and code, Jinja's and the engines': computed once per process.

    Packages are identified by the size and modification time of their main
    file, which any install or upgrade changes, without importing them (premailer
    alone takes 0.2 s to import) or reading package metadata (as slow).
    """
    global _fingerprint
    if _fingerprint is not None:
        return _fingerprint
    from notifykit import __version__

    here = Path(__file__).resolve().parent
    parts = [f"format={FORMAT}", f"notifykit={__version__}", f"python={sys.version}"]
    parts += [_file_stamp(str(here / f"{module}.py")) for module in _OWN]
    for name in _THIRD_PARTY:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        parts.append(f"{name}={_file_stamp(spec.origin if spec else None)}")
    _fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return _fingerprint


class CompileCache:
    """Entries in one folder: ``<key>.nkc`` files, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ready = False
        self._broken = False

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.nkc"

    def load(self, key: str) -> tuple[dict[str, Any], Any] | None:
        """The metadata and the code objects stored under ``key``, or ``None``.

        The code objects are what :meth:`store` was given: any structure of
        code objects, lists, dicts and ``None`` that :mod:`marshal` writes.
        """
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        try:
            if not data.startswith(_MAGIC):
                return None
            offset = len(_MAGIC)
            size = int.from_bytes(data[offset : offset + 8], "big")
            meta = json.loads(data[offset + 8 : offset + 8 + size].decode("utf-8"))
            rest = data[offset + 8 + size :]
            code = marshal.loads(rest) if rest else None
        except Exception:  # a damaged or foreign file: rebuild it
            return None
        if not isinstance(meta, dict):
            return None
        return meta, code

    def store(self, key: str, meta: dict[str, Any], code: Any) -> None:
        """Write an entry (``code``: code objects, see :meth:`load`); failures are logged once."""
        if self._broken:
            return
        try:
            if not self._ready:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._ready = True
            body = json.dumps(meta, sort_keys=True).encode("utf-8")
            payload = _MAGIC + len(body).to_bytes(8, "big") + body
            if code is not None:
                payload += marshal.dumps(code)
            fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".nkc", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                os.replace(temporary, self._path(key))
            except BaseException:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
                raise
        except OSError as exc:
            self._broken = True
            _log.warning(
                "notifykit cannot write its template compile cache in %s (%s); "
                "templates are compiled in each process",
                self.folder,
                exc,
            )
