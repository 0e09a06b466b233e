"""Knowledge-base routes: ingestion as a background job (admin key), and search for the
customer portal (widget key: external articles only) and for agents (both visibilities).

An upload is written to a private temporary folder, a job row is created
(:func:`kb_pipeline.jobs.create_job`) and :func:`kb_pipeline.jobs.run_job` runs in a task of
this process; ``GET /v1/kb/jobs/{id}`` reads its progress and per-file errors from the database,
so any API process can answer it. A process that stops mid-job marks it ``failed``
(``error_code`` ``cancelled``); one that dies mid-job cannot, so reading the job (from any
process) or starting the tenant's next one finds it dead and marks it ``failed`` /
``worker_lost`` (:func:`kb_pipeline.jobs.reap_dead_jobs`). The files are not kept, so upload
again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import schemas
from api.auth import ReaderCaller
from api.deps import LimitsDep, ServicesDep, run_in_background
from api.errors import ApiError, responses
from api.permissions import KbIngester
from helpdesk import kb_misses
from helpdesk.errors import NotFound
from helpdesk.tenancy import tenant_scope
from kb_pipeline import jobs

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])

MAX_FILES = 200
_AUTH = ("unauthenticated", "invalid_key", "forbidden")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class KbJob(BaseModel):
    """An ingestion job's progress and outcome."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6c5d1e-8f7a-4e2b-9c3d-5a1f2e3d4c5b",
                    "status": "done",
                    "files_total": 3,
                    "files_done": 3,
                    "files_failed": 1,
                    "current_file": None,
                    "articles_written": 2,
                    "articles_unchanged": 0,
                    "articles_deleted": 0,
                    "chunks_written": 7,
                    "errors": [
                        {
                            "file": "scan.pdf",
                            "code": "no_text_layer",
                            "message": "the PDF has no text layer (a scan?)",
                        }
                    ],
                    "skipped": [],
                    "error_code": None,
                    "detail": "",
                    "options": {"visibility": None, "tags": ["faq"], "cleanup": False},
                    "created_at": "2025-06-01T09:30:00Z",
                    "started_at": "2025-06-01T09:30:01Z",
                    "finished_at": "2025-06-01T09:30:04Z",
                }
            ]
        }
    )

    id: uuid.UUID
    status: Literal["queued", "running", "done", "failed"]
    files_total: int
    files_done: int
    files_failed: int
    current_file: str | None
    articles_written: int
    articles_unchanged: int
    articles_deleted: int
    chunks_written: int
    errors: list[dict[str, Any]]
    skipped: list[str]
    error_code: str | None = Field(
        default=None,
        description="Why a failed job failed: worker_lost (its process died while it ran), "
        "cancelled, path_not_found, no_files, invalid_options, invalid_chunking, "
        "tenant_not_found, unexpected_error. Null unless status is failed.",
    )
    detail: str
    options: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _safe_filename(name: str, taken: set[str]) -> str:
    """A plain file name for an upload: no folders, not hidden, unique within the job."""
    base = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).lstrip(".") or "upload"
    stem, dot, suffix = base.rpartition(".")
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}.{suffix}" if dot else f"{base}-{n}"
    taken.add(candidate.lower())
    return candidate


@router.post(
    "/ingest",
    status_code=202,
    response_model=schemas.IngestAccepted,
    responses=responses(
        "invalid_multipart", "invalid_request", "invalid_input", *_AUTH, "body_too_large"
    ),
)
async def ingest(
    request: Request,
    caller: KbIngester,
    services: ServicesDep,
    files: Annotated[
        list[UploadFile],
        File(description="Markdown, HTML, PDF, text, CSV (FAQ) or JSONL files."),
    ],
    visibility: Annotated[
        Literal["external", "internal"] | None,
        Form(description="internal: every article internal; unset: each article's own."),
    ] = None,
    tags: Annotated[
        schemas.DeskText,
        Form(max_length=2000, description="Comma-separated tags added to every article."),
    ] = "",
    cleanup: Annotated[
        bool, Form(description="Delete the tenant's articles that are not in this upload.")
    ] = False,
    force: Annotated[bool, Form(description="Re-index unchanged articles too.")] = False,
) -> schemas.IngestAccepted:
    """Upload files and ingest them as a background job; poll ``GET /v1/kb/jobs/{job_id}``.

    The request body is limited by ``DESKGRAPH_MAX_UPLOAD_BYTES``. Bad files do not fail the
    job: each gets an entry in the job's ``errors``.
    """
    if not files:
        raise ApiError(422, "invalid_request", "files: send at least one file")
    if len(files) > MAX_FILES:
        raise ApiError(422, "invalid_request", f"files: at most {MAX_FILES} files per upload")
    try:
        options = jobs.JobOptions(
            visibility=visibility,
            tags=[t.strip() for t in tags.split(",") if t.strip()],
            cleanup=cleanup,
            force=force,
        )
    except ValidationError as exc:
        raise ApiError(422, "invalid_input", str(exc.errors()[0]["msg"])) from exc
    folder = Path(tempfile.mkdtemp(prefix="deskgraph-ingest-"))
    try:
        taken: set[str] = set()
        for upload in files:
            target = folder / _safe_filename(upload.filename or "upload", taken)
            with target.open("wb") as out:
                await asyncio.to_thread(shutil.copyfileobj, upload.file, out)
        job_id = await jobs.create_job(
            services.pool, caller.tenant.id, options, owner=request.app.state.job_owner
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    async def run() -> None:
        try:
            await jobs.run_job(services.kb, services.pool, caller.tenant.id, job_id, [folder])
        except Exception:  # run_job records its own failures; this is a last resort log
            log.exception("ingestion job %s crashed", job_id)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    run_in_background(request.app, run(), f"ingest-{job_id}")
    return schemas.IngestAccepted(job_id=job_id)


@router.get(
    "/jobs/{job_id}",
    response_model=KbJob,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def get_job(job_id: uuid.UUID, caller: KbIngester, services: ServicesDep) -> KbJob:
    """An ingestion job's status, progress counts and per-file errors.

    A job whose worker died while it ran is shown ``failed`` with ``error_code``
    ``worker_lost`` (and the tenant can ingest again).
    """
    try:
        return KbJob.model_validate(await jobs.get_job(services.pool, caller.tenant.id, job_id))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@router.get(
    "/search",
    response_model=schemas.SearchResults,
    responses=responses("invalid_request", *_AUTH, "origin_not_allowed", "rate_limited"),
)
async def search(
    caller: ReaderCaller,
    services: ServicesDep,
    limits: LimitsDep,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=500, description="What to look for.")],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    tag: Annotated[
        list[str] | None,
        Query(max_length=20, description="Keep articles with any of these tags (repeatable)."),
    ] = None,
    visibility: Annotated[
        Literal["external", "internal"] | None,
        Query(description="Staff only: keep one visibility (widget keys see external only)."),
    ] = None,
    updated_after: Annotated[
        datetime | None, Query(description="Keep articles updated at or after this time.")
    ] = None,
    mode: Annotated[Literal["hybrid", "fulltext", "vector"], Query()] = "hybrid",
) -> schemas.SearchResults:
    """Search the knowledge base: one best passage per article, best first.

    Widget keys (the customer portal) see external articles only; agent and admin keys see
    internal ones too. ``mode=fulltext`` is keyword search (BM25); ``hybrid`` (default) adds
    semantic matching. Widget-key searches are limited per client address (429
    ``rate_limited``); staff keys are not.
    """
    limits.check("search", caller, request)
    if visibility == "internal" and not caller.is_staff:
        raise ApiError(403, "forbidden", "widget keys can search external articles only")
    audience: Literal["customer", "agent"] = "agent" if caller.is_staff else "customer"
    hits = await services.kb.search(
        caller.tenant.id,
        q,
        k=k,
        audience=audience,
        mode=mode,
        tags=tag or None,
        updated_after=updated_after,
        only_visibility=visibility,
    )
    if not caller.is_staff and await _found_nothing(services, caller.tenant.id, q, mode, hits):
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            await kb_misses.record(
                conn,
                caller.tenant.id,
                source="search",
                query=q,
                top_score=float(hits[0]["score"]) if hits else None,
            )
    meta: dict[str, dict[str, Any]] = {}
    if hits:
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            cur = await conn.execute(
                "SELECT source_id, tags, updated_at FROM kb_articles"
                " WHERE tenant_id = %s AND source_id = ANY(%s)",
                (caller.tenant.id, [h["source_id"] for h in hits]),
            )
            meta = {r["source_id"]: dict(r) for r in await cur.fetchall()}
    return schemas.SearchResults(
        results=[
            schemas.SearchResult(
                source_id=h["source_id"],
                title=h["title"],
                section=h["section"],
                snippet=_snippet(h["text"]),
                score=round(float(h["score"]), 4),
                visibility="internal" if h.get("visibility") == "internal" else "external",
                tags=list(meta.get(h["source_id"], {}).get("tags") or []),
                updated_at=meta.get(h["source_id"], {}).get("updated_at"),
                url=h.get("url"),
            )
            for h in hits
        ]
    )


async def _found_nothing(services: Any, tenant_id: Any, q: str, mode: str, hits: list[Any]) -> bool:
    """A customer's search found nothing good (a knowledge gap, :mod:`helpdesk.kb_misses`):
    no result, or, in hybrid mode, none with any of the words asked (the dense side always
    returns its nearest chunks, however far). ``vector`` searches are never counted."""
    if mode == "vector":
        return False
    if not hits or mode == "fulltext":
        return not hits
    keyword = await services.kb.search(tenant_id, q, k=1, audience="customer", mode="fulltext")
    return not keyword


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(",;: ") + "…"
