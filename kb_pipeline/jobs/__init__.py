"""Ingestion jobs: load files, index their articles, record progress in ``ingestion_jobs``.

Used by ``deskgraph ingest`` and by the HTTP API (``POST /v1/kb/ingest`` creates a job with
:func:`create_job` and runs :func:`run_job` as a background task; clients poll
:func:`get_job`). Each module says what it guarantees:

* :mod:`~kb_pipeline.jobs.store`: the job rows and what a finished job's status means;
* :mod:`~kb_pipeline.jobs.running`: a job from claim to finish, file by file (one bad file
  never stops the rest; idempotent; conservative cleanup);
* :mod:`~kb_pipeline.jobs.indexing`: batches into the index, nothing half-indexed;
* :mod:`~kb_pipeline.jobs.locks`: one job per tenant at a time, and dead jobs reaped;
* :mod:`~kb_pipeline.jobs.options` and :mod:`~kb_pipeline.jobs.progress`: what a job is asked
  to do, and how it reports progress.

Code outside this package imports what it needs from here.
"""

from kb_pipeline.jobs.indexing import JOB_ERROR_CODES
from kb_pipeline.jobs.locks import JobOwner, reap_dead_jobs
from kb_pipeline.jobs.options import JobOptions
from kb_pipeline.jobs.progress import FileOutcome, JobProgress
from kb_pipeline.jobs.running import ingest_paths, run_job
from kb_pipeline.jobs.store import JOB_FAILURE_CODES, create_job, get_job, list_jobs

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
