from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "tests.contrib.django_project.shop"
    label = "shop"
