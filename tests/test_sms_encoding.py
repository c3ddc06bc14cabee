"""SMS encoding, segment counting and phone parsing, as the SMS transports rely on them.

Property tests (hypothesis) check ``SMS.encoding`` / ``SMS.segments`` against
an independent model of GSM 03.38 and UCS-2 concatenation (providers.md
section 5), and ``normalize_phone`` against every way a person writes an
Indian mobile number.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit import _gsm
from notifykit.message import normalize_phone

BASIC = sorted(_gsm.GSM7_BASIC)
EXTENSION = sorted(_gsm.GSM7_EXTENSION)
ESC = "\x1b"

gsm_basic_text = st.text(alphabet=BASIC, min_size=1, max_size=700)
gsm_text = st.text(alphabet=BASIC + EXTENSION, min_size=1, max_size=700)
# Characters outside GSM-7: curly quotes, dashes, rupee, Devanagari, emoji (outside the BMP).
non_gsm_char = st.sampled_from(
    [
        "\u2018",
        "\u2019",
        "\u201c",
        "\u201d",
        "\u2013",
        "\u2014",
        "\u2026",
        "\u00a0",
        "₹",
        "अ",
        "क्",
        "😀",
        "🙏",
        "中",
    ]
)
any_text = st.text(min_size=1, max_size=400)


def sms(body: str) -> nk.SMS:
    # A template id lets any body through (even whitespace-only): only counting is tested here.
    return nk.SMS("+919876543210", body, template_id="1001")


def septets(text: str) -> list[str]:
    """The septet stream a GSM-7 text becomes: an extension char is ESC + char."""
    out: list[str] = []
    for c in text:
        if c in _gsm.GSM7_EXTENSION:
            out.append(ESC)
        out.append(c)
    return out


def gsm_parts_model(text: str) -> int:
    """Cut the septet stream into 153-septet parts, never ending a part on an ESC."""
    stream = septets(text)
    if len(stream) <= 160:
        return 1
    parts, i = 0, 0
    while i < len(stream):
        take = 153
        if i + take < len(stream) and stream[i + take - 1] == ESC:
            take -= 1  # the escape goes with its character into the next part
        i += take
        parts += 1
    return parts


def ucs2_parts_model(text: str) -> int:
    """Cut the UTF-16 stream into 67-unit parts, never splitting a surrogate pair."""
    units = text.encode("utf-16-le")
    codes = [int.from_bytes(units[i : i + 2], "little") for i in range(0, len(units), 2)]
    if len(codes) <= 70:
        return 1
    parts, i = 0, 0
    while i < len(codes):
        take = 67
        if i + take < len(codes) and 0xD800 <= codes[i + take - 1] <= 0xDBFF:
            take -= 1  # a high surrogate stays with its low surrogate
        i += take
        parts += 1
    return parts


# --------------------------------------------------------------------------- GSM-7


@given(gsm_basic_text)
def test_basic_gsm_segments_follow_160_153(text: str) -> None:
    """A basic GSM-7 text needs 1 segment up to 160 characters, then ceil(n / 153)."""
    expected = 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    message = sms(text)
    assert "GSM-7" == message.encoding
    assert expected == message.segments


@given(gsm_text)
def test_gsm_with_extension_matches_septet_model(text: str) -> None:
    """Extension characters count as two septets and an escape pair is never split across parts."""
    message = sms(text)
    assert "GSM-7" == message.encoding
    assert gsm_parts_model(text) == message.segments
    total = len(septets(text))
    if total > 160:
        assert math.ceil(total / 153) <= message.segments <= math.ceil(total / 152)


@given(st.integers(min_value=1, max_value=200), st.sampled_from(EXTENSION))
def test_extension_characters_count_double(count: int, char: str) -> None:
    """N extension characters fill 2N septets: 80 fit one SMS, 81 do not."""
    expected = 1 if 2 * count <= 160 else math.ceil(count / 76)
    assert expected == sms(char * count).segments


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # the € does not fit part 1: it starts part 2
        ("a" * 151 + "€" + "a" * 153, 2),
    ],
)
def test_gsm_boundaries(body: str, expected: int) -> None:
    """The 160/153 boundaries, with extension characters on the edges."""
    assert expected == sms(body).segments


# --------------------------------------------------------------------------- UCS-2


@given(gsm_text, non_gsm_char, st.integers(min_value=0, max_value=700))
def test_one_non_gsm_character_switches_to_ucs2(text: str, char: str, at: int) -> None:
    """Any single character outside GSM-7 turns the whole message UCS-2 and never lowers the count."""
    at = min(at, len(text))
    mixed = text[:at] + char + text[at:]
    message = sms(mixed)
    assert "UCS-2" == message.encoding
    assert ucs2_parts_model(mixed) == message.segments
    assert sms(text).segments <= message.segments


@given(any_text)
def test_any_text_matches_the_model(text: str) -> None:
    """For any text, encoding and segments agree with the GSM-7 / UCS-2 models."""
    message = sms(text)
    if set(text) <= _gsm.GSM7_BASIC | _gsm.GSM7_EXTENSION:
        assert ("GSM-7", gsm_parts_model(text)) == (message.encoding, message.segments)
    else:
        assert ("UCS-2", ucs2_parts_model(text)) == (message.encoding, message.segments)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("अ" * 70, 1),
        ("अ" * 71, 2),
        ("अ" * 134, 2),
        ("अ" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 36, 2),  # 72 units: 33 emoji per 67-unit part
        ("😀" * 67, 3),  # 134 units, but a pair is never split: 33 + 33 + 1
        ("“" + "a" * 69, 1),
        ("“" + "a" * 70, 2),
    ],
)
def test_ucs2_boundaries(body: str, expected: int) -> None:
    """The 70/67 boundaries; characters outside the BMP count as two units and are never split."""
    message = sms(body)
    assert ("UCS-2", expected) == (message.encoding, message.segments)


@given(gsm_text, st.lists(st.tuples(st.integers(0, 700), non_gsm_char), min_size=1, max_size=5))
def test_ucs2_characters_names_exactly_the_culprits(
    text: str, inserts: list[tuple[int, str]]
) -> None:
    """ucs2_characters lists every non-GSM character with its index, and nothing else."""
    chars = list(text)
    for at, c in inserts:
        chars.insert(min(at, len(chars)), c)
    body = "".join(chars)
    found = sms(body).ucs2_characters
    expected = [
        (i, c) for i, c in enumerate(body) if c not in _gsm.GSM7_BASIC | _gsm.GSM7_EXTENSION
    ]
    assert expected == [(i, c) for i, c, _name in found]
    assert all(name for _i, _c, name in found)


def test_ucs2_characters_names_common_culprits() -> None:
    """The silent switches a person cannot see are named in words."""
    names = [n for _i, _c, n in sms("\u201cHi\u201d \u2013 ok\u2026\u00a0₹5").ucs2_characters]
    assert [
        "LEFT DOUBLE QUOTATION MARK",
        "RIGHT DOUBLE QUOTATION MARK",
        "EN DASH",
        "HORIZONTAL ELLIPSIS",
        "NO-BREAK SPACE",
        "INDIAN RUPEE SIGN",
    ] == names


def test_template_only_sms_has_no_segments() -> None:
    """A DLT SMS with an empty preview body counts zero segments and is GSM-7."""
    message = nk.SMS("+919876543210", "", template_id="1001")
    assert ("GSM-7", 0) == (message.encoding, message.segments)


# --------------------------------------------------------------------------- phone numbers

E164 = re.compile(r"\+[1-9]\d{6,14}")


@st.composite
def indian_mobiles(draw: st.DrawFn) -> str:
    import phonenumbers

    digits = draw(st.sampled_from("6789")) + draw(
        st.text(alphabet="0123456789", min_size=9, max_size=9)
    )
    assume(phonenumbers.is_valid_number(phonenumbers.parse("+91" + digits)))
    return digits


WRITINGS = [
    ("+91 {a} {b}", None),
    ("+91-{a}-{b}", None),
    ("(+91) {a}{b}", None),
    ("+91{a}{b}", None),
    ("{a}{b}", "IN"),
    ("0{a} {b}", "IN"),
    ("0091 {a} {b}", "IN"),
    ("{a} {b}", "in"),
]


@settings(deadline=None)
@given(indian_mobiles(), st.sampled_from(WRITINGS))
def test_indian_mobile_in_any_writing_is_e164(digits: str, writing: tuple[str, str | None]) -> None:
    """However an Indian mobile is written (spaces, dashes, 0, 0091, +91), it becomes +91 and 10 digits."""
    template, region = writing
    written = template.format(a=digits[:5], b=digits[5:])
    assert "+91" + digits == normalize_phone(written, region)


@settings(deadline=None)
@given(indian_mobiles())
def test_e164_is_a_fixed_point(digits: str) -> None:
    """Normalising an E.164 number again changes nothing, with or without a region."""
    e164 = "+91" + digits
    assert e164 == normalize_phone(e164)
    assert e164 == normalize_phone(e164, "US")
    assert e164 == nk.SMS.from_dict(nk.SMS(e164, "x").to_dict()).to


@settings(deadline=None)
@given(
    st.one_of(any_text, st.from_regex(r"\+?[0-9 ()-]{1,25}", fullmatch=True)),
    st.sampled_from([None, "IN", "US", "GB"]),
)
def test_anything_is_e164_or_invalid_message(text: str, region: str | None) -> None:
    """Any input either normalises to E.164 or raises InvalidMessage: never another exception."""
    try:
        result = normalize_phone(text, region)
    except nk.InvalidMessage:
        return
    assert E164.fullmatch(result)


@settings(deadline=None)
@given(indian_mobiles())
def test_national_number_without_region_says_why(digits: str) -> None:
    """A national number with no default region is an InvalidMessage that mentions the country code."""
    with pytest.raises(nk.InvalidMessage, match="country code"):
        normalize_phone(digits)


@pytest.mark.parametrize(
    ("number", "region", "reason"),
    [
        ("+91 98765", None, "too short"),
        ("+91 98765 43210 12345", None, "too long"),
        ("hello", "IN", "not a phone number"),
        ("+91 55555 55555", None, "not a valid number"),
        ("", "IN", "non-empty"),
    ],
)
def test_invalid_numbers_say_why(number: str, region: str | None, reason: str) -> None:
    """Impossible and invalid numbers are InvalidMessage errors that state the reason."""
    with pytest.raises(nk.InvalidMessage, match=reason):
        nk.SMS(number, "x", default_region=region)
