"""Database access: the embedded Postgres, connection pools and migrations.

Without ``DATABASE_URL`` deskgraph starts a private Postgres 16 with pgvector from the
``pgserver`` wheel under ``<data_dir>/pg`` (created on first use, reused after, stopped when the
last process using it exits). With ``DATABASE_URL`` that server is used and must have pgvector.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from helpdesk.config import Settings

log = logging.getLogger(__name__)

DictPool: TypeAlias = AsyncConnectionPool[AsyncConnection[DictRow]]
"""The app's pool type: its connections return rows as dicts (``row_factory=dict_row``)."""

_servers: dict[Path, Any] = {}
_MIGRATION_LOCK = 7_201_911  # advisory lock key: one migrator at a time across processes


def embedded_server(data_dir: Path) -> Any:
    """Start (or attach to) the embedded Postgres under ``data_dir/pg`` and return its handle.

    pgserver stops the server when the last process attached to it exits (its exit hook runs on
    a normal exit, Ctrl-C and SIGTERM; ``deskgraph serve`` turns SIGHUP into SIGTERM), counting
    the processes in ``pg/.handle_pids.json``. A process killed outright (``kill -9``, a crash)
    stays in that list, and then no later process is ever the last one and the server runs on
    for good: dead processes are dropped from the list before attaching. Whether it stops or
    stays up for other processes is logged at exit.
    """
    import pgserver  # heavy import, only when the embedded server is wanted

    pgdata = (data_dir / "pg").resolve()
    if pgdata not in _servers:
        pgdata.mkdir(parents=True, exist_ok=True)
        if (pgdata / "PG_VERSION").exists():
            log.info("starting the embedded Postgres under %s…", pgdata)
        else:
            log.info("creating the embedded Postgres under %s (first start only)…", pgdata)
        _forget_dead_processes(pgdata)
        _servers[pgdata] = pgserver.get_server(pgdata, cleanup_mode="stop")
        # Registered after pgserver's own hook, so it runs just before it (atexit is LIFO).
        atexit.register(_say_what_happens_to, pgdata)
    return _servers[pgdata]


def _attached_processes(pgdata: Path) -> Any:
    from pgserver.utils import DiskList

    return DiskList(pgdata / ".handle_pids.json")


def _forget_dead_processes(pgdata: Path) -> None:
    import psutil
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:  # pgserver's own lock around that list
        attached = _attached_processes(pgdata)
        pids = attached.get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            log.info(
                "forgetting processes that died without detaching: %s",
                sorted(set(pids) - set(alive)),
            )
            attached.put(alive)


def _say_what_happens_to(pgdata: Path) -> None:
    others = [pid for pid in _attached_processes(pgdata).get() if pid != os.getpid()]
    if others:
        log.info(
            "leaving the embedded Postgres under %s running for processes %s; it stops when"
            " the last of them exits",
            pgdata,
            others,
        )
    else:
        log.info("stopping the embedded Postgres under %s", pgdata)


def server_url(settings: Settings) -> str:
    """Return the URL of the configured server's maintenance database (``postgres``)."""
    if settings.database_url:
        return settings.database_url
    return str(embedded_server(settings.data_dir).get_uri())


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    """Return the database name in a Postgres URL (``postgres`` when absent)."""
    return urlsplit(url).path.lstrip("/") or "postgres"


def sqlalchemy_url(url: str) -> str:
    """Translate a libpq URL into the SQLAlchemy/psycopg form PGEngine expects."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return urlunsplit(
        parts._replace(scheme="postgresql+psycopg", query=urlencode(query, doseq=True))
    )


def _plain_database_name(url: str) -> str:
    """The database named in ``url``, refused unless a plain identifier (it is spliced into
    CREATE / DROP DATABASE, which take no parameters)."""
    name = database_name(url)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"database name must be a plain identifier, got {name!r}")
    return name


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (needs CREATEDB)."""
    name = _plain_database_name(url)
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` if it exists, ending its sessions (needs the right
    to drop it). For scratch databases: benchmarks, evals, tests."""
    name = _plain_database_name(url)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_database_url(settings: Settings) -> str:
    """Return the URL of deskgraph's database, creating it on the embedded server if needed.

    With ``DATABASE_URL`` the database named there is used as is. On the embedded server the
    application database is ``deskgraph``.
    """
    if settings.database_url:
        return settings.database_url
    url = with_database(server_url(settings), "deskgraph")
    ensure_database(url)
    return url


_INCLUDE = re.compile(r"^-- include: ([A-Za-z_][\w.]*):([\w./-]+\.sql)[ \t]*$", re.MULTILINE)


def _expand_includes(sql: str) -> str:
    """Replace each ``-- include: PACKAGE:PATH.sql`` line with that file of the installed package.

    How a migration installs SQL that a dependency ships and owns (procrastinate's schema in
    ``0021_task_queue``): the text comes from the very package the code runs with, inside
    the migration's transaction, once, under the migration lock. ``..`` is refused: the path
    stays inside the package.

    Raises:
        ValueError: the path leaves the package, or the package has no such file.
    """

    def load(match: re.Match[str]) -> str:
        package, path = match.group(1), match.group(2)
        if ".." in path.split("/"):
            raise ValueError(f"include: {path!r} must stay inside package {package!r}")
        target = resources.files(package).joinpath(*path.split("/"))
        if not target.is_file():
            raise ValueError(f"include: package {package!r} has no file {path!r}")
        return target.read_text(encoding="utf-8")

    return _INCLUDE.sub(load, sql)


def _migrations() -> list[tuple[str, str]]:
    files = resources.files("helpdesk") / "migrations"
    out = []
    for entry in sorted(files.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".sql"):
            text = entry.read_text(encoding="utf-8")
            out.append((entry.name.removesuffix(".sql"), _expand_includes(text)))
    return out


def upgrade(url: str, *, target: str | None = None) -> list[str]:
    """Apply pending SQL migrations in order; return the versions applied.

    Each migration runs in its own transaction under an advisory lock, so several processes
    starting at once apply each migration exactly once.

    Args:
        url: The database.
        target: Stop after this version (e.g. ``"0004_message_agent"``): a database as an older
            release left it, for testing that later migrations move it forward. ``None``: all.
    """
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in _migrations():
                if target is not None and version > target:
                    break
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                log.info("applied migration %s", version)
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied


def make_pool(url: str, max_size: int = 10) -> DictPool:
    """Return an (unopened) async pool of autocommit, dict-row connections.

    The same pool serves the checkpointer (which needs autocommit and dict rows) and the
    repositories. Every connection is checked (an empty query, one round trip) before it is
    handed out: after a Postgres restart or an idle connection dropped by the server or a
    proxy, the pool replaces it instead of failing the next request with it.
    """
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
    )


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the database could not be reached or dropped
    the connection: a server restart or shutdown, a network cut, a pool with no connection to
    give. Such a failure says nothing about the request, so a client may retry it.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, psycopg.OperationalError):  # psycopg_pool.PoolTimeout too
            return True
        current = current.__cause__ or current.__context__
    return False
