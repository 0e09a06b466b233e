"""The ticket workspace in headless Chromium: an agent finds tickets by view and search, moves
one through the moves the lifecycle allows (resolving asks how), adds a note that lands on the
timeline, changes priority and resolves and closes in bulk, and creates one with a command,
the plan shown before it is applied."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.pages import sign_in_as
from tests.support.staff import PASSWORD, make_staff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)

SUBJECTS = ["Boiler makes a banging noise", "Invoice shows the wrong address", "Gate latch"]


async def test_an_agent_works_the_tickets_from_the_console(
    agent: Page, base_url: str, direct_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="workspace")
    async with httpx.AsyncClient(base_url=direct_url) as client:
        for subject in SUBJECTS:
            r = await client.post(
                "/v1/tickets",
                json={"subject": subject},
                headers={"Authorization": f"Bearer {staff.agent_key}"},
            )
            assert r.status_code == 201, r.text

    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["alice"], PASSWORD)
    await page.get_by_role("button", name="Tickets").click()
    rows = page.locator("#tickets-list tr")
    await expect(rows).to_have_count(3)
    await page.get_by_label("Search").fill("boiler")
    await page.get_by_role("button", name="Find").click()
    await expect(rows).to_have_count(1)
    await page.get_by_label("Search").fill("")
    await page.get_by_role("button", name="Find").click()
    await expect(rows).to_have_count(3)

    # one ticket through the lifecycle, a note on its timeline
    await rows.filter(has_text="Boiler").get_by_role("button").click()
    detail = page.locator("#ticket-detail")
    await expect(detail.locator("#ticket-detail-title")).to_have_text(
        "T-1 · Boiler makes a banging noise"
    )
    await page.get_by_label("Move to").select_option("in_progress")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#ticket-meta")).to_contain_text("in progress")
    timeline = page.locator("#ticket-timeline")
    await expect(timeline).to_contain_text("→ in progress")
    await page.get_by_label("Internal note (staff only)").fill("Customer hears it at night")
    await page.get_by_role("button", name="Add note").click()
    await expect(timeline).to_contain_text("note: Customer hears it at night")
    await page.get_by_label("Move to").select_option("resolved")
    await expect(page.get_by_label("Resolution")).to_be_visible()
    await page.get_by_label("Resolution").fill("Bled the radiators")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#ticket-meta")).to_contain_text("resolved")
    await expect(rows).to_have_count(2)  # the open view no longer lists it

    # bulk: priority, then resolve and close
    for box in await page.locator("#tickets-list input[type=checkbox]").all():
        await box.check()
    await expect(page.locator("#bulk-count")).to_have_text("2 selected")
    await page.get_by_label("Set priority").select_option("urgent")
    await page.get_by_role("button", name="Apply priority").click()
    await expect(rows.filter(has_text="urgent")).to_have_count(2)
    for box in await page.locator("#tickets-list input[type=checkbox]").all():
        await box.check()
    await page.get_by_label("Close with").fill("Sorted on the phone")
    await page.get_by_role("button", name="Resolve and close").click()
    await expect(page.locator("#command-result")).to_contain_text("closed")
    await expect(rows).to_have_text(["No tickets."])

    # a command: the plan first, applied on the second run
    await page.get_by_label("Command").fill("create ticket: gutter leaking at the back, asap")
    await page.get_by_role("button", name="Run").click()
    await expect(page.locator("#command-result")).to_have_text(
        'Create a ticket "gutter leaking at the back" (priority urgent). Run again to apply.'
    )
    await expect(rows).to_have_text(["No tickets."])  # nothing yet
    await page.get_by_role("button", name="Run").click()
    await expect(page.locator("#command-result")).to_have_text("T-4: new")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("gutter leaking at the back")
