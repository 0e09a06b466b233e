"""Who holds a job: the tenant's lock while a job runs, the owner's lock while it is queued.

Both are Postgres session advisory locks, which Postgres releases the moment their session
ends; so they are also how a dead job is told from a live one (:func:`reap_dead_jobs`):

* **One job per tenant at a time.** A running job holds its tenant's lock
  (:func:`tenant_lock`; waiting jobs stay ``queued``), so a cleanup never races another job's
  new articles.
* **A job whose worker died does not stay running, nor queued**: it ends ``failed`` with
  ``error_code`` ``worker_lost`` and the tenant can ingest again. A queued job is only ever run
  by the process that queued it (its files are there), so that process holds a
  :class:`JobOwner` lock the reaper can test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpdesk.db import DictPool

log = logging.getLogger(__name__)

_JOB_LOCK = 7_201_913  # advisory lock class: one running job per tenant
_LOCK_POLL_S = 0.5

_OWNER_LOST_DETAIL = (
    "the process that received this job's files stopped before it could start the job"
    " (crashed, killed, or lost its database connection); nothing was indexed: send the files"
    " again"
)
_WORKER_LOST_DETAIL = (
    "the process running this job stopped before it finished (crashed, killed, or lost its "
    "database connection); articles indexed before that are kept: run the ingestion again"
)


async def reap_dead_jobs(pool: DictPool, tenant_id: uuid.UUID | None = None) -> int:
    """Mark ``failed`` / ``worker_lost`` the running jobs whose worker is gone; return how many.

    A job runs only while its worker holds the tenant's session advisory lock (see
    :func:`tenant_lock`), and Postgres releases a session lock the moment that session ends.
    So if the lock can be taken, no live worker holds it, and every ``running`` job of the
    tenant is dead. That is the test used here, rather than a heartbeat column and a timeout:

    * it is exact on a multi-process (or multi-host) deployment: a job on another process is
      never taken for dead however slow its current step (a 20 MB PDF, an embedding batch on
      a loaded machine), where a heartbeat needs a timeout longer than the slowest step, and
      then either reaps live jobs (two jobs racing on one tenant) or keeps dead ones for long;
    * a killed process (``kill -9``, OOM, a crash) closes its connections, and the lock goes
      with them at once: nothing to wait for, no clocks to compare, no writes while running.

    A host that vanishes without closing its TCP connection (power loss, partition) keeps
    the lock until the server's TCP keepalive gives up; the lock's connection asks for
    keepalives of about a minute (:func:`tenant_lock`). A worker that outlives its lock's
    connection (a server restart) and gets reaped stops at its next progress write, which
    only updates a row that is still ``running``, so it never undoes the failure or races
    the next job.

    A ``queued`` job holds no lock while it waits, and only the process that queued it can
    run it. Its ``owner_key`` names that process's :class:`JobOwner` lock; when no session
    holds that lock any more, the job is failed the same way (its files went with the process).

    Called when a job is read (:func:`get_job`, :func:`list_jobs`, ``GET /v1/kb/jobs/{id}``),
    by a new job once it holds the tenant's lock (:func:`run_job`), and at API start-up for
    every tenant (``tenant_id=None``).
    """
    async with pool.connection() as conn:
        cur = await conn.execute(_REAP_ORPHANS, (_OWNER_LOST_DETAIL, tenant_id, tenant_id))
        orphans = await cur.fetchall()
        for r in orphans:
            log.warning("ingestion job %s: the process that queued it is gone; failed", r["id"])
        # Only tenants with a running job are looked at: no lock is tried (and no starting job
        # made to wait for it) when there is nothing to reap.
        cur = await conn.execute(
            "SELECT DISTINCT tenant_id FROM ingestion_jobs WHERE status = 'running'"
            " AND (%s::uuid IS NULL OR tenant_id = %s::uuid)",
            (tenant_id, tenant_id),
        )
        tenants = [r["tenant_id"] for r in await cur.fetchall()]
    reaped = len(orphans)
    for tenant in tenants:
        key = (_JOB_LOCK, str(tenant))
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS ok", key)
            row = await cur.fetchone()
            if not (row and row["ok"]):
                continue  # a live worker holds it: its job is running
            try:
                reaped += await reap_locked(conn, tenant)
            finally:
                await _unlock(conn, key)
    return reaped


# A single-bigint advisory lock shows in pg_locks as classid (high 32 bits), objid (low 32
# bits) and objsubid 1, in the database it was taken in.
_REAP_ORPHANS = """
    UPDATE ingestion_jobs j SET status = 'failed', error_code = 'worker_lost', detail = %s,
           finished_at = now()
    WHERE j.status = 'queued' AND j.owner_key IS NOT NULL
      AND (%s::uuid IS NULL OR j.tenant_id = %s::uuid)
      AND NOT EXISTS (
          SELECT 1 FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.classid::int8 << 32) | l.objid::int8) = j.owner_key)
    RETURNING j.id
"""


class JobOwner:
    """A process's claim on the jobs it queued, so that other processes can tell it is gone.

    A queued job waits, holding nothing, for its tenant's lock (:func:`tenant_lock`) in the
    process that received its files, and no other process can run it. The owner holds a
    session advisory lock on a random 62-bit key, on a connection of its own (outside the
    pool, which must not lose a connection for the process's whole life), and
    :func:`create_job` stamps that key on the job. Postgres drops the lock the moment the
    process's session ends, and :func:`reap_dead_jobs` then fails the job. The key is random
    rather than a hash of something, so two processes never share one (2^-62).

    Args:
        conninfo: the database to hold the lock in (the jobs' database).
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._key = _owner_key()
        self._conn: Any = None
        self._guard = asyncio.Lock()

    async def key(self) -> int:
        """The key to stamp on a job, with its lock held: re-taken on a new connection if the
        old one was lost (the jobs stamped before then may have been reaped meanwhile).

        Raises:
            psycopg.OperationalError: the database cannot be reached.
        """
        import psycopg

        async with self._guard:
            for attempt in range(3):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True
                        )
                        await self._conn.execute(_KEEPALIVES)
                    # Re-entrant: taking it again on the same session only counts it twice.
                    cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
                    row = await cur.fetchone()
                except psycopg.OperationalError:
                    await self._drop()
                    if attempt == 2:
                        raise
                    continue
                if row and row[0]:
                    return self._key
                self._key = _owner_key()  # another session holds this key: draw another
            raise RuntimeError("could not take a job owner lock")

    async def close(self) -> None:
        """Release the lock (its jobs, if still queued, become reapable)."""
        async with self._guard:
            await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def _owner_key() -> int:
    return secrets.randbits(62) + 1


async def reap_locked(conn: Any, tenant_id: uuid.UUID) -> int:
    """Fail the tenant's ``running`` jobs; the caller holds the tenant's lock, so all are dead."""
    cur = await conn.execute(
        """
        UPDATE ingestion_jobs SET status = 'failed', error_code = 'worker_lost', detail = %s,
               current_file = NULL, finished_at = now()
        WHERE tenant_id = %s AND status = 'running'
        RETURNING id
        """,
        (_WORKER_LOST_DETAIL, tenant_id),
    )
    ids = [r["id"] for r in await cur.fetchall()]
    for job_id in ids:
        log.warning("ingestion job %s of tenant %s: its worker is gone; failed", job_id, tenant_id)
    return len(ids)


async def _unlock(conn: Any, key: tuple[int, str]) -> None:
    try:
        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
    except Exception as exc:
        # A connection still holding the lock must not go back to the pool: closing it
        # releases the lock. Usually the connection is already gone (and the lock with it);
        # the job's outcome is in its row, so this is no reason to fail the caller.
        log.warning("could not release the ingestion lock (%s); closing its connection", exc)
        await conn.close()
    except BaseException:
        await conn.close()
        raise


@contextlib.asynccontextmanager
async def tenant_lock(pool: DictPool, tenant_id: uuid.UUID) -> AsyncIterator[None]:
    """Hold the tenant's ingestion lock on one pooled connection for the job's duration.

    Polls with ``pg_try_advisory_lock`` instead of blocking, so jobs waiting for the lock hold
    no connection (many queued jobs must not drain the pool the running one needs).

    The lock is also how other processes tell a live job from a dead one
    (:func:`reap_dead_jobs`), so its connection asks the server for TCP keepalives: a worker
    whose host vanishes then releases it in about a minute instead of the system default of
    hours (no effect over a Unix socket, where a dead peer is seen at once).
    """
    key = (_JOB_LOCK, str(tenant_id))
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS ok", key)
            row = await cur.fetchone()
            if row and row["ok"]:
                try:
                    await conn.execute(_KEEPALIVES)
                    yield
                finally:
                    try:
                        with contextlib.suppress(Exception):  # broken: _unlock closes it
                            await conn.execute(_KEEPALIVES_RESET)
                    finally:
                        await _unlock(conn, key)
                return
        await asyncio.sleep(_LOCK_POLL_S)


_KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '30', false),"
    " set_config('tcp_keepalives_interval', '10', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)
# Back to the server's values before the connection returns to the pool.
_KEEPALIVES_RESET = (
    "SELECT set_config(name, reset_val, false) FROM pg_settings"
    " WHERE name IN ('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count')"
)
