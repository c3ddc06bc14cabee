"""Rendering a notification: notifykit against raw Jinja, premailer, css-inline, Django.

Run ``python benchmarks/render.py`` (about a minute) or ``--quick`` (seconds).
Everything runs in this process on the bundled order-confirmation template
(``notifykit/bundled/order_confirmation.html``, which extends the bundled
layout) with 5 and 50 line items, and prints a Markdown table of the time per
message and its ratio to the floor: a plain Jinja render of the same template.

Rows:

- raw Jinja: ``template.render(context)``, no CSS inlining, no text part;
- notifykit: ``TemplateRenderer.render`` — subject, HTML with CSS inlined,
  text derived from the HTML, SMS — for a template eligible for compile-time
  inlining (CSS inlined once per template) and for a variant that is not
  (a ``class`` that depends on the loop, so every message is inlined);
- Jinja + premailer / css-inline per message: what hand-written code does;
- Django ``render_to_string`` + premailer: the same e-mail as a Django template;
- html2text / notifykit's converter: deriving the text part per message.

Targets (issue 4): notifykit ≤ 1.5x raw Jinja for eligible templates, and
≤ 3x with ``inliner="css_inline"`` for templates that are not.

Then the **application benchmark** (issue 17): the ten e-mails of
``benchmarks/templates`` (a shop's, written the way applications write them:
a layout with optional blocks tested by ``self.block()``, an included shared
stylesheet, macros, a partial, i18n in English and French, classes chosen by
Jinja), 20 realistic contexts each, with the **default** install and settings
(``TemplateRenderer(env)``): the share of messages on the compiled path, the
time per message as a ratio to raw Jinja (the template rendered by Jinja, plus
each of its subject/text/sms blocks: what hand-written code renders), median,
p90 and worst; the per-message path on its own (``compile=False``); and the
first render in a new process against Jinja's first render, with an empty and
with a filled compile cache. Targets: ≥ 90 % compiled; median ≤ 1.5x, p90 ≤
2.5x, worst ≤ 5x; per-message path ≤ 3x; first render ≤ 3x Jinja's. The
functions compared for one message are timed interleaved (one call of each per
round, the best of each over the rounds), so that load on a shared machine
hits them alike.

The time per message is also given against issue 17 item 4's floor: raw Jinja
of the HTML plus a hand-written text template (``benchmarks/templates/text/``
for the seven e-mails whose text notifykit derives from the HTML, rendered
without autoescape as an application renders its ``.txt``; the template's own
text block for the three that have one), en and fr; target ≤ 1.3x at the
median and p90.

With ``--corpus DIR`` (or ``$NOTIFYKIT_CORPUS``) the **corpus benchmark** runs
first (``--corpus-only``: alone): the 116 static real-world e-mails of the
template corpus (``tests/templates/corpus/README.md``), wrapped as the
differential test wraps them (a subject block, two variables), with the
default settings: the share compiled, and the time per message x raw Jinja
(the HTML plus the subject block, and the HTML alone), median, p90 and worst
over all messages and over the compiled and per-message ones apart; then
``explain()``'s reason for each template not compiled.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from notifykit.templates import TemplateRenderer
from notifykit.templates._text import html_to_text

try:
    from benchmarks import templates as app
except ImportError:  # run as a script: benchmarks/ is not a package on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import templates as app

PACKAGE = Path(__file__).resolve().parents[1] / "notifykit" / "templates"
NAME = "notifykit/bundled/order_confirmation.html"
INELIGIBLE = "ineligible.html"


def context_with(lines: int) -> dict[str, Any]:
    """The sample context with ``lines`` order lines."""
    sample = json.loads((PACKAGE / "bundled" / "order_confirmation.json").read_text("utf-8"))
    base = sample["order"]["lines"]
    sample["order"]["lines"] = [
        dict(copy.deepcopy(base[i % len(base)]), name=f"{base[i % len(base)]['name']} #{i + 1}")
        for i in range(lines)
    ]
    return sample


def ineligible_source() -> str:
    """The same e-mail with a class made from a variable: per-message inlining.

    (A class chosen among literals, ``loop.cycle('odd', 'even')``, compiles.)
    """
    source = (PACKAGE / "bundled" / "order_confirmation.html").read_text("utf-8")
    return source.replace(
        "{% for line in order.lines %}\n<tr>",
        '{% for line in order.lines %}\n<tr class="nk-line-{{ loop.index }}">',
    )


def django_sources() -> dict[str, str]:
    """The bundled layout, button and order confirmation as Django templates."""
    layout = (PACKAGE / "layouts" / "base.html").read_text("utf-8")
    child = (PACKAGE / "bundled" / "order_confirmation.html").read_text("utf-8")
    button = (
        '<table role="presentation" class="nk-button" border="0" cellpadding="0" cellspacing="0">\n'
        '<tr>\n<td class="nk-button-cell" align="center"><a class="nk-button-link" '
        'href="{{ url }}" target="_blank">{{ label }}</a></td>\n</tr>\n</table>'
    )

    def to_django(source: str) -> str:
        source = re.sub(r"\{#.*?#\}", "", source, flags=re.DOTALL)
        source = source.replace("{%-", "{%").replace("-%}", "%}")
        source = re.sub(r"\s*\| default\('(\w*)'\)", r'|default:"\1"', source)
        source = re.sub(r"\s*\| default\((\d+)\)", r"|default:\1", source)
        source = source.replace("{% if brand is defined %}{{ brand }}{% endif %}", "{{ brand }}")
        source = re.sub(r"(\w+) is defined and \1", r"\1", source)
        source = re.sub(r"(\w+) if \1 is defined else ''", r"\1", source)
        source = re.sub(r"\{% elif (\w+) is defined %\}", r"{% elif \1 %}", source)
        # Django has no {% set %}: the child's assignments come in the context instead.
        source = re.sub(r"\{% set \w+ = [\w.]+ %\}", "", source)
        source = source.replace('"notifykit/layouts/base.html"', '"base.html"')
        source = re.sub(r"\{% from .*? import button %\}", "", source)
        return re.sub(
            r"\{\{ button\((.+?), \"(.+?)\"\) \}\}",
            r'{% include "button.html" with url=\1 label="\2" %}',
            source,
        )

    return {"base.html": to_django(layout), "order.html": to_django(child), "button.html": button}


def calibrate(func: Callable[[], object], budget: float) -> float:
    """Seconds per call: the best of a few repeats, each about ``budget`` seconds."""
    func()
    number = 1
    while True:
        elapsed = timeit.timeit(func, number=number)
        if elapsed >= budget / 5 or number >= 1_000_000:
            break
        number *= 4
    number = max(1, int(number * budget / max(elapsed, 1e-9) / 3))
    return min(timeit.repeat(func, number=number, repeat=3)) / number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, rougher numbers")
    parser.add_argument("--app-only", action="store_true", help="only the application benchmark")
    parser.add_argument("--cold-only", action="store_true", help="only the first-render table")
    parser.add_argument(
        "--corpus",
        metavar="DIR",
        default=os.environ.get("NOTIFYKIT_CORPUS"),
        help="also run the real-world corpus benchmark on DIR (default: $NOTIFYKIT_CORPUS)",
    )
    parser.add_argument("--corpus-only", action="store_true", help="only the corpus benchmark")
    args = parser.parse_args(argv)
    if args.cold_only:
        cold_start(quick=args.quick)
        return 0
    if args.corpus_only:
        if not args.corpus:
            parser.error("--corpus-only needs --corpus DIR or NOTIFYKIT_CORPUS")
        return corpus(Path(args.corpus), quick=args.quick)
    if args.corpus:
        corpus(Path(args.corpus), quick=args.quick)
    if args.app_only:
        return application(quick=args.quick)
    budget = 0.05 if args.quick else 0.6

    import premailer  # noqa: F401  (import costs stay out of the timings)

    try:
        import css_inline
    except ImportError:
        css_inline = None
    try:
        import html2text
    except ImportError:
        html2text = None

    loader = jinja2.DictLoader({INELIGIBLE: ineligible_source()})
    premailer_renderer = TemplateRenderer(loader=loader, inliner="premailer", auto_reload=False)
    fast_renderer = (
        TemplateRenderer(loader=loader, inliner="css_inline", auto_reload=False)
        if css_inline
        else None
    )
    raw_env = premailer_renderer._html_env.overlay(undefined=jinja2.Undefined)
    raw = {name: raw_env.get_template(name) for name in (NAME, INELIGIBLE)}
    engine = premailer_renderer.inline  # per-message premailer, as the renderer does it
    inliner = (
        css_inline.CSSInliner(
            keep_at_rules=True, keep_link_tags=True, load_remote_stylesheets=False
        )
        if css_inline
        else None
    )

    render_django: Callable[[dict[str, Any]], str] | None
    try:
        import django
        from django.conf import settings
    except ImportError:
        render_django = None
    else:
        folder = Path(tempfile.mkdtemp(prefix="notifykit-bench-"))
        for file_name, source in django_sources().items():
            (folder / file_name).write_text(source, encoding="utf-8")
        settings.configure(
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "DIRS": [str(folder)],
                }
            ],
            USE_I18N=False,
        )
        django.setup()
        from django.template.loader import render_to_string

        def render_django(context: dict[str, Any]) -> str:
            shop = context["shop"]  # what the Jinja child sets with {% set %}
            extra = {"brand": shop["name"], "logo_url": shop.get("logo_url")}
            return render_to_string("order.html", {**context, **extra})

    rows: list[tuple[str, dict[int, float]]] = []
    notes: list[str] = []
    sizes = (5, 50)
    contexts = {n: context_with(n) for n in sizes}
    cases: list[tuple[str, Callable[[dict[str, Any]], object] | None]] = [
        ("raw Jinja render (the floor)", lambda c: raw[NAME].render(c)),
        (
            "**notifykit**, eligible, premailer (compiled)",
            lambda c: premailer_renderer.render(NAME, c),
        ),
        (
            "**notifykit**, eligible, css_inline (compiled)",
            (lambda c: fast_renderer.render(NAME, c)) if fast_renderer else None,
        ),
        (
            "**notifykit**, not eligible, premailer (per message)",
            lambda c: premailer_renderer.render(INELIGIBLE, c),
        ),
        (
            "**notifykit**, not eligible, css_inline (per message)",
            (lambda c: fast_renderer.render(INELIGIBLE, c)) if fast_renderer else None,
        ),
        ("Jinja + premailer per message", lambda c: engine(NAME, raw[NAME].render(c))),
        (
            "Jinja + css_inline per message",
            (lambda c: inliner.inline(raw[NAME].render(c))) if inliner else None,
        ),
        (
            "Django render_to_string + premailer",
            (lambda c: engine(NAME, render_django(c))) if render_django else None,
        ),
        (
            "Jinja + html2text (text part only)",
            (lambda c: html2text.html2text(raw[NAME].render(c))) if html2text else None,
        ),
        (
            "Jinja + notifykit html_to_text per message (text only)",
            lambda c: html_to_text(raw[NAME].render(c)),
        ),
    ]
    floor_ineligible: dict[int, float] = {}
    for label, func in cases:
        if func is None:
            notes.append(f"- {label}: skipped (not installed)")
            continue
        timings = {n: calibrate(lambda f=func, c=contexts[n]: f(c), budget) for n in sizes}
        rows.append((label, timings))
    for n in sizes:
        floor_ineligible[n] = calibrate(lambda c=contexts[n]: raw[INELIGIBLE].render(c), budget)

    floor = rows[0][1]
    for n in sizes:
        rendered = premailer_renderer.render(NAME, contexts[n])
        notes.append(
            f"- {n} items: eligible template → html {rendered.strategy}, "
            f"text {rendered.text_strategy}, {len(rendered.html or '')} bytes of HTML; "
            "not eligible → "
            f"{premailer_renderer.explain(INELIGIBLE).reason}"
        )
    header = "| per message | " + " | ".join(f"{n} items | x raw" for n in sizes) + " |"
    quick = " (quick)" if args.quick else ""
    print(f"Python {sys.version.split()[0]}, jinja2 {jinja2.__version__}{quick}\n")
    print(header)
    print("|---|" + "---:|---:|" * len(sizes))
    for label, timings in rows:
        cells = []
        for n in sizes:
            base = floor_ineligible[n] if "not eligible" in label else floor[n]
            cells.append(f"{timings[n] * 1e6:,.0f} µs | {timings[n] / base:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("Ratios of the 'not eligible' rows are against a raw Jinja render of that variant.")
    print("\n".join(notes))
    print()
    return application(quick=args.quick)


# ------------------------------------------------------------ the real-world corpus


def corpus_files(root: Path) -> list[Path]:
    """All 116 e-mails of the corpus (see ``tests/templates/corpus/README.md``)."""
    return (
        sorted(root.glob("mailgun/templates/*.html"))
        + sorted(root.glob("leemunroe/email.html"))
        + sorted(root.glob("sendwithus/templates/*/*.html"))
    )


def corpus_template(source: str) -> str:
    """A corpus file as a notifykit template (the differential test uses it too):
    a subject block, the file as the html block, two variables in it."""
    source = source.replace("{{first_name}}", "{{ first_name }}")
    source = re.sub(
        r"(<body[^>]*>)", r"\1<div>{{ greeting }} {{ first_name }}</div>", source, count=1
    )
    return (
        "{% block subject %}Hi {{ first_name }}{% endblock %}{% block html %}"
        + source
        + "{% endblock %}"
    )


def corpus(root: Path, quick: bool = False) -> int:
    """The corpus benchmark: static real-world e-mails with two variables each.

    Default install and settings (``TemplateRenderer`` with a dict loader).
    Per message, against raw Jinja (the template rendered, plus its subject
    block: what hand-written code renders), interleaved, the best of a few
    calls, for a few contexts per template: the median, p90 and worst over all
    messages (the target), then over the compiled and the per-message ones
    apart; then what ``explain()`` says of the templates that are not compiled.
    """
    files = corpus_files(root)
    if not files:
        print(f"no corpus at {root}")
        return 1
    sources = {str(p.relative_to(root)): corpus_template(p.read_text("utf-8")) for p in files}
    renderer = TemplateRenderer.from_dict(sources)
    raw_env = renderer._html_env.overlay(undefined=jinja2.Undefined)
    count, repeat = (2, 5) if quick else (5, 15)
    compiled: list[float] = []
    compiled_html: list[float] = []
    fallback: list[float] = []
    reasons: dict[str, str] = {}
    for index, name in enumerate(sorted(sources)):
        plan = renderer.explain(name)
        parts = tuple(p for p in plan.parts if p != "html")
        template = raw_env.get_template(name)
        for n in range(count):
            context = {"first_name": f"Ann {index}-{n}", "greeting": ("Hello", "Hi there")[n % 2]}
            rendered = renderer.render(name, context)
            floor, html_only, ours = _interleaved(
                [
                    lambda t=template, p=parts, c=context: _raw_render(t, p, c),
                    lambda t=template, c=context: t.render(c),
                    lambda n=name, c=context: renderer.render(n, c),
                ],
                repeat,
            )
            if rendered.strategy == "compiled" and rendered.text_strategy == "compiled":
                compiled.append(ours / floor)
                compiled_html.append(ours / html_only)
            else:
                fallback.append(ours / floor)
                reasons[name] = rendered.reason or plan.reason or "?"
    total = len(compiled) + len(fallback)
    print(f"### Real-world corpus (`{root}`, {len(files)} e-mails, {total} messages, defaults)\n")
    print(
        f"Messages on the compiled path: **{len(compiled)}/{total} "
        f"({100 * len(compiled) / total:.0f} %)**.\n"
    )
    print("| per message, x raw Jinja (HTML + subject) | median | p90 | worst | target |")
    print("|---|---:|---:|---:|---:|")
    print(_row(f"**all {total} messages**", compiled + fallback, "1.5 / 2.5 / 5"))
    print(_row(f"compiled ({len(compiled)}: HTML, text and subject)", compiled, "-"))
    print(_row("the same, x raw Jinja of the HTML alone", compiled_html, "-"))
    if fallback:
        print(_row(f"per message (not compiled: {len(fallback)})", fallback, "-"))
        print("\nNot compiled (`explain()`):\n")
        for name, reason in sorted(reasons.items()):
            print(f"- `{name}`: {reason}")
    print()
    return 0


# ------------------------------------------------------------ the application benchmark


def _raw_render(template: jinja2.Template, parts: tuple[str, ...], context: dict[str, Any]) -> str:
    """What hand-written code renders: the template, then each part block on its own."""
    out = [template.render(context)]
    for part in parts:
        out.append("".join(template.blocks[part](template.new_context(context))))
    return "".join(out)


def _best(func: Callable[[], object], repeat: int) -> float:
    func()
    return min(timeit.repeat(func, number=1, repeat=repeat))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


FIRST_RENDER = """
import sys, time
sys.path.insert(0, {root!r})
from benchmarks import templates as app
import jinja2, css_inline, notifykit.templates  # imports stay out of the timing
from notifykit.templates import TemplateRenderer
name, locale, mode = {name!r}, {locale!r}, {mode!r}
context = app.contexts(name, 1)[0]
start, cpu = time.perf_counter(), time.process_time()
if mode == "jinja":
    app.environment(locale).get_template(name).render(context)
else:
    TemplateRenderer(app.environment(locale)).render(name, context)
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def _first_render(name: str, locale: str, mode: str, cache: str) -> tuple[float, float]:
    """Seconds (wall clock, CPU) of the first render of ``name`` in a new process."""
    import os
    import subprocess

    root = str(Path(__file__).resolve().parents[1])
    script = FIRST_RENDER.format(root=root, name=name, locale=locale, mode=mode)
    env = dict(os.environ, NOTIFYKIT_TEMPLATE_CACHE=cache)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def cold_start(quick: bool = False) -> None:
    """The first render of each template in a new process, x Jinja's first render there.

    For every application template, in English and French: ``runs`` new
    processes of each kind, interleaved so that the machine's load falls on all
    alike — Jinja's first render (environment, load, compile, render), and
    notifykit's (``TemplateRenderer(env).render``, the defaults) with an empty
    compile cache (a new folder: the first process) and then with that folder
    filled (every later process). Imports are done before the clock starts, on
    both sides. A template's ratio is the median of its runs over the median of
    Jinja's; the table gives the median and the worst over the templates, from
    the wall clock and, less moved by other processes on a loaded machine, the
    CPU time of the process.
    """
    import tempfile

    runs = 2 if quick else 7
    locales = ("fr",) if quick else ("en", "fr")
    names = app.NAMES[:3] if quick else app.NAMES
    ratios: dict[str, dict[str, list[float]]] = {
        kind: {"wall": [], "cpu": []} for kind in ("filled", "empty")
    }
    rows: list[tuple[float, str]] = []
    for locale in locales:
        for name in names:
            times: dict[str, list[tuple[float, float]]] = {"jinja": [], "empty": [], "filled": []}
            for _ in range(runs):
                times["jinja"].append(_first_render(name, locale, "jinja", "off"))
                with tempfile.TemporaryDirectory() as folder:
                    times["empty"].append(_first_render(name, locale, "notifykit", folder))
                    times["filled"].append(_first_render(name, locale, "notifykit", folder))
            cells = []
            for kind in ("filled", "empty"):
                for index, clock in enumerate(("wall", "cpu")):
                    floor = statistics.median(t[index] for t in times["jinja"])
                    ratio = statistics.median(t[index] for t in times[kind]) / floor
                    ratios[kind][clock].append(ratio)
                    cells.append(ratio)
            jinja_ms = statistics.median(t[0] for t in times["jinja"]) * 1e3
            rows.append(
                (
                    cells[2],
                    f"| {locale} | `{name.split('/')[-1]}` | {jinja_ms:.1f} ms | "
                    + " | ".join(f"{c:.2f}" for c in cells)
                    + " |",
                )
            )
    print(
        f"| first render in a new process, x Jinja's first render ({runs} processes "
        "each, median per template) | median | worst | CPU median | CPU worst | target |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for kind, label in (
        ("filled", "compile cache filled (every later process)"),
        ("empty", "compile cache empty (the first process)"),
    ):
        wall, cpu = ratios[kind]["wall"], ratios[kind]["cpu"]
        print(
            f"| {label} | {statistics.median(wall):.2f} | {max(wall):.2f} "
            f"| {statistics.median(cpu):.2f} | {max(cpu):.2f} | ≤ 3 |"
        )
    print()
    print(
        "| locale | template (slowest empty-cache first) | Jinja's first render "
        "| filled | filled CPU | empty | empty CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for _ratio, row in sorted(rows, reverse=True)[:5]:
        print(row)


def _interleaved(funcs: list[Callable[[], object]], repeat: int) -> list[float]:
    """The best time of each function over ``repeat`` rounds, one call of each per round.

    Interleaved, so that a burst of load on the shared machine hits every
    function alike rather than whichever was being timed then.
    """
    for func in funcs:
        func()
    best = [float("inf")] * len(funcs)
    clock = time.perf_counter
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            start = clock()
            func()
            elapsed = clock() - start
            if elapsed < best[i]:
                best[i] = elapsed
    return best


def _measure(
    renderer: TemplateRenderer,
    per_message: TemplateRenderer,
    template: jinja2.Template,
    parts: tuple[str, ...],
    context: dict[str, Any],
    repeat: int,
    text: jinja2.Template | None = None,
) -> tuple[float, float, float, float, float]:
    """Seconds per message: raw Jinja, notifykit, HTML inlined per message, all
    per message, and raw Jinja plus the hand-written ``text`` template (item 4's
    floor; the raw floor again when ``text`` is None: the template has its own).

    Each the best of ``repeat`` calls, interleaved (see :func:`_interleaved`).
    """
    name = template.name or ""

    def raw() -> str:
        return _raw_render(template, parts, context)

    def raw_text() -> tuple[str, str]:
        assert text is not None
        return _raw_render(template, parts, context), text.render(context)

    def ours() -> object:
        return renderer.render(name, context)

    def inlined() -> object:
        # what the per-message path does for the HTML (the text compiled or a block)
        html = per_message.inline(name, template.render(context))
        return html, ["".join(template.blocks[p](template.new_context(context))) for p in parts]

    def everything() -> object:
        return per_message.render(name, context)

    if text is None:
        floor, mine, html, whole = _interleaved([raw, ours, inlined, everything], repeat)
        return floor, mine, html, whole, floor
    # raw_text goes third: each of the four others keeps the neighbour it has
    # without it (the best of a few calls moves with what ran just before it:
    # last, right before ``raw``, it made that floor ~12 % faster), and both
    # floors come after a notifykit render
    floor, mine, item4, html, whole = _interleaved(
        [raw, ours, raw_text, inlined, everything], repeat
    )
    return floor, mine, html, whole, item4


def _row(label: str, values: list[float], target: str) -> str:
    return (
        f"| {label} | {statistics.median(values):.2f} | {_percentile(values, 0.9):.2f} "
        f"| {max(values):.2f} | {target} |"
    )


def application(quick: bool = False) -> int:
    """The application benchmark (see the module docstring)."""
    count = 5 if quick else 20
    repeat = 5 if quick else 15
    ratios: list[float] = []
    html_per_message: list[float] = []
    all_per_message: list[float] = []
    # notifykit's default render x each floor, per locale (item 4: the second)
    by_locale: dict[tuple[str, str], list[float]] = {}
    compiled = total = 0
    reasons: dict[str, int] = {}
    rows: list[str] = []
    for locale in ("en", "fr"):
        env = app.environment(locale)
        # a hand-written text template is plain text: no autoescape (as
        # ``select_autoescape()`` leaves a ``.txt``), the same loader and i18n
        text_env = env.overlay(autoescape=False)
        renderer = TemplateRenderer(app.environment(locale))  # the defaults
        per_message = TemplateRenderer(app.environment(locale), compile=False)
        raw_ratios = by_locale.setdefault((locale, "raw"), [])
        item4_ratios = by_locale.setdefault((locale, "item4"), [])
        for name in app.NAMES:
            plan = renderer.explain(name)
            parts = tuple(p for p in plan.parts if p != "html")
            template = env.get_template(name)
            text = None if "text" in parts else text_env.get_template(f"text/{Path(name).stem}.txt")
            mine: list[float] = []
            mine_item4: list[float] = []
            for context in app.contexts(name, count):
                rendered = renderer.render(name, context)
                total += 1
                if rendered.strategy == "compiled":
                    compiled += 1
                else:
                    key = rendered.reason or "?"
                    reasons[key] = reasons.get(key, 0) + 1

                floor, ours, inlined, everything, item4 = _measure(
                    renderer, per_message, template, parts, context, repeat, text
                )
                mine.append(ours / floor)
                mine_item4.append(ours / item4)
                html_per_message.append(inlined / floor)
                all_per_message.append(everything / floor)
            ratios.extend(mine)
            raw_ratios.extend(mine)
            item4_ratios.extend(mine_item4)
            if text is not None:
                by_locale.setdefault((locale, "derived"), []).extend(mine_item4)
            rows.append(
                f"| {locale} | `{name.split('/')[-1]}` | {plan.strategy} | {plan.text_strategy} "
                f"| {statistics.median(mine):.2f} | {max(mine):.2f} "
                f"| {statistics.median(mine_item4):.2f} | {max(mine_item4):.2f} |"
            )
    share = f"{compiled}/{total} ({100 * compiled / total:.0f} %)"
    print(f"### Application templates (`benchmarks/templates`, {total} messages, defaults)\n")
    print(
        "| locale | template | html | text | median x raw | worst x raw "
        "| median x raw + text | worst x raw + text |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    print()
    print(f"Messages on the compiled path: **{share}** (target ≥ 90 %).\n")
    print("| per message, x raw Jinja | median | p90 | worst | target |")
    print("|---|---:|---:|---:|---:|")
    print(_row("**notifykit, default settings**", ratios, "1.5 / 2.5 / 5"))
    print(
        _row("HTML inlined per message (css-inline, the default engine)", html_per_message, "≤ 3")
    )
    print(_row("everything per message (`compile=False`: HTML and text)", all_per_message, "-"))
    if reasons:
        print("\nMessages not compiled: " + "; ".join(f"{n} x {r}" for r, n in reasons.items()))
    print()
    print("| notifykit, default settings, per message | locale | median | p90 | worst | target |")
    print("|---|---|---:|---:|---:|---:|")
    for floor_name, label, target in (
        ("raw", "x raw Jinja (the template + its subject/text/sms blocks)", "1.5 / 2.5 / 5"),
        (
            "item4",
            "**x raw Jinja of the HTML + a hand-written text template** (item 4)",
            "≤ 1.3",
        ),
        ("derived", "the same, the 7 e-mails whose text notifykit derives", "≤ 1.3"),
    ):
        for locale in ("en", "fr"):
            print(_row(f"{label} | {locale}", by_locale[(locale, floor_name)], target))
    print()
    cold_start(quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
