"""Tasks the task-queue tests run, registered on the deskgraph queue app (``desk.queue.app``)
under ``test_`` names, on the ``test`` queue that no deskgraph worker of the tests takes
unless asked. Their effects go to tables of their own (:func:`create_tables`)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from procrastinate import JobContext

from desk import queue

TEST_QUEUE = "test"

TABLES = """
CREATE TABLE IF NOT EXISTS queue_test_effects (
    key text NOT NULL, job_id bigint NOT NULL, pid int NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS queue_test_runs (
    key text NOT NULL, job_id bigint NOT NULL, pid int NOT NULL, attempt int NOT NULL,
    finished boolean NOT NULL DEFAULT false,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
"""


async def create_tables(pool: Any) -> None:
    async with pool.connection() as conn:
        for statement in TABLES.split(";"):  # one at a time: the pool prepares statements
            if statement.strip():
                await conn.execute(statement)


def _pool(context: JobContext) -> Any:
    return (context.additional_context or {})["pool"]


async def _run(context: JobContext, key: str) -> None:
    async with _pool(context).connection() as conn:
        await conn.execute(
            "INSERT INTO queue_test_runs (key, job_id, pid, attempt) VALUES (%s, %s, %s, %s)",
            (key, context.job.id, os.getpid(), context.job.attempts),
        )


async def _finish(context: JobContext, key: str) -> None:
    async with _pool(context).connection() as conn:
        await conn.execute(
            "UPDATE queue_test_runs SET finished = true WHERE key = %s AND job_id = %s"
            " AND pid = %s AND attempt = %s",
            (key, context.job.id, os.getpid(), context.job.attempts),
        )


async def _apply(context: JobContext, key: str) -> None:
    """The effect: a row, written at most once per job (``desk.queue.once``)."""
    async with _pool(context).connection() as conn, conn.transaction():
        if await queue.once(conn, context):
            await conn.execute(
                "INSERT INTO queue_test_effects (key, job_id, pid) VALUES (%s, %s, %s)",
                (key, context.job.id, os.getpid()),
            )


@queue.app.task(name="test_effect_then_work", queue=TEST_QUEUE, pass_context=True)
async def effect_then_work(context: JobContext, key: str) -> None:
    """Apply the effect, then go on working: for ``QUEUE_TEST_HOLD`` seconds in a worker that
    has it set (the one the test kills), at once elsewhere."""
    await _run(context, key)
    await _apply(context, key)
    await asyncio.sleep(float(os.environ.get("QUEUE_TEST_HOLD", "0")))
    await _finish(context, key)


@queue.app.task(name="test_work_then_effect", queue=TEST_QUEUE, pass_context=True)
async def work_then_effect(context: JobContext, key: str) -> None:
    """Work first (held for ``QUEUE_TEST_HOLD`` seconds where set), then apply the effect."""
    await _run(context, key)
    await asyncio.sleep(float(os.environ.get("QUEUE_TEST_HOLD", "0")))
    await _apply(context, key)
    await _finish(context, key)


@queue.app.task(name="test_fails_first", queue=TEST_QUEUE, pass_context=True, retry=queue.RETRY)
async def fails_first(context: JobContext, key: str) -> None:
    """Fails on its first attempt, succeeds on the next (the project's retry strategy)."""
    await _run(context, key)
    if context.job.attempts == 0:
        raise RuntimeError("the first attempt fails")
    await _apply(context, key)
    await _finish(context, key)


def register_tick() -> None:
    """A periodic task every second with the same locks as the project's periodic tasks."""

    @queue.app.periodic(cron="* * * * * *")
    @queue.app.task(
        name="test_tick",
        queue=TEST_QUEUE,
        pass_context=True,
        queueing_lock="periodic:test_tick",
        lock="periodic:test_tick",
    )
    async def tick(context: JobContext, timestamp: int) -> None:
        await _apply(context, str(timestamp))
