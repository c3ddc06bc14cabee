"""A templates folder like a user's, written into a temporary directory for the preview tests."""

from __future__ import annotations

import json
from pathlib import Path

WELCOME = """{% extends "notifykit/layouts/base.html" %}
{% block subject %}Welcome to {{ shop }}, {{ name }}{% endblock %}
{% block preheader %}Your account is ready: start with {{ product }}.{% endblock %}
{% block html %}
<h1>Namaste {{ name }}</h1>
<p>Your account at {{ shop }} is ready. Try <strong>{{ product }}</strong> first.</p>
<p>{{ note }}</p>
{% endblock %}
{% block sms %}{{ shop }}: welcome {{ name }}! Your account is ready.{% endblock %}
"""

PROMO = """{# notifykit: marketing #}
{% extends "notifykit/layouts/base.html" %}
{% block subject %}{{ discount }} off this week{% endblock %}
{% block html %}
<p>Hello {{ name }}, everything is {{ discount }} off.</p>
<p><img src="https://cdn.example/banner.png"></p>
<p><a href="http://shop.example/sale">Shop the sale</a></p>
{% if unsubscribe_url is defined %}<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>{% endif %}
{% endblock %}
"""

PREVIEWS_PY = """from notifykit.preview import preview


@preview("promo.html", "no unsubscribe link")
def promo_plain():
    return {"name": "Asha", "discount": "20%"}


@preview("promo.html", "with unsubscribe link")
def promo_unsubscribe():
    return {"name": "Asha", "discount": "20%", "unsubscribe_url": "https://shop.example/u/1"}
"""

OTP = """{% block sms %}आपका OTP {{ code }} है। इसे किसी के साथ साझा न करें। - {{ shop }}{% endblock %}
"""

INVOICE = """{% block subject %}Invoice {{ invoice.number }}{% endblock %}
{% block html %}
<p>Invoice {{ invoice.number }}</p>
<p>Total {{ invoice.total }}</p>
{% endblock %}
{% block text %}Invoice {{ invoice.number }}{% endblock %}
"""

RECEIPT_TOML = """shop = "Chai & Co."

[_cases.paid]
number = "R-1"

[_cases.refunded]
number = "R-2"
"""

RECEIPT = """{% block subject %}Receipt {{ number }} from {{ shop }}{% endblock %}
{% block text %}Receipt {{ number }}{% endblock %}
"""


def write_templates(root: Path) -> Path:
    """welcome (JSON sample), promo (marketing, previews.py), otp (Hindi SMS), invoice (broken data)."""
    (root / "welcome.html").write_text(WELCOME, encoding="utf-8")
    (root / "welcome.preview.json").write_text(
        json.dumps(
            {
                "shop": "Chai & Co.",
                "name": "Asha",
                "product": "Masala chai",
                "note": "Questions? Just reply to this e-mail.",
            }
        ),
        encoding="utf-8",
    )
    (root / "promo.html").write_text(PROMO, encoding="utf-8")
    (root / "previews.py").write_text(PREVIEWS_PY, encoding="utf-8")
    (root / "otp.txt").write_text(OTP, encoding="utf-8")
    (root / "otp.preview.json").write_text(
        json.dumps({"code": "482913", "shop": "Chai & Co."}), encoding="utf-8"
    )
    (root / "invoice.html").write_text(INVOICE, encoding="utf-8")
    (root / "invoice.preview.json").write_text(
        json.dumps({"invoice": {"number": "INV-7"}}), encoding="utf-8"
    )
    (root / "receipt.html").write_text(RECEIPT, encoding="utf-8")
    (root / "receipt.preview.toml").write_text(RECEIPT_TOML, encoding="utf-8")
    (root / "layouts").mkdir()
    (root / "layouts" / "shop.html").write_text("<html>{% block html %}{% endblock %}</html>")
    (root / "_macros.html").write_text("{% macro x() %}x{% endmacro %}")
    return root
