"""notifykit for FastAPI (``pip install "notifykit-py[fastapi,async]"``).

::

    from fastapi import FastAPI
    from notifykit.contrib.fastapi import NotifierDep, lifespan

    app = FastAPI(lifespan=lifespan())            # Notifier.from_env() at start-up

    @app.post("/orders/{number}/ship")
    async def ship(number: str, notifier: NotifierDep) -> dict[str, str]:
        receipt = await notifier.asend_email("order_shipped.html", to=..., context={...})
        return {"message_id": receipt.message_id}

:func:`lifespan` builds one Notifier when the app starts (so a configuration
mistake stops the app at start-up, not at the first request), keeps it in
``app.state.notifier`` for every request (connections, pools and circuit
breakers persist), and closes it with ``aclose()`` when the app shuts down
(QUIT on the SMTP connections, sinks flushed). :data:`NotifierDep` (or
``Depends(get_notifier)``) hands it to a path operation. Use the ``a``
methods (``asend``, ``asend_email``, ``anotify``...) in ``async def`` views;
they never block the event loop.

To combine with a lifespan of your own, enter :func:`notifier_lifespan`
inside it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from notifykit.errors import ConfigurationError
from notifykit.notifier import Notifier

__all__ = ["NotifierDep", "get_notifier", "lifespan", "notifier_lifespan"]

#: Where the Notifier lives while the app runs.
STATE_KEY = "notifier"

NotifierFactory = Callable[[], Notifier]


def _from_env() -> Notifier:
    return Notifier.from_env(environ=os.environ)


@asynccontextmanager
async def notifier_lifespan(
    app: FastAPI, factory: NotifierFactory | None = None
) -> AsyncIterator[Notifier]:
    """Build the app's Notifier with ``factory``, keep it in ``app.state``, ``aclose()`` it.

    ``factory`` defaults to :meth:`Notifier.from_env() <notifykit.Notifier.from_env>`.
    """
    build = factory if factory is not None else _from_env
    if not callable(build):
        raise ConfigurationError(f"the notifier factory must be callable, got {build!r}")
    notifier = build()
    if not isinstance(notifier, Notifier):
        raise ConfigurationError(f"the notifier factory returned {notifier!r}, not a Notifier")
    setattr(app.state, STATE_KEY, notifier)
    try:
        yield notifier
    finally:
        try:
            await notifier.aclose()
        finally:
            setattr(app.state, STATE_KEY, None)


def lifespan(
    factory: NotifierFactory | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A ``lifespan=`` for ``FastAPI(...)`` that manages the app's Notifier (see the module)."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        async with notifier_lifespan(app, factory):
            yield

    return run


def get_notifier(request: Request) -> Notifier:
    """The dependency: the Notifier that :func:`lifespan` keeps for the running app."""
    notifier = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(notifier, Notifier):
        raise ConfigurationError(
            "this app has no notifykit Notifier: create it with "
            "FastAPI(lifespan=notifykit.contrib.fastapi.lifespan(...))"
        )
    return notifier


#: ``notifier: NotifierDep`` in a path operation's parameters receives the app's Notifier.
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
