"""What the page tests share: tenants as the pages see them ("desks", with their keys) and the
steps a customer or an agent takes in a page. Their fixtures (the app behind a dropping proxy,
the desks, the browser) are in ``tests/integration/pages/conftest.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Page, expect

from helpdesk import keys, users
from helpdesk.errors import Conflict
from helpdesk.tenants import Tenant
from kb_pipeline.loaders import demo_kb_path, load_directory

# Enough of the demo KB for the review tenant to answer these questions, a fraction of the
# time a full ingest takes.
REVIEW_ARTICLES = {"pricing-overview", "free-estimates", "opening-hours", "service-area"}


@dataclass(frozen=True)
class Desk:
    """One tenant as the pages see it: its widget and agent keys, and its staff accounts."""

    tenant: Tenant
    widget_key: str
    agent_key: str
    agents: dict[str, str]
    """Agent keys by name: an agent acts as its key's name."""
    users: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    """Agent accounts by first name: (email, password). A user acts as their email."""

    def email(self, name: str) -> str:
        """The email of the agent account called ``name``."""
        return self.users[name][0]


AGENT_PASSWORD = "correct horse battery"


async def _desk(services: Any, tenant: Tenant) -> Desk:
    widget, _ = await keys.create_key(services.pool, tenant.id, "widget", name="pages-e2e")
    agent, _ = await keys.create_key(services.pool, tenant.id, "agent", name="pages-e2e")
    agents = {
        name: (await keys.create_key(services.pool, tenant.id, "agent", name=name))[0]
        for name in ("Alex", "Sam", "Robin")
    }
    accounts = {}
    for name in ("Alex", "Sam", "Robin"):
        email = f"{name.lower()}@{tenant.slug}.example"
        try:
            await users.create_user(
                services.pool, tenant.id, email, name, "agent", password=AGENT_PASSWORD
            )
        except Conflict:  # the demo tenant's, made by another module's fixture
            user = await users.get_user_by_email(services.pool, tenant.id, email)
            await users.set_password(services.pool, tenant.id, user.id, AGENT_PASSWORD)
        accounts[name] = (email, AGENT_PASSWORD)
    return Desk(tenant, widget, agent, agents, accounts)


PRICING_PAGE = "https://brightwater.example/help/pricing"


def linked_articles() -> list[Any]:
    """``REVIEW_ARTICLES``; the pricing article names its web page (the others name none)."""
    articles = [
        dataclasses.replace(a, url=PRICING_PAGE) if a.source_id == "pricing-overview" else a
        for a in load_directory(demo_kb_path())
        if a.source_id in REVIEW_ARTICLES
    ]
    assert len(articles) == len(REVIEW_ARTICLES)
    return articles


# ------------------------------------------------------------------------------ page helpers


async def open_widget(page: Page, base_url: str, desk: Desk) -> None:
    await page.goto(f"{base_url}/demo?key={desk.widget_key}")
    await page.get_by_role("button", name=re.compile("Open chat")).click()
    await expect(page.get_by_label("Your message")).to_be_focused()


async def ask(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")


async def session_of(page: Page, desk: Desk) -> dict[str, Any]:
    """What the widget keeps in localStorage: conversation id, token, last event id."""
    raw = await page.evaluate("k => localStorage.getItem('deskgraph:' + k)", desk.widget_key)
    assert raw, "the widget stored no conversation"
    return json.loads(raw)


async def sign_in(page: Page, base_url: str, desk: Desk, name: str) -> None:
    """Sign in to the console as the agent account ``name`` (tenant from ``?tenant=``)."""
    email, password = desk.users[name]
    await sign_in_as(page, base_url, desk.tenant.slug, email, password)
    await expect(page.locator("#whoami")).to_have_text(f"Signed in as {name} (agent)")


async def sign_in_as(page: Page, base_url: str, slug: str, email: str, password: str) -> None:
    """Fill the console's sign-in form (the tenant field prefilled from the URL)."""
    await page.goto(f"{base_url}/console?tenant={slug}")
    await expect(page.get_by_label("Business (tenant)")).to_have_value(slug)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def sign_in_with_key(page: Page, base_url: str, desk: Desk, name: str) -> None:
    """Sign in with the agent key named ``name`` (the integrations' path)."""
    await page.goto(f"{base_url}/console")
    await page.get_by_text("Use an API key instead").click()
    await page.get_by_label("Agent key").fill(desk.agents[name])
    await page.get_by_role("button", name="Use this key").click()
    await expect(page.locator("#whoami")).to_have_text(f"Signed in as {name}")


async def open_in_console(page: Page, conversation_id: str) -> None:
    item = page.locator(f'#queue-list [data-conversation-id="{conversation_id}"]')
    await item.click()
    await expect(item).to_have_attribute("aria-current", "true")
    await expect(page.locator("#conv-body")).to_be_visible()


def ai_answers(page: Page) -> Any:
    """The AI's finished answers: a bubble is ``aria-busy`` while its tokens stream, which
    arrive before the answer is stored, so a count of finished ones matches the server's."""
    return page.locator("li.msg.ai[data-message-id]:not([aria-busy])")


async def stored_answers(page: Page, base_url: str, desk: Desk) -> list[dict[str, Any]]:
    """The AI answers the server stored for the widget's conversation, oldest first."""
    session = await session_of(page, desk)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.get(
            f"/v1/conversations/{session['id']}/messages",
            headers={"Authorization": f"Bearer {session['token']}"},
        )
    assert r.status_code == 200, r.text
    return [m for m in r.json()["messages"] if m["sender"] == "ai"]


def rendered(message: dict[str, Any]) -> str:
    """An answer's text as the widget shows it: each cited ``[source-id]`` becomes ``[n]``."""
    ids = [c["source_id"] for c in message["citations"]]

    def ref(m: re.Match[str]) -> str:
        if m.group(2) not in ids:
            return m.group(0)
        return (" " if m.group(1) else "") + f"[{ids.index(m.group(2)) + 1}]"

    return re.sub(r"(\s*)\[([a-z0-9][a-z0-9._-]*)\]", ref, message["text"], flags=re.IGNORECASE)
