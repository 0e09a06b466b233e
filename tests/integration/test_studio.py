"""LangGraph Studio path: ``langgraph dev`` serves langgraph.json's graph; a thread started
through the LangGraph API (langgraph-sdk) reaches the hand-off interrupt and resumes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.support.live_api import free_port
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def studio_url(database_url, demo, tmp_path_factory):
    exe = shutil.which("langgraph", path=str(Path(sys.executable).parent))
    assert exe, "langgraph-cli is a dev dependency"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {
        "DATABASE_URL": database_url,
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    log = (tmp_path_factory.mktemp("studio") / "langgraph-dev.log").open("w+")
    proc = subprocess.Popen(
        [exe, "dev", "--no-browser", "--no-reload", "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"langgraph dev did not start:\n{log.read()[-4000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_sdk_thread_reaches_handoff_and_resumes(studio_url):
    client = get_client(url=studio_url)
    thread = await client.threads.create()
    await client.runs.wait(
        thread["thread_id"],
        "support",
        input={"messages": [{"role": "user", "content": "I want to talk to a person"}]},
    )
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["await_agent"]
    payload = state["tasks"][0]["interrupts"][0]["value"]
    assert payload["kind"] == "handoff" and payload["reason"] == "explicit_request"

    await client.runs.wait(
        thread["thread_id"],
        "support",
        command={"resume": {"action": "reply", "text": "Hi, this is Alex from the team."}},
    )
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == []
    assert state["values"]["reply"]["sender"] == "agent"
    assert state["values"]["messages"][-1]["content"] == "Hi, this is Alex from the team."
