"""The template preview inside a Django site, for staff only.

In your ``urls.py``::

    from django.urls import include, path
    from notifykit.contrib.django.preview import preview_urls

    urlpatterns = [
        path("notifykit/preview/", include(preview_urls(BASE_DIR / "templates" / "emails"))),
    ]

Only active staff users see it (``request.user.is_staff``); anyone else gets a
404, so the URL gives nothing away. The page's "send a test" form carries the
preview's own CSRF token, so the view is exempt from Django's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from notifykit.preview import PreviewApp, Request

__all__ = ["preview_urls", "preview_view"]


def preview_view(app: PreviewApp) -> Any:
    """A Django view serving ``app`` below the URL it is included at (staff only)."""

    def view(request: HttpRequest, subpath: str = "") -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not (user.is_active and user.is_staff):
            raise Http404("not found")
        sub = "/" + subpath
        prefix = request.path[: len(request.path) - len(sub)] if subpath else request.path
        answer = app.handle(
            Request(
                method=request.method or "GET",
                path=sub,
                prefix=prefix.rstrip("/"),
                query={k: request.GET[k] for k in request.GET},
                form={k: request.POST[k] for k in request.POST} if request.method == "POST" else {},
            )
        )
        response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
        for name, value in answer.headers.items():
            response[name] = value
        return response

    return csrf_exempt(view)


def preview_urls(templates: str | Path | None = None, **options: Any) -> list[URLPattern]:
    """URL patterns for ``include()``: the preview of ``templates`` (see :class:`PreviewApp`)."""
    view = preview_view(PreviewApp(templates, **options))
    return [
        path("", view, name="notifykit-preview"),
        path("<path:subpath>", view, name="notifykit-preview-page"),
    ]
