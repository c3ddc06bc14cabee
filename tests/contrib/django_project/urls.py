from django.contrib import admin
from django.urls import path

from tests.contrib.django_project.shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("signup/", views.signup),
    path("signup-crash/", views.signup_then_crash),
    path("order-shipped/", views.order_shipped),
]
