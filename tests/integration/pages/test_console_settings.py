"""The business settings page of the console in headless Chromium: an admin sees it, edits the
profile (a field, a day's hours), is told plainly when a value is refused (and nothing saved) or
someone else saved first; an agent never sees it."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.pages import sign_in_as
from tests.support.staff import PASSWORD, make_staff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)


async def _profile(direct_url: str, admin_key: str) -> dict:
    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.get("/v1/admin/profile", headers={"Authorization": f"Bearer {admin_key}"})
    assert r.status_code == 200, r.text
    out: dict = r.json()
    return out


async def test_an_admin_edits_the_business_settings_and_an_agent_cannot_see_them(
    agent: Page, base_url: str, direct_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="settings")
    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["admin"], PASSWORD)
    await page.get_by_role("button", name="Settings").click()
    await expect(page.get_by_role("heading", name="Business settings")).to_be_visible()
    await expect(page.locator("#settings-version")).to_have_text("Version 0")
    await expect(page.get_by_label("Business name")).to_have_value(staff.tenant.name)

    await page.get_by_label("Business phone").fill("+1 555 0100")
    await page.get_by_label("Saturday").fill("09:00-12:00")
    await page.get_by_label("Ask for contact details before giving a price").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#settings-status")).to_have_text("Saved (version 1).")
    saved = await _profile(direct_url, staff.admin_key)
    assert saved["version"] == 1
    assert saved["profile"]["contact"]["phone"] == "+1 555 0100"
    assert saved["profile"]["hours"]["saturday"] == [{"opens": "09:00", "closes": "12:00"}]
    assert saved["profile"]["chat"]["require_contact_before_quote"] is True

    # A bad value: the server's message names the field; nothing is saved.
    await page.get_by_label("Time zone (IANA, e.g. America/Chicago)").fill("Mars/Base")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#settings-status")).to_contain_text("timezone")
    assert (await _profile(direct_url, staff.admin_key))["version"] == 1

    # Someone else saves meanwhile: this page's save is refused, theirs is kept.
    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.patch(
            "/v1/admin/profile",
            json={"set": {"contact.phone": "+1 555 0199"}, "based_on_version": 1},
            headers={"Authorization": f"Bearer {staff.admin_key}"},
        )
    assert r.status_code == 200, r.text
    await page.get_by_label("Time zone (IANA, e.g. America/Chicago)").fill("Europe/Lisbon")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#settings-status")).to_contain_text("Someone saved the settings")
    after = await _profile(direct_url, staff.admin_key)
    assert after["version"] == 2 and after["profile"]["contact"]["phone"] == "+1 555 0199"
    await page.get_by_role("button", name="Reload").click()
    await expect(page.get_by_label("Business phone")).to_have_value("+1 555 0199")

    # An agent signs in: no settings button, and the API refuses them anyway.
    await page.get_by_role("button", name="Back to the desk").click()
    await page.get_by_role("button", name="Sign out").click()
    await sign_in_as(page, base_url, staff.slug, staff.emails["alice"], PASSWORD)
    await expect(page.locator("#whoami")).to_contain_text("(agent)")
    await expect(page.get_by_role("button", name="Settings")).to_be_hidden()
    status = await page.evaluate("fetch('/v1/admin/profile').then(r => r.status)")
    assert status == 403
