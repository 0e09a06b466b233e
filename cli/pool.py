"""Database work of a CLI command: the configured database, migrated, on a small pool."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import typer
from rich.console import Console

console = Console()


def run_with_pool(body: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``body(pool)`` against the configured database (migrations applied first).

    A domain error or a refused value (:class:`helpdesk.errors.DeskError`, ``ValueError``)
    is printed plainly and exits 2, not as a traceback.
    """
    from helpdesk import db
    from helpdesk.config import get_settings
    from helpdesk.errors import DeskError

    async def go() -> None:
        url = await asyncio.to_thread(db.app_database_url, get_settings())
        await asyncio.to_thread(db.upgrade, url)
        pool = db.make_pool(url, 2)
        await pool.open()
        try:
            await body(pool)
        finally:
            await pool.close()

    try:
        asyncio.run(go())
    except (DeskError, ValueError) as exc:
        console.print(f"[red]error:[/] {getattr(exc, 'message', exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
