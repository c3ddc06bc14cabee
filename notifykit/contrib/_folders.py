"""Templates from a framework's template folders, set up on the first render.

Shared by the Django and Flask integrations: both point notifykit at the
folders the framework already searches, in the framework's order.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FolderRenderer"]


class FolderRenderer:
    """A :class:`~notifykit.TemplateRenderer` over several folders, built on first use.

    Projects that only send ready messages never render a template, so they
    never pay for setting one up (nor need the folders to hold any). The
    folders are searched in order: the first one holding a name wins, so a
    project can override an app's template the way it overrides HTML pages.
    """

    def __init__(self, folders: Sequence[str | Path], *, debug: bool = False) -> None:
        self.folders = tuple(Path(f) for f in folders)
        #: In a framework's debug mode, an edited template shows at the next render.
        self.debug = debug
        self._renderer: Any = None
        self._lock = threading.Lock()

    @property
    def renderer(self) -> Any:
        """The TemplateRenderer, built on first access."""
        if self._renderer is None:
            with self._lock:
                if self._renderer is None:
                    import jinja2

                    from notifykit.templates import TemplateRenderer

                    loader = jinja2.FileSystemLoader([str(f) for f in self.folders])
                    # Debug: look at the files at every render (no 1 s grace).
                    options: dict[str, Any] = {"auto_reload": True, "reload_interval": 0.0}
                    self._renderer = TemplateRenderer(
                        loader=loader, **(options if self.debug else {})
                    )
        return self._renderer

    def render(self, name: str, context: Mapping[str, Any] | None = None) -> Any:
        """Render template ``name`` (see :meth:`notifykit.TemplateRenderer.render`)."""
        return self.renderer.render(name, context)

    def __repr__(self) -> str:
        return f"<FolderRenderer {', '.join(str(f) for f in self.folders)}>"
