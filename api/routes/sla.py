"""SLA policies and compliance over HTTP (docs/sla.md).

* ``GET /v1/admin/sla``: the configuration in force (the documented defaults until the
  tenant saves its own); ``PUT``: replace it whole. Managers and admins (``sla.manage``).
* ``GET /v1/metrics/sla?from&to[&tz][&team]``: compliance of the tickets created in the period
  (of one team's with ``team``: 404 for a team that is not this business's), whole and by
  priority (``metrics.read``). The dashboard shows it beside the ticket figures.

The ticket JSON of ``/v1/tickets`` carries each ticket's SLA state, and its list takes
``sla=warning|breached``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import ticket_schemas as ts
from api.deps import ServicesDep
from api.errors import ApiError, responses
from api.permissions import MetricsReader, SlaManager
from api.routes.metrics import From, To, Tz, _period
from helpdesk import audit, sla, teams
from helpdesk.errors import NotFound
from helpdesk.tenancy import tenant_scope

router = APIRouter(tags=["sla"])
_AUTH = ("unauthenticated", "invalid_key", "forbidden")


@router.get("/v1/admin/sla", response_model=ts.SlaConfigOut, responses=responses(*_AUTH))
async def get_sla(caller: SlaManager, services: ServicesDep) -> dict[str, Any]:
    """The SLA configuration in force: targets per priority (and category), warnings."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        config = await sla.get_config(conn, caller.tenant.id)
    return config.as_json()


@router.put(
    "/v1/admin/sla",
    response_model=ts.SlaConfigOut,
    responses=responses("invalid_json", "invalid_request", *_AUTH, "body_too_large"),
)
async def put_sla(
    body: ts.SlaConfigIn, caller: SlaManager, services: ServicesDep
) -> dict[str, Any]:
    """Replace the SLA configuration. Open tickets keep the rule they were given; tickets
    created from now on, or whose priority or category changes, take the new one. A rule
    that repeats a (priority, category) or a resolution target shorter than its first
    response is 422 naming the field."""
    config = sla.parse_config(body.model_dump(exclude_none=True))
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        saved = await sla.save_config(conn, caller.tenant.id, config, by=caller.actor.name)
        await audit.record(
            conn,
            caller.tenant.id,
            caller.actor,
            "sla.update",
            "sla",
            None,
            {"enabled": saved.enabled, "policies": [r.as_json() for r in saved.rules]},
        )
    return saved.as_json()


@router.get(
    "/v1/metrics/sla",
    responses=responses(
        "invalid_request",
        "invalid_period",
        "not_found",
        "unauthenticated",
        "invalid_key",
        "forbidden",
    ),
)
async def sla_compliance(
    caller: MetricsReader,
    services: ServicesDep,
    team: Annotated[uuid.UUID | None, Query(description="One team's tickets only.")] = None,
    first: From = None,
    to: To = None,
    tz: Tz = None,
) -> dict[str, Any]:
    """Of the tickets created in the period with an SLA: per target how many met it,
    breached it, are still pending, and the rate met / (met + breached); whole and by
    priority."""
    p = _period(caller, first, to, tz)
    tid = caller.tenant.id
    async with tenant_scope(services.pool, tid) as conn:
        if team is not None:
            try:
                await teams.get_team(conn, tid, team)
            except NotFound as exc:
                raise ApiError(404, "not_found", exc.message) from exc
        figures = await sla.compliance(
            conn, tid, p.start, p.end, as_of=datetime.now(UTC), team=team
        )
    return {"period": p.as_json(), "team": team, **figures}
