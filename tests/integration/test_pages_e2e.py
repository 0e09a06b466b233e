"""The widget and the agent console end to end, in headless Chromium against a real server.

One browser context is the customer on ``/demo`` (the widget), another the agent on
``/console``. The server is the real app (offline models, a fresh database with the demo
tenant); the browser reaches it through :class:`tests.support.browser.DroppingProxy`, so a test can
drop the network under the widget. Every wait is on a selector or a text, never a sleep.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from api.app import create_app
from api.ratelimit import RateLimits
from helpdesk import keys
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import Tenant, create_tenant
from kb_pipeline.loaders import demo_kb_path, load_directory
from tests.support.browser import (
    CHROMIUM_ARGS,
    DroppingProxy,
    chromium_path,
    header,
    serve_page,
)
from tests.support.live_api import serve_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The server answers on 2 shared CPUs in CI: be patient, but never sleep.
expect.set_options(timeout=30_000)

# Enough of the demo KB for the review tenant to answer these questions, a fraction of the
# time a full ingest takes.
REVIEW_ARTICLES = {"pricing-overview", "free-estimates", "opening-hours", "service-area"}


@dataclass(frozen=True)
class Desk:
    """One tenant as the pages see it: its widget and agent keys."""

    tenant: Tenant
    widget_key: str
    agent_key: str
    agents: dict[str, str]
    """Agent keys by name: an agent acts as its key's name."""


@pytest.fixture(scope="module")
def api_app(settings, offline_models, database_url, demo) -> Any:
    return create_app(settings, models=offline_models, database_url=database_url)


@pytest.fixture(scope="module")
def api_port(api_app: Any) -> Iterator[int]:
    with serve_app(api_app) as port:
        yield port


@pytest.fixture(scope="module")
def proxy(api_port: int) -> Iterator[DroppingProxy]:
    p = DroppingProxy(api_port)
    yield p
    p.close()


@pytest.fixture(scope="module")
def base_url(proxy: DroppingProxy) -> str:
    """Where the browser goes: the proxy in front of the server."""
    return f"http://127.0.0.1:{proxy.port}"


@pytest.fixture(scope="module")
def direct_url(api_port: int) -> str:
    """The server itself, for actions a test makes outside the browser."""
    return f"http://127.0.0.1:{api_port}"


async def _desk(services: Any, tenant: Tenant) -> Desk:
    widget, _ = await keys.create_key(services.pool, tenant.id, "widget", name="pages-e2e")
    agent, _ = await keys.create_key(services.pool, tenant.id, "agent", name="pages-e2e")
    agents = {
        name: (await keys.create_key(services.pool, tenant.id, "agent", name=name))[0]
        for name in ("Alex", "Sam", "Robin")
    }
    return Desk(tenant, widget, agent, agents)


@pytest.fixture(scope="module")
async def demo_desk(services, demo) -> Desk:
    return await _desk(services, demo)


@pytest.fixture(scope="module")
async def review_desk(services) -> Desk:
    """A tenant whose policy holds every AI draft for a person's approval."""
    slug = f"review-{uuid.uuid4().hex[:8]}"
    tenant = await create_tenant(
        services.pool, slug, "Review Plumbing", TenantPolicy(review_all=True)
    )
    await services.kb.ingest(tenant.id, linked_articles())
    return await _desk(services, tenant)


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


@pytest.fixture(scope="module")
async def linked_desk(services) -> Desk:
    """A tenant whose pricing article names its web page (the others name none)."""
    slug = f"linked-{uuid.uuid4().hex[:8]}"
    tenant = await create_tenant(services.pool, slug, "Linked Plumbing")
    await services.kb.ingest(tenant.id, linked_articles())
    return await _desk(services, tenant)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def customer(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def agent(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()


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
    await page.goto(f"{base_url}/console")
    await page.get_by_label("Agent key").fill(desk.agents[name])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#whoami")).to_have_text(f"Signed in as {name}")


async def open_in_console(page: Page, conversation_id: str) -> None:
    item = page.locator(f'#queue-list [data-conversation-id="{conversation_id}"]')
    await item.click()
    await expect(item).to_have_attribute("aria-current", "true")
    await expect(page.locator("#conv-body")).to_be_visible()


def ai_answers(page: Page) -> Any:
    return page.locator("li.msg.ai[data-message-id]")


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


# ------------------------------------------------------------------------------ tests


async def test_customer_is_answered_handed_to_a_person_and_back_to_the_ai(
    customer: Page, agent: Page, base_url: str, demo_desk: Desk
) -> None:
    await open_widget(customer, base_url, demo_desk)

    # A demo-KB question: streamed over SSE, answered with its sources.
    async with customer.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/messages")
    ) as turn:
        await ask(customer, "How much is your call-out fee?")
    response = await turn.value
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.request.headers["accept"] == "text/event-stream"
    answer = ai_answers(customer).first
    await expect(answer.locator(".sources")).to_be_visible()
    await expect(answer).not_to_have_attribute("aria-busy", "true")
    # The widget shows what the server answered: its text (with the [source-id] markers as
    # numbered references) and every cited source, title and id.
    stored = await stored_answers(customer, base_url, demo_desk)
    assert stored and stored[0]["citations"], "the demo KB question got no cited answer"
    await expect(answer.locator(".text")).to_have_text(rendered(stored[0]))
    await expect(answer.locator(".sources li")).to_have_text(
        [f"{c['title']} ({c['source_id']})" for c in stored[0]["citations"]]
    )
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    await helpful.click()
    await expect(answer.get_by_text("Thanks for the feedback!")).to_be_visible()
    await expect(helpful).to_have_attribute("aria-pressed", "true")

    # Asking for a person: the connecting notice, then a message queued for the agent.
    await ask(customer, "I want to talk to a person")
    await expect(customer.locator(".banner")).to_contain_text("Connecting you to a person")
    await ask(customer, "It is about my invoice from last week")
    await expect(customer.locator("li.msg.customer .note").last).to_have_text("Passed to our team")
    conversation_id = (await session_of(customer, demo_desk))["id"]

    # The agent finds it in the queue with the hand-off context and takes over.
    await sign_in(agent, base_url, demo_desk, "Alex")
    item = agent.locator(f'#queue-list [data-conversation-id="{conversation_id}"]')
    await expect(item).to_contain_text("asked for a person")
    await open_in_console(agent, conversation_id)
    await expect(agent.locator("#handoff-summary")).to_contain_text("talk to a person")
    await expect(agent.locator("#snippets li").first).to_be_visible()
    await expect(agent.locator("#transcript")).to_contain_text(
        "It is about my invoice from last week"
    )
    await agent.get_by_role("button", name="Take over").click()
    await expect(agent.locator("#conv-meta")).to_contain_text("Owner: Alex")
    await expect(customer.locator(".banner")).to_contain_text("You're chatting with Alex")

    # The agent's reply reaches the customer live, once.
    reply = "Hi, I'm Alex from the office. I'll look at that invoice with you now."
    await agent.get_by_label("Reply to the customer").fill(reply)
    await agent.get_by_role("button", name="Send reply").click()
    await expect(customer.locator("li.msg.agent .text")).to_have_text([reply])
    await expect(agent.locator("#transcript li.agent .text")).to_have_text([reply])

    # Handed back: the customer is told, and the AI answers the next question.
    await agent.get_by_role("button", name="Release to AI").click()
    await expect(customer.locator("li.msg.system").last).to_contain_text("back with")
    await expect(customer.locator(".banner")).to_be_hidden()
    await ask(customer, "What are your opening hours on Saturday?")
    second = ai_answers(customer).nth(1)
    await expect(second.locator(".sources")).to_be_visible()
    await expect(ai_answers(customer)).to_have_count(2)
    stored = await stored_answers(customer, base_url, demo_desk)
    await expect(second.locator(".text")).to_have_text(rendered(stored[1]))

    # Closed by the agent: the customer is told and can start afresh.
    await agent.get_by_role("button", name="Close conversation").click()
    await expect(agent.locator("#conv-meta")).to_contain_text("Status: closed")
    await expect(customer.locator(".banner")).to_contain_text("This conversation is closed.")
    await expect(customer.get_by_label("Your message")).to_be_disabled()
    await customer.get_by_role("button", name="Start a new conversation").click()
    await expect(customer.locator("li.msg[data-message-id]")).to_have_count(0)
    await ask(customer, "Do you offer free estimates?")
    await expect(ai_answers(customer)).to_have_count(1)
    assert (await session_of(customer, demo_desk))["id"] != conversation_id
    await expect(customer.locator("[role=alert]")).to_be_hidden()


async def test_held_drafts_are_edited_or_approved_from_the_console(
    browser: Browser, customer: Page, agent: Page, base_url: str, review_desk: Desk
) -> None:
    await open_widget(customer, base_url, review_desk)
    await ask(customer, "How much is your call-out fee?")
    await expect(customer.locator(".banner")).to_contain_text("checking this answer")
    conversation_id = (await session_of(customer, review_desk))["id"]

    await sign_in(agent, base_url, review_desk, "Sam")
    item = agent.locator(f'#queue-list [data-conversation-id="{conversation_id}"]')
    await expect(item.locator(".kind")).to_have_text("Approval")
    await open_in_console(agent, conversation_id)
    draft = agent.get_by_label("Draft answer")
    await expect(draft).to_have_value(re.compile(r"\S"))
    # the agent can open the page a cited source came from
    await expect(agent.locator("#draft-sources a")).to_have_attribute("href", PRICING_PAGE)
    await expect(agent.get_by_role("button", name="Send edited version")).to_be_disabled()
    edited = "Our call-out fee is $89 in regular hours and includes 30 minutes of diagnosis."
    await draft.fill(edited)
    await agent.get_by_role("button", name="Send edited version").click()

    # The edited text is what the customer gets, as the assistant's answer with its sources.
    await expect(ai_answers(customer).first.locator(".text")).to_have_text(edited)
    await expect(ai_answers(customer).first.locator(".sources")).to_be_visible()
    await expect(customer.locator(".banner")).to_be_hidden()
    await expect(agent.locator("#approval")).to_be_hidden()
    sent = agent.locator("#transcript li.line.ai").first
    await expect(sent.locator(".cites a")).to_have_attribute("href", PRICING_PAGE)
    await expect(sent.locator(".cites a")).to_have_attribute("rel", "noopener noreferrer")

    # The next draft: a second agent's view is stale (its live updates and timers stopped)
    # when the first approves; its own approve then gets the conflict, said plainly.
    await ask(customer, "What are your opening hours?")
    await expect(customer.locator(".banner")).to_contain_text("checking this answer")
    await expect(agent.locator("#approval")).to_be_visible()
    held = await agent.get_by_label("Draft answer").input_value()

    late_context = await browser.new_context()
    try:
        late = await late_context.new_page()
        await late.route("**/v1/agent/events", lambda route: route.abort())
        await late_context.clock.install()
        await late_context.clock.pause_at(1_900_000_000_000)
        await sign_in(late, base_url, review_desk, "Robin")
        await open_in_console(late, conversation_id)
        await expect(late.locator("#approval")).to_be_visible()

        await agent.get_by_role("button", name="Approve and send").click()
        await expect(ai_answers(customer)).to_have_count(2)
        approved = (await stored_answers(customer, base_url, review_desk))[1]
        assert approved["text"] == held.strip()  # sent as drafted
        await expect(ai_answers(customer).nth(1).locator(".text")).to_have_text(rendered(approved))

        await late.get_by_role("button", name="Approve and send").click()
        await expect(late.locator("#conv-alert")).to_contain_text(
            "Someone else already handled this"
        )
        await expect(late.locator("#approval")).to_be_hidden()  # the view was refreshed
    finally:
        await late_context.close()
    await expect(ai_answers(customer)).to_have_count(2)  # approved once, sent once


async def test_widget_reconnects_after_a_drop_without_losing_or_repeating_messages(
    customer: Page, base_url: str, direct_url: str, proxy: DroppingProxy, demo_desk: Desk
) -> None:
    await open_widget(customer, base_url, demo_desk)
    await ask(customer, "I want to talk to a person")
    await expect(customer.locator(".banner")).to_contain_text("Connecting you to a person")
    session = await session_of(customer, demo_desk)
    conversation_id = session["id"]
    events_path = f"/v1/conversations/{conversation_id}/events"

    # The subscription has delivered the hand-off: note how far the widget got.
    await customer.wait_for_function(
        "k => (JSON.parse(localStorage.getItem('deskgraph:' + k)) || {}).lastEventId > 0",
        arg=demo_desk.widget_key,
    )
    seen_before_drop = int((await session_of(customer, demo_desk))["lastEventId"])
    connects_before = len(proxy.requests_to(events_path))

    proxy.cut()
    try:
        await expect(customer.locator(".conn")).to_contain_text("Reconnecting")
        # The agent answers while the customer's network is down.
        reply = "Hello! Jamie here; I can help with that."
        async with httpx.AsyncClient(base_url=direct_url, timeout=60) as client:
            r = await client.post(
                f"/v1/agent/conversations/{conversation_id}/reply",
                json={"text": reply},
                headers={"Authorization": f"Bearer {demo_desk.agent_key}"},
            )
            assert r.status_code == 200, r.text
    finally:
        proxy.restore()

    await expect(customer.locator("li.msg.agent .text")).to_have_text([reply])
    await expect(customer.locator(".conn")).to_have_text("")
    reconnects = proxy.requests_to(events_path)[connects_before:]
    assert reconnects, "the widget never reconnected"
    assert int(header(reconnects[-1], "Last-Event-ID") or 0) >= seen_before_drop
    # The token travels in a header, never in the URL.
    assert all("token=" not in r.split("\r\n", 1)[0] for r in reconnects)

    # A reload resumes the same conversation: same messages, each once, and still live.
    messages_before = await customer.locator("li.msg[data-message-id]").count()
    await customer.reload()
    await customer.get_by_role("button", name=re.compile("Open chat")).click()
    await expect(customer.locator("li.msg.agent .text")).to_have_text([reply])
    await expect(customer.locator("li.msg[data-message-id]")).to_have_count(messages_before)
    assert (await session_of(customer, demo_desk))["id"] == conversation_id
    await ask(customer, "Thanks Jamie, my boiler is leaking")
    await expect(customer.locator("li.msg.customer .text").last).to_have_text(
        "Thanks Jamie, my boiler is leaking"
    )
    async with httpx.AsyncClient(base_url=direct_url, timeout=60) as client:
        r = await client.post(
            f"/v1/agent/conversations/{conversation_id}/reply",
            json={"text": "Please turn off the water main; a plumber is on the way."},
            headers={"Authorization": f"Bearer {demo_desk.agent_key}"},
        )
        assert r.status_code == 200, r.text
    await expect(customer.locator("li.msg.agent .text")).to_have_text(
        [reply, "Please turn off the water main; a plumber is on the way."]
    )


async def test_widget_is_keyboard_operable_isolated_and_quiet_until_used(
    customer: Page, base_url: str, proxy: DroppingProxy, demo_desk: Desk
) -> None:
    api_calls = len(proxy.requests_to("/v1/"))
    await customer.goto(f"{base_url}/demo?key={demo_desk.widget_key}")
    launcher = customer.get_by_role("button", name=re.compile("Open chat"))
    await launcher.focus()
    await customer.keyboard.press("Enter")
    panel = customer.get_by_role("dialog", name="Support")
    await expect(panel).to_be_visible()
    await expect(customer.get_by_label("Your message")).to_be_focused()
    await expect(customer.get_by_role("log", name="Conversation")).to_have_attribute(
        "aria-live", "polite"
    )
    await customer.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(customer.get_by_role("button", name=re.compile("Open chat"))).to_be_focused()
    # The host page's Georgia does not leak into the widget's shadow root.
    font = await customer.get_by_label("Your message").evaluate(
        "e => getComputedStyle(e).fontFamily"
    )
    assert "Georgia" not in font
    # Nothing reaches the API before the customer writes: a page view costs no conversation.
    assert len(proxy.requests_to("/v1/")) == api_calls


async def test_a_message_that_could_not_be_sent_says_so_and_is_sent_once_on_retry(
    customer: Page, base_url: str, proxy: DroppingProxy, demo_desk: Desk
) -> None:
    await open_widget(customer, base_url, demo_desk)
    await ask(customer, "Do you offer free estimates?")
    await expect(ai_answers(customer)).to_have_count(1)

    proxy.cut()
    try:
        await ask(customer, "How do I book an appointment?")
        await expect(customer.get_by_role("alert")).to_contain_text("couldn't reach")
        failed = customer.locator("li.msg.customer.failed")
        await expect(failed.locator(".note")).to_contain_text("Not sent")
    finally:
        proxy.restore()
    await failed.get_by_role("button", name="Retry").click()
    await expect(ai_answers(customer)).to_have_count(2)
    await expect(customer.get_by_role("alert")).to_be_hidden()
    await expect(customer.locator("li.msg.customer .text")).to_have_text(
        ["Do you offer free estimates?", "How do I book an appointment?"]
    )
    stored = await stored_answers(customer, base_url, demo_desk)
    assert len(stored) == 2


async def test_a_message_over_the_rate_limit_is_kept_and_sent_on_retry(
    customer: Page, base_url: str, api_app: Any, demo_desk: Desk
) -> None:
    await open_widget(customer, base_url, demo_desk)
    unlimited = api_app.state.limits
    api_app.state.limits = RateLimits.per_minute(0, 1, 0)  # the server's real 429 path
    try:
        await ask(customer, "Do you offer free estimates?")
        await expect(ai_answers(customer)).to_have_count(1)
        await ask(customer, "How do I book an appointment?")
        await expect(customer.get_by_role("alert")).to_contain_text("sending messages quickly")
        failed = customer.locator("li.msg.customer.failed")
        await expect(failed.locator(".note")).to_contain_text("Not sent")
    finally:
        api_app.state.limits = unlimited
    await failed.get_by_role("button", name="Retry").click()
    await expect(ai_answers(customer)).to_have_count(2)
    await expect(customer.locator("li.msg.customer .text")).to_have_text(
        ["Do you offer free estimates?", "How do I book an appointment?"]
    )
    assert len(await stored_answers(customer, base_url, demo_desk)) == 2


async def test_a_refused_widget_key_is_explained_to_the_customer_and_the_site_owner(
    customer: Page, base_url: str
) -> None:
    errors: list[str] = []
    customer.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await customer.goto(f"{base_url}/demo?key=wk_revokedOrNeverIssued123")
    await customer.get_by_role("button", name=re.compile("Open chat")).click()
    await ask(customer, "Hello?")
    await expect(customer.get_by_role("alert")).to_have_text(
        "Sorry, chat isn't available on this page right now."
    )
    await expect(customer.locator("li.msg.customer.failed .note")).to_have_text("Not sent.")
    assert any("widget key was refused" in e for e in errors)


async def test_widget_works_embedded_on_another_site_under_a_strict_csp(
    customer: Page, base_url: str, demo_desk: Desk
) -> None:
    # A customer's own site on another origin (localhost, where the API is 127.0.0.1) that
    # allows scripts and connections to the support host only, and no inline styles at all.
    csp = f"default-src 'none'; script-src {base_url}; connect-src {base_url}; style-src 'self'"
    html = (
        "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
        f'<script src="{base_url}/widget.js" data-key="{demo_desk.widget_key}"'
        ' data-title="Shop help" async></script></body></html>'
    )
    violations: list[str] = []
    customer.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    with serve_page(html, {"Content-Security-Policy": csp}) as site:
        await customer.goto(f"{site}/shop")
        await customer.get_by_role("button", name="Open chat with Shop help").click()
        await ask(customer, "How much is your call-out fee?")
        answer = ai_answers(customer).first
        await expect(answer.locator(".sources")).to_be_visible()
        # Styled although inline styles are forbidden: the launcher is the widget's round button.
        radius = await customer.locator(".launcher").evaluate(
            "e => getComputedStyle(e).borderRadius"
        )
        assert radius == "50%"
        assert violations == []
        assert customer.url.startswith(site) and not site.startswith(base_url)


async def test_a_source_with_a_web_page_is_a_safe_link_and_the_others_plain_text(
    customer: Page, base_url: str, linked_desk: Desk
) -> None:
    await open_widget(customer, base_url, linked_desk)
    await ask(customer, "How much is your call-out fee?")
    answer = ai_answers(customer).first
    await expect(answer.locator(".sources")).to_be_visible()
    [stored] = await stored_answers(customer, base_url, linked_desk)
    cited = {c["source_id"]: c.get("url") for c in stored["citations"]}
    assert cited.get("pricing-overview") == PRICING_PAGE, cited
    link = answer.locator(".sources a")
    await expect(link).to_have_count(1)  # only the article with a web page is a link
    await expect(link).to_have_attribute("href", PRICING_PAGE)
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(answer.locator(".sources li")).to_have_count(len(cited))

    # Whatever a server (or something between it and the browser) sends, a source is a link
    # only to an http(s) page, and its title is text, never markup.
    hostile = [
        {
            "source_id": "a",
            "title": '<img src=x onerror="window.__pwned=1">',
            "url": "javascript:window.__pwned=1",
        },
        {
            "source_id": "b",
            "title": "Data",
            "url": "data:text/html,<script>window.__pwned=1</script>",
        },
        {"source_id": "c", "title": "Relative", "url": "//evil.example/x"},
        {"source_id": "d", "title": "Fine", "url": "https://brightwater.example/help/fine"},
    ]
    message_id = str(uuid.uuid4())
    body = "".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n"
        for name, data in (
            (
                "message.completed",
                {
                    "message_id": message_id,
                    "sender": "ai",
                    "citations": hostile,
                    "text": "Four sources [a] [b] [c] [d]",
                    "confidence": 0.9,
                    "declined": False,
                },
            ),
            ("done", {}),
        )
    )

    async def crafted(route: Any) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        await route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

    await customer.route("**/v1/conversations/*/messages", crafted)
    await ask(customer, "And the weekend rate?")
    second = customer.locator(f'li.msg.ai[data-message-id="{message_id}"]')
    await expect(second.locator(".sources li")).to_have_count(4)
    await expect(second.locator(".sources li").first).to_have_text(
        '<img src=x onerror="window.__pwned=1"> (a)'
    )
    await expect(second.locator(".sources img")).to_have_count(0)
    links = second.locator(".sources a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://brightwater.example/help/fine")
    await second.locator(".sources li").first.click()
    assert await customer.evaluate("() => window.__pwned") is None


async def test_no_page_asks_for_a_resource_that_is_not_there(
    customer: Page, base_url: str, demo_desk: Desk
) -> None:
    missing: list[str] = []
    customer.on("response", lambda r: r.status >= 400 and missing.append(f"{r.status} {r.url}"))
    customer.on("requestfailed", lambda r: missing.append(f"failed {r.url}"))
    for path in ("/console", f"/demo?key={demo_desk.widget_key}"):
        await customer.goto(f"{base_url}{path}", wait_until="load")
        # A page without an icon link makes the browser ask for /favicon.ico, which no route
        # serves (headless Chromium may not ask at all, so the link is checked, not awaited).
        icons = await customer.eval_on_selector_all(
            "link[rel~=icon]", "links => links.map(l => l.href)"
        )
        assert icons, f"{path} names no icon"
        for icon in icons:
            r = await customer.request.get(icon)
            assert r.status == 200 and r.headers["content-type"] == "image/svg+xml", icon
    await open_widget(customer, base_url, demo_desk)
    assert missing == []
