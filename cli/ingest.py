"""``deskgraph ingest``: load files into a tenant's knowledge base with a progress bar.

The work is an ingestion job (:mod:`kb_pipeline.jobs`), the same one ``POST /v1/kb/ingest``
runs, so the command leaves a row in ``ingestion_jobs`` with the per-file errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # the KB modules pull in the vector store: imported on use only
    from kb_pipeline.jobs import FileOutcome, JobOptions, JobProgress

console = Console()
_MAX_ERRORS_SHOWN = 50


def ingest(
    path: Annotated[
        Path, typer.Argument(exists=True, help="A file, or a folder walked recursively.")
    ],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")],
    visibility: Annotated[
        str | None,
        typer.Option(
            "--visibility",
            help="internal: mark every article internal (agents only). external (default): "
            "keep each article's own visibility; an article that says internal stays internal.",
        ),
    ] = None,
    tags: Annotated[
        str, typer.Option("--tags", help="Comma-separated tags added to every article.")
    ] = "",
    cleanup: Annotated[
        bool,
        typer.Option(
            "--cleanup",
            help="Delete the tenant's articles that are not in PATH (skipped if any file fails).",
        ),
    ] = False,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", help="Chunk size in tokens (default: tenant policy, 512)."),
    ] = None,
    overlap: Annotated[
        int | None,
        typer.Option("--overlap", help="Chunk overlap in tokens (default: tenant policy, 64)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Re-index unchanged articles too (after a chunking change)."),
    ] = False,
    max_file_mb: Annotated[
        float, typer.Option("--max-file-mb", help="Files larger than this fail with too_large.")
    ] = 20.0,
) -> None:
    """Ingest files into a tenant's knowledge base.

    Formats: Markdown (front matter), HTML, PDF (text layer), .txt,
    FAQ .csv (question,answer or title,text columns) and .jsonl
    ({"id","title","text"|"content"} per line). Unchanged articles
    write nothing.

    Bad files (corrupt PDF, wrong encoding, empty, too large, bad
    records) are reported per file; the rest is still ingested.

    Exit code: 0 when every file was ingested, 1 when some files (or
    the job) failed, 2 for bad usage (unknown tenant, invalid option).
    """
    from pydantic import ValidationError

    from kb_pipeline.jobs import JobOptions

    if visibility not in (None, "external", "internal"):
        raise typer.BadParameter(
            f"expected external or internal, got {visibility!r}", param_hint="--visibility"
        )
    try:
        options = JobOptions(
            visibility=visibility,  # type: ignore[arg-type]
            tags=[t.strip() for t in tags.split(",") if t.strip()],
            max_tokens=max_tokens,
            overlap=overlap,
            cleanup=cleanup,
            force=force,
            max_file_bytes=max(1, int(max_file_mb * 1024 * 1024)),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        raise typer.BadParameter(f"{where}: {err['msg']}") from exc
    # pypdf logs every recoverable defect of a PDF; the job reports what matters per file.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    raise typer.Exit(asyncio.run(_ingest(path.resolve(), tenant, options)))


async def _ingest(path: Path, slug: str, options: JobOptions) -> int:
    from graph.runtime import open_knowledge_base
    from helpdesk.errors import NotFound
    from helpdesk.tenants import get_tenant
    from kb_pipeline.jobs import ingest_paths

    async with contextlib.AsyncExitStack() as stack:
        with console.status("opening the knowledge base (database, embedding model)"):
            pool, kb = await stack.enter_async_context(open_knowledge_base(pool_size=4))
        try:
            tenant = await get_tenant(pool, slug)
        except NotFound as exc:
            console.print(
                f"[red]error:[/] {exc.message} (create it with `deskgraph tenant create`)"
            )
            return 2
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="cyan"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            job = await ingest_paths(
                kb,
                pool,
                tenant.id,
                [path],
                options,
                progress=_rich_progress(bar),
            )
    _print_summary(job, tenant.slug)
    return 0 if job["status"] == "done" and job["files_failed"] == 0 else 1


def _rich_progress(progress: Progress) -> JobProgress:
    """One bar over the files; failed files are named above it as they finish."""
    from kb_pipeline.jobs import JobProgress

    class RichProgress(JobProgress):
        def __init__(self) -> None:
            self._task = progress.add_task("finding files", total=None)

        def started(self, files_total: int, skipped: Sequence[str]) -> None:
            progress.update(self._task, total=files_total, description="ingesting")

        def file_started(self, file: str) -> None:
            progress.update(self._task, description=escape(file))

        def articles_done(self, file: str, done: int, total: int) -> None:
            if total > 1:
                progress.update(self._task, description=f"{escape(file)} ({done}/{total} articles)")

        def file_done(self, outcome: FileOutcome) -> None:
            if outcome.errors:
                codes = ", ".join(dict.fromkeys(e.code for e in outcome.errors))
                progress.console.print(
                    f"[red]✗[/] {escape(outcome.file)}: {len(outcome.errors)} error(s) ({codes}),"
                    f" {outcome.written + outcome.unchanged} article(s) ingested"
                )
            progress.advance(self._task)

        def cleanup_started(self) -> None:
            progress.update(self._task, description="removing articles no longer in the source")

    return RichProgress()


def _print_summary(job: dict[str, Any], slug: str) -> None:
    ok = job["files_done"] - job["files_failed"]
    opts = job["options"]
    table = Table(title=f"ingestion into {slug}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("job", str(job["id"]))
    status = job["status"] + (f" ({job['error_code']})" if job.get("error_code") else "")
    table.add_row("status", status)
    table.add_row("files ingested", f"{ok} of {job['files_total']}")
    table.add_row("files failed", str(job["files_failed"]))
    if job["skipped"]:
        table.add_row("files skipped (unsupported type)", str(len(job["skipped"])))
    table.add_row("articles written", str(job["articles_written"]))
    table.add_row("articles unchanged", str(job["articles_unchanged"]))
    table.add_row("articles deleted", str(job["articles_deleted"]))
    table.add_row("chunks written", str(job["chunks_written"]))
    if "effective_max_tokens" in opts:
        table.add_row(
            "chunking",
            f"{opts['effective_max_tokens']} tokens, {opts['effective_overlap']} overlap",
        )
    if job["started_at"] and job["finished_at"]:
        seconds = (job["finished_at"] - job["started_at"]).total_seconds()
        table.add_row("time", f"{seconds:.1f} s")
    console.print(table)
    if job["skipped"]:
        shown = ", ".join(job["skipped"][:5]) + (" ..." if len(job["skipped"]) > 5 else "")
        console.print(f"[dim]skipped: {escape(shown)}[/]")
    errors = job["errors"]
    if errors:
        et = Table(title="errors", title_justify="left")
        et.add_column("file")
        et.add_column("line", justify="right")
        et.add_column("code", style="red")
        et.add_column("message")
        for e in errors[:_MAX_ERRORS_SHOWN]:
            et.add_row(e["file"], str(e.get("line") or ""), e["code"], e["message"])
        console.print(et)
        if len(errors) > _MAX_ERRORS_SHOWN:
            console.print(
                f"[dim]{len(errors) - _MAX_ERRORS_SHOWN} more errors in ingestion_jobs "
                f"(job {job['id']})[/]"
            )
    if job["detail"]:
        style = "red" if job["status"] == "failed" else "yellow"
        console.print(f"[{style}]{escape(job['detail'])}[/]")
