"""Tenant-scoped database work under row-level security.

Every repository function filters by ``tenant_id`` explicitly. On top of that, work done for an
authenticated API caller runs inside :func:`tenant_scope`: a transaction that switches to the
non-superuser role ``deskgraph_app`` and sets ``app.tenant_id``, so the policies of migration
``0003_api`` hide every other tenant's rows even from a query that forgot its filter.

What runs outside a scope, as the table owner (which RLS does not restrict): migrations, the key
look-up that finds the caller's tenant in the first place, and the graph's nodes, which only
ever act on the thread they were started for (the API checks the conversation's tenant before it
touches a thread). The LangGraph checkpoint tables and the KB chunk table have no tenant column
to police: threads are reached by conversation id only after that check, and every chunk query
filters by ``tenant_id``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TypeAlias

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from helpdesk.db import DictPool

APP_ROLE = "deskgraph_app"

Db: TypeAlias = DictPool | AsyncConnection[DictRow]
"""Where a repository function runs: a pool (own connection) or a connection already in use
(for instance one inside :func:`tenant_scope`)."""


@contextlib.asynccontextmanager
async def connect(db: Db) -> AsyncIterator[AsyncConnection[DictRow]]:
    """Yield ``db`` itself when it is a connection, else a connection from the pool."""
    if isinstance(db, AsyncConnection):
        yield db
    else:
        async with db.connection() as conn:
            yield conn


@contextlib.asynccontextmanager
async def tenant_scope(
    pool: DictPool, tenant_id: uuid.UUID
) -> AsyncIterator[AsyncConnection[DictRow]]:
    """Yield a connection in a transaction that can see and change only ``tenant_id``'s rows.

    ``set_config(..., true)`` is transaction-local, so nothing leaks to the next user of the
    pooled connection, even when the transaction fails.
    """
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('role', %s, true), set_config('app.tenant_id', %s, true)",
            (APP_ROLE, str(tenant_id)),
        )
        yield conn
