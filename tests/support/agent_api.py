"""The agent API as the tests drive it: an agent's headers, a conversation's detail, an action,
its queue card, and a customer's ``/events`` subscription read in a background thread."""

from __future__ import annotations

import json
import threading
import time

import httpx
from httpx_sse import connect_sse

from tests.support.live_api import bearer


def agent_headers(live_api) -> dict[str, str]:
    return bearer(live_api.demo.agent_key)


def conversation_detail(client: httpx.Client, live_api, cid: str) -> dict:
    r = client.get(f"/v1/agent/conversations/{cid}", headers=agent_headers(live_api))
    assert r.status_code == 200, r.text
    return r.json()


def act(client, live_api, cid, action, body=None, key=None) -> httpx.Response:
    return client.post(
        f"/v1/agent/conversations/{cid}/{action}",
        json=body or {},
        headers=bearer(key or live_api.demo.agent_key),
    )


def queue_item(client, live_api, cid) -> dict | None:
    r = client.get("/v1/agent/queue", headers=agent_headers(live_api))
    assert r.status_code == 200
    return next((i for i in r.json()["items"] if i["conversation_id"] == cid), None)


class Subscription:
    """A customer's /events subscription read in a background thread."""

    def __init__(self, live_api, conv):
        self.events: list[tuple[int, str, dict]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(live_api, conv), daemon=True)
        self._thread.start()
        assert self._ready.wait(30)

    def _run(self, live_api, conv):
        with live_api.client(timeout=httpx.Timeout(60, read=2)) as client:
            path = f"/v1/conversations/{conv['id']}/events"
            with connect_sse(client, "GET", path, headers=bearer(conv["customer_token"])) as src:
                self._ready.set()
                try:
                    for e in src.iter_sse():
                        self.events.append((int(e.id), e.event, json.loads(e.data)))
                        if self._stop.is_set():
                            return
                except httpx.ReadTimeout:
                    if not self._stop.is_set():
                        self._run(live_api, conv)

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.events):
                return self.events
            time.sleep(0.05)
        raise AssertionError(f"not seen in time: {self.events}")

    def close(self):
        self._stop.set()
