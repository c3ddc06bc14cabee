"""The views' URLs, to include from the project's ``urls.py``."""

from django.urls import path

from . import views

urlpatterns = [
    path("signup/", views.signup),
    path("orders/<str:number>/ship/", views.ship),
]
