"""Triage rules and assignment routes (staff).

* ``GET/PUT /v1/admin/triage-rules`` (``triage.manage``): the tenant's ordered rules; PUT
  replaces the list. 422 names the field of a bad rule (an id not of this tenant included).
* ``POST /v1/tickets/{id}/assign`` (``ticket.edit`` + ``ticket.assign``): round-robin or
  least-loaded among the team's online members; 409 ``no_agent_online`` when nobody is.
* ``GET/PUT /v1/admin/teams/{id}/assignment``: a team's auto-assignment (reading needs
  ``teams.read``, changing ``triage.manage``).

The rules: ``helpdesk/triage.py``, ``helpdesk/assignment.py``, docs/tickets.md.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api import ticket_schemas as ts
from api import triage_schemas as tr
from api.deps import ServicesDep, SettingsDep
from api.errors import ApiError, responses
from api.permissions import TeamsReader, TicketEditor, TriageManager, may
from api.routes.tickets import _detail
from helpdesk import assignment, audit, triage
from helpdesk.tenancy import tenant_scope

router = APIRouter(tags=["triage"])

_AUTH = ("unauthenticated", "invalid_key", "forbidden")
_WRITE = ("invalid_json", "invalid_request", *_AUTH, "body_too_large")


def _rules(rows: list[dict[str, object]]) -> tr.RuleList:
    return tr.RuleList(rules=[tr.Rule.model_validate(r) for r in rows])


@router.get("/v1/admin/triage-rules", response_model=tr.RuleList, responses=responses(*_AUTH))
async def list_rules(caller: TriageManager, services: ServicesDep) -> tr.RuleList:
    """The tenant's triage rules, in the order they apply."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return _rules(await triage.list_rules(conn, caller.tenant.id))


@router.put("/v1/admin/triage-rules", response_model=tr.RuleList, responses=responses(*_WRITE))
async def replace_rules(
    body: tr.RulesIn, caller: TriageManager, services: ServicesDep
) -> tr.RuleList:
    """Replace the tenant's triage rules with these, in this order. They apply to tickets
    created or changed from now on."""
    raw = [
        {
            "id": str(r.id) if r.id else None,
            "name": r.name,
            "enabled": r.enabled,
            "conditions": r.conditions.model_dump(mode="json", exclude_none=True),
            "actions": r.actions.model_dump(mode="json", exclude_none=True),
        }
        for r in body.rules
    ]
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await triage.replace_rules(
            conn, caller.tenant.id, raw, categories=caller.tenant.policy.ticket_categories
        )
        await audit.record(
            conn,
            caller.tenant.id,
            caller.actor,
            "triage.rules",
            "tenant",
            caller.tenant.id,
            {"rules": [r["name"] for r in rows]},
        )
    return _rules(rows)


@router.post(
    "/v1/tickets/{ticket_id}/assign",
    response_model=ts.TicketDetail,
    responses=responses(*_WRITE, "not_found", "no_agent_online"),
)
async def assign_ticket(
    ticket_id: uuid.UUID,
    body: tr.AssignIn,
    caller: TicketEditor,
    services: ServicesDep,
    settings: SettingsDep,
) -> ts.TicketDetail:
    """Assign the ticket to an online member of ``team_id`` (else the ticket's team):
    ``round_robin`` takes turns, ``least_loaded`` picks the one with the fewest open tickets.
    409 ``no_agent_online`` when nobody of the team is online (nothing changes); 422 when the
    ticket has no team and none is named."""
    if not may(caller, "ticket.assign"):
        raise ApiError(403, "forbidden", "ticket.assign is needed to assign a ticket")
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await assignment.assign(
            conn,
            caller.tenant.id,
            ticket_id,
            body.mode,
            actor=caller.actor,
            team_id=body.team_id,
            away_after_s=settings.presence_away_after_s,
            idle_s=settings.session_idle_s,
        )
        return await _detail(conn, caller, row)


@router.get(
    "/v1/admin/teams/{team_id}/assignment",
    response_model=tr.TeamAssignment,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def get_team_assignment(
    team_id: uuid.UUID, caller: TeamsReader, services: ServicesDep
) -> tr.TeamAssignment:
    """The team's auto-assignment and the member assigned last."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await assignment.get_settings(conn, caller.tenant.id, team_id)
    return tr.TeamAssignment.model_validate(row)


@router.put(
    "/v1/admin/teams/{team_id}/assignment",
    response_model=tr.TeamAssignment,
    responses=responses(*_WRITE, "not_found"),
)
async def set_team_assignment(
    team_id: uuid.UUID, body: tr.TeamAssignmentIn, caller: TriageManager, services: ServicesDep
) -> tr.TeamAssignment:
    """Turn the team's auto-assignment ``off``, or to ``round_robin`` / ``least_loaded``: a
    ticket that gets the team (by hand or by a triage rule) without an assignee is assigned."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await assignment.set_auto_assign(conn, caller.tenant.id, team_id, body.auto_assign)
        await audit.record(
            conn,
            caller.tenant.id,
            caller.actor,
            "team.assignment",
            "team",
            team_id,
            {"auto_assign": body.auto_assign},
        )
    return tr.TeamAssignment.model_validate(row)
