"""A Flask app that e-mails a shipping notice when an order ships.

    NOTIFYKIT_EMAIL_URL='smtp://127.0.0.1:1025?security=none' flask --app examples/flask_app run
    curl -d email=asha@example.com http://127.0.0.1:5000/orders/A-1042/ship

The extension reads ``NOTIFYKIT_*`` keys from ``app.config`` (here from the
environment, with development defaults: the console transport and the
logging sink) and builds one Notifier per app on first use, shared by every
request. Templates come from the app's template folder, ``examples/templates``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, request

import notifykit as nk
from notifykit.contrib.flask import NotifyKit, current_notifier

notifykit = NotifyKit()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["NOTIFYKIT_EMAIL_URL"] = os.environ.get("NOTIFYKIT_EMAIL_URL", "console://")
    app.config["NOTIFYKIT_LOG"] = os.environ.get("NOTIFYKIT_LOG", "logging://")
    app.config["NOTIFYKIT_SENDER"] = "Chai and Co. <orders@shop.example>"
    app.config.update(config or {})
    notifykit.init_app(app)

    @app.post("/orders/<number>/ship")
    def ship(number: str) -> dict[str, str]:
        receipt = current_notifier.send_email(
            "order_shipped.html",
            to=request.form["email"],
            context={
                "shop": "Chai and Co.",
                "customer": {"name": request.form.get("name", "there")},
                "order": {
                    "number": number,
                    "carrier": "BlueDart",
                    "tracking_url": f"https://t.example/{number}",
                },
            },
        )
        return {"message_id": receipt.message_id, "transport": receipt.transport}

    @app.errorhandler(nk.DeliveryError)
    def not_delivered(exc: nk.DeliveryError) -> tuple[dict[str, str], int]:
        # Every attempt is already in the delivery log; the client may try again.
        return {"error": "the notification could not be sent"}, 503

    return app


if __name__ == "__main__":
    create_app().run()
