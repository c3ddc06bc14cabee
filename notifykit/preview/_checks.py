"""What the preview says about one rendered e-mail: preheader, size, warnings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["GMAIL_CLIP_BYTES", "Report", "inspect_html"]

#: Gmail shows "[Message clipped]" when the HTML part is over about 102 KB.
GMAIL_CLIP_BYTES = 102 * 1024

_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_SIZE_STYLE = re.compile(r"(^|;)\s*(max-)?width\s*:", re.I)
_UNSUBSCRIBE = re.compile(r"unsubscribe|opt[\s-]?out", re.I)
_FILLER = re.compile(r"[\s\u034f\u200c\u200b\u00a0\u2007\u00ad]+")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Report:
    """The facts and warnings about one rendered e-mail."""

    preheader: str = ""
    html_bytes: int = 0
    warnings: list[str] = field(default_factory=list)


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str | None]] = []
        self.links: list[tuple[str, str]] = []
        self._link: list[str] | None = None
        self._href = ""
        self._hidden_depth = 0  # > 0 while inside the first hidden element
        self._hidden_done = False
        self.preheader: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        elif tag == "a":
            self._link = []
            self._href = a.get("href") or ""
        if tag in _VOID:
            return
        if self._hidden_depth:
            self._hidden_depth += 1
        elif (
            not self._hidden_done
            and tag not in ("style", "head", "title")
            and (_HIDDEN.search(a.get("style") or ""))
        ):
            self._hidden_depth = 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append((self._href, "".join(self._link)))
            self._link = None
        if tag in _VOID:
            return
        if self._hidden_depth:
            self._hidden_depth -= 1
            if not self._hidden_depth:
                self._hidden_done = True

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link.append(data)
        if self._hidden_depth:
            self.preheader.append(data)


def inspect_html(html: str | None, text: str | None, *, marketing: bool) -> Report:
    """Preheader, HTML size and warnings for one rendered e-mail."""
    report = Report()
    if html is None:
        return report
    if not text or not text.strip():
        report.warnings.append("no text part: some clients and spam filters want one")
    report.html_bytes = len(html.encode("utf-8"))
    if report.html_bytes > GMAIL_CLIP_BYTES:
        report.warnings.append(
            f"the HTML is {report.html_bytes / 1024:.1f} KB: Gmail clips messages over 102 KB"
        )
    scan = _Scan()
    scan.feed(html)
    scan.close()
    report.preheader = _FILLER.sub(" ", "".join(scan.preheader)).strip()
    for image in scan.images:
        src = image.get("src") or "(no src)"
        if image.get("alt") is None:
            report.warnings.append(f"image without alt text: {src}")
        if not image.get("width") and not _SIZE_STYLE.search(image.get("style") or ""):
            report.warnings.append(f"image without a width (it may show at full size): {src}")
        if src.lower().startswith("http://"):
            report.warnings.append(f"image over plain http://: {src}")
    for href, _label in scan.links:
        if href.lower().startswith("http://"):
            report.warnings.append(f"link over plain http://: {href}")
    if marketing and not any(
        _UNSUBSCRIBE.search(href) or _UNSUBSCRIBE.search(label) for href, label in scan.links
    ):
        report.warnings.append(
            "marketing template without an unsubscribe link (a link whose address or text "
            "says unsubscribe or opt-out)"
        )
    return report
