"""The HTML → text converter as it was before the fast path: the test oracle.

Phase 1 driven by ``html.parser`` callbacks for every document (the code of
``notifykit.templates._text`` before the single-pass tokenizer, kept here
unchanged); phase 2 (``finish``) and the element stack (``TextState``) are the
shared ones, which the fast path uses as well.
"""

from __future__ import annotations

from html.parser import HTMLParser

from notifykit.templates._text import TextState, finish, transform


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.state = TextState()
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for item in self.state.start(tag, attrs):
            self.out.append(item if isinstance(item, str) else transform(item.value, "attr"))

    def handle_endtag(self, tag: str) -> None:
        self.out.append(self.state.end(tag))

    def handle_data(self, data: str) -> None:
        self.out.append(transform(data, self.state.mode))


def oracle_pretext(source: str) -> str:
    """Phase 1 over a whole document, with ``html.parser``."""
    converter = _Converter()
    converter.feed(source)
    converter.close()
    converter.out.append(converter.state.close_all())
    return "".join(converter.out)


def oracle_html_to_text(source: str) -> str:
    """The plain-text version of ``source``, the old way."""
    return finish(oracle_pretext(source))
