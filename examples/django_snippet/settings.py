"""What notifykit adds to a Django project's ``settings.py``: copy these into yours.

Keep the real transport URL, with its password, in the environment::

    export NOTIFYKIT_EMAIL_URL='failover(smtp://app:secret@smtp.primary.example smtp://app:secret@smtp.backup.example)'
    python manage.py migrate notifykit     # the Delivery log tables
    python manage.py notifykit_check       # connects to every transport, sends nothing
"""

import os
from pathlib import Path

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "notifykit.contrib.django",  # the Delivery log, its read-only admin, manage.py notifykit_*
]

# send_mail(), EmailMessage, password resets and mail_admins() go through notifykit.
EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"
DEFAULT_FROM_EMAIL = "Chai and Co. <orders@shop.example>"

NOTIFYKIT = {
    "EMAIL_URL": os.environ.get("NOTIFYKIT_EMAIL_URL", "console://"),
    # Notification templates (subject/html/text/sms blocks); by default Django's template folders.
    "TEMPLATES": [Path(__file__).resolve().parent.parent / "templates"],
    "SINKS": ["django"],  # one Delivery row per message, with its attempts (the default)
}
