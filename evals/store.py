"""Where eval runs are kept: written as JSON plus an HTML report, read back, uploaded.

``write_run`` stores a :class:`~evals.core.RunRecord` as ``<out>/<run id>.json`` plus a
self-contained ``<run id>.html`` report (:mod:`evals.report`); ``load_run`` reads one back by
path or run id, for :mod:`evals.compare`; ``save`` writes a finished run and uploads it to
LangSmith when ``LANGSMITH_API_KEY`` is set (what ``deskgraph eval`` does after every suite).

Kept apart from :mod:`evals.core` so the record knows nothing of its report: the report reads
the record, this module reads both.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from evals.core import RunRecord
from evals.langsmith_upload import SKIPPED, upload_run
from evals.report import render_run

log = logging.getLogger(__name__)

DEFAULT_REPORTS_DIR = Path("evals/reports")
_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,120}$")


@dataclass(frozen=True)
class RunFiles:
    """Where a run was written."""

    json: Path
    html: Path


def write_run(record: RunRecord, out_dir: Path = DEFAULT_REPORTS_DIR) -> RunFiles:
    """Write ``<run id>.json`` and ``<run id>.html`` under ``out_dir`` (created if needed)."""
    if not _RUN_ID.match(record.run_id):
        raise ValueError(
            f"run id must be lower-case letters, digits, '.', '_', '-': {record.run_id}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = RunFiles(json=out_dir / f"{record.run_id}.json", html=out_dir / f"{record.run_id}.html")
    payload = json.dumps(record.as_dict(), indent=1, ensure_ascii=False, allow_nan=False)
    # Written to a temporary name first: an interrupted run never leaves half a JSON behind.
    tmp = files.json.with_suffix(".json.tmp")
    tmp.write_text(payload + "\n", encoding="utf-8")
    os.replace(tmp, files.json)
    files.html.write_text(render_run(record), encoding="utf-8")
    return files


def resolve_run(ref: str, reports_dir: Path = DEFAULT_REPORTS_DIR) -> Path:
    """Find a run's JSON from a path, a run id, or a unique prefix of a run id.

    Raises:
        FileNotFoundError: nothing matches (the message says where it looked).
        ValueError: a prefix matches several runs.
    """
    path = Path(ref)
    if path.is_file():
        return path
    if path.is_dir() and (path / "run.json").is_file():
        return path / "run.json"
    exact = reports_dir / f"{ref}.json"
    if exact.is_file():
        return exact
    matches = sorted(p for p in reports_dir.glob(f"{ref}*.json") if p.is_file())
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(p.stem for p in matches[:5])
        raise ValueError(f"{ref!r} matches {len(matches)} runs in {reports_dir} ({names}...)")
    raise FileNotFoundError(f"no run {ref!r}: not a file, and no {reports_dir}/{ref}*.json")


def load_run(ref: str | Path, reports_dir: Path = DEFAULT_REPORTS_DIR) -> RunRecord:
    """Load a run record by path or run id (see :func:`resolve_run`).

    Raises:
        FileNotFoundError: no such run.
        ValueError: the file is not JSON or not a run record.
    """
    path = resolve_run(str(ref), reports_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        return RunRecord.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class Saved:
    """Where a run went."""

    record: RunRecord
    files: RunFiles
    langsmith: str


def save(record: RunRecord, out_dir: Path, *, upload: bool = True) -> Saved:
    """Write the run's JSON and HTML; upload it when ``LANGSMITH_API_KEY`` is set."""
    files = write_run(record, out_dir)
    status = SKIPPED
    if upload:
        try:
            status = upload_run(record)
        except Exception as exc:  # the local report is the product; an upload is a copy
            log.warning("LangSmith upload of %s failed: %s", record.run_id, exc)
            status = f"failed: {type(exc).__name__}: {exc}"
    return Saved(record=record, files=files, langsmith=status)
