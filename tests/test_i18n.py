"""Languages: per-locale files, gettext catalogues, Babel filters, RTL, Hindi and Tamil SMS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit.errors import TemplateError
from notifykit.message import SMS, Recipient
from notifykit.notifier import Notifier
from notifykit.receipt import Receipt
from notifykit.templates import TemplateRenderer
from notifykit.templates._inline import normalise
from notifykit.templates.i18n import locale_candidates, normalize_locale, text_direction
from notifykit.transports.fast2sms import Fast2SMSTransport
from notifykit.transports.memory import MemoryTransport
from notifykit.transports.msg91 import MSG91Transport
from tests.servers.sms_fake import FAST2SMS_KEY, MSG91_KEY, SMSFakeServer

WELCOME = """{% extends "notifykit/layouts/base.html" %}
{% block subject %}Welcome, {{ name }}{% endblock %}
{% block html %}<p>Welcome, {{ name }}.</p>{% endblock %}
{% block sms %}Welcome to Chai & Co., {{ name }}.{% endblock %}
"""
WELCOME_HI = """{% extends "notifykit/layouts/base.html" %}
{% block subject %}स्वागत है, {{ name }}{% endblock %}
{% block html %}<p>स्वागत है, {{ name }}।</p>{% endblock %}
{% block sms %}चाय एंड कंपनी में आपका स्वागत है, {{ name }}।{% endblock %}
"""
OTP_TA = """{% block sms %}உங்கள் OTP {{ code }}. இதை யாருடனும் பகிர வேண்டாம்.{% endblock %}"""
OTP = """{% block sms %}Your OTP is {{ code }}. Do not share it.{% endblock %}"""

SHIPPED = """{% extends "notifykit/layouts/base.html" %}
{% block subject %}{% trans %}Order {{ number }} has shipped{% endtrans %}{% endblock %}
{% block html %}<p class="nk-muted">{% trans %}Order {{ number }} has shipped{% endtrans %}</p>
<p>{{ _("Thank you") }}</p>{% endblock %}
"""


def renderer(**options: object) -> TemplateRenderer:
    return TemplateRenderer.from_dict(
        {
            "welcome.html": WELCOME,
            "welcome.hi.html": WELCOME_HI,
            "otp.txt": OTP,
            "otp.ta.txt": OTP_TA,
            "shipped.html": SHIPPED,
        },
        **options,
    )


def test_a_per_locale_file_wins_and_others_fall_back() -> None:
    """hi and hi_IN use welcome.hi.html; ta has no file and gets welcome.html."""
    r = renderer()
    hindi = r.render("welcome.html", {"name": "आशा"}, locale="hi")
    assert "स्वागत है, आशा" == hindi.subject
    assert "welcome.hi.html" == hindi.template
    assert "welcome.hi.html" == r.render("welcome.html", {"name": "A"}, locale="hi-in").template
    tamil = r.render("welcome.html", {"name": "A"}, locale="ta")
    assert "Welcome, A" == tamil.subject
    assert "welcome.html" == tamil.template


def test_the_locale_sets_lang_and_dir_in_the_bundled_layout() -> None:
    """lang is the BCP 47 tag; Arabic (RTL) gets dir="rtl", Hindi dir="ltr"."""
    r = renderer()
    hindi = r.render("welcome.html", {"name": "A"}, locale="hi_IN").html
    assert hindi is not None
    assert '<html lang="hi-IN" dir="ltr"' in hindi
    arabic = r.render("welcome.html", {"name": "A"}, locale="ar").html
    assert arabic is not None
    assert '<html lang="ar" dir="rtl"' in arabic
    assert 'aria-roledescription="email" lang="ar" dir="rtl"' in arabic
    default = r.render("welcome.html", {"name": "A"}).html
    assert default is not None
    assert '<html lang="en" dir="ltr"' in default


@pytest.mark.parametrize("bad", ["../etc", "hi/../../x", "", "h", "hi_IN_x.html", "hi\0"])
def test_a_bad_locale_is_a_template_error(bad: str) -> None:
    """A locale is part of a file name: anything but a locale name is refused."""
    with pytest.raises(TemplateError, match="not a locale name"):
        renderer().render("welcome.html", {"name": "A"}, locale=bad)


def test_locale_names_and_candidates() -> None:
    """Normalised names, most specific file first, and the RTL set."""
    assert "zh_Hant_TW" == normalize_locale("zh-hant-tw")
    assert ["emails/welcome.ta_IN.html", "emails/welcome.ta.html"] == locale_candidates(
        "emails/welcome.html", "ta-IN"
    )
    assert ["otp.hi"] == locale_candidates("otp", "hi")
    assert "rtl" == text_direction("ur_PK")
    assert "ltr" == text_direction("ta")


def write_catalogue(localedir: Path, locale: str, messages: dict[str, str]) -> None:
    """A compiled .mo file made with Babel, as `pybabel compile` would."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    catalog = Catalog(locale=locale)
    for source, translated in messages.items():
        catalog.add(source, translated)
    folder = localedir / locale / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "messages.mo", "wb") as fh:
        write_mo(fh, catalog)


@pytest.fixture
def localedir(tmp_path: Path) -> Path:
    pytest.importorskip("babel")
    write_catalogue(
        tmp_path,
        "hi",
        {
            "Order %(number)s has shipped": "ऑर्डर %(number)s भेज दिया गया है",
            "Thank you": "धन्यवाद",
        },
    )
    return tmp_path


def test_gettext_catalogues_translate_on_the_compiled_path(localedir: Path) -> None:
    """{% trans %} reads the Hindi catalogue; the CSS is still inlined once per template."""
    r = renderer(translations=localedir)
    assert "compiled" == r.explain("shipped.html").strategy
    hindi = r.render("shipped.html", {"number": "A-1<2>"}, locale="hi")
    assert "compiled" == hindi.strategy
    assert "ऑर्डर A-1<2> भेज दिया गया है" == hindi.subject
    assert hindi.html is not None
    assert "ऑर्डर A-1&lt;2&gt; भेज दिया गया है" in hindi.html  # variables still escaped
    assert "धन्यवाद" in hindi.html
    assert "style=" in hindi.html  # inlined
    per_message = renderer(translations=localedir, compile=False)
    reference = per_message.render("shipped.html", {"number": "A-1<2>"}, locale="hi")
    assert "per_message" == reference.strategy
    assert reference.html is not None
    # the same document, as the templates' own equivalence tests compare them
    engine = r.inliner or "premailer"
    assert normalise(reference.html, engine) == normalise(hindi.html, engine)


def test_no_catalogue_or_no_locale_keeps_the_source_text(localedir: Path) -> None:
    """Tamil has no .mo file and no locale means no translation: the English source."""
    r = renderer(translations=localedir)
    assert "Order 7 has shipped" == r.render("shipped.html", {"number": 7}, locale="ta").subject
    assert "Order 7 has shipped" == r.render("shipped.html", {"number": 7}).subject
    assert "Order 7 has shipped" == renderer().render("shipped.html", {"number": 7}).subject


def test_translations_can_come_from_a_callable(localedir: Path) -> None:
    """translations= may be a function of the locale (a database, Django's catalogues...)."""
    import gettext

    seen: list[str] = []

    def load(locale: str) -> gettext.NullTranslations:
        seen.append(locale)
        return gettext.translation("messages", localedir, languages=[locale], fallback=True)

    r = renderer(translations=load)
    assert "धन्यवाद" in (r.render("shipped.html", {"number": 1}, locale="hi").html or "")
    assert ["hi"] == seen


def test_babel_filters_format_for_the_locale() -> None:
    """₹1,640.00 in en_IN, 1.640,00 ₹ in de_DE; dates in the locale's words."""
    pytest.importorskip("babel")
    r = TemplateRenderer.from_dict(
        {
            "t.txt": "{% block sms %}{{ total | format_currency('INR') }} "
            "{{ n | format_number }} {{ day | format_date('long') }}{% endblock %}"
        }
    )
    context = {"total": 1640, "n": 1234567.5, "day": date(2025, 3, 3)}
    assert "₹1,640.00 12,34,567.5 3 March 2025" == r.render("t.txt", context, locale="en_IN").sms
    german = r.render("t.txt", context, locale="de_DE").sms
    assert "1.640,00\xa0₹ 1.234.567,5 3. März 2025" == german
    hindi = r.render("t.txt", context, locale="hi").sms
    assert hindi is not None
    assert "मार्च" in hindi
    # without a locale: English
    assert (r.render("t.txt", context).sms or "").startswith("₹1,640.00")


def test_a_hindi_and_a_tamil_sms_are_ucs2_with_70_67_segments() -> None:
    """Both scripts are outside GSM-7: 70 characters fit one part, then 67 per part."""
    for letter in ("क", "த"):
        assert "UCS-2" == SMS("+919812345678", letter * 70).encoding
        assert 1 == SMS("+919812345678", letter * 70).segments
        assert 2 == SMS("+919812345678", letter * 71).segments
        assert 2 == SMS("+919812345678", letter * 134).segments
        assert 3 == SMS("+919812345678", letter * 135).segments


def test_the_notifier_sends_in_the_recipients_language() -> None:
    """send_sms, send_email and notify take locale=; the SMS goes out as rendered."""
    email, sms = MemoryTransport(), MemoryTransport()
    notifier = Notifier(
        email=email, sms=sms, sender="Shop <noreply@shop.example>", templates=renderer()
    )
    notifier.send_sms("otp.txt", "+919812345678", {"code": "4821"}, locale="ta")
    sent = sms.outbox[-1]
    assert isinstance(sent, SMS)
    assert "உங்கள் OTP 4821. இதை யாருடனும் பகிர வேண்டாம்." == sent.body
    assert ("UCS-2", 1) == (sent.encoding, sent.segments)
    notifier.send_email("welcome.html", "asha@example.com", {"name": "आशा"}, locale="hi")
    assert "स्वागत है, आशा" == email.outbox[-1].subject  # type: ignore[union-attr]
    results = notifier.notify(
        "welcome.html",
        Recipient(email="asha@example.com", phone="+919812345678"),
        {"name": "आशा"},
        locale="hi",
    )
    assert {"email", "sms"} == set(results)
    hindi_sms = sms.outbox[-1]
    assert isinstance(hindi_sms, SMS)
    assert hindi_sms.body.startswith("चाय एंड कंपनी")
    assert "UCS-2" == hindi_sms.encoding


# -- a DLT template per language (MSG91 / Fast2SMS against the loopback fake)

#: Your names → the provider's ids, one DLT template per language.
MSG91_IDS = {"otp": "flow-otp-en", "otp.hi": "flow-otp-hi", "otp.ta": "flow-otp-ta"}
F2S_IDS = {"otp": "170001", "otp.hi": "170002", "otp.ta": "170003"}
PHONE = "+919812345678"


@pytest.fixture
def sms_fake() -> Iterator[SMSFakeServer]:
    pytest.importorskip("httpx")  # the SMS transports need the [sms] extra (tests_bare has none)
    with SMSFakeServer(hang_limit=5.0) as server:
        for flow in MSG91_IDS.values():
            server.msg91_templates[flow] = ("code",)
        for message_id in F2S_IDS.values():
            server.fast2sms_templates[message_id] = 1
        yield server


def msg91(fake: SMSFakeServer) -> MSG91Transport:
    return MSG91Transport(
        authkey=MSG91_KEY, base_url=fake.url, sender="SHOPIN", templates=MSG91_IDS, timeout=5
    )


def sent_ids(fake: SMSFakeServer, field: str) -> list[str]:
    return [r.json[field] for r in fake.requests]


@pytest.mark.parametrize(
    ("locale", "flow"),
    [
        ("hi", "flow-otp-hi"),
        ("hi-IN", "flow-otp-hi"),  # hi_IN → hi
        ("ta_IN", "flow-otp-ta"),
        ("mr", "flow-otp-en"),  # no Marathi template: the plain name
        (None, "flow-otp-en"),
    ],
)
def test_msg91_sends_the_dlt_template_of_the_locale(
    sms_fake: SMSFakeServer, locale: str | None, flow: str
) -> None:
    """send_sms(locale=) renders the language's text and picks its flow id from templates=."""
    with Notifier(sms=msg91(sms_fake), templates=renderer()) as notifier:
        receipt = notifier.send_sms(
            "otp.txt",
            PHONE,
            {"code": "4821"},
            locale=locale,
            template_id="otp",
            variables={"code": "4821"},
        )
    assert isinstance(receipt, Receipt)
    assert [flow] == sent_ids(sms_fake, "template_id")
    assert [{"mobiles": "919812345678", "code": "4821"}] == sms_fake.requests[0].json["recipients"]


def test_fast2sms_sends_the_dlt_template_of_the_locale(sms_fake: SMSFakeServer) -> None:
    """The Fast2SMS DLT route sends the language's message id; Tamil and Hindi are UCS-2."""
    sms = Fast2SMSTransport(
        api_key=FAST2SMS_KEY,
        base_url=sms_fake.url,
        sender_id="SHOPIN",
        templates=F2S_IDS,
        timeout=5,
    )
    memory = MemoryTransport()
    for transport in (sms, memory):
        with Notifier(sms=transport, templates=renderer()) as notifier:
            for locale in ("ta", "hi", "en"):
                notifier.send_sms(
                    "otp.txt",
                    PHONE,
                    {"code": "4821"},
                    locale=locale,
                    template_id="otp",
                    variables={"code": "4821"},
                )
    assert ["170003", "170002", "170001"] == sent_ids(sms_fake, "message")
    assert ["4821"] * 3 == [r.json["variables_values"] for r in sms_fake.requests]
    tamil = memory.outbox[0]
    assert isinstance(tamil, SMS)
    assert ("ta", "UCS-2", 1) == (tamil.metadata["locale"], tamil.encoding, tamil.segments)
    assert tamil.body.startswith("உங்கள் OTP 4821")


@settings(derandomize=True, max_examples=200, deadline=None)
@given(locale=st.one_of(st.none(), st.integers(), st.text(max_size=20)))
def test_a_locale_only_ever_picks_a_configured_id(locale: object) -> None:
    """Whatever metadata["locale"] holds, the id sent is one of templates= or the name itself."""
    from notifykit.transports._http import localized_template

    chosen = localized_template(MSG91_IDS, "otp", locale)
    assert chosen in MSG91_IDS.values()
    assert "unknown" == localized_template(MSG91_IDS, "unknown", locale)


def test_a_locale_given_in_metadata_is_kept() -> None:
    """The caller's own metadata["locale"] wins over locale= (the render uses locale=)."""
    memory = MemoryTransport()
    notifier = Notifier(sms=memory, templates=renderer())
    notifier.send_sms(
        "otp.txt", PHONE, {"code": "1"}, locale="ta", metadata={"locale": "hi", "shop": "7"}
    )
    sent = memory.outbox[0]
    assert isinstance(sent, SMS)
    assert {"locale": "hi", "shop": "7"} == dict(sent.metadata)


def test_send_many_takes_a_locale_per_call_and_per_row(sms_fake: SMSFakeServer) -> None:
    """locale= is every row's language; a row's context "locale" wins for that row."""
    rows = [
        ("+919812345671", {"code": "1", "locale": "hi"}),
        ("+919812345672", {"code": "2"}),
        ("+919812345673", {"code": "3", "locale": "en"}),
    ]
    with Notifier(sms=msg91(sms_fake), templates=renderer()) as notifier:
        results = notifier.send_many(
            "otp.txt", rows, channel="sms", locale="ta", template_id="otp", variables={"code": "9"}
        )
    assert all(isinstance(r, Receipt) for r in results)
    by_number = {
        rec["mobiles"]: r.json["template_id"]
        for r in sms_fake.requests
        for rec in r.json["recipients"]
    }
    assert {
        "919812345671": "flow-otp-hi",
        "919812345672": "flow-otp-ta",
        "919812345673": "flow-otp-en",
    } == by_number

    memory = MemoryTransport()
    email = Notifier(email=memory, templates=renderer(), sender="Shop <noreply@shop.example>")
    email.send_many(
        "welcome.html",
        [("a@example.com", {"name": "A"}), ("b@example.com", {"name": "B", "locale": "en"})],
        locale="hi",
        concurrency=1,
    )
    subjects = sorted(m.subject for m in memory.outbox)  # type: ignore[union-attr]
    assert ["Welcome, B", "स्वागत है, A"] == subjects


def test_send_many_refuses_a_bad_row_locale_for_that_row_only() -> None:
    """A row's bad locale fails that row (a TemplateError result); the others are sent."""
    memory = MemoryTransport()
    notifier = Notifier(sms=memory, templates=renderer())
    results = notifier.send_many(
        "otp.txt",
        [(PHONE, {"code": "1", "locale": "../x"}), (PHONE, {"code": "2"})],
        channel="sms",
        locale="ta",
        concurrency=1,
    )
    assert isinstance(results[0], TemplateError)
    assert isinstance(results[1], Receipt)
    assert 1 == len(memory.outbox)


def test_the_locale_survives_the_json_payload() -> None:
    """What a task queue carries (to_dict → JSON → from_dict) keeps metadata["locale"]."""
    from notifykit.message import message_from_dict

    memory = MemoryTransport()
    Notifier(sms=memory, templates=renderer()).send_sms(
        "otp.txt", PHONE, {"code": "1"}, locale="ta_IN"
    )
    sent = memory.outbox[0]
    again = message_from_dict(json.loads(json.dumps(sent.to_dict())))
    assert isinstance(again, SMS)
    assert "ta_IN" == again.metadata["locale"]


def test_cli_send_renders_in_the_locale(
    smtp_server: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """notifykit send --locale hi renders welcome.hi.html; a CSV 'locale' column wins per row."""
    from notifykit.cli import main

    port = smtp_server.port  # type: ignore[attr-defined]
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "welcome.html").write_text(WELCOME, encoding="utf-8")
    (templates / "welcome.hi.html").write_text(WELCOME_HI, encoding="utf-8")
    (tmp_path / "rows.csv").write_text(
        "email,name,locale\nasha@example.com,Asha,\nravi@example.com,Ravi,en\n", encoding="utf-8"
    )
    common = [
        "--template",
        "welcome",
        "--templates",
        str(templates),
        "--from",
        "noreply@shop.example",
    ]
    via = ["--via", f"smtp://127.0.0.1:{port}?security=none&timeout=5"]
    code = main(["send", "--csv", str(tmp_path / "rows.csv"), "--locale", "hi", *common, *via])
    assert 0 == code, capsys.readouterr()
    received = smtp_server.messages  # type: ignore[attr-defined]
    subjects = sorted(str(m.message["Subject"]) for m in received)
    assert ["Welcome, Ravi", "स्वागत है, Asha"] == subjects

    assert 2 == len(received)
    code = main(
        ["send", "--to", "asha@example.com", "--text", "hi", "--subject", "x", "--locale", "hi"]
    )
    assert 0 != code
    assert "--locale" in capsys.readouterr().err
    assert 2 == len(received)  # nothing sent


def test_enqueue_renders_in_the_locale_and_the_worker_sends_its_dlt_template(
    sms_fake: SMSFakeServer, tmp_path: Path
) -> None:
    """enqueue(locale=) stores the Hindi SMS with metadata["locale"]; the worker sends flow-otp-hi."""
    from notifykit.errors import InvalidMessage
    from notifykit.outbox import SQLiteOutbox, Worker

    outbox = SQLiteOutbox(str(tmp_path / "outbox.db"))
    with Notifier(sms=msg91(sms_fake), templates=renderer(), outbox=outbox) as notifier:
        notifier.enqueue(
            "welcome.html",
            to=PHONE,
            context={"name": "आशा"},
            channel="sms",
            locale="hi",
            template_id="otp",
            variables={"code": "4821"},
        )
        with pytest.raises(InvalidMessage, match="locale"):
            notifier.enqueue(SMS(PHONE, "hi"), locale="hi")
        worker = Worker(outbox, notifier)
        for _ in range(100):
            worker.run_once()
            if sms_fake.requests:
                break
    assert ["flow-otp-hi"] == sent_ids(sms_fake, "template_id")
