"""A question asked while a draft is being checked, in the widget and the console (headless
Chromium, real server): the widget says what is true and keeps the last message in view, the
console shows the new message with the held draft and can find the conversation afterwards
(issue 19, items 2, 10, 12, 13, 14)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.pages import (
    Desk,
    ai_answers,
    ask,
    open_in_console,
    open_widget,
    session_of,
    sign_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Q1 = "How much is your call-out fee?"
Q2 = "What are your opening hours?"


async def _at_bottom(page: Page) -> bool:
    gap: float = await page.evaluate(
        """() => {
          const log = document.querySelector('[data-deskgraph-widget]').shadowRoot
            .querySelector('.log')
          return log.scrollHeight - log.scrollTop - log.clientHeight
        }"""
    )
    return gap < 2


async def test_a_question_asked_during_a_review_is_shown_truthfully_and_answered_after_it(
    browser: Browser,
    agent: Page,
    base_url: str,
    review_desk: Desk,
) -> None:
    # A short window: a few messages fill the log, so a banner would hide the last one.
    context = await browser.new_context(viewport={"width": 900, "height": 430})
    try:
        customer = await context.new_page()
        await open_widget(customer, base_url, review_desk)
        for text in ("Hi there", "Thanks"):
            await ask(customer, text)
            await expect(ai_answers(customer)).to_have_count(1 if text == "Hi there" else 2)
        await ask(customer, Q1)
        banner = customer.locator(".banner")
        await expect(banner).to_have_text("A team member is checking this answer before it's sent.")
        assert await _at_bottom(customer), "the banner pushed the last message out of view"

        await ask(customer, Q2)
        await expect(banner).to_contain_text("your new message will be answered after it")
        await expect(banner).not_to_contain_text("Connecting")
        asked = customer.locator("li.msg.customer").last
        await expect(asked.locator(".note")).to_have_text(
            "Will be answered after the answer being checked"
        )
        assert await _at_bottom(customer)
        cid = (await session_of(customer, review_desk))["id"]

        # The queue card: the question under review, the new message, the reason in words.
        await sign_in(agent, base_url, review_desk, "Sam")
        card = agent.locator(f'#queue-list [data-conversation-id="{cid}"]')
        await expect(card.locator(".last")).to_have_text(f"\u201c{Q1}\u201d")
        await expect(card.locator(".newer")).to_contain_text("1 new message since this draft")
        await expect(card.locator(".detail")).to_have_text(
            "Your policy: every answer is checked by a person"
        )
        await open_in_console(agent, cid)
        await expect(agent.locator("#approval-question")).to_have_text(Q1)
        await expect(agent.locator("#approval-newer")).to_contain_text("1 new message")
        await expect(agent.locator("#transcript .owed")).to_have_count(1)

        await agent.get_by_role("button", name="Approve and send").click()
        # The held answer arrives after Q2, quoting Q1; Q2's own draft is then held (this
        # tenant reviews every answer), then approved and answered.
        first = ai_answers(customer).nth(2)
        await expect(first.locator(".quote")).to_have_text(f"\u21aa {Q1}")
        await expect(banner).to_have_text("A team member is checking this answer before it's sent.")
        await expect(agent.locator("#approval-question")).to_have_text(Q2)
        await agent.get_by_role("button", name="Approve and send").click()
        await expect(ai_answers(customer)).to_have_count(4)
        await expect(ai_answers(customer).nth(3).locator(".quote")).to_have_count(0)
        await expect(banner).to_be_hidden()
        await expect(card).to_have_count(0)  # nothing waits any more

        # The agent answers and then finds the conversation again: Mine and Recent.
        await agent.get_by_role("button", name="Take over").click()
        await agent.get_by_label("Reply to the customer").fill("Anything else I can do?")
        await agent.get_by_role("button", name="Send reply").click()
        await expect(customer.locator("li.msg.agent")).to_have_count(1)
        await agent.get_by_role("tab", name="Mine").click()
        mine = agent.locator(f'#conv-list [data-conversation-id="{cid}"]')
        await expect(mine).to_contain_text(f"Owner: {review_desk.email('Sam')}")
        await agent.get_by_role("tab", name="Recent").click()
        recent = agent.locator(f'#conv-list [data-conversation-id="{cid}"]')
        await recent.click()
        await expect(recent).to_have_attribute("aria-current", "true")
        await expect(agent.locator("#transcript li.line.agent")).to_have_count(1)
    finally:
        await context.close()
