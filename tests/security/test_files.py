"""FileTransport keeps every file inside its folder, whatever the message id.

The id of a message can come from the caller, from ``from_dict()`` or from a
task queue's payload, so these tests draw hostile ids (``../x``, absolute
paths, separators, NUL-free control characters, dots, very long ids) and check
the whole tree around the folder after each send: one new file, directly in the
folder, and nothing anywhere else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.message import message_from_dict
from notifykit.transports.file import FileTransport, safe_file_stem

_HOSTILE = [
    "../x",
    "../../escaped",
    "..",
    ".",
    "/tmp/absolute",
    "//double",
    "a/../../b",
    "sub/dir/id",
    "..\\..\\windows",
    "C:\\evil",
    ".hidden",
    "x" * 400,
    "é" * 300,
    "~/home",
    "id with spaces",
]

# Ids the Message itself accepts: non-empty, no line breaks.
_ids = st.one_of(
    st.sampled_from(_HOSTILE),
    st.text(
        alphabet=st.sampled_from(list("./\\~:ab_-é\t")),
        min_size=1,
        max_size=40,
    ),
    st.text(min_size=1, max_size=300).filter(lambda s: "\r" not in s and "\n" not in s),
    st.builds(
        lambda parts: "/".join(parts), st.lists(st.sampled_from(["..", ".", "x"]), min_size=1)
    ),
)


def _tree(root: Path) -> set[Path]:
    return {Path(d) / f for d, dirs, files in os.walk(root) for f in files + dirs}


def _email(message_id: str) -> nk.Email:
    return nk.Email(
        to="a@example.com", subject="s", text="t", sender="b@example.com", id=message_id
    )


@settings(derandomize=True, max_examples=200, deadline=None)
@given(message_id=_ids, sms=st.booleans())
def test_no_file_appears_outside_the_folder(message_id: str, sms: bool) -> None:
    """Any id: exactly one new file, a direct child of the folder; nothing else changes."""
    try:
        message: nk.Message = (
            nk.SMS(to="+919812345678", body="hi", id=message_id) if sms else _email(message_id)
        )
    except nk.InvalidMessage:
        return  # the message itself refused the id (e.g. a control character)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "spool" / "out"
        folder.mkdir(parents=True)
        before = _tree(root)
        receipt = FileTransport(folder).send(message)
        new = _tree(root) - before
        assert 1 == len(new), new
        (written,) = new
        assert folder == written.parent
        assert Path(receipt.provider_message_id or "") == written
        assert not written.name.startswith(".")
        assert len(written.name.encode("utf-8")) <= 255


def test_from_dict_and_a_task_payload_cannot_escape(tmp_path: Path) -> None:
    """An id arriving in a serialised message (from_dict, a Celery payload) is confined."""
    folder = tmp_path / "out"
    payload = _email("x").to_dict()
    payload["id"] = "../../escaped"
    transport = FileTransport(folder)
    transport.send(nk.Email.from_dict(payload))
    transport.send(message_from_dict(payload))
    assert not (tmp_path / "escaped.eml").exists()
    assert not (tmp_path.parent / "escaped.eml").exists()
    names = sorted(p.name for p in folder.iterdir())
    assert [f"escaped-{safe_file_stem('../../escaped')[-16:]}.eml"] == names


def test_an_absolute_id_stays_in_the_folder(tmp_path: Path) -> None:
    """``/abs/path`` is a file name in the folder, not a path."""
    outside = tmp_path / "outside"
    folder = tmp_path / "out"
    FileTransport(folder).send(_email(str(outside)))
    assert not outside.exists()
    assert not Path(f"{outside}.eml").exists()
    assert 1 == len(list(folder.iterdir()))


def test_safe_ids_keep_their_name(tmp_path: Path) -> None:
    """Generated ids (hex) and ordinary ids are used as they are."""
    message = _email("order-42@shop+eu.v1")
    FileTransport(tmp_path).send(message)
    assert (tmp_path / "order-42@shop+eu.v1.eml").exists()
    generated = _email("x")
    generated = nk.Email.from_dict({**generated.to_dict(), "id": None})
    assert generated.id == safe_file_stem(generated.id)


def test_distinct_ids_never_share_a_file() -> None:
    """Cleaning is not a collision: ids that clean alike differ by their hash."""
    names = {safe_file_stem(i) for i in ["a/b", "a\\b", "a:b", "a b", "a_b"]}
    assert 5 == len(names)


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    """The temporary file is created fresh (O_EXCL), never through a planted symlink."""
    folder = tmp_path / "out"
    folder.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (folder / ".m1.eml.tmp").symlink_to(victim)  # the old, predictable temp name
    FileTransport(folder).send(_email("m1"))
    assert "keep" == victim.read_text()
    assert (folder / "m1.eml").read_bytes().startswith(b"From:")
