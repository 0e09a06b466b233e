"""Running a job: its files one by one, from claiming the job to its last row update.

Used by ``deskgraph ingest`` (:func:`ingest_paths`) and by the HTTP API (``POST /v1/kb/ingest``
creates a job with :func:`~kb_pipeline.jobs.store.create_job` and runs :func:`run_job` as a
background task; clients poll :func:`~kb_pipeline.jobs.store.get_job`).

* **One bad file never stops the rest.** Files are loaded one at a time (in a worker thread:
  PDF parsing is CPU-bound) and their problems are recorded per file in ``errors``.
* **Idempotent.** Unchanged articles write nothing. ``force`` re-indexes them anyway (after a
  chunking change: the stored hash covers content, not chunk settings).
* **Cleanup is conservative.** With ``cleanup``, the tenant's articles that the job did not
  see are deleted with their chunks, but only when every file loaded and indexed without an
  error and at least one article was seen: a corrupt file or a bad record would otherwise
  look like deleted articles and lose them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from helpdesk.policy import TenantPolicy
from kb_pipeline.jobs.indexing import cleanup, index_batch, invalidate
from kb_pipeline.jobs.locks import JobOwner, reap_locked, tenant_lock
from kb_pipeline.jobs.options import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP, JobOptions
from kb_pipeline.jobs.progress import FileOutcome, JobProgress
from kb_pipeline.jobs.store import claim_job, create_job, fail_job, get_job
from kb_pipeline.loaders import FileError, discover, display_name, drop_duplicates, load_file

if TYPE_CHECKING:
    from helpdesk.db import DictPool
    from kb_pipeline.index import KnowledgeBase

log = logging.getLogger(__name__)

BATCH_SIZE = 64
"""Articles per :meth:`KnowledgeBase.ingest` call: large enough for batched embedding, small
enough for progress and for pinning a failure on one article cheaply."""
MAX_STORED_ERRORS = 1000
"""Errors kept on a job row; a file with 100k bad lines must not bloat it."""


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
        async with tenant_lock(pool, tenant_id):
            # Holding the tenant's lock, no other job of the tenant can be alive.
            async with pool.connection() as conn:
                await reap_locked(conn, tenant_id)
            options = await claim_job(pool, tenant_id, job_id)
            claimed = True
            try:
                await _Run(kb, pool, tenant_id, job_id, options, progress)(paths)
            except _JobLost:
                log.warning("ingestion job %s was reaped while it ran; stopped", job_id)
            except _JobFailed as exc:
                await fail_job(pool, tenant_id, job_id, exc.code, str(exc))
            except Exception as exc:
                log.exception("ingestion job %s failed", job_id)
                await fail_job(
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
            fail_job(pool, tenant_id, job_id, "cancelled", _CANCELLED_DETAIL, only_if=status)
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


_CANCELLED_DETAIL = "the job was stopped before it finished (the server shut down, or Ctrl-C)"


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
                await invalidate(self.pool, self.tenant_id, [a.source_id for a in batch])
            stats, failures = await index_batch(
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
                deleted = await cleanup(self.kb, self.pool, self.tenant_id, set(self.seen))
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
