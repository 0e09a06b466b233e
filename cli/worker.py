"""``deskgraph worker``: task-queue workers in a process of their own (docs/queue.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

import typer

log = logging.getLogger(__name__)


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Jobs this process runs at once.")
    ] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="The worker's name in logs and the database.")
    ] = None,
) -> None:
    """Run task-queue jobs (retention, auto-close, nightly top questions, ...) until stopped.

    As many processes as wanted may run, on any machine that reaches the database; each
    periodic job still runs once per tick. Ctrl-C or SIGTERM stops taking jobs and waits
    DESKGRAPH_QUEUE_SHUTDOWN_S for the running ones.
    """
    from cli.signals import exit_through_hooks_on_signals

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pgserver", "fusion_base", "onnx_model", "onnx_model_bert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    exit_through_hooks_on_signals()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_work(concurrency, name))


async def _work(concurrency: int, name: str | None) -> None:
    import signal

    from desk import queue
    from graph.runtime import open_checkpointer, open_services
    from helpdesk import db
    from helpdesk.config import get_settings

    settings = get_settings()
    url = await asyncio.to_thread(db.app_database_url, settings)
    async with open_services(settings, database_url=url) as services:
        checkpointer = await open_checkpointer(services)
        async with queue.connected(url):
            run = asyncio.ensure_future(
                queue.run_worker(
                    settings,
                    {"services": services, "checkpointer": checkpointer},
                    concurrency=concurrency,
                    name=name,
                )
            )
            # A graceful stop on SIGTERM / SIGINT: the running jobs get their time, then the
            # pools close and the embedded Postgres' exit hook runs.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, run.cancel)
            log.info("queue worker running (concurrency %d); Ctrl-C stops it", concurrency)
            try:
                await run
            except asyncio.CancelledError:
                log.info("queue worker stopped")
