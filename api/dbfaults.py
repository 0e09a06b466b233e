"""Requests that meet a lost database connection: retried once when safe, else 503, never 500.

The pool checks every connection before handing it out (:func:`helpdesk.db.make_pool`), so a
Postgres restart costs no request a stale connection. What is left is a request whose
connection drops *while* it runs (the restart happens mid-request) or that finds the server
still down. Decisions:

* **Reads are retried once.** A ``GET``/``HEAD`` that fails that way before its response has
  started is run again with a fresh connection: it changes nothing, so running it twice is
  safe, and a restart that is over by then costs the client nothing.
* **Writes are not retried here.** Whether a write that lost its connection committed is
  unknown, and running a turn or an agent action again could answer twice. They get ``503
  database_unavailable`` with ``Retry-After``; a client retries with its Idempotency-Key (a
  customer's message) or after re-reading the state (an agent's action).
* A response that has already started (an SSE stream) cannot be changed: the stream ends, and
  the client reconnects with ``Last-Event-ID`` (the widget does).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import send_error
from helpdesk.db import connection_lost

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2
"""What a refused client is told to wait: about what a local Postgres takes to restart."""
_SAFE_METHODS = ("GET", "HEAD")


class DatabaseFaults:
    """Retry safe requests that lost the database once; answer 503 for the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        attempts = 2 if scope["method"] in _SAFE_METHODS else 1
        for attempt in range(1, attempts + 1):
            started = False

            async def tracking_send(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            try:
                await self.app(scope, receive, tracking_send)
                return
            except Exception as exc:
                if started or not connection_lost(exc):
                    raise
                if attempt < attempts:
                    log.warning(
                        "%s %s lost the database; retrying once", scope["method"], scope["path"]
                    )
                    continue
                log.warning("%s %s: database unavailable (%s)", scope["method"], scope["path"], exc)
                await _unavailable(send)
                return


async def _unavailable(send: Send) -> None:
    await send_error(
        send,
        503,
        "database_unavailable",
        "the database is unavailable for a moment; retry shortly",
        {"retry-after": str(RETRY_AFTER_S)},
    )
