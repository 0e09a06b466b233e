"""The AI's suggestion in the ticket workspace (headless Chromium): the agent sees what the AI
suggests for a new ticket and how sure it is, and accepting sets the fields."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.pages import sign_in_as
from tests.support.staff import PASSWORD, make_staff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)


async def test_the_agent_sees_and_accepts_the_suggestion(
    agent: Page, base_url: str, direct_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="suggest")
    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.post(
            "/v1/tickets",
            json={"subject": "Water leak under the sink", "description": "please come asap"},
            headers={"Authorization": f"Bearer {staff.agent_key}"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["suggested_priority"] == "urgent"

    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["alice"], PASSWORD)
    await page.get_by_role("button", name="Tickets").click()
    rows = page.locator("#tickets-list tr")
    await expect(rows).to_have_count(1)
    await rows.first.get_by_role("button").click()
    hint = page.locator("#ticket-suggestion")
    await expect(hint).to_contain_text("AI suggests priority urgent (85% sure)")
    await page.get_by_role("button", name="Accept suggestion").click()
    await expect(page.locator("#ticket-meta")).to_contain_text("urgent")
    await expect(hint).to_be_hidden()
    await expect(page.locator("#ticket-timeline")).to_contain_text("updated")
