"""The role table (:mod:`helpdesk.roles`) as FastAPI dependencies: every staff route takes its
caller through one of these, so what a role may do is decided in one place.

A caller whose role the table does not allow gets 403 ``forbidden`` naming the action and the
roles that may do it. ``tests/unit/test_permissions.py`` checks that no staff route is left
without one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from api.auth import Principal, StaffCaller
from api.errors import ApiError
from helpdesk.roles import PERMISSIONS, allowed_roles
from helpdesk.users import ROLES


def allowed(action: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that passes the staff caller on when its role may do ``action``."""
    roles = allowed_roles(action)  # KeyError at import for an action not in the table
    needed = " or ".join(r for r in ROLES if r in roles)

    async def check(caller: StaffCaller) -> Principal:
        if caller.role not in roles:
            raise ApiError(
                403,
                "forbidden",
                f"{action} needs the role {needed}; this credential acts as {caller.role}",
            )
        return caller

    check.permission = action  # type: ignore[attr-defined]  # read by the route audit test
    check.__name__ = f"allowed_{action.replace('.', '_')}"
    return check


def may(caller: Principal, action: str) -> bool:
    """Whether the caller's role may do ``action`` (for decisions inside a route)."""
    return caller.role is not None and caller.role in PERMISSIONS[action][0]


ConversationReader = Annotated[Principal, Depends(allowed("conversation.read"))]
ConversationReplier = Annotated[Principal, Depends(allowed("conversation.reply"))]
ConversationReviewer = Annotated[Principal, Depends(allowed("conversation.approve"))]
TicketUpdater = Annotated[Principal, Depends(allowed("ticket.update"))]
TicketReader = Annotated[Principal, Depends(allowed("ticket.read"))]
TicketCreator = Annotated[Principal, Depends(allowed("ticket.create"))]
TicketEditor = Annotated[Principal, Depends(allowed("ticket.edit"))]
TriageManager = Annotated[Principal, Depends(allowed("triage.manage"))]
TicketNoter = Annotated[Principal, Depends(allowed("ticket.note"))]
ContactReader = Annotated[Principal, Depends(allowed("contact.read"))]
ContactEditor = Annotated[Principal, Depends(allowed("contact.edit"))]
ContactMerger = Annotated[Principal, Depends(allowed("contact.merge"))]
PresenceSetter = Annotated[Principal, Depends(allowed("presence.set"))]
KbIngester = Annotated[Principal, Depends(allowed("kb.ingest"))]
KbDrafter = Annotated[Principal, Depends(allowed("kb.draft"))]
TeamsReader = Annotated[Principal, Depends(allowed("teams.read"))]
TeamsManager = Annotated[Principal, Depends(allowed("teams.manage"))]
UsersReader = Annotated[Principal, Depends(allowed("users.read"))]
UsersManager = Annotated[Principal, Depends(allowed("users.manage"))]
AuditReader = Annotated[Principal, Depends(allowed("audit.read"))]
MetricsReader = Annotated[Principal, Depends(allowed("metrics.read"))]
SlaManager = Annotated[Principal, Depends(allowed("sla.manage"))]
ProfileEditor = Annotated[Principal, Depends(allowed("profile.edit"))]
NotificationsReader = Annotated[Principal, Depends(allowed("notifications.read"))]
WebhooksManager = Annotated[Principal, Depends(allowed("webhooks.manage"))]
