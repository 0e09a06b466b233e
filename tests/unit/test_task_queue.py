"""The task queue's definitions (desk/queue.py) and the migration runner's include directive,
with nothing started."""

from __future__ import annotations

import pytest

from desk import queue
from helpdesk import db


def test_the_queue_migration_carries_procrastinate_s_installed_schema() -> None:
    from procrastinate.schema import SchemaManager

    migrations = dict(db._migrations())
    sql = migrations["0021_task_queue"]
    assert SchemaManager.get_schema() in sql
    assert "-- include:" not in sql.replace("`-- include:", "")  # every directive expanded
    assert "CREATE TABLE task_effects" in sql


def test_an_include_must_name_a_file_inside_an_installed_package() -> None:
    with pytest.raises(ValueError, match="inside package"):
        db._expand_includes("-- include: procrastinate:sql/../../x.sql\n")
    with pytest.raises(ValueError, match="no file"):
        db._expand_includes("-- include: procrastinate:sql/nothing_here.sql\n")
    # Only a whole line is a directive; a mention in a comment is left alone.
    text = "-- see `-- include: procrastinate:sql/schema.sql` above\nSELECT 1;\n"
    assert db._expand_includes(text) == text


def test_every_periodic_task_has_its_schedule_retries_and_locks() -> None:
    periodic = {p.task.name: p for p in queue.app.periodic_registry.periodic_tasks.values()}
    assert {n: p.cron for n, p in periodic.items()} == {
        "retention_sweep": queue.RETENTION_CRON,
        "auto_close_tickets": queue.AUTO_CLOSE_CRON,
        "refresh_top_questions": queue.TOP_QUESTIONS_CRON,
        "retry_stalled_jobs": queue.STALLED_SWEEP_CRON,
        "queue_upkeep": queue.UPKEEP_CRON,
        "draft_articles_from_resolved_tickets": queue.LEARN_CRON,
        "sla_sweep": queue.SLA_SWEEP_CRON,
        "deliver_webhooks": queue.WEBHOOKS_CRON,
        "poll_mailboxes": queue.MAIL_POLL_CRON,
        "send_mail": queue.MAIL_SEND_CRON,
        "email_notifications": queue.MAIL_SEND_CRON,
        "take_in_mail": queue.MAIL_INTAKE_CRON,
    }
    for name, p in periodic.items():
        assert p.task.queueing_lock, name  # never two copies waiting
        if name == "retry_stalled_jobs":
            # A sweep whose worker died must not block the next: no lock.
            assert p.task.lock is None
            assert p.task.queue == queue.MAINTENANCE_QUEUE
        else:
            assert p.task.lock == p.task.queueing_lock, name
            assert p.task.retry_strategy is queue.RETRY, name
    assert queue.app.tasks["refresh_tenant_top_questions"].retry_strategy is queue.RETRY


def test_the_retry_backoff_doubles_from_two_seconds() -> None:
    from datetime import UTC, datetime

    from procrastinate.jobs import Job

    waits = []
    for attempts in range(6):
        job = Job(id=1, queue="default", lock=None, queueing_lock=None, task_name="t",
                  attempts=attempts)  # fmt: skip
        decision = queue.RETRY.get_retry_decision(exception=RuntimeError(), job=job)
        if decision is None:
            waits.append(None)
            continue
        assert decision.retry_at is not None
        waits.append(round((decision.retry_at - datetime.now(UTC)).total_seconds()))
    assert waits == [2, 4, 8, 16, 32, None]


async def test_auto_close_closes_stale_tickets_across_tenants_at_the_jobs_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from helpdesk import tickets

    context = SimpleNamespace(additional_context={"services": SimpleNamespace(pool="the pool")})
    seen = []

    async def close_stale(db: object, now: object) -> int:
        seen.append((db, now))
        return 3

    monkeypatch.setattr(tickets, "close_stale", close_stale)
    assert await queue.auto_close_tickets.func(context, timestamp=1_800_000_000) == 3
    assert seen and seen[0][0] == "the pool"  # the pool: every tenant's tickets
    assert seen[0][1].timestamp() == 1_800_000_000
