"""The widget's contact form in headless Chromium against the real server: the desk asks for
the customer's details with a ``contact.request`` event (logged by a hand-off that finds nobody
online, or directly through :func:`helpdesk.contacts.request_contact`), the customer
fills in name and email, a bad email is explained, and the conversation and its ticket end up
linked to the contact an agent can reach."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from helpdesk import teams, users
from helpdesk.contacts import request_contact
from helpdesk.identity import ensure_identity_secret, sign_user
from helpdesk.tenancy import tenant_scope
from tests.support.pages import Desk, ask, open_in_console, open_widget, session_of, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)

ASKED = "Nobody is in right now. Leave your email and we'll write back."


async def _agent_get(direct_url: str, desk: Desk, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=direct_url, timeout=60) as client:
        r = await client.get(path, headers={"Authorization": f"Bearer {desk.agent_key}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_customer_leaves_name_and_email_when_nobody_is_in(
    customer: Page, agent: Page, base_url: str, direct_url: str, services: Any, demo_desk: Desk
) -> None:
    # Nobody online: every account of the demo set offline (other modules sign some in).
    tenant_id = demo_desk.tenant.id
    for user in await users.list_users(services.pool, tenant_id):
        await teams.set_presence(services.pool, tenant_id, user.id, "offline")
    await open_widget(customer, base_url, demo_desk)
    await ask(customer, "I want to talk to a person")
    await expect(customer.locator(".banner")).to_contain_text("Connecting you to a person")
    conversation_id = uuid.UUID((await session_of(customer, demo_desk))["id"])
    # The hand-off itself asks for the customer's details (graph/nodes/handoff.py).
    asked = services.prompts.reply("contact_request", demo_desk.tenant.business)
    contact_form = customer.get_by_role("form", name="Your contact details")
    await expect(contact_form).to_be_visible()
    await expect(contact_form).to_contain_text(asked)

    await customer.get_by_label("Your name").fill("Robin Reach")
    await customer.get_by_label("Your email").fill("robin at example")
    await customer.get_by_role("button", name="Send my details").click()
    await expect(contact_form.get_by_role("alert")).to_contain_text("check your email address")
    await expect(customer.get_by_label("Your email")).to_be_focused()

    email = f"robin-{uuid.uuid4().hex[:6]}@example.com"
    await customer.get_by_label("Your email").fill(email.upper())
    async with customer.expect_response(lambda r: r.url.endswith("/contact")) as posted:
        await customer.get_by_role("button", name="Send my details").click()
    assert (await posted.value).status == 200
    await expect(customer.locator("li.contact-card")).to_have_text(
        f"Thanks, we'll reach you at {email}."
    )
    await expect(contact_form).to_have_count(0)

    # The agent reaches the customer from the conversation and from its ticket.
    detail = await _agent_get(direct_url, demo_desk, f"/v1/agent/conversations/{conversation_id}")
    assert detail["contact"]["email"] == email and detail["contact"]["name"] == "Robin Reach"
    ticket = await _agent_get(direct_url, demo_desk, f"/v1/agent/tickets/{detail['ticket']['id']}")
    assert ticket["contact_id"] == detail["contact"]["id"]
    # ... and sees them beside the conversation in the console.
    await sign_in(agent, base_url, demo_desk, "Robin")
    await open_in_console(agent, str(conversation_id))
    await expect(agent.locator("#contact-email")).to_have_text(email)
    await expect(agent.locator("#contact-name")).to_have_text("Robin Reach")
    await expect(agent.locator("#contact-history")).to_have_text("First conversation")

    # Asked again in this conversation (the event re-logged under another key): the widget
    # already has the details and does not ask twice.
    async with tenant_scope(services.pool, tenant_id) as conn:
        seq = await request_contact(
            conn,
            tenant_id,
            conversation_id,
            reason="nobody_online",
            message=ASKED,
            dedupe_key="nobody-online:2",
        )
    await customer.wait_for_function(
        "([key, seq]) => JSON.parse(localStorage.getItem('deskgraph:' + key)).lastEventId >= seq",
        arg=[demo_desk.widget_key, seq],
    )
    await expect(contact_form).to_have_count(0)
    await expect(customer.locator("li.contact-card")).to_have_count(1)


async def test_the_page_can_offer_the_form_before_any_message(
    customer: Page, base_url: str, direct_url: str, demo_desk: Desk
) -> None:
    await open_widget(customer, base_url, demo_desk)
    await customer.evaluate("window.DeskgraphWidget.offerContact()")
    await customer.get_by_label("Your email").fill("early-bird@example.com")
    await customer.get_by_role("button", name="Send my details").click()
    await expect(customer.locator("li.contact-card")).to_have_text(
        "Thanks, we'll reach you at early-bird@example.com."
    )
    # Submitting started the conversation, which is linked to the contact.
    conversation_id = (await session_of(customer, demo_desk))["id"]
    detail = await _agent_get(direct_url, demo_desk, f"/v1/agent/conversations/{conversation_id}")
    assert detail["contact"]["email"] == "early-bird@example.com"


async def test_a_signed_in_customer_is_identified_and_a_stale_identity_is_served_anonymously(
    browser: Any, base_url: str, direct_url: str, services: Any, demo_desk: Desk
) -> None:
    secret, _ = await ensure_identity_secret(services.pool, demo_desk.tenant.id)
    email = f"signed-{uuid.uuid4().hex[:6]}@example.com"

    async def chat_as(user: dict[str, Any]) -> dict[str, Any]:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await open_widget(page, base_url, demo_desk)
            # What the business's page does with what its server signed.
            await page.evaluate(
                "identity => window.DeskgraphWidget.identify(identity)",
                {"user": user, "signature": sign_user(secret, user)},
            )
            await ask(page, "Hello there")
            await expect(page.locator("li.msg.ai[data-message-id]")).to_have_count(1)
            cid = (await session_of(page, demo_desk))["id"]
        finally:
            await context.close()
        return await _agent_get(direct_url, demo_desk, f"/v1/agent/conversations/{cid}")

    fresh = {"email": email, "name": "Sig Ned", "iat": int(time.time())}
    detail = await chat_as(fresh)
    assert detail["contact"]["email"] == email and detail["contact"]["verified"] is True

    # Signed an hour ago: refused by the server, so the widget serves the customer anonymously.
    stale = {**fresh, "iat": int(time.time()) - 3600}
    assert (await chat_as(stale))["contact"] is None
