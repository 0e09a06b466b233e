"""The drafter's tools on the real database: scoped to the injected run, validated on the
server, refusals returned to the model as error tool messages."""

from __future__ import annotations

import dataclasses

import pytest

from graph.tools.loop import run_tool
from graph.tools.run import ToolRun
from helpdesk import conversations, tickets
from tests.support.turns import new_conversation

pytestmark = pytest.mark.integration


async def test_a_ticket_cannot_be_opened_closed_and_opens_new(services, demo):
    cid = await new_conversation(services, demo)
    run = ToolRun(services, demo, cid)
    refused = await run_tool(run, "create_ticket", {"subject": "Leak", "status": "closed"}, "1")
    assert refused.status == "error" and "new" in refused.text
    bad = await run_tool(run, "create_ticket", {"subject": "Leak", "priority": "asap"}, "2")
    assert bad.status == "error"
    made = await run_tool(run, "create_ticket", {"subject": "Leak under sink"}, "3")
    assert made.status == "success" and "status: new" in made.text
    listed = await run_tool(run, "my_tickets", {}, "4")
    assert "Leak under sink (status: new)" in listed.text
    rows = await tickets.list_tickets(services.pool, demo.id, cid)
    assert [r["status"] for r in rows] == ["new"]


async def test_a_lead_needs_a_contact_first(services, demo):
    cid = await new_conversation(services, demo)
    run = ToolRun(services, demo, cid)
    refused = await run_tool(run, "create_lead", {"request": "New furnace quote"}, "1")
    assert refused.status == "error" and "record_contact" in refused.text
    bad = await run_tool(run, "record_contact", {"email": "not an email"}, "2")
    assert bad.status == "error"
    ok = await run_tool(run, "record_contact", {"name": "Ann", "email": "ann@example.com"}, "3")
    assert ok.status == "success"
    lead = await run_tool(run, "create_lead", {"request": "New furnace quote"}, "4")
    assert lead.text == "Lead recorded."
    row = await conversations.get_conversation(services.pool, demo.id, cid)
    assert row["contact_id"] is not None


async def test_a_quote_over_the_profiles_limit_hands_off(services, demo):
    business = demo.business.model_copy(
        update={"chat": demo.business.chat.model_copy(update={"max_quote_without_handoff": 500})}
    )
    tenant = dataclasses.replace(demo, profile=business)
    cid = await new_conversation(services, demo)
    run = ToolRun(services, tenant, cid)
    await run_tool(run, "record_contact", {"phone": "+1 555 010 0199"}, "1")
    out = await run_tool(run, "create_lead", {"request": "AC install", "quoted_amount": 2400}, "2")
    assert out.status == "success" and run.handoff_reason == "quote_over_limit: $2,400.00"


async def test_the_run_is_injected_never_the_models(services, demo):
    cid = await new_conversation(services, demo)
    other = await new_conversation(services, demo)
    run = ToolRun(services, demo, cid)
    await run_tool(run, "create_ticket", {"subject": "Mine"}, "1")
    # a model naming a run of its own (another conversation) is overridden by the loop's
    forged = {"run": ToolRun(services, demo, other)}
    listed = await run_tool(run, "my_tickets", forged, "2")
    assert "Mine" in listed.text
    assert await tickets.list_tickets(services.pool, demo.id, other) == []


async def test_profile_and_handoff_tools(services, demo):
    run = ToolRun(services, demo, await new_conversation(services, demo))
    profile = await run_tool(run, "get_business_profile", {}, "1")
    assert "Open now: yes" in profile.text  # the fixed clock: a Wednesday, 10:00
    assert run.found, "the profile's answer is evidence the draft may cite"
    unknown = await run_tool(run, "drop_tables", {}, "2")
    assert unknown.status == "error"
    await run_tool(run, "request_handoff", {"reason": "wants a manager"}, "3")
    assert run.handoff_reason == "llm_request: wants a manager"
