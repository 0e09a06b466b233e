"""Knowledge-base routes over HTTP: ingestion as a job with per-file errors, portal search."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from kb_pipeline import jobs
from tests.support.dead_worker import kill, start_dead_worker
from tests.support.live_api import bearer

pytestmark = pytest.mark.integration

BOILER = """---
id: boiler-service
title: Annual boiler service
tags: [heating, maintenance]
updated_at: 2024-03-01
url: https://brightwater.example/help/boiler-service
---
# Annual boiler service

A yearly boiler service costs $119 and includes a carbon monoxide check, a flue inspection
and cleaning of the burner. Book it in early autumn, before the heating season starts.
"""

GUTTERS = """---
id: gutter-cleaning
title: Gutter cleaning
tags: [outdoor]
updated_at: 2025-02-10
---
# Gutter cleaning

We clear gutters and downpipes of leaves and moss from March to November; a two-storey house
takes about ninety minutes and costs $95.
"""

ESCALATION = """---
id: ladder-safety-policy
title: Internal: ladder safety policy
visibility: internal
tags: [outdoor]
---
# Ladder safety policy

Technicians never climb above the second storey without a second person footing the ladder.
"""


# A link that would run script in the widget: refused at load time, with the file named.
SNEAKY = """---
id: sneaky
url: javascript:alert(document.cookie)
---
# Sneaky

Click the source link.
"""


def _ingest(client, live_api, files, **form):
    return client.post(
        "/v1/kb/ingest",
        files=[("files", f) for f in files],
        data=form,
        headers=bearer(live_api.other.admin_key),
    )


def _wait_job(client, live_api, job_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/kb/jobs/{job_id}", headers=bearer(live_api.other.admin_key))
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def ingested(live_api):
    """The other tenant's KB: three good articles and two bad files, ingested over HTTP."""
    with live_api.client() as client:
        r = _ingest(
            client,
            live_api,
            [
                ("boiler.md", BOILER.encode(), "text/markdown"),
                ("gutters.md", GUTTERS.encode(), "text/markdown"),
                ("ladders.md", ESCALATION.encode(), "text/markdown"),
                ("broken.md", b"\xff\xfe\x00bad\x80", "text/markdown"),
                ("sneaky.md", SNEAKY.encode(), "text/markdown"),
            ],
            tags="seasonal",
        )
        assert r.status_code == 202, r.text
        return _wait_job(client, live_api, r.json()["job_id"])


def test_ingest_job_reports_progress_and_per_file_errors(ingested):
    job = ingested
    assert job["status"] == "done"
    assert (job["files_total"], job["files_done"], job["files_failed"]) == (5, 5, 2)
    assert job["articles_written"] == 3 and job["chunks_written"] >= 3
    assert [e["file"] for e in job["errors"]] == ["broken.md", "sneaky.md"]
    assert job["errors"][0]["code"] and job["errors"][0]["message"]
    assert job["errors"][1]["code"] == "bad_metadata" and "http" in job["errors"][1]["message"]
    assert job["options"]["tags"] == ["seasonal"]


def test_portal_search_sees_external_articles_with_filters(live_api, ingested):
    with live_api.client() as client:
        widget = {"X-Widget-Key": live_api.other.widget_key}
        r = client.get("/v1/kb/search", params={"q": "boiler service cost"}, headers=widget)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert results[0]["source_id"] == "boiler-service"
        assert set(results[0]["tags"]) == {"heating", "maintenance", "seasonal"}
        assert results[0]["updated_at"].startswith("2024-03-01")
        assert results[0]["snippet"] and results[0]["visibility"] == "external"
        assert results[0]["url"] == "https://brightwater.example/help/boiler-service"

        r = client.get("/v1/kb/search", params={"q": "ladder second storey"}, headers=widget)
        assert "ladder-safety-policy" not in [x["source_id"] for x in r.json()["results"]]
        r = client.get(
            "/v1/kb/search", params={"q": "ladder", "visibility": "internal"}, headers=widget
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"

        r = client.get(
            "/v1/kb/search",
            params={"q": "gutters boiler", "tag": "outdoor", "mode": "fulltext"},
            headers=widget,
        )
        assert [x["source_id"] for x in r.json()["results"]] == ["gutter-cleaning"]
        assert r.json()["results"][0]["url"] is None  # no web page: null, not a made-up link
        r = client.get(
            "/v1/kb/search",
            params={"q": "gutters boiler", "updated_after": "2025-01-01T00:00:00Z"},
            headers=widget,
        )
        assert [x["source_id"] for x in r.json()["results"]] == ["gutter-cleaning"]
        # The key works as a query parameter too (a portal page can link to results).
        r = client.get("/v1/kb/search", params={"q": "gutter", "key": live_api.other.widget_key})
        assert r.status_code == 200 and r.json()["results"]


def test_agents_search_internal_articles_too(live_api, ingested):
    with live_api.client() as client:
        r = client.get(
            "/v1/kb/search",
            params={"q": "ladder second storey", "visibility": "internal"},
            headers=bearer(live_api.other.agent_key),
        )
        assert r.status_code == 200
        assert [x["source_id"] for x in r.json()["results"]] == ["ladder-safety-policy"]


def test_ingest_needs_an_admin_key_and_valid_input(live_api):
    with live_api.client() as client:
        files = [("files", ("a.md", b"# A\n\nText.", "text/markdown"))]
        r = client.post("/v1/kb/ingest", files=files, headers=bearer(live_api.other.agent_key))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = client.post("/v1/kb/ingest", files=files)
        assert r.status_code == 401
        r = client.post(
            "/v1/kb/ingest",
            files=files,
            data={"visibility": "secret"},
            headers=bearer(live_api.other.admin_key),
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = client.post(
            "/v1/kb/ingest", data={"tags": "x"}, headers=bearer(live_api.other.admin_key)
        )
        assert r.status_code == 422
        r = client.get(
            "/v1/kb/jobs/00000000-0000-0000-0000-000000000000",
            headers=bearer(live_api.other.admin_key),
        )
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_search_rejects_bad_parameters(live_api):
    with live_api.client() as client:
        widget = {"X-Widget-Key": live_api.other.widget_key}
        for params in (
            {},
            {"q": ""},
            {"q": "x" * 501},
            {"q": "boiler", "k": 0},
            {"q": "boiler", "k": "many"},
            {"q": "boiler", "updated_after": "yesterday"},
            {"q": "boiler", "mode": "magic"},
        ):
            r = client.get("/v1/kb/search", params=params, headers=widget)
            assert r.status_code == 422 and r.json()["code"] == "invalid_request", params
        r = client.get("/v1/kb/search", params={"q": "boiler"})
        assert r.status_code == 401


def test_a_job_whose_worker_died_reads_as_failed_worker_lost(live_api, database_url, tmp_path):
    """The worker is another process; the API that answers has never heard of the job."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        job_id, tenant_id = conn.execute(
            "INSERT INTO ingestion_jobs (tenant_id) SELECT id FROM tenants WHERE slug = %s"
            " RETURNING id, tenant_id",
            (live_api.other.slug,),
        ).fetchone()
    (tmp_path / "boiler.md").write_text(BOILER, encoding="utf-8")
    admin = bearer(live_api.other.admin_key)
    worker = start_dead_worker(database_url, tenant_id, job_id, tmp_path)
    with live_api.client() as client:
        try:
            live = client.get(f"/v1/kb/jobs/{job_id}", headers=admin).json()
            assert (live["status"], live["error_code"]) == ("running", None)
        finally:
            kill(worker, database_url, tenant_id)
        r = client.get(f"/v1/kb/jobs/{job_id}", headers=admin)
        assert r.status_code == 200, r.text
        dead = r.json()
        assert (dead["status"], dead["error_code"]) == ("failed", "worker_lost")
        assert dead["finished_at"] and "run the ingestion again" in dead["detail"]
        # ... and the tenant can ingest again (the same article: nothing new for other tests)
        r = _ingest(client, live_api, [("boiler.md", BOILER.encode(), "text/markdown")])
        assert r.status_code == 202, r.text
        again = _wait_job(client, live_api, r.json()["job_id"])
        assert (again["status"], again["error_code"]) == ("done", None)


async def test_an_api_process_starting_up_reaps_jobs_left_running(
    settings, offline_models, database_url, services, tmp_path
):
    from api.app import create_app
    from helpdesk.tenants import create_tenant

    tenant = await create_tenant(services.pool, f"boot-{uuid.uuid4().hex[:8]}", "Boot Co")
    job_id = await jobs.create_job(services.pool, tenant.id, jobs.JobOptions())
    (tmp_path / "boiler.md").write_text(BOILER, encoding="utf-8")
    worker = await asyncio.to_thread(start_dead_worker, database_url, tenant.id, job_id, tmp_path)
    await asyncio.to_thread(kill, worker, database_url, tenant.id)
    app = create_app(settings, models=offline_models, database_url=database_url)
    async with app.router.lifespan_context(app), services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status, error_code FROM ingestion_jobs WHERE id = %s", (job_id,)
        )
        assert await cur.fetchone() == {"status": "failed", "error_code": "worker_lost"}
