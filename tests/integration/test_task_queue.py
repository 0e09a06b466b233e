"""The task queue (desk/queue.py, docs/queue.md) on the session's real Postgres: periodic work
runs once however many workers, a failing task is retried then succeeds, a job whose worker is
killed with SIGKILL mid-run is run again by another worker and its effect applied once, the
queue's tables are closed to the row-level-security role, and an API process with a worker
starts it, sweeps retention at start and stops it. Workers that get killed are real
subprocesses (tests/support/queue_worker.py) with heartbeats a few times shorter than the
defaults."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from desk import queue
from graph.services import Services
from helpdesk.config import Settings
from tests.support import queue_tasks
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration

FAST = {
    "DESKGRAPH_QUEUE_HEARTBEAT_S": "0.5",
    "DESKGRAPH_QUEUE_STALLED_AFTER_S": "2",
    "DESKGRAPH_QUEUE_SHUTDOWN_S": "2",
}
LIMIT_S = 120
"""A bound on waits (process start-up on a loaded machine), not a timing expectation."""


@pytest.fixture(scope="module")
async def tables(services: Services) -> None:
    await queue_tasks.create_tables(services.pool)


@pytest.fixture
async def queue_app(database_url: str, tables: None) -> AsyncIterator[Any]:
    async with queue.connected(database_url) as app:
        yield app


async def _rows(services: Services, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with services.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        return list(await cur.fetchall())


async def _until(check: Any, what: str, limit_s: float = LIMIT_S) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


class Workers:
    """Worker subprocesses of one test; whatever is left is stopped at the end."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        """A worker of the test tasks (tests/support/queue_worker.py)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.queue_worker", self.url],
            cwd=ROOT,
            env={**os.environ, **FAST, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def start_cli(self, *args: str) -> subprocess.Popen[bytes]:
        """``deskgraph worker ARGS`` on the test database; its output is kept."""
        env = {**os.environ, **FAST, "DATABASE_URL": self.url, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(database_url: str, tables: None) -> Iterator[Workers]:
    w = Workers(database_url)
    try:
        yield w
    finally:
        w.stop_all()


async def _last_worker(services: Services) -> int:
    rows = await _rows(services, "SELECT coalesce(max(id), 0) AS id FROM procrastinate_workers")
    return int(rows[0]["id"])


async def _registered(
    services: Services, after: int, procs: list[subprocess.Popen[bytes]], n: int = 1
) -> list[int]:
    """Wait until ``n`` workers registered after worker id ``after``; return their ids."""

    async def up() -> list[int]:
        for proc in procs:
            assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"
        rows = await _rows(
            services, "SELECT id FROM procrastinate_workers WHERE id > %s ORDER BY id", after
        )
        return [r["id"] for r in rows] if len(rows) >= n else []

    return list(await _until(up, f"{n} worker(s) to register"))


async def test_a_periodic_task_runs_once_per_tick_across_two_workers(
    services: Services, workers: Workers
) -> None:
    before = await _last_worker(services)
    a = workers.start(QUEUE_TEST_TICKS="1")
    b = workers.start(QUEUE_TEST_TICKS="1")
    await _registered(services, before, [a, b], n=2)
    started = int(time.time())

    async def ticks() -> list[dict[str, Any]]:
        rows = await _rows(
            services,
            "SELECT key, count(*) AS n FROM queue_test_effects"
            " WHERE key ~ '^[0-9]+$' AND key::bigint >= %s GROUP BY key",
            started,
        )
        return rows if len(rows) >= 5 else []

    rows = await _until(ticks, "five ticks of the every-second task")
    assert all(r["n"] == 1 for r in rows), rows  # each tick ran once, never twice
    # Both workers were deferring all along: each has a deferrer and both tried every tick.
    defers = await _rows(
        services,
        "SELECT defer_timestamp, count(*) AS n FROM procrastinate_periodic_defers"
        " WHERE task_name = 'test_tick' GROUP BY defer_timestamp HAVING count(*) > 1",
    )
    assert defers == []


async def test_a_failing_task_is_retried_with_backoff_then_succeeds(
    services: Services, settings: Settings, queue_app: Any
) -> None:
    key = uuid.uuid4().hex
    job_id = await queue_tasks.fails_first.defer_async(key=key)
    run = asyncio.create_task(
        queue.run_worker(
            settings.model_copy(update={"queue_shutdown_s": 2.0}),
            {"pool": services.pool},
            name="retry-test",
            queues=[queue_tasks.TEST_QUEUE],
            startup_sweep=False,
        )
    )
    try:

        async def done() -> list[dict[str, Any]]:
            rows = await _rows(
                services,
                "SELECT attempt, finished, at FROM queue_test_runs WHERE key = %s ORDER BY attempt",
                key,
            )
            return rows if rows and rows[-1]["finished"] else []

        runs = await _until(done, "the retried job to finish")
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    assert [(r["attempt"], r["finished"]) for r in runs] == [(0, False), (1, True)]
    # RETRY waits exponential_wait ** 1 = 2 s before the first retry.
    assert (runs[1]["at"] - runs[0]["at"]).total_seconds() >= 1.9
    effects = await _rows(services, "SELECT job_id FROM queue_test_effects WHERE key = %s", key)
    assert [e["job_id"] for e in effects] == [job_id]
    # Succeeded, so deleted (failed jobs stay); nothing of it waits any more.
    assert await _rows(services, "SELECT 1 FROM procrastinate_jobs WHERE id = %s", job_id) == []


@pytest.mark.parametrize("effect_first", [True, False], ids=["after-effect", "before-effect"])
async def test_a_job_whose_worker_is_killed_mid_run_is_run_again_and_applied_once(
    services: Services, workers: Workers, queue_app: Any, effect_first: bool
) -> None:
    """Killed after its effect committed: the second run must not apply it again (no double).
    Killed before: the second run applies it (nothing lost). Either way, once."""
    before = await _last_worker(services)
    victim = workers.start(QUEUE_TEST_HOLD="600")
    await _registered(services, before, [victim])
    key = uuid.uuid4().hex
    task = queue_tasks.effect_then_work if effect_first else queue_tasks.work_then_effect
    job_id = await task.defer_async(key=key)

    async def effect_applied() -> list[dict[str, Any]]:
        return await _rows(services, "SELECT pid FROM queue_test_effects WHERE key = %s", key)

    async def started() -> list[dict[str, Any]]:
        return await _rows(services, "SELECT pid FROM queue_test_runs WHERE key = %s", key)

    if effect_first:
        assert await _until(effect_applied, "the first run to apply its effect") == [
            {"pid": victim.pid}
        ]
    else:
        assert await _until(started, "the first run to start") == [{"pid": victim.pid}]
        assert await effect_applied() == []
    # Mid-run: its work not finished. Nothing of the worker's own shutdown can run now.
    victim.send_signal(signal.SIGKILL)
    await asyncio.to_thread(victim.wait, 30)
    status = await _rows(services, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id)
    assert status == [{"status": "doing"}]  # the queue still believes it runs

    before = await _last_worker(services)
    rescuer = workers.start()
    await _registered(services, before, [rescuer])

    async def finished() -> list[dict[str, Any]]:
        return await _rows(
            services,
            "SELECT pid, attempt FROM queue_test_runs WHERE key = %s AND finished",
            key,
        )

    assert await _until(finished, "another worker to run the job again") == [
        {"pid": rescuer.pid, "attempt": 1}
    ]
    runs = await _rows(services, "SELECT pid FROM queue_test_runs WHERE key = %s ORDER BY at", key)
    assert [r["pid"] for r in runs] == [victim.pid, rescuer.pid]
    effects = await _rows(services, "SELECT pid FROM queue_test_effects WHERE key = %s", key)
    # Applied once: by the first run and not again, or by the second.
    assert effects == [{"pid": victim.pid if effect_first else rescuer.pid}]
    assert await _rows(services, "SELECT 1 FROM procrastinate_jobs WHERE id = %s", job_id) == []


async def test_the_queue_tables_are_closed_to_the_tenant_role(
    services: Services, database_url: str, queue_app: Any
) -> None:
    await queue_tasks.effect_then_work.configure(schedule_in={"hours": 1}).defer_async(
        key="private"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("procrastinate_jobs", "procrastinate_events", "task_effects"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SET LOCAL ROLE deskgraph_app")
                conn.execute(f"SELECT * FROM {table}")
        # The owner (workers, deferring code) still reads them.
        assert conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE args->>'key' = 'private'"
        ).fetchone() == (1,)


async def test_an_api_process_with_a_worker_starts_it_sweeps_retention_and_stops_it(
    services: Services, settings: Settings, offline_models: Any, database_url: str, graph: Any
) -> None:
    from api.app import create_app
    from helpdesk.policy import TenantPolicy
    from helpdesk.tenants import create_tenant, set_policy
    from tests.support.turns import new_conversation

    tenant = await create_tenant(services.pool, f"q-{uuid.uuid4().hex[:8]}", "Queue Co")
    await set_policy(services.pool, tenant.id, TenantPolicy(retention_days=7))
    old = await new_conversation(services, tenant)
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE conversations SET updated_at = now() - interval '8 days' WHERE id = %s",
            (old,),
        )

    async def workers_after(first: int) -> list[dict[str, Any]]:
        return await _rows(services, "SELECT id FROM procrastinate_workers WHERE id > %s", first)

    before = await _last_worker(services)
    fast = settings.model_copy(update={"queue_shutdown_s": 2.0})
    app = create_app(fast, models=offline_models, database_url=database_url, queue_worker=1)
    async with app.router.lifespan_context(app):
        task = app.state.queue_worker
        assert not task.done()
        await _until(lambda: workers_after(before), "the in-process worker to register")

        async def purged() -> bool:
            rows = await _rows(services, "SELECT 1 FROM conversations WHERE id = %s", old)
            return not rows

        await _until(purged, "the start-up retention sweep")
    assert task.done()  # stopped with the app, and unregistered from the database
    assert await workers_after(before) == []

    quiet = create_app(settings, models=offline_models, database_url=database_url)
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.queue_worker is None
    await set_policy(services.pool, tenant.id, TenantPolicy())


@pytest.mark.slow
async def test_deskgraph_worker_runs_the_queue_and_stops_on_sigterm(
    services: Services, workers: Workers
) -> None:
    before = await _last_worker(services)
    proc = workers.start_cli("--concurrency", "2")
    (worker_id,) = await _registered(services, before, [proc])
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    output = out.decode()
    assert proc.returncode == 0, output
    assert "queue worker running (concurrency 2)" in output
    assert "queue worker stopped" in output
    # Unregistered on the way out, not left for the stalled-worker pruning.
    gone = await _rows(services, "SELECT 1 FROM procrastinate_workers WHERE id = %s", worker_id)
    assert gone == []


async def test_upkeep_forgets_the_effects_of_jobs_that_are_gone(
    services: Services, queue_app: Any
) -> None:
    from types import SimpleNamespace

    waiting = await queue_tasks.effect_then_work.configure(schedule_in={"hours": 1}).defer_async(
        key="upkeep"
    )
    async with services.pool.connection() as conn:
        gone = await conn.execute(
            "SELECT coalesce(max(id), 0) + 1000 AS id FROM procrastinate_jobs"
        )
        gone_id = (await gone.fetchone())["id"]  # type: ignore[index]
        await conn.execute(
            "INSERT INTO task_effects (job_id, task_name) VALUES (%s, 't'), (%s, 't')",
            (waiting, gone_id),
        )
    orphans = await _rows(
        services,
        "SELECT count(*) AS n FROM task_effects e"
        " WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = e.job_id)",
    )
    assert orphans[0]["n"] >= 1  # gone_id's, and those of earlier tests' succeeded jobs
    context = SimpleNamespace(app=queue_app, additional_context={"services": services})
    assert await queue.queue_upkeep.func(context) == orphans[0]["n"]  # type: ignore[arg-type]
    left = await _rows(
        services, "SELECT job_id FROM task_effects WHERE job_id = ANY(%s)", [waiting, gone_id]
    )
    assert left == [{"job_id": waiting}]  # its job may still run: its record stays


async def test_the_nightly_top_questions_refresh_runs_per_tenant_on_a_worker(
    services: Services, settings: Settings, graph: Any, queue_app: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from graph.runtime import open_checkpointer
    from helpdesk.tenants import create_tenant
    from tests.integration.test_top_questions import HEATER, HOURS
    from tests.support.metrics_history import History

    tenant = await create_tenant(services.pool, f"tq-{uuid.uuid4().hex[:8]}", "Nightly Co")
    asked = datetime.now(UTC) - timedelta(hours=3)
    async with services.pool.connection() as conn, conn.transaction():
        history = History(conn, tenant.id)
        for i, text in enumerate(HOURS + HEATER):
            await history.conversation(
                asked + timedelta(minutes=i), [(0, "customer", {"text": text}), (2, "ai", {})]
            )
    first = await _last_job(services)
    await queue.refresh_top_questions.defer_async()
    context = {"services": services, "checkpointer": await open_checkpointer(services)}
    run = asyncio.create_task(
        queue.run_worker(
            settings.model_copy(update={"queue_shutdown_s": 5.0}),
            context,
            name="top-questions-test",
            queues=["default"],
            startup_sweep=False,
        )
    )
    jobs = (
        "SELECT task_name, status FROM procrastinate_jobs WHERE id > %s AND task_name IN"
        " ('refresh_top_questions', 'refresh_tenant_top_questions')"
    )
    try:

        async def stored() -> list[dict[str, Any]]:
            rows = await _rows(
                services, "SELECT label FROM question_clusters WHERE tenant_id = %s", tenant.id
            )
            pending = [r for r in await _rows(services, jobs, first) if r["status"] != "failed"]
            return rows if rows and not pending else []

        clusters = await _until(stored, "the tenant's clusters, computed by a queued job")
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    assert {c["label"] for c in clusters} & set(HOURS + HEATER)
    assert await _rows(services, jobs, first) == []  # all succeeded (a failed one stays)


async def _last_job(services: Services) -> int:
    rows = await _rows(services, "SELECT coalesce(max(id), 0) AS id FROM procrastinate_jobs")
    return int(rows[0]["id"])
