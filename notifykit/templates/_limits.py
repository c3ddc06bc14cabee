"""What keeps templates in their place: the confined loader and the limited sandbox.

- :class:`ConfinedFileSystemLoader` is the loader of
  ``TemplateRenderer.from_directory``: a template file (or a stylesheet linked
  from one) whose real path, symlinks resolved, is outside the directory is a
  :class:`~notifykit.errors.TemplateError`, not a file read. A symlink that
  stays inside the directory is fine.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable

import jinja2
from jinja2.loaders import split_template_path

from notifykit.errors import TemplateError

__all__ = ["ConfinedFileSystemLoader"]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class ConfinedFileSystemLoader(jinja2.FileSystemLoader):
    """A :class:`jinja2.FileSystemLoader` that never reads outside its directories.

    Jinja already refuses ``..`` in a template name; this also refuses a file
    that is a symlink (or sits under a symlinked directory) leading out of the
    search path it was found in, checked before the file is opened.
    """

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for searchpath in self.searchpath:
            filename = posixpath.join(searchpath, *pieces)
            if os.path.isfile(filename):
                real = os.path.realpath(filename)
                root = os.path.realpath(searchpath)
                if not _inside(real, root):
                    raise TemplateError(
                        f"template {template!r} is a symlink to a file outside the template "
                        f"directory {searchpath!r}; refused (pass follow_symlinks=True to "
                        "TemplateRenderer.from_directory to allow it)",
                        template=template,
                    )
                break
        return super().get_source(environment, template)
