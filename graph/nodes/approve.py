"""approve: hold a draft until a human approves, edits or rejects it.

Approve sends the draft (logged as ``approval.approved``, naming the reviewer); edit sends the
edited text and logs the (draft, edit) pair as an ``approval.edited`` event, the labelled data
prompt engineers export; reject redraws once with the reviewer's reason as feedback and the
rejected text to avoid (the drafter hands off when it has nothing different to offer), or hands
off when asked, or when the redraft budget is spent.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from graph import events
from graph.context import Context
from graph.interrupts import ApprovalRequest, Approve, Edit, ask_human, parse_review
from graph.nodes.judge import MAX_DRAFTS, citations_for
from graph.services import Services
from graph.state import Reply, SupportState
from helpdesk import conversations
from helpdesk.tenancy import tenant_scope


def make(svc: Services) -> Any:
    """Build the node."""

    async def approve(
        state: SupportState, runtime: Runtime[Context]
    ) -> Command[Literal["respond", "draft", "handoff"]]:
        scope = await svc.scope(state, runtime)
        tenant, conv = scope.tenant, scope.conversation_id
        draft = state.get("draft")
        verdict = state.get("verdict")
        assert draft is not None and verdict is not None
        key = f"approval:{state.get('turn', 0)}:{state.get('attempts', 0)}"
        request = ApprovalRequest(
            question=state.get("question", ""),
            draft=draft["text"],
            citations=draft["citations"],
            confidence=draft["confidence"],
            review_reasons=verdict["review_reasons"],
        )
        async with tenant_scope(svc.pool, tenant.id) as db:
            await conversations.set_status(
                db, tenant.id, conv, "waiting_human", escalation={"kind": "approval"}
            )
            await conversations.append_event(
                db,
                tenant.id,
                conv,
                *events.approval_pending(verdict["review_reasons"]),
                dedupe_key=key,
            )
        decision = ask_human(request, parse_review)
        async with tenant_scope(svc.pool, tenant.id) as db:
            await conversations.set_status(db, tenant.id, conv, "active")
            if isinstance(decision, Approve):
                # A plain approval names its reviewer too, as an edit and a rejection do.
                await conversations.append_event(
                    db,
                    tenant.id,
                    conv,
                    "approval.approved",
                    {"question": state.get("question", ""), "reviewer": decision.reviewer},
                    dedupe_key=f"{key}:approved",
                )
        if isinstance(decision, Approve):
            reply = Reply(
                text=draft["text"],
                sender="ai",
                citations=draft["citations"],
                confidence=draft["confidence"],
                declined=False,
            )
            return Command(goto="respond", update={"reply": reply})
        if isinstance(decision, Edit):
            async with tenant_scope(svc.pool, tenant.id) as db:
                await conversations.append_event(
                    db,
                    tenant.id,
                    conv,
                    "approval.edited",
                    {
                        "question": state.get("question", ""),
                        "draft": draft["text"],
                        "edited": decision.text,
                        "reviewer": decision.reviewer,
                    },
                    dedupe_key=f"{key}:edited",
                )
            # The edit keeps only the sources it still uses (an hours answer edited from a
            # pricing draft must not cite "Pricing overview").
            cited = await citations_for(
                svc, decision.text, draft["citations"], state.get("retrieved") or []
            )
            reply = Reply(
                text=decision.text,
                sender="ai",
                citations=cited,
                confidence=draft["confidence"],
                declined=False,
            )
            return Command(goto="respond", update={"reply": reply})
        async with tenant_scope(svc.pool, tenant.id) as db:
            await conversations.append_event(
                db,
                tenant.id,
                conv,
                "approval.rejected",
                {
                    "question": state.get("question", ""),
                    "draft": draft["text"],
                    "reason": decision.reason,
                    "then": decision.then,
                    "reviewer": decision.reviewer,
                },
                dedupe_key=f"{key}:rejected",
            )
        if decision.then == "redraft" and int(state.get("attempts", 0)) < MAX_DRAFTS:
            # the redraft must use the reason and must not repeat the rejected text
            rejected = [*(state.get("rejected") or []), draft["text"]]
            return Command(goto="draft", update={"feedback": decision.reason, "rejected": rejected})
        return Command(goto="handoff", update={"handoff_reason": "draft_rejected"})

    return approve
