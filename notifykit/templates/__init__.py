"""Notification templates: one Jinja file per notification, CSS inlined once.

``TemplateRenderer.from_directory("templates").render("order_shipped", {...})``
gives a :class:`Rendered` with ``subject``, ``html`` (CSS inlined), ``text``
and ``sms``. See ``docs/templates.md``. Importing this package loads Jinja
only: premailer (and lxml) or css-inline are imported the first time CSS is
inlined.
"""

from __future__ import annotations

from notifykit.templates._limits import TemplateLimits
from notifykit.templates.renderer import Rendered, TemplatePlan, TemplateRenderer

__all__ = ["Rendered", "TemplateLimits", "TemplatePlan", "TemplateRenderer"]
