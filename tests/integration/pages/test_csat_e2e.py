"""The widget's CSAT card in headless Chromium against the real server: a ticket of the
conversation is resolved, the ``csat.request`` event shows 1-5 and a comment, the customer's
rating is stored once for that resolution (docs/tickets.md)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from helpdesk import feedback
from tests.support.pages import Desk, ask, open_widget, session_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)


async def test_the_customer_rates_the_resolution_from_the_widget(
    customer: Page, base_url: str, direct_url: str, services: Any, demo_desk: Desk
) -> None:
    await open_widget(customer, base_url, demo_desk)
    await ask(customer, "I want to talk to a person")
    await expect(customer.locator(".banner")).to_contain_text("Connecting you to a person")
    conversation_id = (await session_of(customer, demo_desk))["id"]
    agent = {"Authorization": f"Bearer {demo_desk.agent_key}"}
    async with httpx.AsyncClient(base_url=direct_url, timeout=60) as client:
        r = await client.get(f"/v1/agent/conversations/{conversation_id}", headers=agent)
        ticket = r.json()["ticket"]
        r = await client.post(
            f"/v1/tickets/{ticket['id']}/transition",
            json={
                "to": "resolved",
                "resolution": {"type": "answered_question", "summary": "Called back."},
            },
            headers=agent,
        )
        assert r.status_code == 200, r.text
        resolution_id = r.json()["resolution_id"]

    card = customer.get_by_role("form", name="How did we do?")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text(f"T-{ticket['number']}")
    send = card.get_by_role("button", name="Send")
    await expect(send).to_be_disabled()  # nothing chosen yet
    await card.get_by_role("button", name="4", exact=True).click()
    await card.get_by_label("Anything to add? (optional)").fill("Quick call, thanks")
    async with customer.expect_response(lambda r: r.url.endswith("/csat")) as posted:
        await send.click()
    assert (await posted.value).status == 200
    await expect(customer.locator("li.csat-card")).to_have_text("Thanks for rating us 4 of 5.")

    rows = await feedback.list_feedback(
        services.pool, demo_desk.tenant.id, uuid.UUID(conversation_id)
    )
    [csat] = [r for r in rows if r["kind"] == "csat"]
    assert (csat["csat"], csat["comment"], str(csat["resolution_id"])) == (
        4,
        "Quick call, thanks",
        resolution_id,
    )
