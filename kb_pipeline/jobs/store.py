"""The ``ingestion_jobs`` rows: creating, reading, listing, claiming and failing a job.

Every query filters by tenant. A job ends ``done`` when it ran to the end, even if some files
failed (see ``files_failed`` and ``errors``), and ``failed`` when it could not run or did not
finish: ``error_code`` says why in a stable code (:data:`JOB_FAILURE_CODES`), ``detail`` in
words."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from pydantic import ValidationError

from helpdesk.errors import Conflict, NotFound
from helpdesk.tenancy import tenant_scope
from kb_pipeline.jobs.locks import JobOwner, reap_dead_jobs
from kb_pipeline.jobs.options import JobOptions

if TYPE_CHECKING:
    from helpdesk.db import DictPool

log = logging.getLogger(__name__)

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


async def claim_job(pool: DictPool, tenant_id: uuid.UUID, job_id: uuid.UUID) -> JobOptions:
    """Mark a queued job ``running`` and return its options.

    Raises:
        NotFound: no such job for this tenant.
        Conflict: the job is not queued, or its stored options do not validate (it is then
            failed with ``invalid_options``).
    """
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
        await fail_job(pool, tenant_id, job_id, "invalid_options", f"invalid options: {exc}")
        raise Conflict(f"ingestion job {job_id} has invalid options") from exc


async def fail_job(
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
