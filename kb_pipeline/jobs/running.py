"""Ingestion jobs: load files, index their articles, record progress in ``ingestion_jobs``.

Used by ``deskgraph ingest`` and by the HTTP API (``POST /v1/kb/ingest`` creates a job with
:func:`create_job` and runs :func:`run_job` as a background task; clients poll
:func:`get_job`). Every query filters by tenant.

Guarantees:

* **One bad file never stops the rest.** Files are loaded one at a time (in a worker thread:
  PDF parsing is CPU-bound) and their problems are recorded per file in ``errors``.
* **Nothing half-indexed.** Articles are indexed in batches through
  :meth:`KnowledgeBase.ingest`, which writes each article (chunks and ``kb_articles`` row) in
  one transaction. When a batch fails, its articles are retried one by one, so a transient
  error costs a retry and a persistent one is pinned on one article, reported as
  ``index_failed``; the others are written. A failed article keeps its previous version (or
  stays absent); chunks that no article row owns are removed (see :func:`_settle_failed`).
* **Idempotent.** Unchanged articles write nothing. ``force`` re-indexes them anyway (after a
  chunking change: the stored hash covers content, not chunk settings).
* **Cleanup is conservative.** With ``cleanup``, the tenant's articles that the job did not
  see are deleted with their chunks, but only when every file loaded and indexed without an
  error and at least one article was seen: a corrupt file or a bad record would otherwise
  look like deleted articles and lose them.
* **One job per tenant at a time.** A session advisory lock serialises a tenant's jobs
  (waiting jobs stay ``queued``), so a cleanup never races another job's new articles.
* **A job whose worker died does not stay running, nor queued.** See :func:`reap_dead_jobs`:
  such a job ends ``failed`` with ``error_code`` ``worker_lost`` and the tenant can ingest
  again. A queued job is only ever run by the process that queued it (its files are there), so
  that process holds a :class:`JobOwner` lock the reaper can test.

A job ends ``done`` when it ran to the end, even if some files failed (see ``files_failed``
and ``errors``), and ``failed`` when it could not run or did not finish: ``error_code`` says
why in a stable code (:data:`JOB_FAILURE_CODES`), ``detail`` in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from helpdesk.errors import Conflict, NotFound
from helpdesk.policy import TenantPolicy
from helpdesk.tenancy import tenant_scope
from kb_pipeline.index import IngestStats
from kb_pipeline.loaders import (
    DEFAULT_MAX_FILE_BYTES,
    Article,
    FileError,
    Visibility,
    discover,
    display_name,
    drop_duplicates,
    load_file,
)

if TYPE_CHECKING:
    from helpdesk.db import DictPool
    from kb_pipeline.index import KnowledgeBase

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512
DEFAULT_OVERLAP = 64
BATCH_SIZE = 64
"""Articles per :meth:`KnowledgeBase.ingest` call: large enough for batched embedding, small
enough for progress and for pinning a failure on one article cheaply."""
MAX_STORED_ERRORS = 1000
"""Errors kept on a job row; a file with 100k bad lines must not bloat it."""
_JOB_LOCK = 7_201_913  # advisory lock class: one running job per tenant
_LOCK_POLL_S = 0.5

JOB_ERROR_CODES: dict[str, str] = {
    "index_failed": "an article could not be indexed (embedding or database error); it was "
    "rolled back and the next run retries it",
}
"""Error codes a job adds to the loaders' (:data:`kb_pipeline.loaders.ERROR_CODES`)."""

JOB_FAILURE_CODES: dict[str, str] = {
    "worker_lost": "the process running the job, or the one that queued it, died (or lost its "
    "database session) before the job finished; what it indexed stays, run the ingestion again",
    "cancelled": "the job was stopped before the end (the server shut down, Ctrl-C)",
    "path_not_found": "a path given to the job does not exist",
    "no_files": "no path was given, or none holds a file of a supported type",
    "invalid_options": "the job's stored options do not validate",
    "invalid_chunking": "the chunk size and overlap (job options or tenant policy) do not fit",
    "tenant_not_found": "the tenant no longer exists",
    "unexpected_error": "an unexpected error stopped the job (see detail and the server log)",
}
"""``error_code`` of a ``failed`` job (the ``ingestion_jobs`` column), with what it means."""


class JobOptions(BaseModel):
    """What an ingestion job is asked to do. Unset chunking falls back to the tenant policy."""

    model_config = ConfigDict(extra="forbid")

    visibility: Visibility | None = Field(
        default=None,
        description="internal: every article internal. external/unset: each article's own.",
    )
    tags: list[str] = Field(default_factory=list, description="Tags added to every article.")
    max_tokens: int | None = Field(
        default=None, ge=16, le=8192, description="Chunk size (default: tenant policy, 512)."
    )
    overlap: int | None = Field(
        default=None, ge=0, description="Chunk overlap (default: tenant policy, 64)."
    )
    cleanup: bool = Field(
        default=False, description="Delete the tenant's articles that are not in the source."
    )
    force: bool = Field(
        default=False, description="Re-index unchanged articles too (after a chunking change)."
    )
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES, ge=1, description="Larger files fail with too_large."
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> JobOptions:
        if (
            self.max_tokens is not None
            and self.overlap is not None
            and self.overlap >= self.max_tokens
        ):
            raise ValueError(
                f"overlap ({self.overlap}) must be below max_tokens ({self.max_tokens})"
            )
        return self

    def chunking(self, policy: TenantPolicy) -> tuple[int, int]:
        """Effective ``(max_tokens, overlap)``: job options, then tenant policy, then defaults.

        An overlap that is inherited (not set on the job) and does not fit a smaller chunk size
        is scaled down to an eighth of it, so ``--max-tokens 64`` alone just works.

        Raises:
            ValueError: the combination is invalid (an explicit overlap too large).
        """
        max_tokens = self.max_tokens or policy.chunk_max_tokens or DEFAULT_MAX_TOKENS
        if self.overlap is not None:
            overlap = self.overlap
        else:
            overlap = policy.chunk_overlap if policy.chunk_overlap is not None else DEFAULT_OVERLAP
            if overlap >= max_tokens:
                overlap = max_tokens // 8
        if overlap >= max_tokens:
            raise ValueError(f"overlap ({overlap}) must be below max_tokens ({max_tokens})")
        return max_tokens, overlap


@dataclass
class FileOutcome:
    """What happened to one file of a job."""

    file: str
    articles: int = 0
    written: int = 0
    unchanged: int = 0
    chunks: int = 0
    errors: list[FileError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file loaded and indexed without any error."""
        return not self.errors


class JobProgress:
    """Receives a job's progress; subclass and override what you need (all no-ops here)."""

    def started(self, files_total: int, skipped: Sequence[str]) -> None:
        """The files were found; ``skipped`` are those of an unsupported type."""

    def file_started(self, file: str) -> None:
        """A file is about to be loaded and indexed."""

    def articles_done(self, file: str, done: int, total: int) -> None:
        """``done`` of the file's ``total`` articles are indexed (called per batch)."""

    def file_done(self, outcome: FileOutcome) -> None:
        """A file is finished (successfully or not)."""

    def cleanup_started(self) -> None:
        """Deleting the articles that are no longer in the source."""


# ------------------------------------------------------------------------------ job rows


async def create_job(
    pool: DictPool,
    tenant_id: uuid.UUID,
    options: JobOptions | Mapping[str, Any],
    *,
    owner: JobOwner | None = None,
) -> uuid.UUID:
    """Record a queued job and return its id.

    Args:
        owner: the process that will run the job; if it dies before the job starts, the job is
            reaped (``worker_lost``). Without one, a job whose process dies stays ``queued``.

    Raises:
        pydantic.ValidationError: ``options`` is a mapping that does not validate.
    """
    opts = options if isinstance(options, JobOptions) else JobOptions.model_validate(options)
    owner_key = await owner.key() if owner is not None else None
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO ingestion_jobs (tenant_id, options, owner_key) VALUES (%s, %s, %s)"
            " RETURNING id",
            (tenant_id, Jsonb(opts.model_dump(mode="json")), owner_key),
        )
        row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def get_job(pool: DictPool, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """Return a job row as a dict (JSON columns decoded).

    A ``running`` or ``queued`` job whose process is gone is reaped first
    (:func:`reap_dead_jobs`), so the caller sees it ``failed`` with ``error_code``
    ``worker_lost``.

    Raises:
        NotFound: no such job for this tenant.
    """
    row = await _read_job(pool, tenant_id, job_id)
    if row["status"] in ("running", "queued") and await reap_dead_jobs(pool, tenant_id):
        row = await _read_job(pool, tenant_id, job_id)
    return row


async def _read_job(pool: DictPool, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    async with tenant_scope(pool, tenant_id) as conn:  # row-level security as well
        cur = await conn.execute(
            "SELECT * FROM ingestion_jobs WHERE tenant_id = %s AND id = %s", (tenant_id, job_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ingestion job {job_id} for this tenant")
    return dict(row)


async def list_jobs(
    pool: DictPool, tenant_id: uuid.UUID, *, limit: int = 20
) -> list[dict[str, Any]]:
    """The tenant's most recent jobs, newest first (dead running ones reaped first)."""
    await reap_dead_jobs(pool, tenant_id)
    async with tenant_scope(pool, tenant_id) as conn:
        cur = await conn.execute(
            "SELECT * FROM ingestion_jobs WHERE tenant_id = %s ORDER BY created_at DESC LIMIT %s",
            (tenant_id, max(1, min(limit, 200))),
        )
        return [dict(r) for r in await cur.fetchall()]


# ------------------------------------------------------------------------------ running


async def ingest_paths(
    kb: KnowledgeBase,
    pool: DictPool,
    tenant_id: uuid.UUID,
    paths: Sequence[Path],
    options: JobOptions | Mapping[str, Any] | None = None,
    *,
    progress: JobProgress | None = None,
) -> dict[str, Any]:
    """Create a job and run it to the end; return the finished job row (the CLI's path)."""
    # (helpdesk.db.make_pool always opens a pool on a connection string)
    owner = JobOwner(pool.conninfo) if isinstance(pool.conninfo, str) else None
    try:
        job_id = await create_job(pool, tenant_id, options or JobOptions(), owner=owner)
        return await run_job(kb, pool, tenant_id, job_id, paths, progress=progress)
    finally:
        if owner is not None:
            await owner.close()


async def run_job(
    kb: KnowledgeBase,
    pool: DictPool,
    tenant_id: uuid.UUID,
    job_id: uuid.UUID,
    paths: Sequence[Path],
    *,
    progress: JobProgress | None = None,
) -> dict[str, Any]:
    """Run a queued job over ``paths`` (files or folders) and return the finished job row.

    Never raises for bad files or a failing job: those end in the row (``errors``, ``status``
    ``failed`` with ``error_code`` and ``detail``). Safe as a fire-and-forget background task;
    cancelled (also while it waits for the tenant's lock), it ends ``failed`` / ``cancelled``.

    Raises:
        NotFound: no such job for this tenant.
        Conflict: the job is not queued (already running or finished).
    """
    progress = progress or JobProgress()
    claimed = False
    try:
        async with _tenant_lock(pool, tenant_id):
            # Holding the tenant's lock, no other job of the tenant can be alive.
            async with pool.connection() as conn:
                await _reap_locked(conn, tenant_id)
            options = await _claim(pool, tenant_id, job_id)
            claimed = True
            try:
                await _Run(kb, pool, tenant_id, job_id, options, progress)(paths)
            except _JobLost:
                log.warning("ingestion job %s was reaped while it ran; stopped", job_id)
            except _JobFailed as exc:
                await _fail(pool, tenant_id, job_id, exc.code, str(exc))
            except Exception as exc:
                log.exception("ingestion job %s failed", job_id)
                await _fail(
                    pool,
                    tenant_id,
                    job_id,
                    "unexpected_error",
                    f"unexpected error: {type(exc).__name__}: {exc}",
                )
    except asyncio.CancelledError:
        # Only the state this call put the job in: a queued job another call may still run
        # is left alone once claimed, and a finished one is never touched.
        status = "running" if claimed else "queued"
        await asyncio.shield(
            _fail(pool, tenant_id, job_id, "cancelled", _CANCELLED_DETAIL, only_if=status)
        )
        raise
    return await get_job(pool, tenant_id, job_id)


class _JobFailed(Exception):
    """The job cannot run; ``code`` goes to ``error_code``, the message to ``detail``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _JobLost(Exception):
    """The job's row is no longer ``running``: it was reaped (see :func:`reap_dead_jobs`)."""


# ------------------------------------------------------------------------------ reaping

_CANCELLED_DETAIL = "the job was stopped before it finished (the server shut down, or Ctrl-C)"
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
    :func:`_tenant_lock`), and Postgres releases a session lock the moment that session ends.
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
    keepalives of about a minute (:func:`_tenant_lock`). A worker that outlives its lock's
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
                reaped += await _reap_locked(conn, tenant)
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

    A queued job waits, holding nothing, for its tenant's lock (:func:`_tenant_lock`) in the
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


async def _reap_locked(conn: Any, tenant_id: uuid.UUID) -> int:
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
async def _tenant_lock(pool: DictPool, tenant_id: uuid.UUID) -> AsyncIterator[None]:
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


async def _claim(pool: DictPool, tenant_id: uuid.UUID, job_id: uuid.UUID) -> JobOptions:
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE ingestion_jobs SET status = 'running', started_at = now()
            WHERE tenant_id = %s AND id = %s AND status = 'queued'
            RETURNING options
            """,
            (tenant_id, job_id),
        )
        row = await cur.fetchone()
    if row is None:
        job = await get_job(pool, tenant_id, job_id)  # NotFound when it does not exist
        raise Conflict(f"ingestion job {job_id} is {job['status']}, not queued")
    try:
        return JobOptions.model_validate(row["options"])
    except ValidationError as exc:
        await _fail(pool, tenant_id, job_id, "invalid_options", f"invalid options: {exc}")
        raise Conflict(f"ingestion job {job_id} has invalid options") from exc


async def _fail(
    pool: DictPool,
    tenant_id: uuid.UUID,
    job_id: uuid.UUID,
    code: str,
    detail: str,
    *,
    only_if: str = "running",
) -> None:
    """Mark the job ``failed`` with ``code``, if it is still ``only_if`` (never a finished one,
    nor one already reaped)."""
    try:
        async with pool.connection() as conn:
            await conn.execute(
                """
                UPDATE ingestion_jobs SET status = 'failed', error_code = %s, detail = %s,
                       current_file = NULL, finished_at = now()
                WHERE tenant_id = %s AND id = %s AND status = %s
                """,
                (code, detail, tenant_id, job_id, only_if),
            )
    except Exception:  # the database may be what failed; the log still has it
        log.exception("could not mark ingestion job %s failed (%s)", job_id, detail)


async def _tenant_policy(pool: DictPool, tenant_id: uuid.UUID) -> TenantPolicy:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT policy FROM tenants WHERE id = %s", (tenant_id,))
        row = await cur.fetchone()
    if row is None:
        raise _JobFailed("tenant_not_found", f"tenant {tenant_id} does not exist")
    return TenantPolicy.model_validate(row["policy"] or {})


@dataclass
class _Run:
    """One job's context while it runs."""

    kb: KnowledgeBase
    pool: DictPool
    tenant_id: uuid.UUID
    job_id: uuid.UUID
    options: JobOptions
    progress: JobProgress
    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap: int = DEFAULT_OVERLAP
    seen: dict[str, str] = field(default_factory=dict)
    """Source id -> file it came from, across the whole job (duplicates and cleanup)."""
    stored_errors: int = 0
    any_error: bool = False

    async def __call__(self, paths: Sequence[Path]) -> None:
        try:
            policy = await _tenant_policy(self.pool, self.tenant_id)
            self.max_tokens, self.overlap = self.options.chunking(policy)
        except ValueError as exc:
            raise _JobFailed("invalid_chunking", f"invalid chunking: {exc}") from exc
        work, skipped = await self._discover(paths)
        options = {
            **self.options.model_dump(mode="json"),
            "effective_max_tokens": self.max_tokens,
            "effective_overlap": self.overlap,
        }
        await self._update(
            "files_total = %s, skipped = %s, options = %s",
            len(work),
            Jsonb(skipped),
            Jsonb(options),
        )
        self.progress.started(len(work), skipped)
        for file, root, name in work:
            await self._file(file, root, name)
        await self._finish()

    async def _discover(
        self, paths: Sequence[Path]
    ) -> tuple[list[tuple[Path, Path | None, str]], list[str]]:
        """(file, its root folder, display name) to load, and the skipped files' names."""
        if not paths:
            raise _JobFailed("no_files", "no path to ingest was given")
        work: list[tuple[Path, Path | None, str]] = []
        skipped: list[str] = []
        for path in paths:
            try:
                files, skip = await asyncio.to_thread(discover, path)
            except FileNotFoundError as exc:
                raise _JobFailed("path_not_found", str(exc)) from exc
            root = path if await asyncio.to_thread(path.is_dir) else None
            # With several folders, names get their folder's name in front to stay distinct.
            prefix = f"{path.name}/" if len(paths) > 1 and root is not None else ""
            work += [(f, root, prefix + display_name(f, root)) for f in files]
            skipped += [prefix + display_name(f, root) for f in skip]
        if not work:
            shown = ", ".join(str(p) for p in paths)
            more = f" ({len(skipped)} file(s) of an unsupported type skipped)" if skipped else ""
            raise _JobFailed("no_files", f"no supported file under {shown}{more}")
        return work, skipped

    async def _file(self, file: Path, root: Path | None, name: str) -> None:
        self.progress.file_started(name)
        await self._update("current_file = %s", name)
        loaded = await asyncio.to_thread(
            load_file,
            file,
            root=root,
            visibility=self.options.visibility,
            tags=self.options.tags,
            max_file_bytes=self.options.max_file_bytes,
        )
        # The job names files its own way (prefixed when several paths were given).
        errors = [FileError(name, e.code, e.message, e.line) for e in loaded.errors]
        articles, dupes = drop_duplicates(loaded.articles, self.seen, name)
        outcome = FileOutcome(file=name, articles=len(articles), errors=errors + dupes)
        for start in range(0, len(articles), BATCH_SIZE):
            batch = articles[start : start + BATCH_SIZE]
            if self.options.force:
                await _invalidate(self.pool, self.tenant_id, [a.source_id for a in batch])
            stats, failures = await _index_batch(
                self.kb, self.pool, self.tenant_id, batch, self.max_tokens, self.overlap
            )
            outcome.written += stats.articles_written
            outcome.unchanged += stats.articles_unchanged
            outcome.chunks += stats.chunks_written
            outcome.errors += [FileError(name, "index_failed", msg) for msg in failures]
            # Counters move per batch, so a poller sees a big FAQ file advance.
            await self._update(
                """articles_written = articles_written + %s,
                   articles_unchanged = articles_unchanged + %s,
                   chunks_written = chunks_written + %s""",
                stats.articles_written,
                stats.articles_unchanged,
                stats.chunks_written,
            )
            self.progress.articles_done(name, min(start + BATCH_SIZE, len(articles)), len(articles))
        self.any_error = self.any_error or not outcome.ok
        room = max(0, MAX_STORED_ERRORS - self.stored_errors)
        kept = outcome.errors[:room]
        self.stored_errors += len(kept)
        await self._update(
            "files_done = files_done + 1, files_failed = files_failed + %s, errors = errors || %s",
            0 if outcome.ok else 1,
            Jsonb([e.as_dict() for e in kept]),
        )
        self.progress.file_done(outcome)

    async def _finish(self) -> None:
        notes: list[str] = []
        if self.stored_errors >= MAX_STORED_ERRORS:
            notes.append(f"only the first {MAX_STORED_ERRORS} errors are kept")
        deleted = 0
        if self.options.cleanup:
            if self.any_error:
                notes.append(
                    "cleanup skipped: some files or records failed, so articles missing "
                    "from this run may only be unreadable, not deleted"
                )
            elif not self.seen:
                notes.append("cleanup skipped: the source had no articles")
            else:
                # Deleting is the one step that must not run for a job that was reaped and
                # may have a successor: make sure this one is still the running job first.
                await self._update("current_file = NULL")
                self.progress.cleanup_started()
                deleted = await _cleanup(self.kb, self.pool, self.tenant_id, set(self.seen))
        await self._update(
            """status = 'done', current_file = NULL, finished_at = now(),
               articles_deleted = %s, detail = %s""",
            deleted,
            "; ".join(notes),
        )

    async def _update(self, assignments: str, *values: Any) -> None:
        """Update the job's row while it is ``running``.

        Raises:
            _JobLost: it is not running any more (reaped: see :func:`reap_dead_jobs`).
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"""UPDATE ingestion_jobs SET {assignments}
                    WHERE tenant_id = %s AND id = %s AND status = 'running'""",
                (*values, self.tenant_id, self.job_id),
            )
            if cur.rowcount == 0:
                raise _JobLost(f"ingestion job {self.job_id} is no longer running")


async def _index_batch(
    kb: KnowledgeBase,
    pool: DictPool,
    tenant_id: uuid.UUID,
    batch: list[Article],
    max_tokens: int,
    overlap: int,
) -> tuple[IngestStats, list[str]]:
    """Index a batch; on failure isolate the failing articles and roll them back."""
    before = await _stored_hashes(pool, tenant_id, [a.source_id for a in batch])
    try:
        return await kb.ingest(tenant_id, batch, max_tokens=max_tokens, overlap=overlap), []
    except Exception as exc:
        log.warning("batch of %d articles failed (%s); retrying one by one", len(batch), exc)
    total = IngestStats()
    failures: list[str] = []
    for article in batch:
        try:
            stats = await kb.ingest(tenant_id, [article], max_tokens=max_tokens, overlap=overlap)
        except Exception as exc:
            failures.append(await _settle_failed(kb, pool, tenant_id, article, exc))
            continue
        stored = before.get(article.source_id)
        if stats.articles_unchanged and stored != (article.content_hash, article.url):
            # It was written by the failed batch attempt, before the batch broke off (its row
            # alone when only its url had changed).
            relinked = stored is not None and stored[0] == article.content_hash
            stats = IngestStats(
                articles_seen=1,
                articles_written=1,
                chunks_written=0
                if relinked
                else await _count_chunks(kb, pool, tenant_id, article.source_id),
            )
        total.articles_seen += stats.articles_seen
        total.articles_written += stats.articles_written
        total.articles_unchanged += stats.articles_unchanged
        total.chunks_written += stats.chunks_written
    return total, failures


async def _settle_failed(
    kb: KnowledgeBase, pool: DictPool, tenant_id: uuid.UUID, article: Article, exc: Exception
) -> str:
    """Make sure a failed article left no chunks behind its row; return the error message.

    :meth:`KnowledgeBase.ingest` writes an article's chunks and its ``kb_articles`` row in one
    transaction, so a failure leaves the previous version (or nothing) exactly as it was: still
    whole, still searchable. Chunks under this source id that no article row owns can only come
    from a write that was not atomic; they are removed through
    :meth:`KnowledgeBase.delete_article`, which keeps the index's own bookkeeping right.
    """
    # Database errors carry a multi-line CONTEXT; the first line is the error itself.
    reason = (str(exc).strip().splitlines() or [""])[0]
    message = f"article {article.source_id!r} could not be indexed: {type(exc).__name__}: {reason}"
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"""
                SELECT DISTINCT c.article_id FROM "{kb.table}" c
                WHERE c.tenant_id = %s AND c.source_id = %s AND NOT EXISTS (
                    SELECT 1 FROM kb_articles a
                    WHERE a.tenant_id = c.tenant_id AND a.id = c.article_id)
                """,
                (tenant_id, article.source_id),
            )
            orphans = [r["article_id"] for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT 1 FROM kb_articles WHERE tenant_id = %s AND source_id = %s",
                (tenant_id, article.source_id),
            )
            existed = await cur.fetchone() is not None
        for article_id in orphans:
            await kb.delete_article(tenant_id, article_id)
    except Exception as cleanup_exc:
        log.exception("checking failed article %s for leftovers failed", article.source_id)
        return f"{message} (its leftovers could not be checked: {cleanup_exc})"
    if existed:
        return message + "; the version indexed before stays as it was, the next run retries"
    return message + "; nothing of it was indexed, the next run retries"


async def _stored_hashes(
    pool: DictPool, tenant_id: uuid.UUID, source_ids: list[str]
) -> dict[str, tuple[str, str | None]]:
    """Source id -> (content hash, url) as stored: what decides that an article is unchanged."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT source_id, content_hash, url FROM kb_articles"
            " WHERE tenant_id = %s AND source_id = ANY(%s)",
            (tenant_id, source_ids),
        )
        return {r["source_id"]: (r["content_hash"], r["url"]) for r in await cur.fetchall()}


async def _count_chunks(
    kb: KnowledgeBase, pool: DictPool, tenant_id: uuid.UUID, source_id: str
) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT count(*) AS n FROM "{kb.table}" WHERE tenant_id = %s AND source_id = %s',
            (tenant_id, source_id),
        )
        row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def _invalidate(pool: DictPool, tenant_id: uuid.UUID, source_ids: list[str]) -> None:
    # An empty hash never matches, so KnowledgeBase.ingest rewrites these articles.
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE kb_articles SET content_hash = '' WHERE tenant_id = %s AND source_id = ANY(%s)",
            (tenant_id, source_ids),
        )


async def _cleanup(kb: KnowledgeBase, pool: DictPool, tenant_id: uuid.UUID, seen: set[str]) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, source_id FROM kb_articles WHERE tenant_id = %s", (tenant_id,)
        )
        rows = await cur.fetchall()
    gone = [r["id"] for r in rows if r["source_id"] not in seen]
    for article_id in gone:
        await kb.delete_article(tenant_id, article_id)
    return len(gone)
