"""The NOTIFYKIT settings resolver and the shared notifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from notifykit.contrib.django import (
    DjangoModelSink,
    SettingsError,
    build_notifier,
    get_notifier,
    reset_notifier,
    resolve_settings,
)
from notifykit.contrib.django.conf import template_dirs
from notifykit.errors import ConfigurationError
from notifykit.sinks.memory import MemorySink
from notifykit.transports.memory import MemoryTransport

PROJECT = Path(__file__).resolve().parent.parent / "django_project"


@pytest.fixture(autouse=True)
def _fresh_notifier() -> Any:
    reset_notifier()
    yield
    reset_notifier()


def test_missing_setting_says_what_to_add(settings: Any) -> None:
    """Without settings.NOTIFYKIT the error says to add it, and is ImproperlyConfigured too."""
    del settings.NOTIFYKIT

    with pytest.raises(ImproperlyConfigured, match=r"settings\.NOTIFYKIT is missing") as info:
        resolve_settings()
    assert isinstance(info.value, ConfigurationError)


def test_unknown_key_suggests_the_right_one() -> None:
    """A misspelt key is an error that names the key it probably meant."""
    with pytest.raises(SettingsError, match=r"'EMAIL_ULR' \(did you mean 'EMAIL_URL'\?\)"):
        resolve_settings({"EMAIL_ULR": "console://"})


def test_a_url_is_required() -> None:
    """Neither EMAIL_URL nor SMS_URL: the error names both keys."""
    with pytest.raises(SettingsError, match="'EMAIL_URL' and/or 'SMS_URL'"):
        resolve_settings({"SENDER": "a@shop.example"})


def test_wrong_type_names_the_key() -> None:
    """A value of the wrong type is reported with its key."""
    with pytest.raises(SettingsError, match=r"NOTIFYKIT\['SENDER'\] must be a string"):
        resolve_settings({"EMAIL_URL": "console://", "SENDER": 42})


def test_bad_url_names_the_key_and_masks_the_password() -> None:
    """A malformed transport URL is reported under its key, with the password masked."""
    with pytest.raises(SettingsError) as info:
        build_notifier({"EMAIL_URL": "smtp://app:hunter22@mail.example.com?colour=red"})

    message = str(info.value)
    assert message.startswith("NOTIFYKIT['EMAIL_URL']: ")
    assert "colour" in message
    assert "hunter22" not in message


def test_bad_sink_names_its_index() -> None:
    """A sink that cannot be built is reported with its position in SINKS."""
    with pytest.raises(SettingsError, match=r"NOTIFYKIT\['SINKS'\]\[1\]: cannot import"):
        build_notifier({"EMAIL_URL": "memory://", "SINKS": ["logging://", "nowhere.Sink"]})


def test_sinks_must_be_a_list() -> None:
    """A single string for SINKS (a common slip) is refused with an example."""
    with pytest.raises(SettingsError, match=r"must be a list"):
        resolve_settings({"EMAIL_URL": "memory://", "SINKS": "django"})


def test_missing_template_folder_is_reported(tmp_path: Path) -> None:
    """A TEMPLATES folder that does not exist is reported with its index."""
    with pytest.raises(SettingsError, match=r"NOTIFYKIT\['TEMPLATES'\]\[1\]: .* not a directory"):
        resolve_settings({"EMAIL_URL": "memory://", "TEMPLATES": [tmp_path, tmp_path / "nope"]})


def test_sink_kinds_are_built() -> None:
    """SINKS accepts 'django', log URLs, dotted paths and ready sinks."""
    ready = MemorySink()
    notifier = build_notifier(
        {
            "EMAIL_URL": "memory://",
            "SINKS": ["django", "memory://", "notifykit.sinks.memory.MemorySink", ready],
        }
    )
    with notifier:
        kinds = [type(s) for s in notifier.sinks]

    assert [DjangoModelSink, MemorySink, MemorySink, MemorySink] == kinds
    assert ready is notifier.sinks[3]


def test_defaults_come_from_django(settings: Any) -> None:
    """SENDER defaults to DEFAULT_FROM_EMAIL and SINKS to the model sink when the app is installed."""
    conf = resolve_settings({"EMAIL_URL": "memory://"})

    assert settings.DEFAULT_FROM_EMAIL == conf.sender
    assert ("django",) == conf.sinks


def test_template_folders_follow_django_order() -> None:
    """TEMPLATES DIRS come first, then each installed app's templates folder in app order."""
    dirs = template_dirs()

    assert PROJECT / "templates" == dirs[0]
    assert PROJECT / "shop" / "templates" in dirs
    admin = next(i for i, d in enumerate(dirs) if d.parts[-3:-1] == ("contrib", "admin"))
    assert admin < dirs.index(PROJECT / "shop" / "templates")


def test_notifier_is_shared_and_rebuilt_when_settings_change(settings: Any) -> None:
    """get_notifier() returns one object until NOTIFYKIT changes."""
    settings.NOTIFYKIT = {"EMAIL_URL": "memory://", "SINKS": []}
    first = get_notifier()

    assert first is get_notifier()
    settings.NOTIFYKIT = {"EMAIL_URL": "memory://other", "SINKS": []}
    second = get_notifier()
    assert second is not first
    assert isinstance(second.email, MemoryTransport)
    assert "memory:other" == second.email.name


@pytest.mark.django_db
def test_templated_send_uses_app_templates_and_project_layouts(settings: Any) -> None:
    """A template in an app's folder extends a layout in DIRS, as Django finds them."""
    if not hasattr(pytest.importorskip("notifykit.templates"), "TemplateRenderer"):
        pytest.skip("notifykit.templates is not complete yet")
    settings.NOTIFYKIT = {"EMAIL_URL": "memory://", "SINKS": ["django"]}
    from django.test import Client

    response = Client().get("/order-shipped/", {"email": "asha@example.com", "order": "77"})

    assert 200 == response.status_code
    transport = get_notifier().email
    assert isinstance(transport, MemoryTransport)
    [sent] = transport.outbox
    assert "Order 77 has shipped" == sent.subject  # type: ignore[union-attr]
    assert "<footer>Shop</footer>" in (sent.html or "")  # type: ignore[union-attr]
    from notifykit.contrib.django.models import Delivery

    assert "emails/order_shipped.html" == Delivery.objects.get().template


def test_system_check_reports_bad_settings(settings: Any) -> None:
    """`manage.py check` reports a wrong NOTIFYKIT at start-up, naming the key."""
    from django.core.checks import run_checks

    settings.NOTIFYKIT = {"EMAIL_URL": "smtp://mail.example.com?colour=red"}

    errors = [e for e in run_checks() if e.id == "notifykit.E001"]

    assert 1 == len(errors)
    assert errors[0].msg.startswith("NOTIFYKIT['EMAIL_URL']: ")


def test_system_check_passes_good_settings(settings: Any) -> None:
    """A valid NOTIFYKIT raises no notifykit check error."""
    from django.core.checks import run_checks

    settings.NOTIFYKIT = {"EMAIL_URL": "smtp://mail.example.com", "SINKS": ["django"]}

    assert [] == [e for e in run_checks() if e.id.startswith("notifykit.")]


def test_system_check_accepts_no_notifykit_with_the_backend(settings: Any) -> None:
    """With notifykit's EMAIL_BACKEND and no NOTIFYKIT, Django's EMAIL_* settings are used: no error."""
    from django.core.checks import run_checks

    settings.EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"
    del settings.NOTIFYKIT
    settings.EMAIL_HOST = "smtp.example.com"

    assert [] == [e for e in run_checks() if e.id.startswith("notifykit.")]


def test_system_check_warns_about_email_settings_notifykit_does_not_use(settings: Any) -> None:
    """EMAIL_HOST/EMAIL_TIMEOUT beside NOTIFYKIT['EMAIL_URL'] would be ignored: W001 names them."""
    from django.core.checks import run_checks

    settings.EMAIL_BACKEND = "notifykit.contrib.django.EmailBackend"
    settings.NOTIFYKIT = {"EMAIL_URL": "smtp://mail.example.com", "SINKS": ["django"]}
    settings.EMAIL_HOST = "smtp.example.com"
    settings.EMAIL_TIMEOUT = 5

    [warning] = [e for e in run_checks() if e.id.startswith("notifykit.")]

    assert "notifykit.W001" == warning.id
    assert warning.msg.startswith("EMAIL_HOST, EMAIL_TIMEOUT are not used")
