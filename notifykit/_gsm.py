"""GSM 03.38 encoding facts for counting SMS segments.

A text made only of GSM-7 characters travels in 7-bit septets: 160 in one SMS,
153 per part of a concatenated one. Characters of the extension table cost two
septets (escape + character) and are never split across parts. Any other
character switches the whole message to UCS-2: 70 UTF-16 code units in one SMS,
67 per part. See ``reference/providers.md`` section 5.
"""

from __future__ import annotations

import unicodedata

__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "describe_characters", "encoding_of", "segments_of"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION


def encoding_of(text: str) -> str:
    """``"GSM-7"`` when every character is in the GSM 03.38 alphabet, else ``"UCS-2"``."""
    return "GSM-7" if _GSM7.issuperset(text) else "UCS-2"


def _utf16_units(text: str) -> int:
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def segments_of(text: str) -> int:
    """How many SMS parts ``text`` needs (0 for an empty text)."""
    if not text:
        return 0
    if _GSM7.issuperset(text):
        septets = [2 if c in GSM7_EXTENSION else 1 for c in text]
        total = sum(septets)
        if total <= 160:
            return 1
        # Fill 153-septet parts without splitting an escape sequence.
        parts, used = 1, 0
        for cost in septets:
            if used + cost > 153:
                parts += 1
                used = 0
            used += cost
        return parts
    units = [2 if ord(c) > 0xFFFF else 1 for c in text]
    if sum(units) <= 70:
        return 1
    # A surrogate pair is never split across parts either.
    parts, used = 1, 0
    for cost in units:
        if used + cost > 67:
            parts += 1
            used = 0
        used += cost
    return parts


def describe_characters(text: str) -> list[tuple[int, str, str]]:
    """The characters of ``text`` that force UCS-2, as ``(index, char, unicode name)``.

    Curly quotes, dashes, the ellipsis, a non-breaking space or ``₹`` switch a
    whole message to UCS-2 and more than double its cost; this names them.
    """
    return [
        (i, c, unicodedata.name(c, f"U+{ord(c):04X}")) for i, c in enumerate(text) if c not in _GSM7
    ]
