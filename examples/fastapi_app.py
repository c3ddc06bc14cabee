"""A FastAPI app that e-mails a shipping notice when an order ships, without blocking.

    pip install "notifykit-py[fastapi,async]" uvicorn
    NOTIFYKIT_EMAIL_URL='smtp://127.0.0.1:1025?security=none' uvicorn examples.fastapi_app:app
    curl -H 'content-type: application/json' -d '{"email": "asha@example.com"}' \\
        http://127.0.0.1:8000/orders/A-1042/ship

The Notifier is built at start-up by the lifespan (from ``NOTIFYKIT_*``
environment variables, with development defaults: the console transport and
the logging sink), shared by every request, and closed at shut-down. The view
awaits ``asend_email``: the SMTP dialogue runs on aiosmtplib, on the loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import notifykit as nk
from notifykit.contrib.fastapi import NotifierDep, lifespan

TEMPLATES = Path(__file__).parent / "templates"


def build_notifier() -> nk.Notifier:
    environ = {
        "NOTIFYKIT_EMAIL_URL": "console://",
        "NOTIFYKIT_LOG": "logging://",
        "NOTIFYKIT_SENDER": "Chai and Co. <orders@shop.example>",
        "NOTIFYKIT_TEMPLATES": str(TEMPLATES),
        **{k: v for k, v in os.environ.items() if k.startswith("NOTIFYKIT_")},
    }
    return nk.Notifier.from_env(environ=environ, dotenv=None)


app = FastAPI(lifespan=lifespan(build_notifier))


class Customer(BaseModel):
    email: str
    name: str = "there"


@app.post("/orders/{number}/ship")
async def ship(number: str, customer: Customer, notifier: NotifierDep) -> dict[str, str]:
    receipt = await notifier.asend_email(
        "order_shipped.html",
        to=customer.email,
        context={
            "shop": "Chai and Co.",
            "customer": {"name": customer.name},
            "order": {
                "number": number,
                "carrier": "BlueDart",
                "tracking_url": f"https://t.example/{number}",
            },
        },
    )
    return {"message_id": receipt.message_id, "transport": receipt.transport}


@app.exception_handler(nk.DeliveryError)
async def not_delivered(request: object, exc: nk.DeliveryError) -> JSONResponse:
    # Every attempt is already in the delivery log; the client may try again.
    return JSONResponse({"error": "the notification could not be sent"}, status_code=503)
