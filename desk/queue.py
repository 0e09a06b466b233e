"""Background work on a Postgres-backed task queue (procrastinate); see ``docs/queue.md``.

One procrastinate :data:`app` holds the task definitions; :func:`connected` puts it on the
project's database (the URL ``helpdesk.config`` settings lead to) and :func:`run_worker`
runs a worker of it. Workers run in the API process (``deskgraph serve``:
:func:`in_process_worker`) and on their own (``deskgraph worker``).

What the queue guarantees, and so what no home-made loop or lock here repeats:

* **A periodic task runs once per tick** however many workers run: the deferral of a tick is
  unique in ``procrastinate_periodic_defers``, and each periodic task also has a
  ``queueing_lock`` (at most one waiting copy) and a ``lock`` (never two running at once;
  the stalled-job sweep excepted, see :func:`retry_stalled_jobs`).
* **Failures are retried with backoff** (:data:`RETRY`: up to 5 retries, after 2, 4, 8, 16
  and 32 s); a job that fails them all stays ``failed`` for :data:`KEEP_FINISHED_DAYS`.
* **A job whose worker died is run again**: workers send heartbeats, and
  :func:`retry_stalled_jobs` (every :data:`STALLED_SWEEP_CRON`) puts the running jobs of
  workers silent for ``queue_stalled_after_s`` back in the queue.
* **Its effect is applied once**: a re-run job may have committed its effect before its
  worker died, so a task that writes does so through :func:`once`, which records the job id
  in ``task_effects`` in the same transaction. The periodic tasks below are idempotent by
  nature (deleting what is past retention, closing what is stale, replacing a period's
  clusters) and need no such record.

Job arguments carry ids only (``tenant_id``, never customer text): the queue's tables hold
every tenant's jobs and are closed to the row-level-security role (migration 0021).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from psycopg import AsyncConnection

from helpdesk import metrics, retention, sla, tickets
from helpdesk.config import Settings
from helpdesk.errors import NotFound
from helpdesk.tenants import get_tenant_by_id

log = logging.getLogger(__name__)

RETRY = RetryStrategy(max_attempts=5, exponential_wait=2)
"""Every task's retries: up to 5 more attempts, waiting 2, 4, 8, 16 and 32 seconds."""

RETENTION_CRON = "17 * * * *"
"""Hourly, at a minute nobody else picks."""
AUTO_CLOSE_CRON = "*/10 * * * *"
"""Every 10 minutes: a resolved ticket closes within 10 minutes of its tenant's N days."""
TOP_QUESTIONS_CRON = "30 2 * * *"
"""Nightly at 02:30 UTC."""
UPKEEP_CRON = "45 3 * * *"
"""Daily at 03:45 UTC."""
KEEP_FINISHED_DAYS = 30
"""How long failed, cancelled and aborted jobs stay to be looked at (succeeded ones go at once)."""
MAIL_POLL_CRON = "* * * * * */20"
"""Every 20 seconds: each mailbox is fetched once its own ``poll_interval_s`` has passed."""
MAIL_SEND_CRON = "* * * * * */15"
"""Every 15 seconds: an approved reply leaves within a quarter of a minute."""
MAIL_INTAKE_CRON = "* * * * * */10"
"""Every 10 seconds: stored mail becomes a turn, and approved replies become outbox mail."""
WEBHOOKS_CRON = "* * * * * */15"
"""Every 15 seconds: a notification reaches its webhooks within a quarter of a minute."""
LEARN_CRON = "*/5 * * * *"
"""Every 5 minutes: a resolved ticket's draft is waiting in the review queue soon after."""
SLA_SWEEP_CRON = "* * * * *"
"""Every minute: an SLA warning or breach is on the ticket's timeline within a minute."""
STALLED_SWEEP_CRON = "* * * * * */10"
"""Every 10 seconds (procrastinate's sixth column is seconds): one indexed query."""

app = App(connector=PsycopgConnector(), periodic_defaults={"max_delay": 600})
"""The task definitions. Its own connector is never opened: :func:`connected` gives it one."""

MAINTENANCE_QUEUE = "maintenance"
"""The queue of the queue's own upkeep (:func:`retry_stalled_jobs`, :func:`queue_upkeep`); the
rest use ``default``. Every deskgraph worker takes both."""

LOCKS = {
    "retention": "periodic:retention_sweep",
    "auto_close": "periodic:auto_close_tickets",
    "top_questions": "periodic:refresh_top_questions",
    "stalled": "periodic:retry_stalled_jobs",
    "upkeep": "periodic:queue_upkeep",
    "learn": "periodic:draft_articles_from_resolved_tickets",
    "sla": "periodic:sla_sweep",
    "webhooks": "periodic:deliver_webhooks",
    "staff_mail": "periodic:email_notifications",
    "mail_poll": "periodic:poll_mailboxes",
    "mail_send": "periodic:send_mail",
    "mail_intake": "periodic:take_in_mail",
}
"""The queueing lock and lock of each periodic task (one waiting, one running, at most)."""


@contextlib.asynccontextmanager
async def connected(url: str, *, max_size: int = 4) -> AsyncIterator[App]:
    """:data:`app` on the database at ``url`` for the duration of the block.

    Its pool is its own: a worker's long ``LISTEN`` connection and its job fetches must not
    take connections from the API's pool (``prepare_threshold=0`` as there: a pooler may sit
    in front of Postgres). The app is one per process, so a process works with one database
    at a time; blocks nest (the inner one's connector is replaced by the outer's on exit).
    """
    connector = PsycopgConnector(
        conninfo=url, min_size=1, max_size=max_size, kwargs={"prepare_threshold": 0}
    )
    await connector.open_async()
    try:
        with app.replace_connector(connector) as opened:
            yield opened
    finally:
        await connector.close_async()


def _ctx(context: JobContext, key: str) -> Any:
    extra = context.additional_context or {}
    if key not in extra:
        raise RuntimeError(f"the worker was started without {key!r} in its context")
    return extra[key]


async def once(conn: AsyncConnection[Any], context: JobContext) -> bool:
    """Claim this job's effect inside the caller's transaction; ``False``: already applied.

    Call it first in the transaction that writes the effect. If the transaction commits, the
    job id is recorded with it; a run of the same job after its worker died (a stalled-job
    retry) or after a failure past the commit finds the record and writes nothing again.
    """
    assert context.job.id is not None
    cur = await conn.execute(
        "INSERT INTO task_effects (job_id, task_name) VALUES (%s, %s)"
        " ON CONFLICT (job_id) DO NOTHING",
        (context.job.id, context.job.task_name),
    )
    return cur.rowcount == 1


@app.periodic(cron=RETENTION_CRON)
@app.task(
    name="retention_sweep",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["retention"],
    lock=LOCKS["retention"],
)
async def retention_sweep(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Apply every tenant's ``retention_days`` (``helpdesk.retention.purge_all``).

    Idempotent: a re-run deletes only what is still past its time. Returns the conversations
    deleted per tenant slug.
    """
    services = _ctx(context, "services")
    done = await retention.purge_all(services.pool, _ctx(context, "checkpointer"))
    return {slug: stats.conversations for slug, stats in done.items()}


@app.periodic(cron=AUTO_CLOSE_CRON)
@app.task(
    name="auto_close_tickets",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["auto_close"],
    lock=LOCKS["auto_close"],
)
async def auto_close_tickets(context: JobContext, timestamp: int | None = None) -> int:
    """Close resolved tickets past their tenant's days without a customer reply
    (``helpdesk.tickets.close_stale``, which owns the rule and its idempotence: a second run
    skips what the first closed); return how many were closed."""
    services = _ctx(context, "services")
    now = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return await tickets.close_stale(services.pool, now)


@app.periodic(cron=SLA_SWEEP_CRON)
@app.task(
    name="sla_sweep",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["sla"],
    lock=LOCKS["sla"],
)
async def sla_sweep(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Record the SLA warnings and breaches whose time has come (``helpdesk.sla.sweep``, which
    owns their idempotence: each event has a unique key per ticket and target, so a re-run or
    an overlapping run records none twice); return the counts."""
    services = _ctx(context, "services")
    now = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return await sla.sweep(services.pool, now)


@app.periodic(cron=LEARN_CRON)
@app.task(
    name="draft_articles_from_resolved_tickets",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["learn"],
    lock=LOCKS["learn"],
)
async def draft_articles_from_resolved_tickets(
    context: JobContext, timestamp: int | None = None
) -> int:
    """The knowledge base learns: an article draft for every ticket resolved lately that a
    person answered (``desk.kb_learning.draft_resolved``: one per conversation, so a re-run
    makes none twice); return how many were made."""
    from desk import kb_learning

    services = _ctx(context, "services")
    now = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return await kb_learning.draft_resolved(services, now=now)


@app.periodic(cron=WEBHOOKS_CRON)
@app.task(
    name="deliver_webhooks",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["webhooks"],
    lock=LOCKS["webhooks"],
)
async def deliver_webhooks(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Send the webhook deliveries that are due (``desk.webhooks.deliver_due``: signed,
    retried with backoff, at least once); return counts by outcome."""
    from desk import webhooks

    services = _ctx(context, "services")
    settings: Settings = _ctx(context, "settings")
    return await webhooks.deliver_due(services.pool, allow_private=settings.webhook_allow_private)


@app.periodic(cron=MAIL_SEND_CRON)
@app.task(
    name="email_notifications",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["staff_mail"],
    lock=LOCKS["staff_mail"],
)
async def email_notifications(context: JobContext, timestamp: int | None = None) -> int:
    """Queue the outbox mail of the notifications not mailed yet, for the staff who chose
    email for their kind (``desk.staff_mail``: stamped in the same transaction, so a re-run
    mails nothing twice); ``send_mail`` sends it. Return how many mails were queued."""
    from desk import staff_mail

    services = _ctx(context, "services")
    settings: Settings = _ctx(context, "settings")
    return await staff_mail.email_notifications(services.pool, console_url=settings.public_url)


@app.periodic(cron=MAIL_POLL_CRON)
@app.task(
    name="poll_mailboxes",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["mail_poll"],
    lock=LOCKS["mail_poll"],
)
async def poll_mailboxes(context: JobContext, timestamp: int | None = None) -> int:
    """Fetch the mailboxes whose interval has passed (``desk.email.fetch.poll_mailbox``, which
    commits message by message and never raises for a server or a bad message); return how
    many were polled."""
    from desk.email.fetch import poll_mailbox
    from helpdesk.mailboxes import SecretBox, load_mail_key

    services = _ctx(context, "services")
    settings: Settings = _ctx(context, "settings")
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, tenant_id FROM mailboxes WHERE last_polled_at IS NULL"
            " OR last_polled_at + make_interval(secs => poll_interval_s) <= now()"
            " ORDER BY last_polled_at NULLS FIRST"
        )
        due = await cur.fetchall()
    if not due:
        return 0
    box = SecretBox(load_mail_key(settings))
    for row in due:
        await poll_mailbox(services.pool, row["tenant_id"], row["id"], box=box, settings=settings)
    return len(due)


_DESKS: dict[int, Any] = {}


def _desk(context: JobContext) -> Any:
    """This worker's desk (graph, gate, turns), built once per process from its services."""
    from desk.service import Desk
    from graph.graph import build_graph

    services = _ctx(context, "services")
    if id(services) not in _DESKS:
        graph = build_graph(services, _ctx(context, "checkpointer"))
        _DESKS[id(services)] = Desk.build(graph, services)
    return _DESKS[id(services)]


@app.periodic(cron=MAIL_INTAKE_CRON)
@app.task(
    name="take_in_mail",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["mail_intake"],
    lock=LOCKS["mail_intake"],
)
async def take_in_mail(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Stored mail into conversations, tickets and AI turns, and the replies of email
    conversations into the outbox (``desk.email.intake``: idempotent, so a re-run after a
    crash does nothing twice); return how many of each."""
    from desk.email import intake

    services = _ctx(context, "services")
    taken = await intake.intake_pending(services, _desk(context))
    replies = await intake.queue_replies(services)
    return {"taken_in": taken, "replies_queued": replies}


@app.periodic(cron=MAIL_SEND_CRON)
@app.task(
    name="send_mail",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["mail_send"],
    lock=LOCKS["mail_send"],
)
async def send_mail(context: JobContext, timestamp: int | None = None) -> int:
    """Send every tenant's due outbox mail (``desk.email.send.send_pending``: at most once, a
    send whose outcome is unknown left ``uncertain`` for a person); return how many sent."""
    from desk.email.send import send_pending
    from helpdesk.mailboxes import SecretBox, load_mail_key

    services = _ctx(context, "services")
    settings: Settings = _ctx(context, "settings")
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT tenant_id FROM mail_outbox"
            " WHERE state IN ('pending', 'sending') AND next_attempt_at <= now()"
        )
        tenants = [r["tenant_id"] for r in await cur.fetchall()]
    if not tenants:
        return 0
    box = SecretBox(load_mail_key(settings))
    sent = 0
    for tid in tenants:
        sent += (await send_pending(services.pool, tid, box=box, settings=settings)).sent
    return sent


@app.periodic(cron=TOP_QUESTIONS_CRON)
@app.task(
    name="refresh_top_questions",
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["top_questions"],
    lock=LOCKS["top_questions"],
)
async def refresh_top_questions(context: JobContext, timestamp: int | None = None) -> int:
    """Nightly: queue one :func:`refresh_tenant_top_questions` job per tenant; return how many
    were queued.

    One job per tenant, so a tenant whose clustering fails is retried alone and the others
    are not held up by it.
    """
    services = _ctx(context, "services")
    async with services.pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM tenants ORDER BY slug")
        ids = [r["id"] for r in await cur.fetchall()]
    from procrastinate.exceptions import AlreadyEnqueued

    queued = 0
    for tenant_id in ids:
        with contextlib.suppress(AlreadyEnqueued):  # the last one still waits: it will do
            await refresh_tenant_top_questions.configure(
                queueing_lock=f"top_questions:{tenant_id}"
            ).defer_async(tenant_id=str(tenant_id))
            queued += 1
    return queued


@app.task(name="refresh_tenant_top_questions", pass_context=True, retry=RETRY)
async def refresh_tenant_top_questions(context: JobContext, tenant_id: str) -> int:
    """Cluster one tenant's questions of the last 30 days (its own time zone) and store them
    (``desk.top_questions.refresh``, which replaces the period's clusters: idempotent).
    Returns the number of clusters."""
    from desk import top_questions

    services = _ctx(context, "services")
    tid = uuid.UUID(tenant_id)
    try:
        tenant = await get_tenant_by_id(services.pool, tid)
    except NotFound:
        return 0  # deleted since it was queued
    zone = tenant.business.timezone
    try:
        today = datetime.now(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        zone, today = "UTC", datetime.now(UTC).date()
    period = metrics.period(None, None, zone, today=today)
    clusters = await top_questions.refresh(
        services, tid, period, as_of=datetime.now(UTC), business=tenant.business
    )
    return len(clusters)


@app.periodic(cron=STALLED_SWEEP_CRON)
@app.task(
    name="retry_stalled_jobs",
    queue=MAINTENANCE_QUEUE,
    pass_context=True,
    # No ``lock``: a sweep whose own worker died would hold it, and no later sweep could run
    # to free it. Two sweeps at once are harmless (a job is put back once; see below).
    queueing_lock=LOCKS["stalled"],
)
async def retry_stalled_jobs(context: JobContext, timestamp: int | None = None) -> int:
    """Put back in the queue the running jobs of workers that stopped sending heartbeats
    (killed, crashed, cut off) for ``queue_stalled_after_s``; return how many.

    The pattern procrastinate documents for stalled jobs; the job's next run is a new attempt
    and its effect is guarded by :func:`once` where it writes.
    """
    settings: Settings = _ctx(context, "settings")
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.queue_stalled_after_s)
    count = 0
    for job in stalled:
        if job.id == context.job.id:
            continue
        try:
            await manager.retry_job(job)
        except Exception as exc:  # another sweep put it back first: it is not "doing" now
            log.info("job %s was not put back (%s)", job.id, exc)
            continue
        log.warning("job %s (%s) lost its worker; queued again", job.id, job.task_name)
        count += 1
    return count


@app.periodic(cron=UPKEEP_CRON)
@app.task(
    name="queue_upkeep",
    queue=MAINTENANCE_QUEUE,
    pass_context=True,
    retry=RETRY,
    queueing_lock=LOCKS["upkeep"],
    lock=LOCKS["upkeep"],
)
async def queue_upkeep(context: JobContext, timestamp: int | None = None) -> int:
    """Daily: delete the jobs that ended unsuccessfully more than :data:`KEEP_FINISHED_DAYS`
    ago, and the ``task_effects`` records of jobs that no longer exist (a record only matters
    while its job can still run again). Returns the records deleted."""
    await context.app.job_manager.delete_old_jobs(
        nb_hours=KEEP_FINISHED_DAYS * 24,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
    pool = _ctx(context, "services").pool
    async with pool.connection() as conn:
        cur = await conn.execute(
            "DELETE FROM task_effects e WHERE NOT EXISTS"
            " (SELECT 1 FROM procrastinate_jobs j WHERE j.id = e.job_id)"
        )
        return int(cur.rowcount)


def worker_options(settings: Settings, *, concurrency: int, name: str | None) -> dict[str, Any]:
    """The options every deskgraph worker runs with (heartbeats from the settings)."""
    return {
        "concurrency": concurrency,
        "name": name,
        "update_heartbeat_interval": settings.queue_heartbeat_s,
        "stalled_worker_timeout": settings.queue_stalled_after_s,
        # Succeeded jobs go (periodic ticks would pile up); failed ones stay to be looked at.
        "delete_jobs": "successful",
        "shutdown_graceful_timeout": settings.queue_shutdown_s,
    }


async def run_worker(
    settings: Settings,
    context: dict[str, Any],
    *,
    concurrency: int = 1,
    name: str | None = None,
    queues: list[str] | None = None,
    startup_sweep: bool = True,
    install_signal_handlers: bool = False,
) -> None:
    """Run a worker of :data:`app` (inside :func:`connected`) until cancelled.

    First queues a retention sweep (:func:`defer_startup_sweep`). Cancelling it stops
    fetching jobs and waits up to ``queue_shutdown_s`` for the running ones.

    Args:
        context: what tasks find in ``context.additional_context``: ``settings`` is added;
            the deskgraph tasks need ``services`` and ``checkpointer``.
        queues: the queues to take jobs from (``None``: all).
        startup_sweep: queue a retention sweep first.
    """
    if startup_sweep:
        await defer_startup_sweep()
    options = worker_options(settings, concurrency=concurrency, name=name)
    if queues is not None:
        options["queues"] = queues
    await app.run_worker_async(
        additional_context={"settings": settings, **context},
        install_signal_handlers=install_signal_handlers,
        **options,
    )


@contextlib.asynccontextmanager
async def in_process_worker(
    url: str,
    settings: Settings,
    context: dict[str, Any],
    *,
    concurrency: int = 1,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a worker as an asyncio task for the duration of the block (``deskgraph serve``).

    Leaving the block stops it (running jobs get ``queue_shutdown_s`` to finish) and closes its
    pool. A worker that crashes is logged and not restarted: the API goes on, and jobs wait
    for another worker (``deskgraph worker``) or the next start.
    """
    async with connected(url):
        task = asyncio.create_task(
            run_worker(settings, context, concurrency=concurrency, name="in-process"),
            name="queue-worker",
        )

        def report(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                log.error("the in-process queue worker stopped", exc_info=t.exception())

        task.add_done_callback(report)
        log.info("in-process queue worker started (concurrency %d)", concurrency)
        try:
            yield task
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=settings.queue_shutdown_s + 5)
            log.info("in-process queue worker stopped")


async def defer_startup_sweep() -> None:
    """Queue a retention sweep now (at start-up), unless one is already waiting: the hourly
    schedule alone would leave a restarted desk's expired data for up to an hour."""
    from procrastinate.exceptions import AlreadyEnqueued

    with contextlib.suppress(AlreadyEnqueued):
        await retention_sweep.defer_async()
