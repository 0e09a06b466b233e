"""Ticket commands in words over HTTP and the CLI, on the real desk: the plan first and nothing
changed, then applied as the caller through the same service (lifecycle, notes, audit); bulk
close; a number not found and a refused move answered per ticket; a question back changes
nothing; another business's numbers are not reachable."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.live_api import bearer

pytestmark = pytest.mark.integration


def _say(client, key, text, confirm=True):
    r = client.post(
        "/v1/tickets/commands", json={"text": text, "confirm": confirm}, headers=bearer(key)
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_commands_over_http(live_api):
    key = live_api.demo.agent_key
    with live_api.client() as client:
        tag = uuid.uuid4().hex[:6]
        plan = _say(client, key, f"create ticket: API timeout {tag}, high priority", confirm=False)
        assert plan == {
            "status": "up",
            "action": "create",
            "data": {"plan": f'Create a ticket "API timeout {tag}" (priority high)'},
            "plan": f'Create a ticket "API timeout {tag}" (priority high)',
        }
        found = client.get("/v1/tickets", params={"q": tag}, headers=bearer(key)).json()
        assert found["items"] == []  # the plan changed nothing

        made = _say(client, key, f"create ticket: API timeout {tag}, high priority")
        assert (made["status"], made["data"]["priority"]) == ("ok", "high")
        first = made["data"]["number"]
        second = _say(client, key, f"new ticket: printer jam {tag}")["data"]["number"]

        moved = _say(client, key, f"update {first} to in progress, checking the load balancer")
        assert (moved["status"], moved["data"]["status"]) == ("ok", "in_progress")
        ticket_id = moved["data"]["id"]
        notes = client.get(f"/v1/tickets/{ticket_id}/notes", headers=bearer(key)).json()
        assert [n["body"] for n in notes["items"]] == ["checking the load balancer"]

        shown = _say(client, key, "show open high priority tickets", confirm=False)
        assert shown["status"] == "ok" and first in {t["number"] for t in shown["data"]["tickets"]}

        closed = _say(client, key, f"close {first}, {second}: fixed load balancer config")
        assert closed["status"] == "ok"
        assert [r["status"] for r in closed["data"]["results"]] == ["closed", "closed"]
        detail = client.get(f"/v1/tickets/{ticket_id}", headers=bearer(key)).json()
        assert detail["resolution"]["type"] == "permanent_fix"
        assert detail["resolution"]["summary"] == "fixed load balancer config"

        # per ticket: a closed one cannot move on, an unknown number is not found
        again = _say(client, key, f"update {first} to in progress, reopening")
        assert again["status"] == "er" and "none" in again["data"]["message"].lower()
        mixed = _say(client, key, f"close {second}, T-999999: done")
        assert mixed["status"] == "nf"
        assert [r["result"] for r in mixed["data"]["results"]] == ["ok", "nf"]

        asked = _say(client, key, f"update {first}")
        assert asked["status"] == "up" and "What should change" in asked["data"]["question"]

        # another business's tickets: its own numbers only
        theirs = _say(client, live_api.other.admin_key, f"show {first}", confirm=False)
        assert theirs["status"] in ("nf", "ok")
        assert all(t["id"] != ticket_id for t in theirs["data"].get("tickets", []))


def test_the_cli_asks_or_applies_and_answers_in_the_compact_form(cli_database):
    slug = f"tcmd-{uuid.uuid4().hex[:8]}"
    made = CliRunner().invoke(app, ["tenant", "create", slug, "--name", "Commands Co"])
    assert made.exit_code == 0, made.output

    def run(*args: str):
        return CliRunner().invoke(app, ["ticket", *args, "--tenant", slug], catch_exceptions=False)

    unconfirmed = run("create ticket: gutter leaking, asap", "--json")
    assert unconfirmed.exit_code == 2
    assert json.loads(unconfirmed.output)["status"] == "up"

    made = run("create ticket: gutter leaking, asap", "--json", "--yes")
    assert made.exit_code == 0, made.output
    answer = json.loads(made.output)
    assert (answer["status"], answer["action"], answer["data"]["number"]) == ("ok", "create", "T-1")
    assert answer["data"]["priority"] == "urgent"

    done = run("close T-1: cleared the downpipe", "--yes")
    assert done.exit_code == 0 and "T-1: done" in done.output, done.output
    missing = run("close T-7: nothing", "--json", "--yes")
    assert missing.exit_code == 1 and json.loads(missing.output)["status"] == "nf"
    vague = run("fix everything", "--yes")
    assert vague.exit_code == 2 and "did not understand" in vague.output
