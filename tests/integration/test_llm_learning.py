"""The LLM tier writes the desk's learning: an article draft rewritten by the model from what a
person answered, and top-question clusters named by the model; when the model fails, or
answers in the wrong shape, the offline text stands (a draft is still made, a cluster still
named). langchain-core fake chat models (no network); the real server is issue 18's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk import kb_learning
from desk import top_questions as top
from graph.runtime import open_services
from nlp.models import Models
from tests.support.fake_llm import Script, ToolCallingFake, tool_call
from tests.support.metrics_history import PERIOD, History, local
from tests.support.staff import make_staff

pytestmark = pytest.mark.integration

ANSWER = "Yes: we fit bidet seats in about an hour and check the cold-water connection."
REPLY = {"agent": "Alex", "text": ANSWER}
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


@pytest.fixture
async def llm(settings, offline_models, database_url):
    script = Script()
    models = Models(
        embeddings=offline_models.embeddings,
        embedding_key=offline_models.embedding_key,
        embedding_dim=offline_models.embedding_dim,
        chat=ToolCallingFake(messages=script),
        judge=None,
    )
    async with open_services(settings, models, database_url=database_url) as svc:
        yield svc, script.items


async def _answered(svc, tenant_id, question: str, start: datetime) -> object:
    async with svc.pool.connection() as conn, conn.transaction():
        return await History(conn, tenant_id).conversation(
            start,
            [
                (0, "customer", {"text": question}),
                (1, "handoff", {}),
                (9, "agent", {"text": ANSWER}),
            ],
        )


async def test_the_model_writes_the_draft_and_a_failure_keeps_the_offline_one(llm):
    svc, script = llm
    staff = await make_staff(svc.pool, prefix="llmdraft")
    business = staff.tenant.business
    now = datetime.now(UTC)
    written = await _answered(svc, staff.tenant.id, "Do you install bidet toilet seats?", now)
    script.append(
        tool_call(
            "LlmArticle",
            title="Bidet toilet seats: do we install them?",
            body="## Problem\n\nA bidet seat to fit.\n\n## Answer\n\n" + ANSWER,
        )
    )
    draft = await kb_learning.draft_from_conversation(
        svc, staff.tenant.id, written, created_by="Alex", business=business
    )
    assert draft["title"] == "Bidet toilet seats: do we install them?"
    assert draft["body"].startswith("## Problem\n\nA bidet seat to fit.")
    assert not script, "the model was asked once"

    # a malformed answer (no body), then a provider error: the offline draft both times
    for failure in (
        tool_call("LlmArticle", title="Only a title"),
        ConnectionError("connection reset by peer"),
    ):
        conv = await _answered(
            svc, staff.tenant.id, "Can you fit a bidet seat on any toilet?", now + timedelta(1)
        )
        script.append(failure)
        draft = await kb_learning.draft_from_conversation(
            svc, staff.tenant.id, conv, created_by="Alex", business=business
        )
        assert draft["title"] == "Can you fit a bidet seat on any toilet?"
        assert "## Problem" in draft["body"] and ANSWER in draft["body"]
        assert not script


async def test_the_model_names_the_clusters_and_a_failure_keeps_the_central_question(llm):
    svc, script = llm
    staff = await make_staff(svc.pool, prefix="llmnames")
    async with svc.pool.connection() as conn, conn.transaction():
        h = History(conn, staff.tenant.id)
        for i, text in enumerate(LEAKS):
            await h.conversation(local(3, 9, 10 * i), [(0, "customer", {"text": text})])
        for i, text in enumerate(HOURS):
            await h.conversation(
                local(4, 9, 10 * i), [(0, "customer", {"text": text}), (2, "ai", {})]
            )
    business = staff.tenant.business
    script.append(ValueError("rate limited"))  # the first cluster's call fails
    script.append(tool_call("LlmClusterName", name="When are you open?"))
    clusters = await top.refresh(
        svc, staff.tenant.id, PERIOD, as_of=datetime(2026, 11, 20, tzinfo=UTC), business=business
    )
    assert len(clusters) == 2 and not script
    first, second = clusters
    assert first["label"] in LEAKS + HOURS  # the failed call: its most central question
    assert second["label"] == "When are you open?"
