"""The owner's dashboard in headless Chromium: a manager picks a period and sees the figures the
summary API gives for it, and charts that are drawn with data (checked on a screenshot: the
series colour is there when there is data, absent when there is none); a bad period is said
plainly; an agent never sees the dashboard and the API refuses them."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from playwright.async_api import Page, expect

from helpdesk import teams
from tests.support.metrics_history import History, local, write_history
from tests.support.pages import sign_in_as
from tests.support.staff import PASSWORD, make_staff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)

SERIES_BLUE = (0x25, 0x63, 0xEB)
"""The first series colour of api/charts.py: its pixels are the chart's data."""


def _blue_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(
        1
        for r, g, b in image.getdata()
        if abs(r - SERIES_BLUE[0]) < 40
        and abs(g - SERIES_BLUE[1]) < 40
        and abs(b - SERIES_BLUE[2]) < 40
    )


async def _period(page: Page, first: str, last: str) -> None:
    await page.get_by_label("From", exact=True).fill(first)
    await page.get_by_label("To", exact=True).fill(last)
    await page.get_by_role("button", name="Show").click()


async def test_a_manager_reads_the_dashboard_and_an_agent_cannot(
    agent: Page, base_url: str, direct_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="dashboard")
    await write_history(services.pool, staff.tenant)
    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.get(
            "/v1/metrics/summary",
            params={"from": "2026-11-02", "to": "2026-11-08"},
            headers={"Authorization": f"Bearer {staff.admin_key}"},
        )
    assert r.status_code == 200, r.text
    expected = r.json()["metrics"]
    assert expected["conversations"] > 0

    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["manager"], PASSWORD)
    await page.get_by_role("button", name="Dashboard").click()
    await expect(page.get_by_role("heading", name="How the desk is doing")).to_be_visible()
    await _period(page, "2026-11-02", "2026-11-08")
    await expect(page.locator("#dash-period")).to_have_text("2026-11-02 to 2026-11-08 (UTC)")
    conversations = page.locator(".dash-card", has_text="Conversations").locator(".value")
    await expect(conversations).to_have_text(str(expected["conversations"]))
    resolved = page.locator(".dash-card", has_text="Resolved by the AI").locator(".value")
    await expect(resolved).to_have_text(f"{round(expected['ai_resolution_rate'] * 100)}%")
    chart = page.locator("#chart-conversations")
    await expect(chart).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"))
    await page.wait_for_function("document.getElementById('chart-conversations').naturalWidth > 0")
    with_data = _blue_pixels(await chart.screenshot())
    assert with_data > 100, with_data

    # A week with nothing in it: the chart is drawn without a series.
    await _period(page, "2026-10-05", "2026-10-11")
    await expect(conversations).to_have_text("0")
    await page.wait_for_function("document.getElementById('chart-conversations').naturalWidth > 0")
    assert _blue_pixels(await chart.screenshot()) < with_data / 10

    # A period the server refuses: said plainly, naming the field.
    await _period(page, "2026-11-09", "2026-11-02")
    await expect(page.locator("#dash-status")).to_contain_text("from:")

    # An agent: no dashboard button, and the API refuses them anyway.
    await page.get_by_role("button", name="Back to the desk").click()
    await page.get_by_role("button", name="Sign out").click()
    await sign_in_as(page, base_url, staff.slug, staff.emails["alice"], PASSWORD)
    await expect(page.locator("#whoami")).to_contain_text("(agent)")
    await expect(page.get_by_role("button", name="Dashboard")).to_be_hidden()
    status = await page.evaluate("fetch('/v1/metrics/summary').then(r => r.status)")
    assert status == 403


LEAKS = [
    "My water heater is leaking all over the floor",
    "Water is leaking from the bottom of my water heater",
    "The hot water tank is leaking water",
    "There is a puddle under my water heater, it leaks",
    "Help, my water heater started leaking",
]
HOURS = [
    "What are your opening hours?",
    "When are you open on weekdays?",
    "What time do you open in the morning?",
    "Are you open on Saturday mornings?",
    "What hours is your office open?",
]
FIX = "Close the cold-water valve above the heater; a plumber is on the way."


async def test_a_manager_finds_the_knowledge_gaps_and_drafts_an_article(
    agent: Page, base_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="gaps")
    async with services.pool.connection() as conn, conn.transaction():
        h = History(conn, staff.tenant.id)
        for i, text in enumerate(LEAKS):
            conv = await h.conversation(
                local(3, 9, 10 * i),
                [
                    (0, "customer", {"text": text}),
                    (1, "handoff", {"reason": "emergency"}),
                    (30, "agent", {"agent": "Alex", "text": FIX}),
                ],
            )
        for i, text in enumerate(HOURS):  # answered: not a gap (and a second cluster)
            await h.conversation(
                local(4, 9, 10 * i), [(0, "customer", {"text": text}), (2, "ai", {})]
            )
        await conn.execute(
            "INSERT INTO kb_misses (id, tenant_id, source, query, conversation_id, created_at)"
            " VALUES (%s, %s, 'chat', 'Do you fix heated towel rails?', %s, %s)",
            (uuid.uuid4(), staff.tenant.id, conv, local(3, 12)),
        )

    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["manager"], PASSWORD)
    await page.get_by_role("button", name="Dashboard").click()
    await _period(page, "2026-11-02", "2026-11-08")
    gaps = page.get_by_role("list", name="Knowledge gaps")
    await expect(page.locator("#gaps-computed")).to_have_text("Not found for this period yet.")
    misses = page.get_by_role("list", name="Questions the knowledge base had nothing for")
    await expect(misses).to_contain_text("Do you fix heated towel rails? · 1 in chat")

    await page.get_by_role("button", name="Find them now").click()
    gap = gaps.locator("> li")
    # The first clustering of a process loads scikit-learn and hdbscan: slow on a busy machine.
    await expect(gap).to_have_count(1, timeout=120_000)  # the leaks; the hours were answered
    await expect(gap).to_contain_text("5 conversations, 5 needed a person")
    label = await gap.locator("strong").text_content()
    assert label in LEAKS
    await gap.get_by_role("button", name="Draft an article").click()
    await expect(gap).to_contain_text("Draft made")

    await page.get_by_role("button", name="Article drafts").click()
    await page.get_by_label("Show").select_option("draft")
    await page.get_by_role("button", name=label).click()
    await expect(page.get_by_label("Article", exact=True)).to_have_value(re.compile(re.escape(FIX)))


async def test_the_ticket_figures_follow_the_team_filter(
    agent: Page, base_url: str, services
) -> None:
    staff = await make_staff(services.pool, prefix="dashteam")
    team = await teams.create_team(services.pool, staff.tenant.id, "Heating")
    # Boiler (Heating): answered in 1 h and resolved in 2 h, inside its 4 h / 8 h SLA. Invoice
    # (no team): never answered, its 4 h first-reply target long past, resolution due later:
    # breached and pending (the week is in the past, so nothing is pending at all).
    async with services.pool.connection() as conn:
        for subject, team_id, hours in (("Boiler", team.id, 2), ("Invoice", None, None)):
            created = local(3, 9)
            await conn.execute(
                "INSERT INTO tickets (tenant_id, status, priority, subject, team_id, created_at,"
                " resolved_at, first_response_at, sla_policy, first_response_due_at,"
                " resolution_due_at) VALUES (%s, %s, 'normal', %s, %s, %s, %s, %s, '{}', %s, %s)",
                (
                    staff.tenant.id, "resolved" if hours else "new", subject, team_id, created,
                    created + timedelta(hours=hours) if hours else None,
                    created + timedelta(hours=1) if hours else None,
                    created + timedelta(hours=4), created + timedelta(hours=8),
                ),
            )  # fmt: skip
    page = agent
    await sign_in_as(page, base_url, staff.slug, staff.emails["manager"], PASSWORD)
    await page.get_by_role("button", name="Dashboard").click()
    await _period(page, "2026-11-02", "2026-11-08")
    tickets = page.get_by_role("region", name="Tickets opened in the period")
    count = tickets.locator(".dash-card", has_text="Tickets").locator(".value")
    await expect(count).to_have_text("2")
    await expect(tickets.locator(".dash-card", has_text="Resolved").locator(".value")).to_have_text(
        "50%"
    )
    slas = page.get_by_role("region", name="SLA of those tickets")

    def sla_card(label: str):
        return slas.locator(".dash-card", has_text=label).locator(".value")

    await expect(sla_card("Tickets with an SLA")).to_have_text("2")
    await expect(sla_card("First reply within SLA")).to_have_text("50%")
    await expect(sla_card("First replies late")).to_have_text("1")
    await expect(sla_card("Resolved within SLA")).to_have_text("50%")
    await expect(sla_card("Resolutions late")).to_have_text("1")
    await page.get_by_label("Team (tickets)").select_option(label="Heating")
    await page.get_by_role("button", name="Show").click()
    await expect(count).to_have_text("1")
    resolve = tickets.locator(".dash-card", has_text="Time to resolve").locator(".value")
    await expect(resolve).to_have_text("2.0 h")
    await expect(sla_card("Tickets with an SLA")).to_have_text("1")
    await expect(sla_card("First reply within SLA")).to_have_text("100%")
    await expect(sla_card("First replies late")).to_have_text("0")
    await expect(sla_card("Resolved within SLA")).to_have_text("100%")
