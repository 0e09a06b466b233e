"""Signing in to the console in headless Chromium: the demo agent's credentials as ``make run``
writes them to ``demo.json``, the session cookie the page cannot read, presence, sign-out, a
wrong password, a one-time reset link, and the API-key path kept for integrations."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.async_api import Page, expect

from cli.demo import ensure_demo_users
from tests.support.pages import Desk, sign_in_as, sign_in_with_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)


async def test_the_demo_agent_signs_in_with_the_credentials_of_demo_json(
    agent: Page, base_url: str, direct_url: str, services, demo, tmp_path
) -> None:
    # What `make run` does: the demo admin and agent, their passwords kept in demo.json.
    staff = await ensure_demo_users(services, demo, tmp_path)
    (tmp_path / "demo.json").write_text(json.dumps({"users": staff}))
    again = await ensure_demo_users(services, demo, tmp_path)
    assert again == staff  # a second run keeps them
    who = json.loads((tmp_path / "demo.json").read_text())["users"]["agent"]

    await sign_in_as(agent, base_url, "demo", who["email"], who["password"])
    await expect(agent.locator("#whoami")).to_have_text(f"Signed in as {who['name']} (agent)")
    await expect(agent.locator("#queue-panel")).to_be_visible()
    # The session is an HttpOnly cookie: the page's scripts cannot read it.
    cookies = await agent.context.cookies()
    session = next(c for c in cookies if c["name"] == "deskgraph_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert "deskgraph_session" not in await agent.evaluate("document.cookie")
    assert not await agent.evaluate("localStorage.getItem('deskgraph.console.agentKey')")

    # Presence, set from the header, is what the server reads back.
    async with agent.expect_response(lambda r: r.url.endswith("/v1/agent/me/presence")) as put:
        await agent.get_by_label("Status").select_option("away")
    assert (await put.value).status == 200
    me = await agent.evaluate("fetch('/v1/agent/me').then(r => r.json())")
    assert me["presence"] == "away" and me["name"] == who["email"]

    # A reload keeps the session; the tenant is remembered for next time.
    await agent.reload()
    await expect(agent.locator("#whoami")).to_have_text(f"Signed in as {who['name']} (agent)")

    await agent.get_by_role("button", name="Sign out").click()
    await expect(agent.get_by_label("Email")).to_be_visible()
    async with httpx.AsyncClient(base_url=direct_url) as client:
        r = await client.get(
            "/v1/agent/me", headers={"Cookie": f"deskgraph_session={session['value']}"}
        )
    assert r.status_code == 401  # ended on the server, not only forgotten by the page
    await agent.goto(f"{base_url}/console")
    await expect(agent.get_by_label("Business (tenant)")).to_have_value("demo")


async def test_a_wrong_password_is_said_plainly(
    agent: Page, base_url: str, review_desk: Desk
) -> None:
    email, _ = review_desk.users["Robin"]
    await sign_in_as(agent, base_url, review_desk.tenant.slug, email, "not my password")
    await expect(agent.locator("#signin-error")).to_have_text(
        "The business, email or password is wrong."
    )
    await expect(agent.locator("#desk")).to_be_hidden()


async def test_a_reset_link_sets_a_new_password_in_the_console(
    agent: Page, base_url: str, direct_url: str, review_desk: Desk, services
) -> None:
    from helpdesk import password_resets, users

    email, _ = review_desk.users["Robin"]
    user = await users.get_user_by_email(services.pool, review_desk.tenant.id, email)
    token = await password_resets.issue_reset(services.pool, user, 600)
    url = password_resets.reset_url(base_url, review_desk.tenant.slug, token)
    await agent.goto(url)
    await agent.get_by_label("New password").fill("robin's new passphrase")
    await agent.get_by_role("button", name="Set password").click()
    await expect(agent.locator("#signin-error")).to_have_text(
        "Your password is set. Sign in with it."
    )
    assert "#reset" not in agent.url  # the token does not stay in the address bar
    await agent.get_by_label("Email").fill(email)
    await agent.get_by_label("Password", exact=True).fill("robin's new passphrase")
    await agent.get_by_role("button", name="Sign in", exact=True).click()
    await expect(agent.locator("#whoami")).to_have_text("Signed in as Robin (agent)")
    # Put the shared test password back for the other page tests.
    await users.set_password(
        services.pool, review_desk.tenant.id, user.id, review_desk.users["Robin"][1]
    )


async def test_an_agent_key_still_signs_in_for_integrations(
    agent: Page, base_url: str, demo_desk: Desk
) -> None:
    await sign_in_with_key(agent, base_url, demo_desk, "Alex")
    await expect(agent.locator("#presence")).to_be_hidden()  # a key has no presence
    await agent.get_by_role("button", name="Sign out").click()
    await expect(agent.get_by_label("Email")).to_be_visible()
    assert not await agent.evaluate("localStorage.getItem('deskgraph.console.agentKey')")
    assert re.search(r"/console", agent.url)
