"""``deskgraph chat`` on the real graph: a review and a hand-off driven with slash commands, and
who is shown as speaking. Parsing the commands is in ``tests/unit/test_chat_cli.py``."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from graph.services import Services
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import Tenant, create_tenant
from kb_pipeline.loaders import demo_kb_path, load_directory


@pytest.fixture
async def review_tenant(services: Services) -> Tenant:
    """A tenant whose policy holds every AI draft for review, with the pricing article."""
    tenant = await create_tenant(
        services.pool,
        f"chat-{uuid.uuid4().hex[:8]}",
        "Chat Plumbing",
        TenantPolicy(review_all=True),
    )
    wanted = {"pricing-overview", "free-estimates"}
    await services.kb.ingest(
        tenant.id, [a for a in load_directory(demo_kb_path()) if a.source_id in wanted]
    )
    return tenant


@pytest.mark.integration
def test_chat_drives_review_and_handoff_with_commands(
    cli_database: str, review_tenant: Tenant
) -> None:
    lines = [
        "/help",
        "hello\x00world",  # refused text: said plainly, nothing sent, the chat goes on
        "How much is your call-out fee?",  # held for review (review_all)
        "/reply not now",
        "/edit Our call-out fee is $89, waived if you book the repair.",
        "I want to talk to a person",  # hand-off
        "I smell gas in my kitchen",  # while a person owns it: the steps are printed at once
        "/approve",
        "/reply",
        "/reply Hi, this is Sam from the office.",
        "/frobnicate",
    ]
    run = CliRunner().invoke(
        app_for_test(),
        ["chat", "--tenant", review_tenant.slug, "--agent", "Sam"],
        input="\n".join(lines) + "\n",
    )
    out = run.output
    assert run.exit_code == 0, out
    assert "Input tag" not in out and "validation" not in out.lower()
    for name in ("/approve", "/edit", "/reject", "/reply", "/release", "/close"):
        assert name in out.split("you>")[1], "the help lists every agent command"
    assert "review>" in out
    assert "/reply works once the conversation is handed to a person" in out
    assert "agent (Sam)> Our call-out fee is $89, waived if you book the repair." in out
    assert "handoff>" in out
    assert "contains a NUL character" in out and "nothing was sent" in out
    assert "Traceback" not in out
    after_handoff = out.split("handoff>", 1)[1]
    assert "assistant> This sounds like an emergency." in after_handoff and "911" in after_handoff
    assert "/approve works while a draft waits for review; here use /reply" in out
    assert "/reply needs its text: /reply TEXT" in out
    assert "agent (Sam)> Hi, this is Sam from the office." in out
    assert "assistant> Hi, this is Sam" not in out
    assert "unknown command /frobnicate" in out


def app_for_test():
    from cli.main import app

    return app
