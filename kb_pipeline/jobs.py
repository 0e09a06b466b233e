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

A job ends ``done`` when it ran to the end, even if some files failed (see ``files_failed``
and ``errors``), and ``failed`` when it could not run (a path that does not exist, no
supported file, invalid chunking, an unexpected error; see ``detail``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from helpdesk.errors import Conflict, NotFound
from helpdesk.policy import TenantPolicy
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
    pool: DictPool, tenant_id: uuid.UUID, options: JobOptions | Mapping[str, Any]
) -> uuid.UUID:
    """Record a queued job and return its id.

    Raises:
        pydantic.ValidationError: ``options`` is a mapping that does not validate.
    """
    opts = options if isinstance(options, JobOptions) else JobOptions.model_validate(options)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO ingestion_jobs (tenant_id, options) VALUES (%s, %s) RETURNING id",
            (tenant_id, Jsonb(opts.model_dump(mode="json"))),
        )
        row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def get_job(pool: DictPool, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """Return a job row as a dict (JSON columns decoded).

    Raises:
        NotFound: no such job for this tenant.
    """
    async with pool.connection() as conn:
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
    """The tenant's most recent jobs, newest first."""
    async with pool.connection() as conn:
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
    job_id = await create_job(pool, tenant_id, options or JobOptions())
    return await run_job(kb, pool, tenant_id, job_id, paths, progress=progress)


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
    ``failed`` with ``detail``). Safe as a fire-and-forget background task.

    Raises:
        NotFound: no such job for this tenant.
        Conflict: the job is not queued (already running or finished).
    """
    progress = progress or JobProgress()
    async with _tenant_lock(pool, tenant_id):
        options = await _claim(pool, tenant_id, job_id)
        try:
            await _Run(kb, pool, tenant_id, job_id, options, progress)(paths)
        except asyncio.CancelledError:
            await asyncio.shield(_fail(pool, tenant_id, job_id, "cancelled"))
            raise
        except _JobFailed as exc:
            await _fail(pool, tenant_id, job_id, str(exc))
        except Exception as exc:
            log.exception("ingestion job %s failed", job_id)
            await _fail(pool, tenant_id, job_id, f"unexpected error: {type(exc).__name__}: {exc}")
    return await get_job(pool, tenant_id, job_id)


class _JobFailed(Exception):
    """The job cannot run; the message goes to ``detail``."""


@contextlib.asynccontextmanager
async def _tenant_lock(pool: DictPool, tenant_id: uuid.UUID) -> AsyncIterator[None]:
    """Hold the tenant's ingestion lock on one pooled connection for the job's duration.

    Polls with ``pg_try_advisory_lock`` instead of blocking, so jobs waiting for the lock hold
    no connection (many queued jobs must not drain the pool the running one needs).
    """
    key = (_JOB_LOCK, str(tenant_id))
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS ok", key)
            row = await cur.fetchone()
            if row and row["ok"]:
                try:
                    yield
                finally:
                    try:
                        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
                    except BaseException:
                        # A connection still holding the lock must not go back to the pool:
                        # closing it releases the lock.
                        await conn.close()
                        raise
                return
        await asyncio.sleep(_LOCK_POLL_S)


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
        await _fail(pool, tenant_id, job_id, f"invalid options: {exc}")
        raise Conflict(f"ingestion job {job_id} has invalid options") from exc


async def _fail(pool: DictPool, tenant_id: uuid.UUID, job_id: uuid.UUID, detail: str) -> None:
    try:
        async with pool.connection() as conn:
            await conn.execute(
                """
                UPDATE ingestion_jobs SET status = 'failed', detail = %s, current_file = NULL,
                       finished_at = now()
                WHERE tenant_id = %s AND id = %s
                """,
                (detail, tenant_id, job_id),
            )
    except Exception:  # the database may be what failed; the log still has it
        log.exception("could not mark ingestion job %s failed (%s)", job_id, detail)


async def _tenant_policy(pool: DictPool, tenant_id: uuid.UUID) -> TenantPolicy:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT policy FROM tenants WHERE id = %s", (tenant_id,))
        row = await cur.fetchone()
    if row is None:
        raise _JobFailed(f"tenant {tenant_id} does not exist")
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
            raise _JobFailed(f"invalid chunking: {exc}") from exc
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
            raise _JobFailed("no path to ingest was given")
        work: list[tuple[Path, Path | None, str]] = []
        skipped: list[str] = []
        for path in paths:
            try:
                files, skip = await asyncio.to_thread(discover, path)
            except FileNotFoundError as exc:
                raise _JobFailed(str(exc)) from exc
            root = path if await asyncio.to_thread(path.is_dir) else None
            # With several folders, names get their folder's name in front to stay distinct.
            prefix = f"{path.name}/" if len(paths) > 1 and root is not None else ""
            work += [(f, root, prefix + display_name(f, root)) for f in files]
            skipped += [prefix + display_name(f, root) for f in skip]
        if not work:
            shown = ", ".join(str(p) for p in paths)
            more = f" ({len(skipped)} file(s) of an unsupported type skipped)" if skipped else ""
            raise _JobFailed(f"no supported file under {shown}{more}")
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
                self.progress.cleanup_started()
                deleted = await _cleanup(self.kb, self.pool, self.tenant_id, set(self.seen))
        await self._update(
            """status = 'done', current_file = NULL, finished_at = now(),
               articles_deleted = %s, detail = %s""",
            deleted,
            "; ".join(notes),
        )

    async def _update(self, assignments: str, *values: Any) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                f"UPDATE ingestion_jobs SET {assignments} WHERE tenant_id = %s AND id = %s",
                (*values, self.tenant_id, self.job_id),
            )


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
