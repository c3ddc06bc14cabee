"""Property tests of the Django conversion: header injection never gets through.

Fixed seed, bounded examples (``derandomize=True``, at most 200).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.mail import BadHeaderError, EmailMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit.contrib.django import email_from_django
from notifykit.errors import InvalidMessage

# Every character str.splitlines() breaks on: what a mail reader may take as a line end.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
FIELDS = ("subject", "header", "from", "to", "cc", "bcc", "reply_to", "header_name")
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


def _message(field: str, value: str) -> EmailMessage:
    fields: dict[str, Any] = {
        "subject": "Hi",
        "body": "Hello",
        "from_email": "shop@shop.example",
        "to": ["asha@example.com"],
    }
    if field == "subject":
        fields["subject"] = value
    elif field == "header":
        fields["headers"] = {"X-Tag": value}
    elif field == "header_name":
        fields["headers"] = {f"X-{value}": "x"}
    elif field == "from":
        fields["from_email"] = f"shop{value}@shop.example"
    else:
        fields[field] = [f"a{value}@example.com"]
    return EmailMessage(**fields)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    before=printable,
    brk=st.sampled_from(LINE_BREAKS),
    after=printable,
)
def test_a_line_break_anywhere_in_a_header_is_bad_header_error(
    field: str, before: str, brk: str, after: str
) -> None:
    """Any line-break character in any header (name, value, address) raises BadHeaderError."""
    with pytest.raises(BadHeaderError) as caught:
        email_from_django(_message(field, before + brk + after))

    assert isinstance(caught.value, InvalidMessage)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(subject=st.text(max_size=60).filter(lambda s: not set(s) & set(LINE_BREAKS)))
def test_a_subject_without_line_breaks_is_never_bad_header_error(subject: str) -> None:
    """No false alarm: a subject without line breaks is kept as it is (or refused otherwise)."""
    try:
        converted = email_from_django(_message("subject", subject))
    except BadHeaderError:  # pragma: no cover - the property under test
        pytest.fail(f"{subject!r} has no line break but raised BadHeaderError")
    except InvalidMessage:
        return  # e.g. a control character or a lone surrogate: notifykit's own check
    assert subject == converted.subject
