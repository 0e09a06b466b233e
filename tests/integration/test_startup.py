"""Starting and stopping the product: the demo loader, and a real ``deskgraph serve`` process
on its own data dir stopping the embedded Postgres it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from cli.demo import ensure_demo
from graph.services import Services
from helpdesk.tenants import Tenant
from kb_pipeline.loaders import Article
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration


async def test_demo_loader_keeps_articles_an_admin_added(services: Services, demo: Tenant) -> None:
    added = Article("admin-added-gutters", "Gutter cleaning", "We clean gutters every autumn.")
    await services.kb.ingest(demo.id, [added])
    try:
        _, stats = await ensure_demo(services)  # what every `serve --demo` start runs
        assert stats.articles_deleted == 0
        hits = await services.kb.search(demo.id, "gutters every autumn", mode="fulltext")
        assert hits[0]["source_id"] == "admin-added-gutters"
    finally:
        async with services.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM kb_articles WHERE tenant_id = %s AND source_id = %s",
                (demo.id, added.source_id),
            )
            row = await cur.fetchone()
        if row is not None:
            await services.kb.delete_article(demo.id, row["id"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dead_pid() -> int:
    """The pid of a process that has exited (what ``kill -9`` leaves behind)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir for the server processes of this module, its Postgres created (and
    stopped again) by a process of its own."""
    path = tmp_path_factory.mktemp("serve-data")
    code = "import sys; from pathlib import Path; from helpdesk import db;"
    code += " db.embedded_server(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True, timeout=120)
    yield path
    pid_file = path / "pg" / "postmaster.pid"
    if pid_file.exists():  # a failed test left it running: stop it (fast shutdown)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(int(pid_file.read_text().split()[0])).send_signal(signal.SIGINT)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["int", "term", "hup"]
)
def test_stopping_the_server_stops_its_embedded_postgres(data_dir: Path, stop: int) -> None:
    # A process that once used this data dir and was killed left its pid in pgserver's list:
    # without pruning it, no later process is the last one and the server is never stopped.
    (data_dir / "pg" / ".handle_pids.json").write_text(json.dumps([_dead_pid()]))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"DESKGRAPH_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        postmaster = psutil.Process(
            int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        )
        server.send_signal(stop)
        output, _ = server.communicate(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert "ready on http://127.0.0.1:" in output
    # The task-queue worker ran beside the API and stopped before Postgres did.
    assert "in-process queue worker started" in output
    assert output.index("in-process queue worker stopped") < output.index(
        "stopping the embedded Postgres"
    )
    assert "stopping the embedded Postgres" in output
    postmaster.wait(timeout=30)  # raises if Postgres is still running
    assert not (data_dir / "pg" / "postmaster.pid").exists()
