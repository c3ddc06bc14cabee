# ruff: noqa: E501  (a translation table and sample data: long strings)
"""A benchmark application: the e-mails of "Brightwell", a made-up shop.

Written the way applications write their e-mails, not the way notifykit would
like them: a layout (``_layout.html``) whose ``<style>`` is filled by
``{% include "_styles.css" %}`` (a shared stylesheet of ~100 rules, media
queries and dark mode) and by an optional ``{% block extra_style %}``; optional
blocks tested with ``{% if self.footer_links() %}`` and
``{% if self.reason()|trim %}``; macros imported from ``_macros.html``; an
included partial; every string translated with ``jinja2.ext.i18n``
(``_()``, ``{% trans %}`` with plurals, newstyle gettext as Flask-Babel
installs it), English and French, with apostrophes and quotes in both; classes
chosen by Jinja (``class="{{ 'price sale' if item.on_sale else 'price' }}"``,
``loop.cycle``, an ``{% if %}`` choosing between two ``<td class=…>``).

:func:`environment` builds the Jinja environment for a locale,
:func:`contexts` draws realistic contexts for each notification.
"""

from __future__ import annotations

import gettext
import random
from pathlib import Path
from typing import Any

import jinja2

FOLDER = Path(__file__).resolve().parent
NAMES = sorted(f"emails/{p.name}" for p in (FOLDER / "emails").glob("*.html"))

FRENCH = {
    "Notification settings": "Paramètres de notification",
    "Brightwell Ltd, 12 Harbour Street, Leith": "Brightwell Ltd, 12 Harbour Street, Leith (Écosse)",
    "Welcome to Brightwell, %(name)s!": "Bienvenue chez Brightwell, %(name)s !",
    "Your account is ready. Here's how to get started.": "Votre compte est prêt. Voici comment démarrer.",
    "Welcome, %(name)s!": "Bienvenue, %(name)s !",
    "Thanks for joining Brightwell. Your account is ready and we've saved your preferences.": (
        "Merci d'avoir rejoint Brightwell. Votre compte est prêt et nous avons enregistré vos préférences."
    ),
    "Here's what you can do next:": "Voici ce que vous pouvez faire :",
    "Browse this week's new arrivals": "Découvrir les nouveautés de la semaine",
    "Save items to your wishlist": "Ajouter des articles à votre liste d'envies",
    "Get 10%% off your first order with the code below": "10 %% de remise sur votre première commande avec ce code",
    "Start shopping": "Commencer mes achats",
    "If you didn't create this account, you can ignore this e-mail.": (
        "Si vous n'avez pas créé ce compte, ignorez cet e-mail."
    ),
    "You're receiving this because %(email)s signed up at brightwell.example.": (
        "Vous recevez cet e-mail car %(email)s s'est inscrit sur brightwell.example."
    ),
    "Reset your password": "Réinitialiser votre mot de passe",
    "Choose a new password": "Choisir un nouveau mot de passe",
    "Order %(number)s confirmed": "Commande %(number)s confirmée",
    "Thanks for your order!": "Merci pour votre commande !",
    "Item": "Article",
    "Qty": "Qté",
    "Price": "Prix",
    "Subtotal": "Sous-total",
    "Discount": "Remise",
    "Shipping": "Livraison",
    "Total": "Total",
    "Delivery": "Livraison",
    "View your order": "Voir votre commande",
    "Help centre": "Centre d'aide",
    "Returns": "Retours",
    "You're receiving this e-mail because you placed an order.": (
        "Vous recevez cet e-mail car vous avez passé une commande."
    ),
    "Your parcel is delayed": "Votre colis a du retard",
    "Your parcel is on its way": "Votre colis est en route",
    "A short delay": "Un petit retard",
    "It's on its way!": "C'est parti !",
    "Order": "Commande",
    "Carrier": "Transporteur",
    "Tracking number": "Numéro de suivi",
    "Progress": "Suivi",
    "Track your parcel": "Suivre votre colis",
    "%(carrier)s expects to deliver it on %(eta)s.": "%(carrier)s prévoit de le livrer le %(eta)s.",
    "Invoice": "Facture",
    "Invoice %(number)s": "Facture %(number)s",
    "Description": "Description",
    "Amount": "Montant",
    "Net": "HT",
    "VAT %(rate)s%%": "TVA %(rate)s %%",
    "Paid on %(date)s. Thank you!": "Payée le %(date)s. Merci !",
    "Please pay by %(date)s.": "Merci de régler avant le %(date)s.",
    "New": "Nouveau",
    "Deals you saved": "Vos bons plans enregistrés",
    "%(name)s, here's your week": "%(name)s, voici votre semaine",
    "%(minutes)s min read": "%(minutes)s min de lecture",
    "The most-read stories and the deals you saved.": "Les articles les plus lus et vos bons plans.",
    "Unsubscribe from the digest": "Se désabonner du résumé",
    "You're receiving the weekly digest because you subscribed to it.": (
        "Vous recevez le résumé hebdomadaire car vous y êtes abonné."
    ),
    "Action needed: your payment didn't go through": "Action requise : votre paiement n'est pas passé",
    "We couldn't take your payment": "Nous n'avons pas pu prélever votre paiement",
    "Card": "Carte",
    "Reason": "Motif",
    "Update payment details": "Mettre à jour le moyen de paiement",
    "Staff": "Équipe",
    "Reply": "Répondre",
    "Mute this conversation": "Ignorer cette conversation",
    "You're receiving this because you wrote a review.": (
        "Vous recevez cet e-mail car vous avez écrit un avis."
    ),
    "%(author)s replied to your review:": "%(author)s a répondu à votre avis :",
    "Your sign-in code": "Votre code de connexion",
    "Enter this code to finish signing in:": "Saisissez ce code pour terminer la connexion :",
    "%(code)s is your Brightwell code": "%(code)s est votre code Brightwell",
    "New sign-in to your account": "Nouvelle connexion à votre compte",
    "New sign-in": "Nouvelle connexion",
    "Check": "À vérifier",
    "Review your security settings": "Vérifier vos paramètres de sécurité",
    "We weren't sure it was you, so we've signed out your other sessions.": (
        "Nous n'étions pas sûrs que c'était vous : vos autres sessions ont été fermées."
    ),
    "We send this e-mail for every sign-in from a new device.": (
        "Nous envoyons cet e-mail à chaque connexion depuis un nouvel appareil."
    ),
}


class Catalogue(gettext.NullTranslations):
    """A translation catalogue held in a dict (a compiled .mo file behaves the same)."""

    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self.messages = messages

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


def environment(locale: str = "en") -> jinja2.Environment:
    """The application's Jinja environment: its templates, i18n, gettext for ``locale``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(FOLDER)),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    catalogue = Catalogue(FRENCH if locale == "fr" else {})
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
    env.globals["shop_url"] = "https://brightwell.example"
    env.globals["locale"] = locale
    return env


FIRST = ["Asha", "Zoë", "Liam", "Siobhán", "Mateo", "Chloé", "Ngozi", "Yuki", "Ana María", "Tom"]
LAST = ["O'Brien", "Müller", "Okafor", "Silva", "Dubois", "Tanaka", "Smith & Sons", "Nguyen"]
PRODUCTS = [
    ("Linen shirt", "Sky blue / M"),
    ("Merino scarf", "Charcoal"),
    ("Chef's knife 8\"", "Carbon steel"),
    ("Tea & biscuit tin", "Earl Grey"),
    ("Rain jacket <Pro>", "Olive / L"),
    ("Notebook, dotted", "A5"),
    ("Café au lait mug", "Set of 2"),
]


def _money(rng: random.Random, low: int = 3, high: int = 240) -> str:
    return f"£{rng.randint(low, high)}.{rng.randint(0, 99):02d}"


def _person(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    slug = first.lower().replace(" ", ".")
    return {"first_name": first, "name": f"{first} {last}", "email": f"{slug}@example.org"}


def _items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    items = []
    for i in range(count):
        name, variant = rng.choice(PRODUCTS)
        on_sale = rng.random() < 0.3
        items.append(
            {
                "name": name,
                "variant": variant,
                "quantity": rng.randint(1, 4),
                "total": _money(rng),
                "was": _money(rng) if on_sale else "",
                "on_sale": on_sale,
                "image": f"https://cdn.brightwell.example/p/{i}.jpg?w=112&h=112",
            }
        )
    return items


def context(name: str, rng: random.Random) -> dict[str, Any]:
    """A realistic context for notification ``name``."""
    person = _person(rng)
    number = f"BW-{rng.randint(10000, 99999)}"
    base: dict[str, Any] = {"user": person, "customer": person}
    short = name.split("/")[-1].removesuffix(".html")
    if short == "welcome":
        base["promo_code"] = f"HELLO{rng.randint(10, 99)}"
    elif short == "password_reset":
        base.update(
            reset_url=f"https://brightwell.example/reset?token={rng.getrandbits(64):x}&u=1",
            expires_in=rng.choice([15, 30, 60]),
            request={
                "ip": "203.0.113.7",
                "city": rng.choice(["Leith", "Lyon", "Köln"]),
                "browser": "Firefox 132 on Linux",
            },
        )
    elif short == "order_confirmation":
        items = _items(rng, rng.randint(1, 8))
        base.update(
            order={
                "number": number,
                "lines": items,
                "subtotal": _money(rng, 20, 900),
                "discount": _money(rng) if rng.random() < 0.4 else None,
                "shipping": rng.choice(["£0.00", "£3.95", "£6.50"]),
                "total": _money(rng, 20, 900),
            },
            address={
                "line1": f"{rng.randint(1, 200)} Quay Road",
                "line2": rng.choice(["", "Flat 3"]),
                "postcode": "EH6 7AB",
                "city": rng.choice(["Edinburgh", "Lille", "Galway"]),
            },
        )
    elif short == "shipping_update":
        delayed = rng.random() < 0.3
        base.update(
            order={"number": number},
            shipment={
                "delayed": delayed,
                "status_text": "Delayed at the depot" if delayed else "Out for delivery",
                "carrier": rng.choice(["Royal Mail", "DPD", "Colissimo"]),
                "eta": rng.choice(["Friday 6 December", "Monday 9 December"]),
                "tracking": f"JD{rng.getrandbits(40):012d}",
                "tracking_url": f"https://track.example/?id={rng.getrandbits(32):x}&lang=en",
                "steps": [
                    {"when": f"Dec {d}", "label": label, "done": d < 4}
                    for d, label in enumerate(
                        ["Ordered", "Packed", "Shipped", "Out for delivery", "Delivered"], 1
                    )
                ][: rng.randint(2, 5)],
            },
        )
    elif short == "invoice":
        lines = [
            {
                "description": rng.choice(PRODUCTS)[0],
                "quantity": rng.randint(1, 5),
                "amount": _money(rng),
            }
            for _ in range(rng.randint(1, 12))
        ]
        base["invoice"] = {
            "number": f"INV-{rng.randint(1000, 9999)}",
            "date": "3 December 2026",
            "lines": lines,
            "net": _money(rng, 50, 900),
            "vat_rate": 20,
            "vat": _money(rng, 5, 90),
            "total": _money(rng, 50, 999),
            "paid": rng.random() < 0.6,
            "paid_on": "3 December 2026",
            "due": "31 December 2026",
        }
    elif short == "weekly_digest":
        sections = []
        for title in rng.sample(
            ["Style", "Kitchen", "Travel", "Staff picks", "Ask us"], rng.randint(1, 4)
        ):
            stories = [
                {
                    "title": f"{title}: the {rng.choice(['best', 'new', 'quiet'])} {rng.choice(['edit', 'list', 'guide'])}",
                    "url": f"https://brightwell.example/stories/{rng.getrandbits(24):x}",
                    "summary": "Five things we're loving this week — and why you'll want them before winter.",
                    "author": " ".join(_person(rng)["name"].split()[:2]),
                    "minutes": rng.randint(2, 9),
                }
                for _ in range(rng.randint(1, 3))
            ]
            sections.append(
                {
                    "title": title,
                    "is_new": rng.random() < 0.3,
                    "stories": stories,
                    "count": len(stories),
                }
            )
        base.update(
            sections=sections,
            deals=[
                {"name": n, "price": _money(rng), "on_sale": rng.random() < 0.5}
                for n, _v in rng.sample(PRODUCTS, rng.randint(0, 4))
            ],
            unsubscribe_url=f"https://brightwell.example/u/{rng.getrandbits(48):x}",
        )
    elif short == "payment_failed":
        base.update(
            subscription={
                "plan": rng.choice(["Monthly", "Annual", "Family"]),
                "amount": _money(rng),
            },
            attempts_left=rng.randint(0, 3),
            card={
                "brand": rng.choice(["Visa", "Mastercard"]),
                "last4": f"{rng.randint(0, 9999):04d}",
            },
            decline_reason=rng.choice(
                ["Insufficient funds", "Card expired", 'Bank said "do not honour"']
            ),
            billing_url="https://brightwell.example/account/billing?from=email",
        )
    elif short == "comment_notification":
        author = _person(rng)["name"]
        base.update(
            review={
                "product": rng.choice(PRODUCTS)[0],
                "excerpt": "Lovely quality, but the sizing runs small — order one up.",
            },
            comment={
                "author": author,
                "staff": rng.random() < 0.3,
                "avatar": "https://cdn.brightwell.example/a/1.png",
                "body": rng.choice(
                    [
                        "Thanks! We've passed this on to the team.",
                        "Agreed <3 — I sized up & it's perfect.",
                        'Which colour did you get? The "olive" one?',
                    ]
                ),
                "when": "2 hours ago",
                "url": "https://brightwell.example/r/1#c2",
                "mute_url": "https://brightwell.example/r/1/mute",
            },
        )
    elif short == "verification_code":
        base.update(code=f"{rng.randint(0, 999999):06d}", expires_in=10)
    elif short == "account_alert":
        base.update(
            alert={
                "suspicious": rng.random() < 0.25,
                "device": "Safari on iPhone",
                "location": rng.choice(["Leith, UK", "Lyon, France", "São Paulo, Brazil"]),
                "when": "3 Dec 2026, 09:41 UTC",
            },
            security_url="https://brightwell.example/account/security",
        )
    return base


def contexts(name: str, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` contexts for ``name``, the same for the same seed."""
    rng = random.Random(f"{name}:{seed}")
    return [context(name, rng) for _ in range(count)]
