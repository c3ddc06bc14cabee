"""Django's own mail test suite, run against notifykit's backend (``nox -s django_suite``)."""
