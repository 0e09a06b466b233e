"""Ingestion jobs on a real Postgres: mixed good and bad files, idempotency, cleanup, chunking
options, and a failure in the middle of an article that must leave nothing half-indexed.

Failures are real database errors raised by a trigger created for the test (and dropped after
it), not mocks: the job sees exactly what a full disk or a broken connection would give it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from graph.services import Services
from helpdesk.errors import Conflict, NotFound
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import Tenant, create_tenant
from kb_pipeline.jobs import (
    JobOptions,
    JobOwner,
    JobProgress,
    create_job,
    get_job,
    ingest_paths,
    list_jobs,
    reap_dead_jobs,
    run_job,
)
from tests.support.dead_worker import (
    kill,
    lock_holders,
    start_dead_worker,
    start_queueing_process,
    wait_lock_released,
)
from tests.support.kb_files import make_pdf, write

pytestmark = pytest.mark.integration


async def new_tenant(services: Services, policy: TenantPolicy | None = None) -> Tenant:
    return await create_tenant(
        services.pool, f"kb-{uuid.uuid4().hex[:10]}", "Ingest Test Co", policy
    )


async def rows(services: Services, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with services.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        return list(await cur.fetchall())


async def chunk_count(services: Services, tenant: Tenant, source_id: str) -> int:
    [row] = await rows(
        services,
        f'SELECT count(*) AS n FROM "{services.kb.table}" WHERE tenant_id = %s AND source_id = %s',
        tenant.id,
        source_id,
    )
    return int(row["n"])


async def articles(services: Services, tenant: Tenant) -> dict[str, str]:
    found = await rows(
        services,
        "SELECT source_id, content_hash FROM kb_articles WHERE tenant_id = %s",
        tenant.id,
    )
    return {r["source_id"]: r["content_hash"] for r in found}


class Recorder(JobProgress):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def started(self, files_total: int, skipped: Any) -> None:
        self.events.append(("started", files_total))

    def file_done(self, outcome: Any) -> None:
        self.events.append(("file", (outcome.file, outcome.ok)))


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    write(
        root / "boiler.md",
        "---\nid: boiler-service\ntags: [hvac]\n---\n# Annual boiler service\n\n"
        "We service boilers every autumn; the visit takes about ninety minutes.\n",
    )
    write(
        root / "faq.jsonl",
        "\n".join(
            [
                json.dumps(
                    {
                        "id": "faq-parking",
                        "title": "Where can technicians park?",
                        "text": "Our vans need a driveway or a street permit for parking.",
                    }
                ),
                "{not json",
                json.dumps(
                    {
                        "id": "faq-discount",
                        "title": "Internal: Discount authority",
                        "content": "Agents may grant a loyalty discount of ten percent.",
                    }
                ),
            ]
        ),
    )
    write(
        root / "warranty.pdf",
        make_pdf(
            [["Warranty", "Replacement thermostats carry a five year warranty."]],
            title="Thermostat warranty",
        ),
    )
    write(
        root / "pages" / "pets.html",
        "<html><body><nav>Home</nav><main><h1>Pets during visits</h1>"
        "<p>Please keep dogs and cats in another room while we work.</p></main></body></html>",
    )
    broken = make_pdf([["This text is never seen."]])
    write(root / "broken.pdf", broken[: len(broken) // 2])
    write(root / "legacy.txt", "Tarif été\n\nCafé offert.\n".encode("latin-1"))
    write(root / "empty.md", b"")
    write(root / "logo.png", b"\x89PNG\r\n\x1a\n")
    return root


async def test_mixed_files_index_the_good_ones_and_report_the_bad(
    services: Services, mixed_folder: Path
) -> None:
    tenant = await new_tenant(services)
    recorder = Recorder()
    job = await ingest_paths(
        services.kb, services.pool, tenant.id, [mixed_folder], progress=recorder
    )

    assert job["status"] == "done"
    assert (job["files_total"], job["files_done"], job["files_failed"]) == (7, 7, 4)
    assert job["skipped"] == ["logo.png"]
    errors = {(e["file"], e["code"]) for e in job["errors"]}
    assert errors == {
        ("broken.pdf", "corrupt_pdf"),
        ("empty.md", "empty_file"),
        ("faq.jsonl", "bad_record"),
        ("legacy.txt", "bad_encoding"),
    }
    assert next(e for e in job["errors"] if e["file"] == "faq.jsonl")["line"] == 2
    assert job["articles_written"] == 5 and job["articles_unchanged"] == 0
    assert job["chunks_written"] >= 5
    assert job["started_at"] <= job["finished_at"]
    assert recorder.events[0] == ("started", 7)
    assert ("file", ("broken.pdf", False)) in recorder.events
    assert ("file", ("warranty.pdf", True)) in recorder.events

    stored = await articles(services, tenant)
    assert set(stored) == {"boiler-service", "faq-parking", "faq-discount", "warranty", "pets"}

    # Indexed for real: each good format is found by a question about it.
    async def top(question: str, audience: Any = "customer") -> str:
        hits = await services.kb.search(tenant.id, question, k=1, audience=audience)
        return hits[0]["source_id"] if hits else ""

    assert await top("how long is the warranty on a thermostat") == "warranty"
    assert await top("should I lock my dog away during the visit") == "pets"
    assert await top("where do the vans park") == "faq-parking"
    assert await top("how long does the boiler service take") == "boiler-service"
    # "Internal:" titles are agent-only.
    assert await top("loyalty discount percent", "agent") == "faq-discount"
    assert await top("loyalty discount percent", "customer") != "faq-discount"

    # Same files again: nothing is written.
    again = await ingest_paths(services.kb, services.pool, tenant.id, [mixed_folder])
    assert (again["articles_written"], again["articles_unchanged"], again["chunks_written"]) == (
        0,
        5,
        0,
    )
    assert await articles(services, tenant) == stored


async def test_changed_article_replaces_its_chunks(services: Services, tmp_path: Path) -> None:
    tenant = await new_tenant(services)
    doc = write(tmp_path / "fees.md", "# Fees\n\nThe call-out fee is 89 dollars.\n")
    await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    write(doc, "# Fees\n\nThe call-out fee is 99 dollars from March.\n")
    job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    assert (job["articles_written"], job["articles_unchanged"]) == (1, 0)
    assert await chunk_count(services, tenant, "fees") == 1
    [hit] = await services.kb.search(tenant.id, "call-out fee", k=1)
    assert "99 dollars" in hit["text"]


async def test_a_fixed_link_is_written_without_rewriting_chunks(
    services: Services, tmp_path: Path
) -> None:
    tenant = await new_tenant(services)
    record = {"id": "fees", "title": "Fees", "text": "The call-out fee is 89 dollars."}
    faq = write(tmp_path / "faq.jsonl", json.dumps({**record, "url": "https://x.test/feez"}))
    await ingest_paths(services.kb, services.pool, tenant.id, [faq])
    unchanged = await ingest_paths(services.kb, services.pool, tenant.id, [faq])
    assert (unchanged["articles_written"], unchanged["articles_unchanged"]) == (0, 1)

    write(faq, json.dumps({**record, "url": "https://x.test/fees"}))
    relinked = await ingest_paths(services.kb, services.pool, tenant.id, [faq])
    assert relinked["status"] == "done" and relinked["errors"] == []
    assert (relinked["articles_written"], relinked["chunks_written"]) == (1, 0)
    [found] = await rows(services, "SELECT url FROM kb_articles WHERE tenant_id = %s", tenant.id)
    assert found["url"] == "https://x.test/fees"
    again = await ingest_paths(services.kb, services.pool, tenant.id, [faq])
    assert (again["articles_written"], again["articles_unchanged"]) == (0, 1)


async def test_jsonl_faq_becomes_one_article_per_record(services: Services, tmp_path: Path) -> None:
    tenant = await new_tenant(services)
    records = [
        {"id": f"q{i}", "title": f"Question {i}", "text": f"Answer number {i} about topic {i}."}
        for i in range(1, 8)
    ]
    faq = write(tmp_path / "faq.jsonl", "\n".join(json.dumps(r) for r in records))
    job = await ingest_paths(services.kb, services.pool, tenant.id, [faq], {"tags": ["faq"]})
    assert job["status"] == "done" and job["files_failed"] == 0
    assert job["articles_written"] == 7
    found = await rows(
        services,
        "SELECT source_id, title, tags FROM kb_articles WHERE tenant_id = %s ORDER BY source_id",
        tenant.id,
    )
    assert [(r["source_id"], r["title"], r["tags"]) for r in found] == [
        (f"q{i}", f"Question {i}", ["faq"]) for i in range(1, 8)
    ]


async def test_cleanup_removes_articles_no_longer_in_the_source(
    services: Services, tmp_path: Path
) -> None:
    tenant = await new_tenant(services)
    write(tmp_path / "keep.md", "# Keep\n\nThis article stays in the knowledge base.\n")
    gone = write(tmp_path / "gone.md", "# Gone\n\nThis article about zeppelins will be removed.\n")
    await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    assert await chunk_count(services, tenant, "gone") == 1
    gone.unlink()

    without_cleanup = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    assert without_cleanup["articles_deleted"] == 0
    assert set(await articles(services, tenant)) == {"keep", "gone"}

    job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path], {"cleanup": True})
    assert (job["articles_deleted"], job["articles_unchanged"], job["detail"]) == (1, 1, "")
    assert set(await articles(services, tenant)) == {"keep"}
    assert await chunk_count(services, tenant, "gone") == 0
    hits = await services.kb.search(tenant.id, "zeppelins", k=3, audience="agent")
    assert all(h["source_id"] != "gone" for h in hits)


async def test_cleanup_is_skipped_when_a_file_fails(services: Services, tmp_path: Path) -> None:
    tenant = await new_tenant(services)
    write(tmp_path / "a.md", "# A\n\nFirst article.\n")
    write(tmp_path / "b.pdf", make_pdf([["Second article, from a PDF."]]))
    await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    # The PDF gets corrupted: its article must not be "cleaned up" as if it were deleted.
    write(tmp_path / "b.pdf", b"%PDF-1.4\ntruncated")
    job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path], {"cleanup": True})
    assert job["files_failed"] == 1 and job["articles_deleted"] == 0
    assert "cleanup skipped" in job["detail"]
    assert set(await articles(services, tenant)) == {"a", "b"}
    assert await chunk_count(services, tenant, "b") == 1


@pytest.fixture
async def failing_chunk_insert(services: Services) -> AsyncIterator[str]:
    """Chunk inserts whose text holds the marker fail inside Postgres."""
    marker = f"EXPLODE{uuid.uuid4().hex[:8]}"
    name = f"test_fail_{marker.lower()}"
    async with services.pool.connection() as conn:
        await conn.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.content LIKE '%{marker}%' THEN
                    RAISE EXCEPTION 'simulated storage failure';
                END IF;
                RETURN NEW;
            END $$
            """
        )
        await conn.execute(
            f'CREATE TRIGGER {name} BEFORE INSERT ON "{services.kb.table}"'
            f" FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
    try:
        yield marker
    finally:
        async with services.pool.connection() as conn:
            await conn.execute(f'DROP TRIGGER IF EXISTS {name} ON "{services.kb.table}"')
            await conn.execute(f"DROP FUNCTION IF EXISTS {name}()")


async def _drop_chunk_trigger(services: Services, marker: str) -> None:
    name = f"test_fail_{marker.lower()}"
    async with services.pool.connection() as conn:
        await conn.execute(f'DROP TRIGGER IF EXISTS {name} ON "{services.kb.table}"')


async def test_article_failing_mid_way_leaves_nothing_half_indexed(
    services: Services, tmp_path: Path, failing_chunk_insert: str
) -> None:
    marker = failing_chunk_insert
    tenant = await new_tenant(services)
    # Chunk 0 of "policy" is stored before chunk 1 (with the marker) fails: a partial write.
    policy_v1 = "# Policy\n\n## Alpha\n\nAlpha rules apply.\n\n## Beta\n\nBeta rules apply.\n"
    policy_v2 = policy_v1.replace("Beta rules apply.", f"Beta rules changed {marker}.")
    records = [
        {"id": "r1", "title": "Record one", "text": "A healthy record about ladders."},
        {"id": "r2", "title": "Record two", "text": f"## Part\n\nFine.\n\n## Bad\n\n{marker}"},
        {"id": "r3", "title": "Record three", "text": "Another healthy record about ropes."},
    ]
    write(tmp_path / "policy.md", policy_v1)
    write(tmp_path / "records.jsonl", "\n".join(json.dumps(r) for r in records))
    write(tmp_path / "z-after.md", "# After\n\nFiles after the failure are still ingested.\n")
    job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])

    # A new article that failed: no row and not one chunk left behind; the rest of its file
    # and the files after it are indexed.
    assert job["status"] == "done" and job["files_failed"] == 1
    [error] = job["errors"]
    assert (error["file"], error["code"]) == ("records.jsonl", "index_failed")
    assert "'r2'" in error["message"] and "simulated storage failure" in error["message"]
    stored = await articles(services, tenant)
    assert set(stored) == {"policy", "r1", "r3", "z-after"}
    assert await chunk_count(services, tenant, "r2") == 0
    assert await chunk_count(services, tenant, "r1") == 1
    assert job["articles_written"] == 4

    # A changed article that failed: the version indexed before stays whole and searchable
    # (its chunks and its row change in one transaction), and the error says so.
    before = (await articles(services, tenant))["policy"]
    write(tmp_path / "policy.md", policy_v2)
    job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path / "policy.md"])
    [error] = job["errors"]
    assert error["code"] == "index_failed" and "stays as it was" in error["message"]
    assert (await articles(services, tenant))["policy"] == before
    assert await chunk_count(services, tenant, "policy") == 2
    hits = await services.kb.search(tenant.id, "beta rules", k=1, audience="agent")
    assert hits[0]["source_id"] == "policy" and "Beta rules apply." in hits[0]["text"]

    # Once storage works again the next run redoes exactly the failed articles.
    await _drop_chunk_trigger(services, marker)
    job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    assert job["errors"] == []
    assert (job["articles_written"], job["articles_unchanged"]) == (2, 3)
    assert await chunk_count(services, tenant, "r2") == 2
    assert await chunk_count(services, tenant, "policy") == 2
    hits = await services.kb.search(tenant.id, "beta rules", k=1, audience="agent")
    assert marker in hits[0]["text"]


async def test_article_row_failing_after_its_chunks_is_rolled_back(
    services: Services, tmp_path: Path
) -> None:
    """The kb_articles row is written last; when that write fails the chunks must go too."""
    tenant = await new_tenant(services)
    marker = f"ROWFAIL{uuid.uuid4().hex[:8]}"
    name = f"test_fail_{marker.lower()}"
    async with services.pool.connection() as conn:
        await conn.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.title LIKE '%{marker}%' THEN RAISE EXCEPTION 'row write failed'; END IF;
                RETURN NEW;
            END $$
            """
        )
        await conn.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON kb_articles"
            f" FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
    try:
        write(tmp_path / "x.md", f"# Title {marker}\n\nBody text that gets chunked.\n")
        write(tmp_path / "y.md", "# Fine\n\nThis one is fine.\n")
        job = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    finally:
        async with services.pool.connection() as conn:
            await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON kb_articles")
            await conn.execute(f"DROP FUNCTION IF EXISTS {name}()")
    assert [(e["file"], e["code"]) for e in job["errors"]] == [("x.md", "index_failed")]
    assert set(await articles(services, tenant)) == {"y"}
    assert await chunk_count(services, tenant, "x") == 0


async def test_chunking_comes_from_job_then_tenant_policy(
    services: Services, tmp_path: Path
) -> None:
    long_text = " ".join(f"Sentence number {i} explains one more detail." for i in range(60))
    write(tmp_path / "long.md", f"# Long\n\n{long_text}\n")
    tenant = await new_tenant(services, TenantPolicy(chunk_max_tokens=64))
    by_policy = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path])
    opts = by_policy["options"]
    assert (opts["effective_max_tokens"], opts["effective_overlap"]) == (64, 8)
    small_chunks = by_policy["chunks_written"]

    # Options of the job win; unchanged content is re-chunked only with force.
    unforced = await ingest_paths(
        services.kb, services.pool, tenant.id, [tmp_path], {"max_tokens": 400, "overlap": 20}
    )
    assert unforced["articles_written"] == 0
    forced = await ingest_paths(
        services.kb,
        services.pool,
        tenant.id,
        [tmp_path],
        {"max_tokens": 400, "overlap": 20, "force": True},
    )
    assert (forced["options"]["effective_max_tokens"], forced["articles_written"]) == (400, 1)
    assert 1 <= forced["chunks_written"] < small_chunks
    assert await chunk_count(services, tenant, "long") == forced["chunks_written"]


async def test_job_rows_are_per_tenant_and_run_once(services: Services, tmp_path: Path) -> None:
    write(tmp_path / "a.md", "# A\n\ntext\n")
    tenant, other = await new_tenant(services), await new_tenant(services)
    job_id = await create_job(services.pool, tenant.id, JobOptions(tags=["x"]))
    queued = await get_job(services.pool, tenant.id, job_id)
    assert (queued["status"], queued["options"]["tags"]) == ("queued", ["x"])
    with pytest.raises(NotFound):
        await get_job(services.pool, other.id, job_id)
    with pytest.raises(NotFound):
        await run_job(services.kb, services.pool, other.id, job_id, [tmp_path])

    done = await run_job(services.kb, services.pool, tenant.id, job_id, [tmp_path])
    assert done["status"] == "done" and done["articles_written"] == 1
    with pytest.raises(Conflict):
        await run_job(services.kb, services.pool, tenant.id, job_id, [tmp_path])
    assert [j["id"] for j in await list_jobs(services.pool, tenant.id)] == [job_id]
    assert await list_jobs(services.pool, other.id) == []


async def test_job_that_cannot_run_is_failed_with_a_reason(
    services: Services, tmp_path: Path
) -> None:
    tenant = await new_tenant(services)
    missing = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path / "nope"])
    assert missing["status"] == "failed" and "does not exist" in missing["detail"]
    assert missing["error_code"] == "path_not_found"
    assert missing["finished_at"] is not None

    write(tmp_path / "pics" / "a.png", b"\x89PNG")
    nothing = await ingest_paths(services.kb, services.pool, tenant.id, [tmp_path / "pics"])
    assert (nothing["status"], nothing["error_code"]) == ("failed", "no_files")
    assert "no supported file" in nothing["detail"] and "1 file(s)" in nothing["detail"]

    bad_chunking = TenantPolicy(chunk_max_tokens=64)
    tight = await new_tenant(services, bad_chunking)
    write(tmp_path / "a.md", "# A\n\ntext\n")
    overlap = await ingest_paths(
        services.kb, services.pool, tight.id, [tmp_path / "a.md"], {"overlap": 64}
    )
    assert (overlap["status"], overlap["error_code"]) == ("failed", "invalid_chunking")


def test_cli_ingest_exit_codes(cli_database: str, tmp_path: Path) -> None:
    """0 when every file went in, 1 when some failed, 2 for bad usage."""
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(app, ["tenant", "create", slug, "--name", "CLI Co"]).exit_code == 0
    for refused, why in ((slug, "already exists"), ("Not A Slug", "tenant slug must be")):
        again = runner.invoke(app, ["tenant", "create", refused, "--name", "CLI Co"])
        assert again.exit_code == 2 and why in again.output, again.output
    folder = tmp_path / "kb"
    write(folder / "alpha.md", "# Alpha\n\nAlpha is the first letter.\n")

    ok = runner.invoke(app, ["ingest", str(folder), "--tenant", slug, "--tags", "a, b"])
    assert ok.exit_code == 0, ok.output
    assert "articles written" in ok.output and "1 of 1" in ok.output

    write(folder / "legacy.txt", "Tarif été\n".encode("latin-1"))
    some_failed = runner.invoke(app, ["ingest", str(folder), "--tenant", slug])
    assert some_failed.exit_code == 1, some_failed.output
    assert "legacy.txt" in some_failed.output and "bad_encoding" in some_failed.output

    for bad_usage in (
        ["--tenant", "no-such-tenant"],
        ["--tenant", slug, "--max-tokens", "32", "--overlap", "40"],
        ["--tenant", slug, "--visibility", "public"],
    ):
        result = runner.invoke(app, ["ingest", str(folder), *bad_usage])
        assert result.exit_code == 2, (bad_usage, result.output)


# ------------------------------------------------------------------------------ dead workers


async def job_row(services: Services, job_id: uuid.UUID) -> dict[str, Any]:
    """The row as stored, read without anything that could reap it."""
    [row] = await rows(services, "SELECT * FROM ingestion_jobs WHERE id = %s", job_id)
    return row


async def killed_mid_job(
    services: Services, database_url: str, tmp_path: Path
) -> tuple[Tenant, uuid.UUID, Path]:
    """A tenant whose job was running in another process when that process was killed.

    While that process lives, its job must not be taken for dead by anyone.
    """
    tenant = await new_tenant(services)
    folder = tmp_path / "kb"
    write(folder / "alpha.md", "# Alpha\n\nAlpha is the first letter.\n")
    job_id = await create_job(services.pool, tenant.id, JobOptions())
    proc = await asyncio.to_thread(start_dead_worker, database_url, tenant.id, job_id, folder)
    try:
        assert (await get_job(services.pool, tenant.id, job_id))["status"] == "running"
        assert await reap_dead_jobs(services.pool, tenant.id) == 0
        await reap_dead_jobs(services.pool)  # the start-up sweep leaves a live job alone too
        assert (await job_row(services, job_id))["status"] == "running"
    finally:
        await asyncio.to_thread(kill, proc, database_url, tenant.id)
    assert (await job_row(services, job_id))["status"] == "running"  # nobody has looked yet
    return tenant, job_id, folder


def assert_worker_lost(job: dict[str, Any]) -> None:
    assert (job["status"], job["error_code"]) == ("failed", "worker_lost"), job
    assert job["finished_at"] is not None and job["current_file"] is None
    assert "run the ingestion again" in job["detail"]


async def test_a_dead_workers_job_is_failed_when_read_and_the_tenant_can_ingest_again(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    tenant, job_id, folder = await killed_mid_job(services, database_url, tmp_path)
    assert_worker_lost(await get_job(services.pool, tenant.id, job_id))
    assert_worker_lost((await list_jobs(services.pool, tenant.id))[0])
    again = await ingest_paths(services.kb, services.pool, tenant.id, [folder])
    assert (again["status"], again["error_code"], again["articles_written"]) == ("done", None, 1)


async def test_the_next_job_of_the_tenant_reaps_a_dead_one_nobody_read(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    tenant, job_id, folder = await killed_mid_job(services, database_url, tmp_path)
    again = await ingest_paths(services.kb, services.pool, tenant.id, [folder])
    assert again["status"] == "done" and again["articles_written"] == 1
    assert_worker_lost(await job_row(services, job_id))


async def test_the_start_up_sweep_reaps_dead_jobs_of_every_tenant(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    _, job_id, _ = await killed_mid_job(services, database_url, tmp_path)
    assert await reap_dead_jobs(services.pool) >= 1
    assert_worker_lost(await job_row(services, job_id))


async def test_a_reaped_worker_that_lives_on_stops_without_undoing_the_failure(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    """The lock's session ends (a server restart, a cut connection) but the worker process
    lives on: once its job is reaped, it must neither finish it nor race the next job."""
    tenant = await new_tenant(services)
    write(tmp_path / "alpha.md", "# Alpha\n\nAlpha is the first letter.\n")
    job_id = await create_job(services.pool, tenant.id, JobOptions())
    async with services.pool.connection() as blocker, blocker.transaction():
        # The job's first read after its claim (the tenant's policy) waits behind this lock,
        # which holds the worker between its claim and its first progress write.
        await blocker.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
        task = asyncio.create_task(
            run_job(services.kb, services.pool, tenant.id, job_id, [tmp_path])
        )
        deadline = time.monotonic() + 60
        while (await job_row(services, job_id))["status"] != "running":
            assert time.monotonic() < deadline, "the job was never claimed"
            await asyncio.sleep(0.02)
        with psycopg.connect(database_url, autocommit=True) as admin:
            [holder] = lock_holders(admin, tenant.id)
            admin.execute("SELECT pg_terminate_backend(%s)", (holder,))
        await asyncio.to_thread(wait_lock_released, database_url, tenant.id)
        assert await reap_dead_jobs(services.pool, tenant.id) == 1
    finished = await task
    assert_worker_lost(finished)
    assert finished["files_total"] == 0  # no progress written after it was reaped
    assert await articles(services, tenant) == {}


async def test_a_queued_job_whose_process_died_is_failed_not_left_queued(
    services: Services, database_url: str
) -> None:
    tenant = await new_tenant(services)
    proc, job_id = await asyncio.to_thread(start_queueing_process, database_url, tenant.id)
    try:
        # its process lives (waiting for the tenant's turn, say): the job is left alone
        assert (await get_job(services.pool, tenant.id, job_id))["status"] == "queued"
        await reap_dead_jobs(services.pool)  # the start-up sweep
        assert (await job_row(services, job_id))["status"] == "queued"
        # a job queued by a live owner in this process is left alone too
        owner = JobOwner(database_url)
        mine = await create_job(services.pool, tenant.id, JobOptions(), owner=owner)
    finally:
        proc.kill()
        await asyncio.to_thread(proc.communicate, timeout=30)
    deadline = time.monotonic() + 30  # until its session ends, the lock is still held
    while (job := await get_job(services.pool, tenant.id, job_id))["status"] == "queued":
        assert time.monotonic() < deadline, "the orphaned job stayed queued"
        await asyncio.sleep(0.05)
    assert (job["status"], job["error_code"], job["started_at"]) == ("failed", "worker_lost", None)
    assert "send the files again" in job["detail"] and job["finished_at"] is not None
    assert (await job_row(services, mine))["status"] == "queued"
    await owner.close()  # this owner's process "dies" too
    assert (await get_job(services.pool, tenant.id, mine))["error_code"] == "worker_lost"


async def test_a_job_cancelled_while_it_waits_its_turn_is_failed_not_left_queued(
    services: Services, tmp_path: Path
) -> None:
    tenant = await new_tenant(services)
    write(tmp_path / "alpha.md", "# Alpha\n\nAlpha is the first letter.\n")
    job_id = await create_job(services.pool, tenant.id, JobOptions())
    async with services.pool.connection() as other_job:  # another job holds the tenant's turn
        await other_job.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))", (jobs_lock(), str(tenant.id))
        )
        try:
            task = asyncio.create_task(
                run_job(services.kb, services.pool, tenant.id, job_id, [tmp_path])
            )
            await asyncio.sleep(0)  # let it start and wait for the lock
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await other_job.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(%s))", (jobs_lock(), str(tenant.id))
            )
    job = await job_row(services, job_id)
    assert (job["status"], job["error_code"], job["started_at"]) == ("failed", "cancelled", None)


def jobs_lock() -> int:
    from kb_pipeline.jobs.locks import _JOB_LOCK

    return _JOB_LOCK
