"""A customer's thumbs vote reaches the articles the answer cited (issue 17 item 5): the
helpful / not-helpful counts move by the change, once, however often or concurrently the
customer votes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.live_api import bearer, sse_turn, start_conversation

pytestmark = pytest.mark.integration


async def _counts(services: Any, tenant_id: Any, source_ids: list[str]) -> dict[str, tuple]:
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT source_id, helpful, not_helpful FROM kb_articles"
            " WHERE tenant_id = %s AND source_id = ANY(%s)",
            (tenant_id, source_ids),
        )
        return {r["source_id"]: (r["helpful"], r["not_helpful"]) for r in await cur.fetchall()}


def _answer(live_api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        events = dict(sse_turn(client, conv, "Do you have 24/7 emergency service?"))
    return conv, events["message.completed"]


def _vote(live_api: Any, conv: dict[str, Any], message_id: str, rating: str) -> int:
    with live_api.client() as client:
        r = client.post(
            f"/v1/conversations/{conv['id']}/feedback",
            json={"message_id": message_id, "rating": rating},
            headers=bearer(conv["customer_token"]),
        )
    return r.status_code


async def test_votes_move_the_cited_articles_counts_by_the_change(live_api, services, demo):
    conv, answer = await asyncio.to_thread(_answer, live_api)
    sources = sorted({c["source_id"] for c in answer["citations"]})
    assert sources, answer
    start = await _counts(services, demo.id, sources)

    async def after(up: int, down: int) -> None:
        now = await _counts(services, demo.id, sources)
        assert now == {s: (h + up, n + down) for s, (h, n) in start.items()}

    mid = answer["message_id"]
    assert await asyncio.to_thread(_vote, live_api, conv, mid, "up") == 200
    await after(1, 0)
    assert await asyncio.to_thread(_vote, live_api, conv, mid, "up") == 200  # the same vote
    await after(1, 0)
    assert await asyncio.to_thread(_vote, live_api, conv, mid, "down") == 200  # changed
    await after(0, 1)
    # five at once, all "up": one change, counted once
    codes = await asyncio.gather(
        *[asyncio.to_thread(_vote, live_api, conv, mid, "up") for _ in range(5)]
    )
    assert codes == [200] * 5
    await after(1, 0)
