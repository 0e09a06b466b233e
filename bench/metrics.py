"""Metrics benchmark: the summary of a 30-day period for a busy tenant among others.

Prints one JSON document. On a database of its own (``deskgraph_bench_metrics`` on the
embedded Postgres, or the server of ``DATABASE_URL``; ``--keep`` keeps it and reuses it next
time), it writes ``--tenants`` tenants of ``--conversations`` conversations each, spread over
a year, with about ``--messages`` messages per conversation, their events (answers, declines,
hand-offs, held drafts and reviews) and feedback, generated in SQL with a fixed seed. Then it
asks for one tenant's summary of the last 30 days ``--runs`` times, through
``helpdesk.metrics.summary`` inside the tenant scope as the API does, and reports the p50 / p95
and the rows the period holds. ``timeseries`` (day buckets) and ``breakdown`` (by intent) are
timed the same way.

The target (issue 17): ``summary_p95_ms`` <= 200 for a tenant with 100,000 conversations
(about 1,000,000 messages) among 300,000 conversations: the defaults.
``top_questions`` embeds and clusters ``--questions`` real customer questions (BANKING77 and
CLINC150 train, read from ``--datasets``): ``cluster_20k_s`` (target <= 60) is the clustering
of stored vectors (``embed_s``, embedding them, is paid once per question, as it arrives),
and homogeneity / completeness say how well clusters follow the intent labels.

Usage: ``python bench/metrics.py [--tenants 3] [--conversations 100000] [--messages 10]
[--runs 30] [--keep]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpdesk import db, metrics  # noqa: E402
from helpdesk.config import Settings  # noqa: E402
from helpdesk.tenancy import tenant_scope  # noqa: E402
from helpdesk.tenants import create_tenant  # noqa: E402

NOW = datetime(2026, 12, 1, tzinfo=UTC)
"""The bench's 'now': the history ends here, and the period is the 30 days before it."""

# One tenant's history in four statements. Per conversation (c, of n): started within the year
# before NOW; k = 2..2*avg-2 messages alternating customer / ai (agent for hand-offs); the
# events the graph writes for them; feedback on a tenth. setseed makes every run the same data.
HISTORY = """
SELECT setseed(%(seed)s);
CREATE TEMP TABLE bench_conv ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, %(tenant)s::uuid AS tenant_id,
       %(now)s::timestamptz - random() * interval '365 days' AS started,
       (CASE WHEN random() < 0.1 THEN 'email' ELSE 'web' END) AS channel,
       2 + floor(random() * (2 * %(messages)s - 3))::int AS k,
       random() < 0.2 AS handed, random() < 0.1 AS held,
       (ARRAY['billing','hours','pricing','booking','leak'])[1 + floor(random() * 5)::int] AS intent
FROM generate_series(1, %(n)s);
INSERT INTO conversations (id, tenant_id, channel, status, created_at)
SELECT id, tenant_id, channel, 'active', started FROM bench_conv;
INSERT INTO messages (id, tenant_id, conversation_id, sender, text, intent, created_at)
SELECT gen_random_uuid(), c.tenant_id, c.id,
       CASE WHEN i %% 2 = 0 THEN 'customer' WHEN c.handed AND i > 2 THEN 'agent' ELSE 'ai' END,
       'message ' || i, CASE WHEN i = 0 THEN c.intent END,
       c.started + i * interval '40 seconds'
FROM bench_conv c, generate_series(0, c.k - 1) AS i;
INSERT INTO conversation_events (conversation_id, seq, tenant_id, type, data, created_at)
SELECT c.id, i + 1, c.tenant_id,
       CASE WHEN c.handed AND i = 2 THEN 'handoff'
            WHEN c.held AND i = 0 THEN 'approval.pending'
            WHEN c.held AND i = 1 THEN 'approval.approved'
            ELSE 'message.completed' END,
       CASE WHEN c.handed AND i = 2 THEN '{"reason": "customer_request"}'::jsonb
            ELSE jsonb_build_object('sender', 'ai', 'declined', random() < 0.1) END,
       c.started + (i * 2 + 1) * interval '40 seconds'
FROM bench_conv c, generate_series(0, c.k / 2) AS i;
INSERT INTO feedback (tenant_id, conversation_id, kind, csat, created_at)
SELECT tenant_id, id, 'csat', 1 + floor(random() * 5)::int, started + interval '1 hour'
FROM bench_conv WHERE random() < 0.1;
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def fill(pool: db.DictPool, args: argparse.Namespace) -> list[uuid.UUID]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM tenants WHERE slug LIKE 'bench-metrics-%%' ORDER BY slug"
        )
        existing = [r["id"] for r in await cur.fetchall()]
    if len(existing) == args.tenants:
        return existing
    ids = []
    for t in range(args.tenants):
        tenant = await create_tenant(pool, f"bench-metrics-{t}", f"Bench metrics {t}")
        started = time.perf_counter()
        async with pool.connection() as conn, conn.transaction():
            # A bulk load: the rollup's row triggers off, its rows computed once afterwards
            # from the source (as the migration backfills); their write cost is timed apart.
            await conn.execute("SET LOCAL session_replication_role = replica")
            params = {
                "seed": 0.1 + t / 100,
                "tenant": tenant.id,
                "now": NOW,
                "n": args.conversations,
                "messages": args.messages,
            }
            for statement in [s for s in HISTORY.split(";\n") if s.strip()]:
                await conn.execute(statement, params)  # type: ignore[arg-type]
            columns = ", ".join(metrics.FACT_COLUMNS)
            await conn.execute(
                f"INSERT INTO conversation_facts (conversation_id, channel, started_at, {columns},"
                f" tenant_id) SELECT id, channel, started_at, {columns}, %(tenant)s"
                f" FROM ({metrics.SOURCE_FACTS_SQL}) s",
                params,  # type: ignore[arg-type]
            )
        print(f"tenant {t}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        ids.append(tenant.id)
    async with pool.connection() as conn:
        await conn.execute("VACUUM ANALYZE")
    return ids


async def trigger_cost(pool: db.DictPool, tenant: uuid.UUID, n: int = 5000) -> dict[str, float]:
    """Microseconds per message insert with the rollup's trigger and without (rolled back)."""
    out = {}
    for label, role in (("with_trigger", "origin"), ("without", "replica")):
        async with pool.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute(f"SET LOCAL session_replication_role = {role}")
            cur = await conn.execute(
                "SELECT id FROM conversations WHERE tenant_id = %s LIMIT %s", (tenant, n)
            )
            ids = [r["id"] for r in await cur.fetchall()]
            started = time.perf_counter()
            await conn.execute(
                "INSERT INTO messages (id, tenant_id, conversation_id, sender, text)"
                " SELECT gen_random_uuid(), %s, c, 'customer', 'more' FROM unnest(%s::uuid[]) c",
                (tenant, ids),
            )
            out[label] = (time.perf_counter() - started) * 1e6 / len(ids)
            await conn.execute("ROLLBACK")
    return {"message_insert_us_" + k: round(v, 1) for k, v in out.items()}


def clustering(datasets: Path, n: int) -> dict[str, Any]:
    """Embed and cluster ``n`` real customer questions (BANKING77 train, then CLINC150 train),
    timed apart; purity against their intent labels (nothing was chosen on these rows)."""
    import csv

    from sklearn.metrics import completeness_score, homogeneity_score

    from nlp.clustering import cluster_questions
    from nlp.models import local_embeddings

    rows: list[tuple[str, str]] = []
    with (datasets / "intents" / "banking77" / "train.csv").open(encoding="utf-8") as f:
        rows += [(r["text"], "b:" + r["intent"]) for r in csv.DictReader(f)]
    with (datasets / "intents" / "clinc150" / "train.jsonl").open(encoding="utf-8") as f:
        rows += [(d["text"], "c:" + d["intent"]) for d in map(json.loads, f)]
    rows = rows[:n]
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    started = time.perf_counter()
    vectors = local_embeddings().embed_documents(texts)
    embed_s = time.perf_counter() - started
    out: dict[str, Any] = {"questions": len(texts), "embed_s": round(embed_s, 1)}
    for name, floor in (("shipped", None), ("no_floor", 0.0)):
        started = time.perf_counter()
        clusters = (
            cluster_questions(vectors) if floor is None else cluster_questions(vectors, floor=floor)
        )
        took = time.perf_counter() - started
        member = {i: k for k, c in enumerate(clusters) for i in c.members}
        idx = sorted(member)
        truth, got = [labels[i] for i in idx], [member[i] for i in idx]
        out[name] = {
            "cluster_s": round(took, 1),
            "clusters": len(clusters),
            "clustered_share": round(len(idx) / len(texts), 3),
            "homogeneity": round(homogeneity_score(truth, got), 3),
            "completeness": round(completeness_score(truth, got), 3),
        }
    # The refresh keeps each question's vector (question_vectors): a nightly run of the last 30
    # days embeds only the day's new questions, then clusters what is stored.
    out["cluster_20k_s"] = out["shipped"]["cluster_s"]
    return out


async def timed(runs: int, work: Any) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database for the next run")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--questions", type=int, default=20_000, help="0: skip the clustering")
    args = parser.parse_args()

    server = db.server_url(Settings())
    name = (
        "deskgraph_bench_metrics"
        if args.keep
        else f"deskgraph_bench_metrics_{uuid.uuid4().hex[:8]}"
    )
    url = db.with_database(server, name)
    db.ensure_database(url)
    db.upgrade(url)
    pool = db.make_pool(url, 2)
    await pool.open()
    try:
        tenants = await fill(pool, args)
        tenant = tenants[0]
        period = metrics.period(
            None, (NOW - timedelta(days=1)).date().isoformat(), "UTC", today=NOW.date()
        )

        async def summary() -> dict[str, Any]:
            async with tenant_scope(pool, tenant) as conn:
                return await metrics.summary(conn, tenant, period, as_of=NOW)

        async def series() -> None:
            async with tenant_scope(pool, tenant) as conn:
                await metrics.timeseries(
                    conn,
                    tenant,
                    period,
                    ["conversations", "ai_resolution_rate", "first_response_p50_s"],
                    "day",
                    as_of=NOW,
                )

        async def by_intent() -> None:
            async with tenant_scope(pool, tenant) as conn:
                await metrics.breakdown(
                    conn,
                    tenant,
                    period,
                    "intent",
                    ["ai_resolution_rate", "csat_average"],
                    as_of=NOW,
                )

        first = await summary()
        summary_ms = await timed(args.runs, summary)
        series_ms = await timed(args.runs, series)
        intent_ms = await timed(args.runs, by_intent)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM conversations) AS conversations,"
                " (SELECT count(*) FROM messages) AS messages,"
                " (SELECT count(*) FROM messages WHERE tenant_id = %s) AS tenant_messages",
                (tenant,),
            )
            sizes = await cur.fetchone() or {}
        out = {
            **await trigger_cost(pool, tenant),
            "tenants": args.tenants,
            "conversations_in_all": sizes.get("conversations"),
            "messages_in_all": sizes.get("messages"),
            "tenant_conversations": args.conversations,
            "tenant_messages": sizes.get("tenant_messages"),
            "period_conversations": first["metrics"]["conversations"],
            "runs": args.runs,
            "summary_p50_ms": round(statistics.median(summary_ms), 1),
            "summary_p95_ms": round(pct(summary_ms, 0.95), 1),
            "timeseries_day_p95_ms": round(pct(series_ms, 0.95), 1),
            "breakdown_intent_p95_ms": round(pct(intent_ms, 0.95), 1),
            "target_summary_p95_ms": 200,
            "sample": {
                k: first["metrics"][k]
                for k in ("ai_resolution_rate", "escalation_rate", "first_response_p50_s")
            },
        }
        if args.questions:
            out["top_questions"] = await asyncio.to_thread(
                clustering, args.datasets, args.questions
            )
            out["cluster_20k_s"] = out["top_questions"]["cluster_20k_s"]
        print(json.dumps(out, indent=2))
    finally:
        await pool.close()
        if not args.keep:
            db.drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
