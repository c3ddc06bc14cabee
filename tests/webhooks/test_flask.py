"""The Flask blueprint, through Flask's test client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

flask = pytest.importorskip("flask")

import notifykit as nk  # noqa: E402
from notifykit.contrib.flask import webhook_blueprint  # noqa: E402
from notifykit.sinks.sqlite import SQLiteSink  # noqa: E402
from notifykit.suppression import SQLiteSuppressionList  # noqa: E402
from notifykit.webhooks import Fast2SMSReceiver, SESReceiver  # noqa: E402
from tests.webhooks import sns  # noqa: E402

SECRET = "flask-test-secret-0123456789abcdef"


def test_blueprint(tmp_path: Path) -> None:
    """SES (signed) and Fast2SMS (token in the path) behind one blueprint."""
    log = SQLiteSink(tmp_path / "log.db")
    store = SQLiteSuppressionList(str(tmp_path / "s.db"))
    options = {"sinks": [log], "suppression": store}
    receivers = {
        "ses": SESReceiver(topics=[sns.TOPIC], fetch_certificate=sns.Fetcher(), **options),
        "fast2sms": Fast2SMSReceiver(secret=SECRET, **options),
    }
    app = flask.Flask(__name__)
    app.register_blueprint(webhook_blueprint(receivers), url_prefix="/hooks")
    client = app.test_client()
    notifier = nk.Notifier(email=nk.MemoryTransport(), sinks=[log], sender="s@x.example")
    receipt = notifier.send(nk.Email(to="ann@example.com", subject="Hi", text="t"))

    envelope = sns.notification(sns.complaint(receipt.provider_message_id, "ann@example.com"))
    response = client.post("/hooks/ses", data=sns.body(envelope), headers=sns.headers(envelope))
    assert response.status_code == 200
    assert response.json == {"events": 1}
    row = log.delivery(receipt.message_id)
    assert row is not None
    assert row.status == "complained"
    assert store.check(["ann@example.com"]) == {"ann@example.com": "abuse"}

    tampered = {**envelope, "Subject": "changed"}
    assert client.post("/hooks/ses", data=sns.body(tampered)).status_code == 403
    assert client.post("/hooks/ses", data=b"nope").status_code == 400
    assert client.get("/hooks/ses").status_code == 405
    assert client.post("/hooks/ses", data=b"x" * (1024 * 1024 + 1)).status_code == 413

    report = {"request_id": "Q7fTz2WkLm9Xa1B", "mobile": "9876543210", "status": "blocked"}
    assert client.post("/hooks/fast2sms/wrong", json=report).status_code == 401
    ok = client.post(f"/hooks/fast2sms/{SECRET}", json=report)
    assert ok.status_code == 200
    assert json.loads(ok.data) == {"events": 1}
    assert store.check(["+919876543210"]) == {"+919876543210": "blocked"}
    log.close()
    store.close()
