"""Integrations with web frameworks and task queues.

Each lives in its own module and imports its framework only when that module
is imported, so ``import notifykit`` never needs Django, Flask or Celery:

- :mod:`notifykit.contrib.django` -- an e-mail backend, a delivery-log app
  (models, admin, sink), the ``NOTIFYKIT`` settings dict and management
  commands (``pip install "notifykit-py[django]"``);
- :mod:`notifykit.contrib.flask` -- the ``NotifyKit`` extension and
  ``current_notifier`` (``pip install "notifykit-py[flask]"``);
- :mod:`notifykit.contrib.celery` -- a task that sends serialised messages and
  retries transient failures with backoff (``pip install "notifykit-py[celery]"``).
"""
