"""A task-queue worker in a process of its own, for the tests: ``python -m
tests.support.queue_worker URL``. It takes the test queue and the queue's upkeep (stalled-job
retries); settings come from the environment (short heartbeats in the tests).
``QUEUE_TEST_TICKS=1`` registers the every-second periodic test task."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from desk import queue
from helpdesk import db
from helpdesk.config import get_settings
from tests.support import queue_tasks


async def main(url: str) -> None:
    if os.environ.get("QUEUE_TEST_TICKS") == "1":
        queue_tasks.register_tick()
    pool = db.make_pool(url, 2)
    await pool.open(wait=True)
    try:
        async with queue.connected(url):
            await queue.run_worker(
                get_settings(),
                {"pool": pool},
                name=f"test-{os.getpid()}",
                queues=[queue_tasks.TEST_QUEUE, queue.MAINTENANCE_QUEUE],
                startup_sweep=False,
                install_signal_handlers=True,
            )
    finally:
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(process)d %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main(sys.argv[1]))
