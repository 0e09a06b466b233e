"""Provider failures never reach the customer: an endpoint that fails on purpose
(tests/support/bad_llm.py) stands in for the LLM, and every turn still ends in an answer (the
node's offline step) or a hand-off, never an error or a stuck conversation; the circuit breaker
stops calling a provider that keeps failing."""

from __future__ import annotations

from typing import Any

import pytest

from graph.graph import build_graph
from graph.llm.breaker import Breakers
from graph.runtime import open_checkpointer, open_services
from helpdesk import conversations
from nlp.models import Models, build_models
from tests.support.bad_llm import bad_llm
from tests.support.llama_fixtures import llm_settings
from tests.support.turns import new_conversation, turn

pytestmark = pytest.mark.integration
QUESTION = "How much is your call-out fee?"


@pytest.fixture(scope="module")
async def failing(offline_models, database_url, demo) -> Any:
    async with bad_llm("500") as bad:
        settings = llm_settings(bad.url, llm_call_budget_s=5, llm_max_retries=1)
        built = build_models(settings)
        models = Models(
            embeddings=offline_models.embeddings,
            embedding_key=offline_models.embedding_key,
            embedding_dim=offline_models.embedding_dim,
            chat=built.chat,
            judge=built.judge,
            llm=built.llm,
        )
        async with open_services(settings, models, database_url=database_url) as svc:
            from tests.integration.conftest import OFFICE_HOURS

            svc.clock = lambda: OFFICE_HOURS
            yield bad, svc, build_graph(svc, await open_checkpointer(svc))


async def answered_offline(failing: Any, demo: Any, mode: str, **kw: Any) -> dict[str, Any]:
    bad, svc, graph = failing
    bad.mode, bad.requests = mode, []
    for key, value in kw.items():
        setattr(bad, key, value)
    svc.llm.breakers = Breakers(failures=100)  # each test sees its own failure, not the last's
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, QUESTION)
    assert "error" not in events
    row = await conversations.get_conversation(svc.pool, demo.id, cid)
    assert row["status"] != "ai_active" or "message.completed" in events, "never stuck"
    return events


@pytest.mark.parametrize("mode", ["500", "reset", "garbage", "text:"])
async def test_a_failing_provider_gets_the_offline_answer(failing, demo, mode):
    events = await answered_offline(failing, demo, mode)
    done = events["message.completed"][0]
    assert "[pricing-overview]" in done["text"], "the offline drafter's cited answer"
    assert "".join(t["text"] for t in events["token"]) == done["text"]
    assert failing[0].requests, "the provider was asked first"


async def test_schema_breaking_json_leaves_the_rules_to_judge(failing, demo):
    # the same broken JSON is the drafter's text (uncited: the rules fail it twice) and the
    # judge's structured answer (unparseable: ignored); the customer gets a person
    events = await answered_offline(failing, demo, 'text:{"grounded": 7')
    assert events["handoff"][0]["reason"] == "judge_failed"
    assert "token" not in events


async def test_429_is_retried_after_its_retry_after_then_answered_offline(failing, demo):
    events = await answered_offline(failing, demo, "429")
    assert "message.completed" in events
    # the draft's call and its one retry (llm_max_retries=1), then the judge's two
    assert len(failing[0].requests) == 4


async def test_a_slow_provider_runs_into_the_call_budget(failing, demo):
    events = await answered_offline(
        failing, demo, "slow", delay_s=30, upstream="http://127.0.0.1:9"
    )
    assert "[pricing-overview]" in events["message.completed"][0]["text"]


async def test_a_model_that_promises_a_transfer_in_text_hands_off(failing, demo):
    events = await answered_offline(failing, demo, "text:I'm transferring you to an agent now.")
    assert events["handoff"][0]["reason"] == "transfer_in_text"
    assert "token" not in events or all("transferring" not in t["text"] for t in events["token"])


async def test_the_breaker_stops_calling_a_failing_provider(failing, demo):
    bad, svc, graph = failing
    bad.mode, bad.requests = "500", []
    svc.llm.breakers = Breakers(failures=2, open_s=60)
    for _ in range(3):
        events = await turn(graph, svc, demo, await new_conversation(svc, demo), QUESTION)
        assert "message.completed" in events
    # two failed calls (draft, judge: retried once each) opened it; then no call at all
    assert len(bad.requests) == 4
    assert svc.llm.breaker_open


async def test_a_spent_monthly_budget_switches_the_tenant_offline(failing, demo):
    import dataclasses

    from helpdesk import llm_usage
    from helpdesk.tenancy import tenant_scope

    _, svc, _ = failing
    called: list[int] = []

    async def fn(config: Any) -> str:
        called.append(1)
        return "answer"

    async with tenant_scope(svc.pool, demo.id) as db:
        used = await llm_usage.month_tokens(db, demo.id)
    svc.llm.breakers = Breakers()
    capped = dataclasses.replace(
        demo, policy=demo.policy.model_copy(update={"llm_monthly_tokens": used + 5})
    )
    assert await svc.llm.call(capped, "draft", fn) == "answer"
    async with tenant_scope(svc.pool, demo.id) as db:
        await llm_usage.record(
            db, demo.id, node="draft", model="m", input_tokens=4, output_tokens=1
        )
    assert await svc.llm.call(capped, "draft", fn) is None, "spent: the offline step"
    assert called == [1]
