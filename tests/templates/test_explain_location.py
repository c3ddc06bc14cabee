"""explain() names the file and line of the markup the HTML parser restructures."""

from __future__ import annotations

import pytest

from notifykit.templates import TemplateRenderer

_HEAD = "<html><head><style>td { color: red }</style></head><body>\n"


@pytest.mark.parametrize(
    ("body", "problem", "line"),
    [
        (
            "<table>\n<tr>\n{% if v %}<table><tr><td>{{ v }}</td></tr></table>{% endif %}\n</tr></table>",
            "the HTML parser moved <table>",
            4,
        ),
        (
            "<table>\n<tr><td>a</td></tr>\n\n{% if v %}<td>{{ v }}</td>{% endif %}\n</table>",
            "the HTML parser added <tr> around <td>",
            5,
        ),
    ],
)
def test_a_restructured_element_is_named_with_its_file_and_line(
    body: str, problem: str, line: int
) -> None:
    """With the default engine (html5ever restructures both; lxml keeps them as written)."""
    renderer = TemplateRenderer.from_dict(
        {
            "layout.html": "{% block html %}{% endblock %}",
            "mail.html": '{% extends "layout.html" %}{% block html %}'
            + _HEAD
            + body
            + "</body></html>{% endblock %}",
        },
        cache_dir=False,
    )
    plan = renderer.explain("mail.html")
    assert "per_message" == plan.strategy
    assert plan.reason is not None
    assert plan.reason.startswith(problem), plan.reason
    assert plan.reason.endswith(f"(mail.html, line {line})"), plan.reason
    assert "\x00" not in plan.reason
    rendered = renderer.render("mail.html", v="x")
    assert rendered.reason == plan.reason
