"""HTML facts shared by the template analysis, the inliner and the text converter."""

from __future__ import annotations

#: Elements that have no end tag and no content (the HTML Living Standard's void elements).
VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
