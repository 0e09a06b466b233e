"""The widget and the agent console end to end, in headless Chromium against a real server.

One browser context is the customer on ``/demo`` (the widget), another the agent on
``/console``. The server is the real app (offline models, a fresh database with the demo
tenant); the browser reaches it through :class:`tests.support.browser.DroppingProxy`, so a test can
drop the network under the widget. Every wait is on a selector or a text, never a sleep.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from api.ratelimit import RateLimits
from tests.support.browser import (
    DroppingProxy,
    header,
    serve_page,
)
from tests.support.pages import (
    PRICING_PAGE,
    Desk,
    ai_answers,
    ask,
    open_in_console,
    open_widget,
    rendered,
    session_of,
    sign_in,
    stored_answers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The server answers on 2 shared CPUs in CI: be patient, but never sleep.
expect.set_options(timeout=30_000)

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
    await expect(agent.locator("#conv-meta")).to_contain_text(f"Owner: {demo_desk.email('Alex')}")
    await expect(customer.locator(".banner")).to_contain_text(
        f"You're chatting with {demo_desk.email('Alex')}"
    )

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
    # Nothing but the business's greeting (GET /v1/widget, on opening) reaches the API before
    # the customer writes: a page view costs no conversation.
    calls = proxy.requests_to("/v1/")[api_calls:]
    assert all(c.startswith("GET /v1/widget") for c in calls), calls
    # the greeting is the business's own
    await customer.keyboard.press("Enter")
    await expect(customer.get_by_text("I'm Brightwater's virtual assistant")).to_be_visible()


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
