"""The desk's metrics over HTTP, for managers and admins (the role table's ``metrics.read``).

* ``GET /v1/metrics/summary``: every metric for the period, escalations by reason, the CSAT
  distribution, leads created and the backlog now.
* ``GET /v1/metrics/timeseries?metrics=a,b&interval=day|week|month``: per local day/week/month.
* ``GET /v1/metrics/breakdown?by=channel&metrics=a,b``: per channel, intent, hour, weekday,
  escalation reason, agent or CSAT score.
* ``GET /v1/metrics/articles``: votes per cited knowledge-base article.
* ``GET /v1/metrics/export.csv?interval=day``: every metric per bucket, as CSV.
* ``GET /v1/metrics/top-questions[?gaps=true]`` and ``POST .../refresh``: question clusters.
* ``GET /v1/metrics/tickets[?team=&by=&metrics=]``: the ticket metrics (resolution time,
  reopen rate, first response, CSAT), whole or per priority, category, channel, agent, team.
* ``GET /v1/metrics/llm-usage``: the LLM tier's calls and tokens per node, and this month's
  tokens against the tenant's budget.
* ``GET /v1/metrics/kb-misses``: what the knowledge base had nothing good for (chat answers
  that declined for want of evidence, customers' searches that found nothing), most asked first.

Every route takes ``from`` and ``to`` (ISO dates, both included; default: the 30 days to
today) and ``tz`` (default: the business's time zone). A bad one is 422 ``invalid_period``
naming it. What each metric means, with its SQL: ``docs/metrics.md`` (rendered from
``helpdesk.metrics``).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api import charts
from api.deps import ServicesDep
from api.errors import ApiError, responses
from api.permissions import MetricsReader
from desk import top_questions as top
from helpdesk import kb_misses, llm_usage, metrics, teams
from helpdesk import ticket_metrics as ticket_figures
from helpdesk.errors import InvalidInput, NotFound
from helpdesk.tenancy import tenant_scope

router = APIRouter(tags=["metrics"])
_CODES_LIST = ("invalid_request", "invalid_period", "unauthenticated", "invalid_key", "forbidden")
_CODES = responses(*_CODES_LIST)

From = Annotated[str | None, Query(alias="from", description="First day, YYYY-MM-DD.")]
To = Annotated[str | None, Query(description="Last day (included), YYYY-MM-DD.")]
Tz = Annotated[str | None, Query(description="IANA time zone; default the business's.")]
Names = Annotated[
    str, Query(description="Comma-separated metric names (docs/metrics.md).", max_length=2000)
]


class Summary(BaseModel):
    """Every metric for the period (``metrics``: name -> value, null where undefined)."""

    period: dict[str, str]
    as_of: str
    metrics: dict[str, Any]
    escalations_by_reason: dict[str, int]
    csat_distribution: dict[str, int]
    leads_created: int
    backlog: dict[str, Any]


def _period(caller: Any, first: str | None, last: str | None, tz: str | None) -> metrics.Period:
    zone = tz or caller.tenant.business.timezone
    try:
        today = datetime.now(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        today = datetime.now(UTC).date()  # metrics.period names the bad zone below
    try:
        return metrics.period(first, last, zone, today=today)
    except InvalidInput as exc:
        raise ApiError(422, "invalid_period", exc.message) from exc


def _names(raw: str) -> list[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise ApiError(422, "invalid_period", "metrics: name at least one metric")
    return names


@router.get("/v1/metrics/summary", response_model=Summary, responses=_CODES)
async def summary(
    caller: MetricsReader,
    services: ServicesDep,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """Every metric of the conversations started in the period."""
    p = _period(caller, first, to, tz)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return await metrics.summary(conn, caller.tenant.id, p, as_of=datetime.now(UTC))


@router.get("/v1/metrics/timeseries", responses=_CODES)
async def timeseries(
    caller: MetricsReader,
    services: ServicesDep,
    names: Annotated[str, Query(alias="metrics", max_length=2000)] = "conversations",
    interval: str = "day",
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """The metrics per local day, week (from Monday) or month; empty buckets included."""
    p = _period(caller, first, to, tz)
    try:
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            points = await metrics.timeseries(
                conn,
                caller.tenant.id,
                p,
                _names(names),
                interval,  # type: ignore[arg-type]
                as_of=datetime.now(UTC),
            )
    except InvalidInput as exc:
        raise ApiError(422, "invalid_period", exc.message) from exc
    return {"period": p.as_json(), "interval": interval, "points": points}


@router.get("/v1/metrics/breakdown", responses=_CODES)
async def breakdown(
    caller: MetricsReader,
    services: ServicesDep,
    by: str = "channel",
    names: Annotated[str, Query(alias="metrics", max_length=2000)] = "conversations",
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """The metrics per value of ``by``, the largest group first."""
    p = _period(caller, first, to, tz)
    try:
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            rows = await metrics.breakdown(
                conn, caller.tenant.id, p, by, _names(names), as_of=datetime.now(UTC)
            )
    except InvalidInput as exc:
        raise ApiError(422, "invalid_period", exc.message) from exc
    return {"period": p.as_json(), "by": by, "rows": rows}


@router.get("/v1/metrics/articles", responses=_CODES)
async def articles(
    caller: MetricsReader,
    services: ServicesDep,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """Helpful / not-helpful votes per cited article."""
    p = _period(caller, first, to, tz)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await metrics.article_votes(conn, caller.tenant.id, p)
    return {"period": p.as_json(), "articles": rows}


@router.get(
    "/v1/metrics/export.csv",
    response_class=Response,
    responses={**_CODES, 200: {"content": {"text/csv": {}}, "description": "One row per bucket."}},
)
async def export_csv(
    caller: MetricsReader,
    services: ServicesDep,
    interval: str = "day",
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> Response:
    """Every metric per bucket, one CSV row each (the first column is the bucket's first day)."""
    p = _period(caller, first, to, tz)
    names = list(metrics.METRICS)
    try:
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            points = await metrics.timeseries(
                conn,
                caller.tenant.id,
                p,
                names,
                interval,  # type: ignore[arg-type]
                as_of=datetime.now(UTC),
            )
    except InvalidInput as exc:
        raise ApiError(422, "invalid_period", exc.message) from exc
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["bucket", *names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(points)
    name = f"metrics-{caller.tenant.slug}-{p.first}-{p.last}-{interval}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/v1/metrics/chart.svg",
    response_class=Response,
    responses={**_CODES, 200: {"content": {"image/svg+xml": {}}, "description": "The chart."}},
)
async def chart(
    caller: MetricsReader,
    services: ServicesDep,
    metric: str = "conversations",
    interval: str = "day",
    by: str | None = None,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> Response:
    """One metric as an SVG chart: over time (``interval``), or per value of ``by``."""
    p = _period(caller, first, to, tz)
    now = datetime.now(UTC)
    try:
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            if by is None:
                points = await metrics.timeseries(
                    conn,
                    caller.tenant.id,
                    p,
                    [metric],
                    interval,  # type: ignore[arg-type]
                    as_of=now,
                )
                svg = charts.series_svg(points, metric, f"{metric} per {interval}")
            else:
                rows = await metrics.breakdown(conn, caller.tenant.id, p, by, [metric], as_of=now)
                svg = charts.breakdown_svg(rows, by, metric, f"{metric} by {by}")
    except InvalidInput as exc:
        raise ApiError(422, "invalid_period", exc.message) from exc
    # no-store: a chart of "the 30 days to today" changes as the day goes on
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/v1/metrics/top-questions", responses=_CODES)
async def top_questions(
    caller: MetricsReader,
    services: ServicesDep,
    gaps: Annotated[bool, Query(description="Only the knowledge gaps.")] = False,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """The period's question clusters as last computed (nightly, or by ``.../refresh``)."""
    p = _period(caller, first, to, tz)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        out = await top.stored(conn, caller.tenant.id, p)
    if gaps:
        out["clusters"] = [c for c in out["clusters"] if c["knowledge_gap"]]
    return out


@router.post("/v1/metrics/top-questions/refresh", responses=_CODES)
async def refresh_top_questions(
    caller: MetricsReader,
    services: ServicesDep,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """Cluster the period's questions now, replacing what was stored for the period."""
    p = _period(caller, first, to, tz)
    clusters = await top.refresh(
        services, caller.tenant.id, p, as_of=datetime.now(UTC), business=caller.tenant.business
    )
    return {"period": p.as_json(), "clusters": clusters}


@router.get("/v1/metrics/kb-misses", responses=_CODES)
async def knowledge_base_misses(
    caller: MetricsReader,
    services: ServicesDep,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """The period's questions the knowledge base had nothing good for, grouped by their text."""
    p = _period(caller, first, to, tz)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        misses = await kb_misses.summary(conn, caller.tenant.id, p)
    return {"period": p.as_json(), "misses": misses}


@router.get("/v1/metrics/llm-usage", responses=_CODES)
async def llm_token_usage(
    caller: MetricsReader,
    services: ServicesDep,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """The period's LLM calls and tokens (total and per node), and this month's tokens
    against the tenant's monthly budget (policy ``llm_monthly_tokens``; null: none)."""
    p = _period(caller, first, to, tz)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        usage = await llm_usage.summary(conn, caller.tenant.id, p)
        month = await llm_usage.month_tokens(conn, caller.tenant.id)
    budget = caller.tenant.rules.llm_monthly_tokens
    return {
        "period": p.as_json(),
        **usage,
        "month_tokens": month,
        "monthly_budget": budget,
        "budget_spent": budget is not None and month >= budget,
    }


@router.get("/v1/metrics/tickets", responses=responses("not_found", *_CODES_LIST))
async def ticket_metrics(
    caller: MetricsReader,
    services: ServicesDep,
    team: Annotated[uuid.UUID | None, Query(description="One team's tickets only.")] = None,
    by: Annotated[
        str | None, Query(description="priority, category, channel, agent or team.")
    ] = None,
    names: Annotated[
        str | None, Query(alias="metrics", max_length=2000, description="With ``by``.")
    ] = None,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """The ticket metrics of the tickets created in the period (docs/metrics.md), or with
    ``by`` those named in ``metrics`` per priority, category, channel, agent or team; ``team``
    narrows to one team (404 for a team that is not this business's)."""
    p = _period(caller, first, to, tz)
    tid = caller.tenant.id
    try:
        async with tenant_scope(services.pool, tid) as conn:
            if team is not None:
                await teams.get_team(conn, tid, team)
            if by is None:
                figures = await ticket_figures.summary(conn, tid, p, team=team)
                return {"period": p.as_json(), "team": team, "metrics": figures}
            wanted = _names(names or "tickets")
            rows = await ticket_figures.breakdown(conn, tid, p, by, wanted, team=team)
    except NotFound as exc:
        raise ApiError(404, "not_found", exc.message) from exc
    except InvalidInput as exc:
        raise ApiError(422, "invalid_request", exc.message) from exc
    return {"period": p.as_json(), "team": team, "by": by, "rows": rows}
