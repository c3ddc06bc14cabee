"""Deriving the text part per message: notifykit's converter against raw Jinja.

Run ``python benchmarks/text.py`` (about 20 s). The 400 e-mails of the
application benchmark (``benchmarks/templates``: ten templates, two locales,
20 contexts each) are rendered once; then, repeated five times with an empty
memo each time, every message is converted once, in order, as a sender sees
them: ``html_to_text`` (the single-pass tokenizer with its memo of markup
runs), the ``html.parser`` converter it replaced (same output), and the Jinja
render of the message (the floor). Per message the best of the five; printed:
the time per message and its ratio to the Jinja render, median, p90, worst.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    from benchmarks import templates as app
except ImportError:  # run as a script: benchmarks/ is not a package on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import templates as app

from notifykit.templates import _text


def main() -> int:
    """Print the table (Markdown)."""
    messages = []
    for locale in ("en", "fr"):
        env = app.environment(locale)
        for name in app.NAMES:
            template = env.get_template(name)
            for context in app.contexts(name, 20):
                messages.append((template, context, template.render(context)))

    def stream(convert: Callable[[str], object]) -> list[float]:
        times = []
        for _, _, html in messages:
            start = time.perf_counter()
            convert(html)
            times.append(time.perf_counter() - start)
        return times

    def jinja() -> list[float]:
        times = []
        for template, context, _ in messages:
            start = time.perf_counter()
            template.render(context)
            times.append(time.perf_counter() - start)
        return times

    runs: dict[str, list[list[float]]] = {"jinja": [], "parser": [], "fast": []}
    for _ in range(5):
        _text._MEMO = _text._Memo()  # every repetition starts cold
        runs["jinja"].append(jinja())
        runs["parser"].append(stream(lambda h: _text.finish(_text._parsed_pretext(h))))
        runs["fast"].append(stream(_text.html_to_text))
    best = {k: [min(r[i] for r in v) for i in range(len(messages))] for k, v in runs.items()}
    print(f"### Text part derived per message ({len(messages)} application e-mails, in order)\n")
    print("| converter | median µs | x raw Jinja median | p90 | worst |")
    print("|---|---:|---:|---:|---:|")
    labels = {"parser": "html.parser callbacks (before)", "fast": "**html_to_text** (now)"}
    for key, label in labels.items():
        ratios = sorted(a / b for a, b in zip(best[key], best["jinja"], strict=True))
        print(
            f"| {label} | {statistics.median(best[key]) * 1e6:,.0f} | "
            f"{statistics.median(ratios):.2f} | {ratios[int(0.9 * len(ratios))]:.2f} | "
            f"{ratios[-1]:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
