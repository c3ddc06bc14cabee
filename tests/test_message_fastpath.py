"""The fast paths of issue 18 give exactly what the full paths give.

``Email(to, subject, text, html, sender)`` checks its five values inline and
falls back to each field's converter; ``_no_newline`` returns early for
printable text; the serialiser assembles bytes instead of one string. Each is
compared here with its full path (or, for the serialiser, with a verbatim copy
of the previous one, ``tests/_mime_reference.py``) on random input full of
what attackers and broken data produce: CR, LF and the other line breaks,
control characters, lone surrogates, NUL, encoded-word look-alikes, leading
dots, long lines and long words, non-ASCII text.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifykit import Alternative, Attachment, Email
from notifykit import _mime as mime
from notifykit import message as m
from notifykit.errors import InvalidMessage
from tests import _mime_reference as reference

SETTINGS = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

NASTY = [
    "\r", "\n", "\r\n", "\t", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\x7f", "\x9f",
    "\u2028", "\u2029", "\ud800", "\udfff", "\u200b", "\xa0", "=?utf-8?b?QQ==?=", "=?",
    ".", "\n.", " ", "  ", '"', "<", ">", "@", ",", ";", ":", "\\", "(", ")",
    "é", "₹", "日本", "😀", "x" * 80, "y" * 1000, "=_nk_",
]  # fmt: skip
PLAIN = ["a", "Asha", "Rao", "order", "A-1042", "shipped", "z.", "1", "-", "_"]

text = st.lists(st.sampled_from(NASTY + PLAIN), max_size=12).map("".join)
plain_text = st.lists(st.sampled_from([*PLAIN, " ", "é", "₹", "\n"]), max_size=30).map("".join)
local = st.sampled_from(["asha", "a.b", "x+tag", "ü", "a b", "", ".", "o'neil", "a\r\n"])
domain = st.sampled_from(["example.com", "bücher.example", "-bad.example", "", "a..b", "x" * 70])
name = st.sampled_from(["", "Asha Rao", '"Doe, J"', "Ümit", "=?utf-8?q?x?=", "A\nB", "a@b"])


@st.composite
def addresses(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(text)
    if kind == 1:
        return None
    addr = f"{draw(local)}@{draw(domain)}"
    who = draw(name)
    return f"{who} <{addr}>" if who else addr


values = st.one_of(st.none(), text, plain_text, st.integers(), st.just(b"bytes"))
# Addresses that pass, so that most examples get as far as the bytes.
VALID = [
    "asha@example.com",
    "Asha Rao <asha@example.com>",
    '"Doe, J" <j@example.com>',
    "ü@example.com",
    "Ümit <ümit@bücher.example>",
    "b@bücher.example",
    "=?utf-8?q?x?= <x@example.com>",
]
some_address = st.one_of(addresses(), st.sampled_from(VALID), st.sampled_from(VALID))
some_text = st.one_of(values, plain_text)


def outcome(fn: Callable[[], Any]) -> Any:
    """What ``fn()`` gives: its value, or the type and message of its error."""
    try:
        return ("ok", fn())
    except Exception as exc:  # any difference is the point
        return ("error", type(exc), str(exc))


def full_email(*args: Any, **kwargs: Any) -> Email:
    """``Email(...)`` through attrs' converters only (no fast path)."""
    email = object.__new__(Email)
    m._attrs_email_init(email, *args, **kwargs)
    return email


@contextlib.contextmanager
def same_date_and_boundaries() -> Iterator[None]:
    """Both serialisers write the same Date and number their boundaries alike."""
    saved = (mime._date_header, reference._date_header, reference._BOUNDARY_PREFIX)
    mime._date_header = reference._date_header = lambda: "Date: Thu, 03 Dec 2026 16:00:00 +0000"
    reference._BOUNDARY_PREFIX = mime._BOUNDARY_PREFIX
    try:
        yield
    finally:
        mime._date_header, reference._date_header, reference._BOUNDARY_PREFIX = saved


def serialised(serialise: Callable[..., bytes], email: Email, **options: bool) -> Any:
    mime._boundary_count = itertools.count()
    reference._boundary_count = itertools.count()
    return outcome(lambda: serialise(email, **options))


# --------------------------------------------------------------------------- Email(...)


@SETTINGS
@given(to=some_address, subject=some_text, text=some_text, html=values, sender=some_address)
def test_email_fast_path_equals_the_converters(
    to: Any, subject: Any, text: Any, html: Any, sender: Any
) -> None:
    fast = outcome(lambda: Email(to, subject, text, html, sender))
    if fast[0] == "ok":
        full = outcome(lambda: full_email(to, subject, text, html, sender, id=fast[1].id))
        assert full == fast
        email = fast[1]
        for name in ("needs_smtputf8", "recipients", "sender_address", "message_id_header"):
            assert getattr(email, name) == getattr(full[1], name)
        with same_date_and_boundaries():
            for options in ({}, {"eight_bit": True}, {"utf8": True}):
                written = serialised(mime.email_to_bytes, email, **options)
                assert written == serialised(mime.email_to_bytes, full[1], **options)
                assert written == serialised(reference.email_to_bytes, email, **options)
    else:
        assert outcome(lambda: full_email(to, subject, text, html, sender)) == fast


@SETTINGS
@given(to=st.lists(some_address, max_size=3), subject=some_text, sender=some_address)
def test_email_fast_path_with_a_list_of_recipients(to: Any, subject: Any, sender: Any) -> None:
    fast = outcome(lambda: Email(to, subject, "text", None, sender))
    if fast[0] == "ok":
        full = outcome(lambda: full_email(to, subject, "text", None, sender, id=fast[1].id))
        assert full == fast
        assert fast[1].needs_smtputf8 == full[1].needs_smtputf8
        assert fast[1].recipients == full[1].recipients
    else:
        assert outcome(lambda: full_email(to, subject, "text", None, sender)) == fast


@SETTINGS
@given(to=some_address, subject=some_text, text=some_text, html=values, sender=some_address)
def test_email_keyword_calls_take_the_full_path(
    to: Any, subject: Any, text: Any, html: Any, sender: Any
) -> None:
    kwargs = {"to": to, "subject": subject, "text": text, "html": html, "sender": sender}
    fast = outcome(lambda: Email(**kwargs))
    if fast[0] == "ok":
        assert outcome(lambda: full_email(**kwargs, id=fast[1].id)) == fast
        assert outcome(lambda: Email(**kwargs, tags=("t",), id=fast[1].id)) == outcome(
            lambda: full_email(**kwargs, tags=("t",), id=fast[1].id)
        )
    else:
        assert outcome(lambda: full_email(**kwargs)) == fast


FIELDS = ["to", "subject", "text", "html", "sender", "cc", "reply_to", "headers", "tags", "id"]


@SETTINGS
@given(
    base=st.sampled_from(
        [
            {"to": "asha@example.com", "subject": "Hi", "text": "x"},
            {"to": "Ümit <ümit@bücher.example>", "subject": "₹", "html": "<p>é</p>"},
            {"to": "a@example.com", "subject": "s", "text": "t", "headers": {"X-A": "1"}},
            {"to": "a@example.com", "subject": "s", "html": "h", "metadata": {"k": "v"}},
        ]
    ),
    changes=st.dictionaries(
        st.sampled_from(FIELDS),
        st.one_of(some_address, some_text, st.just({"X-B": "2"}), st.just(("t",))),
        max_size=3,
    ),
)
def test_replace_equals_attrs_evolve(base: dict[str, Any], changes: dict[str, Any]) -> None:
    """Email.replace checks only the changed fields, with evolve's values and errors."""
    import attrs

    email = Email(**base)
    cheap = outcome(lambda: email.replace(**changes))
    assert cheap == outcome(lambda: attrs.evolve(email, **changes))
    if cheap[0] == "ok":
        copy = cheap[1]
        with same_date_and_boundaries():
            full = full_email(
                **{f.name: getattr(copy, f.name) for f in attrs.fields(Email) if f.init}
            )
            assert serialised(mime.email_to_bytes, copy) == serialised(mime.email_to_bytes, full)
        assert copy.headers is not email.headers  # a copy, as the converter makes
        assert copy.metadata is not email.metadata


def test_replace_refuses_unknown_fields_like_evolve() -> None:
    email = Email("a@example.com", "s", "t")
    with pytest.raises(TypeError):
        email.replace(colour="blue")


def test_fast_path_refuses_what_the_full_path_refuses() -> None:
    """A few by name: header injection, a lone surrogate, NUL, no body."""
    ok = {"to": "a@example.com", "subject": "Hi", "text": "x", "sender": "s@example.com"}
    for change, message in [
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "line break"),
        ({"subject": "Hi\u2028there"}, "line break"),
        ({"subject": "Hi\x00"}, "control character"),
        ({"subject": "\ud800"}, "surrogate"),
        ({"text": "caf\udce9"}, "surrogate"),
        ({"html": "<p>\x00</p>", "text": None}, "NUL"),
        ({"to": "a@example.com\r\nBcc: b@example.com"}, "line break"),
        ({"to": "a@example.com, b@example.com"}, "more than one address"),
        ({"sender": "=?utf-8?q?x?= <\ud800@example.com>"}, "surrogate"),
        ({"text": "", "html": None}, "needs a body"),
    ]:
        args = {**ok, **change}
        with pytest.raises(InvalidMessage, match=message):
            Email(args["to"], args["subject"], args["text"], args.get("html"), args["sender"])
        with pytest.raises(InvalidMessage, match=message):
            full_email(args["to"], args["subject"], args["text"], args.get("html"), args["sender"])


def test_fast_path_keeps_each_body_encoded_once() -> None:
    email = Email("a@example.com", "Hi", "₹ text", "<p>₹</p>", "s@example.com")
    assert email._memo[("utf-8", "text")] == "₹ text".encode()
    assert email._memo[("utf-8", "html")] == "<p>₹</p>".encode()
    assert b"\xe2\x82\xb9 text" in email.to_bytes(eight_bit=True)


# --------------------------------------------------------------------------- the checks


@SETTINGS
@given(value=text, tab=st.booleans())
def test_no_newline_fast_path_equals_the_full_check(value: str, tab: bool) -> None:
    assert outcome(lambda: m._no_newline("f", value, tab=tab)) == outcome(
        lambda: m._no_newline_full("f", value, tab=tab)
    )


@SETTINGS
@given(value=st.one_of(text, st.text(max_size=40), st.integers()))
def test_message_id_fast_path(value: Any) -> None:
    def full() -> str:
        if not isinstance(value, str) or not value:
            raise InvalidMessage("id: expected a non-empty string")
        m._no_newline_full("id", value)
        return value

    assert outcome(lambda: m._message_id_value(value)) == outcome(full)


def test_new_ids_are_uuid4_and_unique() -> None:
    ids = [m._new_id() for _ in range(5000)]  # crosses the 256-id pool many times
    assert len(set(ids)) == len(ids)
    for value in ids[:600]:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_ids() -> None:
    m._new_id()  # the pool holds bytes the child must not reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, m._new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != m._new_id()
    assert len(child) == 32


# --------------------------------------------------------------------------- the serialiser


# To headers around the 78-column fold.
FOLDING = [
    "Asha Rao <" + "a" * 51 + "@example.com>",  # To: line of 78 characters
    "Asha Rao <" + "a" * 52 + "@example.com>",  # 79: folds
    "A" * 64 + " <a@example.com>",
    "Ümit " + "Y" * 60 + " <u@example.com>",
    "a" * 64 + "@" + "b" * 60 + ".example",
]


# Lines around the 998-octet limit, in characters of 1, 2, 3 and 4 UTF-8 octets.
LONG_LINES = [
    "y" * 998,
    "y" * 999,
    "é" * 499,
    "é" * 500,
    "₹" * 332 + "yy",
    "₹" * 333,
    "😀" * 249 + "yy",
    "😀" * 250,
    "short\n" + "é" * 500 + "\nshort",
    "é\r\n" + "y" * 999,
    "y" * 249,
    "é" * 249,
]


@st.composite
def emails(draw: st.DrawFn) -> Email:
    body = st.one_of(
        st.none(),
        plain_text,
        text.filter(lambda t: "\x00" not in t),
        st.sampled_from(LONG_LINES),
    )
    attachments = []
    if draw(st.booleans()):
        attachments.append(Attachment("a.txt", draw(plain_text).encode()))
    if draw(st.booleans()):
        attachments.append(Attachment("i.png", b"\x89PNG", content_id="img1"))
    if draw(st.booleans()):
        forwarded = b"Subject: fwd\r\n\r\n" + draw(plain_text).encode() + b"\r\n"
        attachments.append(Attachment(None, forwarded, "message/rfc822"))
    alternatives = []
    if draw(st.booleans()):
        alternatives.append(Alternative(draw(plain_text) or "x", "text/calendar; method=REQUEST"))
    if draw(st.booleans()):
        alternatives.append(Alternative(b"\x00\x01", "application/x-thing"))
    headers = {"X-Note": draw(plain_text).replace("\n", " ")} if draw(st.booleans()) else {}
    try:
        return Email(
            to=draw(st.sampled_from([*VALID, *FOLDING])),
            subject=draw(st.one_of(plain_text, text)).replace("\n", " "),
            text=draw(body),
            html=draw(body),
            sender="Shop <noreply@shop.example>",
            cc=draw(st.sampled_from([(), ("c@example.com",)])),
            reply_to=draw(st.sampled_from([(), ("Ümit <u@example.com>",)])),
            headers=headers,
            attachments=attachments,
            alternatives=alternatives,
            derive_text=draw(st.booleans()),
        )
    except InvalidMessage:
        return Email(to="a@example.com", subject="s", text="t", sender="s@example.com")


@SETTINGS
@given(email=emails(), eight_bit=st.booleans(), utf8=st.booleans())
def test_serialiser_writes_the_bytes_the_previous_one_wrote(
    email: Email, eight_bit: bool, utf8: bool
) -> None:
    with same_date_and_boundaries():
        new = serialised(mime.email_to_bytes, email, eight_bit=eight_bit, utf8=utf8)
        old = serialised(reference.email_to_bytes, email, eight_bit=eight_bit, utf8=utf8)
    assert new == old


# --------------------------------------------------------------------------- addresses

ADDRESS_PIECES = [
    "a", "asha", "Asha", "Rao", " ", "  ", ".", "..", "-", "_", "+", "'", "@", "<", ">",
    '"', ",", ";", "(", ")", "\\", "ü", "é", "x" * 61, "y" * 63, "z" * 64, "n" * 250,
    ".example", ".com", "-x", "x-", "\t", "\r\n", "=?utf-8?q?x?=", "[1.2.3.4]",
]  # fmt: skip


@st.composite
def address_texts(draw: st.DrawFn) -> str:
    piece = st.lists(st.sampled_from(ADDRESS_PIECES), max_size=6).map("".join)
    local, domain, name = draw(piece), draw(piece), draw(piece)
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return f"{local}@{domain}"
    if shape == 1:
        return f"{name} <{local}@{domain}>"
    if shape == 2:
        return f"{name} <{local}@{domain}"
    return draw(piece)


@SETTINGS
@given(value=st.one_of(address_texts(), st.sampled_from(VALID)))
def test_address_fast_path_equals_the_full_parse(value: str) -> None:
    m._CACHE.clear()

    def full() -> m.AddressParts:
        try:
            return m._address_parts_full(value)
        except m._BadAddress as exc:
            raise InvalidMessage(str(exc)) from None

    def fast() -> m.AddressParts:
        try:
            return m.address_parts(value)
        except m._BadAddress as exc:
            raise InvalidMessage(str(exc)) from None

    assert outcome(fast) == outcome(full)


def test_address_fast_path_limits() -> None:
    """Lengths the pattern alone does not bound: the full parse decides."""
    long_local = "l" * 243 + "@example.com"  # 255 octets: one too many
    long_name = "N" * 257 + " <a@example.com>"
    long_domain = "a@" + ".".join(["d" * 63] * 4)  # 255 characters of domain
    for value in (long_local, long_name, long_domain, "a@" + "x" * 64 + ".example"):
        m._CACHE.clear()
        with pytest.raises(m._BadAddress):
            m.address_parts(value)
