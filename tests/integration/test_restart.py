"""A conversation continues after a process restart: new process, same database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import pytest

from desk.stream import thread_config
from tests.support.turns import new_conversation, turn

pytestmark = pytest.mark.integration

SECOND_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys, uuid
    from helpdesk.config import Settings
    from graph.graph import build_graph
    from graph.runtime import open_checkpointer, open_services
    from helpdesk.tenants import get_tenant
    from desk.stream import thread_config
    from desk.turns import run_turn

    async def main(url, cid):
        settings = Settings(openai_api_key=None, openai_base_url=None)
        async with open_services(settings, database_url=url) as svc:
            graph = build_graph(svc, await open_checkpointer(svc))
            before = (await graph.aget_state(thread_config(uuid.UUID(cid)))).values
            tenant = await get_tenant(svc.pool, "demo")
            events = [e async for e in run_turn(graph, svc, tenant, uuid.UUID(cid),
                                                "And what is your hourly labour rate?")]
            after = (await graph.aget_state(thread_config(uuid.UUID(cid)))).values
            print(json.dumps({
                "before": [m.text for m in before["messages"]],
                "after": [m.text for m in after["messages"]],
                "turn": after["turn"],
                "events": [n for n, _ in events],
            }))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_conversation_continues_in_a_new_process(graph, services, demo, database_url):
    cid = await new_conversation(services, demo)
    await turn(graph, services, demo, cid, "hi")
    await turn(graph, services, demo, cid, "How much is the call-out fee?")
    history = [m.text for m in (await graph.aget_state(thread_config(cid))).values["messages"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", SECOND_PROCESS, database_url, str(cid)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == history
    assert result["after"][: len(history)] == history
    assert result["after"][len(history)] == "And what is your hourly labour rate?"
    assert "message.completed" in result["events"]
    assert result["turn"] == 3
