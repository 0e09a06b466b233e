"""An ingestion worker to kill:
``python -m tests.support.dead_worker DATABASE_URL TENANT_ID JOB_ID PATH``, or a process that
only queues a job: ``python -m tests.support.dead_worker queue DATABASE_URL TENANT_ID``.

Runs the queued job with the real :func:`kb_pipeline.jobs.run_job` (tenant lock, claim, progress
rows) and, once the job is on its first file, prints ``running`` and freezes with the lock held,
the way a worker stuck in a long PDF parse or an embedding batch looks from outside. The test
then kills the process, so nothing of the job's own failure handling can run: what marks the
job failed afterwards can only be the reaper.

:func:`start_dead_worker` starts it and waits for ``running``; :func:`kill` kills it and
waits until Postgres has ended its session (and so released the tenant's lock). Both block:
async tests call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from tests.support.paths import ROOT

_READY = "running"
STARTUP_LIMIT_S = 180
"""A bound on the worker's start (imports on a loaded machine), not a timing expectation."""
RELEASE_LIMIT_S = 30


def start_dead_worker(
    database_url: str, tenant_id: uuid.UUID, job_id: uuid.UUID, path: Path
) -> subprocess.Popen[str]:
    """Start the worker and return once its job is running (with the tenant's lock held)."""
    args = [database_url, str(tenant_id), str(job_id), str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.dead_worker", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = _first_line(proc)  # the job is running, or the worker exited (an empty line)
    if line.strip() != _READY:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the worker did not start its job: {line!r} {err[-2000:]}")
    return proc


def start_queueing_process(
    database_url: str, tenant_id: uuid.UUID
) -> tuple[subprocess.Popen[str], uuid.UUID]:
    """Start a process that queues a job with its :class:`JobOwner` and then freezes before
    running it (as a process whose job waits for the tenant's lock looks from outside); return
    the process and the job's id."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.dead_worker", "queue", database_url, str(tenant_id)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = _first_line(proc)
    try:
        return proc, uuid.UUID(line.strip())
    except ValueError:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the process queued no job: {line!r} {err[-2000:]}") from None


def _first_line(proc: subprocess.Popen[str]) -> str:
    stdout = proc.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:  # the line, or "" when the process exited first
        return lines.get(timeout=STARTUP_LIMIT_S)
    except queue.Empty:
        return f"(nothing in {STARTUP_LIMIT_S} s)"


def kill(proc: subprocess.Popen[str], database_url: str, tenant_id: uuid.UUID) -> None:
    """SIGKILL the worker (no handler of its own runs) and wait until its lock is released."""
    proc.kill()
    proc.wait(timeout=30)
    if proc.stdout:
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    wait_lock_released(database_url, tenant_id)


def lock_holders(conn: psycopg.Connection[Any], tenant_id: uuid.UUID) -> list[int]:
    """Backend pids of the sessions holding the tenant's ingestion lock."""
    from kb_pipeline.jobs.locks import _JOB_LOCK

    rows = conn.execute(
        """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND classid = %s::oid AND objsubid = 2
           AND objid = (hashtext(%s)::bigint & 4294967295)::oid""",
        (_JOB_LOCK, str(tenant_id)),
    ).fetchall()
    return [int(r[0]) for r in rows]


def wait_lock_released(database_url: str, tenant_id: uuid.UUID) -> None:
    """Wait until no session holds the tenant's ingestion lock. A killed worker's session ends
    a moment after the process does, when its backend sees the socket close."""
    deadline = time.monotonic() + RELEASE_LIMIT_S
    with psycopg.connect(database_url, autocommit=True) as conn:
        while lock_holders(conn, tenant_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"the ingestion lock of {tenant_id} is still held")
            time.sleep(0.02)


async def _main(database_url: str, tenant_id: uuid.UUID, job_id: uuid.UUID, path: Path) -> None:
    from helpdesk import db
    from kb_pipeline.jobs import JobProgress, run_job

    class Freeze(JobProgress):
        def file_started(self, file: str) -> None:
            print(_READY, flush=True)
            threading.Event().wait()  # frozen, lock held, until killed

    pool = db.make_pool(database_url, 3)
    await pool.open(wait=True)
    # The knowledge base is never reached: the worker is killed on its first file, before
    # anything is indexed (and loading an embedding model would only slow the test down).
    await run_job(None, pool, tenant_id, job_id, [path], progress=Freeze())  # type: ignore[arg-type]


async def _queue(database_url: str, tenant_id: uuid.UUID) -> None:
    from helpdesk import db
    from kb_pipeline.jobs import JobOptions, JobOwner, create_job

    pool = db.make_pool(database_url, 1)
    await pool.open(wait=True)
    owner = JobOwner(database_url)  # kept referenced: its connection holds the lock
    job_id = await create_job(pool, tenant_id, JobOptions(), owner=owner)
    print(job_id, flush=True)
    threading.Event().wait()  # frozen with the job queued, until killed
    await owner.close()


if __name__ == "__main__":
    if sys.argv[1] == "queue":
        asyncio.run(_queue(sys.argv[2], uuid.UUID(sys.argv[3])))
    else:
        url, tenant, job, folder = sys.argv[1:5]
        asyncio.run(_main(url, uuid.UUID(tenant), uuid.UUID(job), Path(folder)))
