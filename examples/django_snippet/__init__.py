"""notifykit in a Django project: the settings (``settings.py``) and two views (``views.py``)."""
