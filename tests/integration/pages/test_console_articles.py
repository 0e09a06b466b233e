"""The knowledge base's review queue in headless Chromium: an agent edits a draft and sends it
for review but cannot approve it; a manager approves and publishes it, and the published
article is found by the next search at once. The buttons are the moves the server allows."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.pages import sign_in_as
from tests.support.staff import PASSWORD, make_staff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)

ADDED = "Bring the boiler's model number; the service takes about an hour."


async def test_an_agent_submits_a_draft_and_a_manager_publishes_it(
    agent: Page, base_url: str, direct_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="articles")
    title = f"Annual boiler service {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.post(
            "/v1/kb/drafts",
            json={"title": title, "body": "We service boilers once a year, on weekdays."},
            headers={"Authorization": f"Bearer {staff.agent_key}"},
        )
    assert r.status_code == 201, r.text
    draft_id = r.json()["id"]

    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["alice"], PASSWORD)
    await expect(page.locator("#whoami")).to_contain_text("(agent)")
    await page.get_by_role("button", name="Article drafts").click()
    await page.get_by_label("Show").select_option("draft")
    await page.get_by_role("button", name=title).click()
    body = page.get_by_label("Article", exact=True)
    await expect(body).to_have_value("We service boilers once a year, on weekdays.")
    await body.fill(f"We service boilers once a year, on weekdays. {ADDED}")
    await page.get_by_role("button", name="Send for review").click()
    await expect(page.locator("#article-meta")).to_contain_text("In review")
    actions = page.locator("#article-actions")
    await expect(actions.get_by_role("button", name="Back to draft")).to_be_visible()
    await expect(actions.get_by_role("button", name="Approve")).to_have_count(0)
    status = await page.evaluate(
        f"fetch('/v1/kb/drafts/{draft_id}/move', {{method: 'POST', headers: "
        "{'Content-Type': 'application/json'}, body: JSON.stringify({to: 'approved'})})"
        ".then(r => r.status)"
    )
    assert status == 403  # the server refuses what the page does not offer

    await page.get_by_role("button", name="Back to the desk").click()
    await page.get_by_role("button", name="Sign out").click()
    await sign_in_as(page, base_url, staff.slug, staff.emails["manager"], PASSWORD)
    await expect(page.locator("#whoami")).to_contain_text("(manager)")
    await page.get_by_role("button", name="Article drafts").click()
    await page.get_by_role("button", name=title).click()  # "In review" is shown first
    await expect(page.get_by_label("Article", exact=True)).to_have_value(
        f"We service boilers once a year, on weekdays. {ADDED}"
    )
    await page.locator("#article-actions").get_by_role("button", name="Approve").click()
    await expect(page.locator("#article-meta")).to_contain_text("Approved")
    await expect(page.get_by_label("Article", exact=True)).not_to_be_editable()
    await page.locator("#article-actions").get_by_role("button", name="Publish").click()
    await expect(page.locator("#article-meta")).to_contain_text("published as learned-")
    await expect(page.locator("#article-actions button")).to_have_count(0)

    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.get(
            "/v1/kb/search",
            params={"q": "boiler model number service hour"},
            headers={"Authorization": f"Bearer {staff.agent_key}"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["source_id"] == f"learned-{draft_id[:8]}"
