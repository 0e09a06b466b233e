"""Ingestion jobs: load files, index their articles, record progress in ``ingestion_jobs``.

Everything is in :mod:`~kb_pipeline.jobs.running` for now; code outside this package imports
what it needs from here.
"""

from kb_pipeline.jobs.running import (
    JOB_ERROR_CODES,
    JOB_FAILURE_CODES,
    FileOutcome,
    JobOptions,
    JobOwner,
    JobProgress,
    create_job,
    get_job,
    ingest_paths,
    list_jobs,
    reap_dead_jobs,
    run_job,
)

__all__ = [
    "JOB_ERROR_CODES",
    "JOB_FAILURE_CODES",
    "FileOutcome",
    "JobOptions",
    "JobOwner",
    "JobProgress",
    "create_job",
    "get_job",
    "ingest_paths",
    "list_jobs",
    "reap_dead_jobs",
    "run_job",
]
