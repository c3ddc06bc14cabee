"""The suppression list: the SQLite store, the Notifier's refusal, the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit as nk
from notifykit.cli import main
from notifykit.sinks.base import DeliveryEvent
from notifykit.sinks.memory import MemorySink
from notifykit.suppression import (
    SQLiteSuppressionList,
    SuppressionStore,
    apply_report,
    normalize_recipient,
    read_import,
)
from notifykit.webhooks import SQLiteSeenStore

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def bounce(to: str, kind: str, at: datetime = T0, status: str = "bounced") -> DeliveryEvent:
    return DeliveryEvent(
        message_id="m",
        status=status,  # type: ignore[arg-type]
        channel="email",
        recipients=(to,),
        error="550 5.1.1",
        error_kind=kind,
        at=at,
    )


def test_store_protocol_and_normal_form(tmp_path: Path) -> None:
    """Addresses compare without case or display name; numbers by their digits."""
    with SQLiteSuppressionList(str(tmp_path / "s.db")) as store:
        assert isinstance(store, SuppressionStore)
        assert store.add("Ann <Ann@Example.COM>", "hard bounce", source="bounce")
        assert not store.add("ann@example.com", "again")
        assert store.add("+91 98765-43210", "blocked")
        assert store.check(["ann@example.com", "bob@example.com", "919876543210"]) == {
            "ann@example.com": "hard bounce",
            "919876543210": "blocked",
        }
        assert [e.recipient for e in store.entries()] == ["ann@example.com", "919876543210"]
        assert store.remove("ANN@example.com")
        assert not store.remove("ann@example.com")
        assert store.check(["ann@example.com"]) == {}
        for bad in ["", "91", "not an address", "@example.com"]:
            with pytest.raises(nk.ConfigurationError):
                store.add(bad, "x")


def test_the_store_is_shared_between_connections(tmp_path: Path) -> None:
    """Two stores on one file (two processes) see each other's writes."""
    path = str(tmp_path / "s.db")
    with SQLiteSuppressionList(path) as a, SQLiteSuppressionList(path) as b:
        a.add("x@example.com", "complaint")
        assert b.check(["x@example.com"]) == {"x@example.com": "complaint"}


def test_apply_report_policy() -> None:
    """Hard and complaint at once; soft after N in the window; others never."""
    store = SQLiteSuppressionList()
    assert apply_report(store, bounce("h@example.com", "hard")) == ["h@example.com"]
    c = bounce("c@example.com", "", status="complained")
    assert apply_report(store, c) == ["c@example.com"]
    assert apply_report(store, bounce("u@example.com", "undetermined")) == []
    assert apply_report(store, bounce("r@example.com", "", status="rejected_by_provider")) == []
    assert apply_report(store, bounce("d@example.com", "", status="deferred")) == []
    window = timedelta(days=7)
    # two soft bounces 8 days apart never reach 2 within the window
    assert apply_report(store, bounce("s@example.com", "soft", T0), soft_bounce_limit=2) == []
    later = T0 + timedelta(days=8)
    assert apply_report(store, bounce("s@example.com", "soft", later), soft_bounce_limit=2) == []
    again = later + timedelta(days=1)
    assert apply_report(
        store,
        bounce("s@example.com", "soft", again),
        soft_bounce_limit=2,
        soft_bounce_window=window,
    ) == ["s@example.com"]
    assert store.check(["s@example.com"])["s@example.com"].startswith("2 soft bounces")


def test_notifier_refuses_logs_and_can_be_overridden() -> None:
    """Suppressed: a RejectedError, a failed event, nothing handed to the transport."""
    store = SQLiteSuppressionList()
    store.add("gone@example.com", "smtp; 550 5.1.1 user unknown", source="bounce")
    transport = nk.MemoryTransport()
    sink = MemorySink()
    notifier = nk.Notifier(email=transport, sinks=[sink], suppression=store, sender="s@x.example")
    message = nk.Email(to=["ok@example.com", "Gone@example.com"], subject="Hi", text="t")
    with pytest.raises(nk.Suppressed) as info:
        notifier.send(message)
    assert info.value.rejected == {"Gone@example.com": "smtp; 550 5.1.1 user unknown"}
    assert info.value.kind == "rejected"
    assert transport.outbox == []
    assert [e.status for e in sink.events] == ["queued", "failed"]
    assert sink.events[-1].rejected == {"Gone@example.com": "smtp; 550 5.1.1 user unknown"}
    receipt = notifier.send(message, ignore_suppression=True)
    assert receipt.transport
    assert len(transport.outbox) == 1


def test_errors_are_exported() -> None:
    assert nk.Suppressed.__mro__[1] is nk.RejectedError
    assert "Suppressed" in nk.__all__


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.emails(), st.sampled_from([str.upper, str.lower, lambda s: f"Name <{s}>"]))
def test_every_spelling_of_a_suppressed_address_is_caught(address: str, spell: object) -> None:
    """Whatever the case or the display name, a suppressed address stays suppressed."""
    store = SQLiteSuppressionList()
    store.add(address, "bounce")
    variant = spell(address)  # type: ignore[operator]
    assert store.check([variant]) == {variant: "bounce"}
    assert normalize_recipient(variant) == address.lower()


def test_read_import() -> None:
    text = "recipient,reason\na@example.com,old ESP\n# comment\n\nb@example.com\n"
    assert read_import(text) == [("a@example.com", "old ESP"), ("b@example.com", "imported")]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """suppress add / list / remove / import on one file."""
    db = str(tmp_path / "s.db")
    assert main(["suppress", "add", "a@example.com", "+919876543210", "--db", db]) == 0
    assert main(["suppress", "add", "a@example.com", "--db", db]) == 0
    assert "already suppressed" in capsys.readouterr().out
    imp = tmp_path / "list.csv"
    imp.write_text("b@example.com,from the old ESP\nnot-an-address\n", encoding="utf-8")
    assert main(["suppress", "import", str(imp), "--db", db]) == 1
    assert "1 added, 0 already suppressed, 1 invalid" in capsys.readouterr().out
    assert main(["suppress", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["recipient"], e["source"]) for e in listed] == [
        ("a@example.com", "manual"),
        ("919876543210", "manual"),
        ("b@example.com", "import"),
    ]
    assert main(["suppress", "remove", "A@example.com", "--db", db]) == 0
    assert main(["suppress", "remove", "A@example.com", "--db", db]) == 1
    assert main(["suppress", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "a@example.com" not in out
    assert "b@example.com" in out
    assert main(["suppress", "list", "--db", str(tmp_path / "none.db")]) == 2
    assert main(["suppress"]) == 2
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0] == 2
    finally:
        conn.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_worker_opens_its_own_connection(tmp_path: Path) -> None:
    """Built before fork (gunicorn --preload): the child reopens the file, the parent sees it."""
    store = SQLiteSuppressionList(str(tmp_path / "s.db"))
    seen = SQLiteSeenStore(str(tmp_path / "seen.db"))
    store.add("parent@example.com", "x")
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            store.add("child@example.com", "from the child")
            code = 0 if seen.claim(["k"]) == [True] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.check(["child@example.com"]) == {"child@example.com": "from the child"}
    assert seen.claim(["k"]) == [False]
    store.close()
    seen.close()


def test_send_many_reports_suppressed_recipients_and_sends_the_rest() -> None:
    """A bulk send: the suppressed recipient's result is Suppressed, the others go out."""
    store = SQLiteSuppressionList()
    store.add("gone@example.com", "hard bounce", source="bounce")
    renderer = nk.TemplateRenderer.from_dict(
        {
            "hello.html": "{% block subject %}Hi{% endblock %}{% block text %}Hi {{ name }}{% endblock %}"
        },
        inliner=None,
    )
    transport = nk.MemoryTransport()
    notifier = nk.Notifier(
        email=transport, templates=renderer, sender="s@x.example", suppression=store
    )
    results = notifier.send_many(
        "hello.html",
        [("a@example.com", {"name": "A"}), ("gone@example.com", {"name": "G"})],
        concurrency=2,
    )
    assert isinstance(results[0], nk.Receipt)
    assert isinstance(results[1], nk.Suppressed)
    assert [m.recipients for m in transport.outbox] == [("a@example.com",)]
