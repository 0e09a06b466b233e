"""Two API processes on one database behave as one: events cross processes (LISTEN/NOTIFY),
tokens issued by one work on the other, and a conversation's turns stay serialised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from helpdesk import keys
from tests.support.live_api import bearer, free_port, sse_turn, start_conversation

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVER = textwrap.dedent(
    """
    import sys, uvicorn
    from api.app import create_app
    from helpdesk.config import Settings

    url, port = sys.argv[1], int(sys.argv[2])
    settings = Settings(openai_api_key=None, openai_base_url=None)
    uvicorn.run(create_app(settings, database_url=url), host="127.0.0.1", port=port,
                log_level="warning", timeout_graceful_shutdown=3)
    """
)


@pytest.fixture(scope="module")
def two_servers(database_url, demo) -> Iterator[tuple[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["DESKGRAPH_SECRET_KEY"] = "multi-process-shared-secret"
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SERVER, database_url, str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 300
        for url, proc in zip(urls, procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"API process died: {proc.stderr.read() if proc.stderr else ''}"
                    )
                try:
                    if httpx.get(url + "/healthz", timeout=2).json()["events"] == "listening":
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("API processes did not start")
                time.sleep(0.5)
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
async def demo_keys(services, demo) -> dict[str, str]:
    widget, _ = await keys.create_key(services.pool, demo.id, "widget", name="mp")
    agent, _ = await keys.create_key(services.pool, demo.id, "agent", name="mp-agent")
    return {"widget": widget, "agent": agent}


def test_agent_reply_on_one_process_reaches_a_subscriber_on_the_other(two_servers, demo_keys):
    a, b = two_servers
    with httpx.Client(base_url=a, timeout=60) as on_a, httpx.Client(base_url=b, timeout=60) as on_b:
        conv = start_conversation(on_a, demo_keys["widget"])
        assert "handoff" in dict(sse_turn(on_a, conv, "I want to talk to a person"))

        received: list[tuple[int, str, dict]] = []
        subscribed = threading.Event()
        done = threading.Event()

        def subscribe() -> None:
            with (
                httpx.Client(base_url=a, timeout=httpx.Timeout(60, read=60)) as c,
                connect_sse(
                    c,
                    "GET",
                    f"/v1/conversations/{conv['id']}/events",
                    headers=bearer(conv["customer_token"]),
                ) as source,
            ):
                subscribed.set()
                for e in source.iter_sse():
                    received.append((int(e.id), e.event, json.loads(e.data)))
                    if sum(t == "agent.message" for _, t, _ in received) == 3:
                        done.set()
                        return

        thread = threading.Thread(target=subscribe, daemon=True)
        thread.start()
        assert subscribed.wait(30)
        agent = bearer(demo_keys["agent"])
        # The token issued by process A works on process B, and so does the agent's key.
        for i in range(3):
            r = on_b.post(
                f"/v1/agent/conversations/{conv['id']}/reply",
                json={"text": f"reply {i}"},
                headers=agent,
            )
            assert r.status_code == 200, r.text
        assert done.wait(30), received
        replies = [d["text"] for _, t, d in received if t == "agent.message"]
        assert replies == ["reply 0", "reply 1", "reply 2"]
        ids = [i for i, _, _ in received]
        assert ids == sorted(ids) and len(ids) == len(set(ids)), "in order, no duplicates"

        # Resuming on B after the last event seen on A: nothing repeated, nothing missing.
        r = on_b.post(
            f"/v1/agent/conversations/{conv['id']}/reply",
            json={"text": "reply 3"},
            headers=agent,
        )
        assert r.status_code == 200
        with connect_sse(
            on_b,
            "GET",
            f"/v1/conversations/{conv['id']}/events",
            headers={**bearer(conv["customer_token"]), "Last-Event-ID": str(ids[-1])},
        ) as source:
            first = next(source.iter_sse())
        assert first.event == "agent.message" and json.loads(first.data)["text"] == "reply 3"
        assert int(first.id) > ids[-1]

        history = on_b.get(
            f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
        ).json()["messages"]
        assert [m["text"] for m in history if m["sender"] == "agent"] == [
            "reply 0",
            "reply 1",
            "reply 2",
            "reply 3",
        ]


def test_two_processes_serialise_one_conversation(two_servers, demo_keys):
    """Concurrent turns of one conversation, half on each process: each either runs alone or is
    refused with 409; no two graph runs interleave (every accepted turn is answered once)."""
    a, b = two_servers
    with httpx.Client(base_url=a, timeout=60) as client:
        conv = start_conversation(client, demo_keys["widget"])
    results: list[httpx.Response] = []

    def send(url: str, i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            results.append(
                c.post(
                    f"/v1/conversations/{conv['id']}/messages",
                    json={"text": f"Do you service furnaces? ({i})"},
                    headers=bearer(conv["customer_token"]),
                )
            )

    threads = [threading.Thread(target=send, args=(a if i % 2 else b, i)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status_code == 200]
    assert ok and all(
        r.json()["code"] == "turn_in_progress" for r in results if r.status_code != 200
    )
    with httpx.Client(base_url=b, timeout=60) as client:
        history = client.get(
            f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
        ).json()["messages"]
    customers = [m for m in history if m["sender"] == "customer"]
    answers = [m for m in history if m["sender"] != "customer"]
    assert len(customers) == len(ok)
    assert len(answers) == sum(r.json()["reply"] is not None for r in ok)
