"""The ticket routes over HTTP on the live API: create, list with filters and cursor pages,
edit, the lifecycle with resolutions, CSAT once per resolution, internal notes that never reach
the customer or the graph, first response stamped by the AI and by a person, the audit, and
another tenant's ids answered with 404 on every route."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from desk.stream import thread_config
from helpdesk import conversations, teams
from tests.support.agent_api import act
from tests.support.live_api import bearer, json_turn, sse_turn, start_conversation
from tests.support.staff import StaffTenant, make_staff, token_of

pytestmark = pytest.mark.integration


def _agent(live_api: Any) -> dict[str, str]:
    return bearer(live_api.demo.agent_key)


def _create(client: httpx.Client, live_api: Any, **body: Any) -> dict[str, Any]:
    r = client.post(
        "/v1/tickets", json={"subject": "Printer on fire", **body}, headers=_agent(live_api)
    )
    assert r.status_code == 201, r.text
    return r.json()


def _move(client: httpx.Client, live_api: Any, tid: str, to: str, **body: Any) -> httpx.Response:
    return client.post(
        f"/v1/tickets/{tid}/transition", json={"to": to, **body}, headers=_agent(live_api)
    )


RESOLUTION = {"type": "permanent_fix", "summary": "Replaced the fuser.", "root_cause": "Old fuser"}


def _handed_off(client: httpx.Client, live_api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    conv = start_conversation(client, live_api.demo.widget_key)
    assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
    detail = client.get(f"/v1/agent/conversations/{conv['id']}", headers=_agent(live_api)).json()
    r = client.get(f"/v1/tickets/{detail['ticket']['id']}", headers=_agent(live_api))
    assert r.status_code == 200, r.text
    return conv, r.json()


def test_create_read_edit_and_list_with_filters_and_pages(live_api: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    with live_api.client() as client:
        made = [
            _create(client, live_api, subject=f"{tag} first", priority="low"),
            _create(client, live_api, subject=f"{tag} second", description="the VPN drops"),
            _create(
                client,
                live_api,
                subject=f"{tag} third",
                priority="urgent",
                impact="site_down",
                category="outage",
                tags=["Prod", "prod"],
                custom_fields={"region": "eu", "seats": 3},
            ),
        ]
        numbers = [t["number"] for t in made]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3
        third = made[2]
        assert third["key"] == f"T-{third['number']}" and third["status"] == "new"
        assert (third["impact"], third["tags"], third["custom_fields"]) == (
            "site_down",
            ["prod"],
            {"region": "eu", "seats": 3},
        )
        assert third["allowed_moves"] == ["triage", "in_progress", "resolved"]

        r = client.get("/v1/tickets", params={"q": tag, "limit": 2}, headers=_agent(live_api))
        page = r.json()
        assert [t["id"] for t in page["items"]] == [made[2]["id"], made[1]["id"]]
        r = client.get(
            "/v1/tickets",
            params={"q": tag, "limit": 2, "cursor": page["next_cursor"]},
            headers=_agent(live_api),
        )
        assert [t["id"] for t in r.json()["items"]] == [made[0]["id"]]
        assert r.json()["next_cursor"] is None

        def ids(**params: Any) -> list[str]:
            r = client.get("/v1/tickets", params={"q": tag, **params}, headers=_agent(live_api))
            assert r.status_code == 200, r.text
            return [t["id"] for t in r.json()["items"]]

        assert ids(priority="urgent") == [third["id"]]
        assert ids(priority=["urgent", "low"]) == [third["id"], made[0]["id"]]
        r = client.get("/v1/tickets", params={"q": "the vpn"}, headers=_agent(live_api))
        assert made[1]["id"] in [t["id"] for t in r.json()["items"]]
        r = client.get("/v1/tickets", params={"q": third["key"]}, headers=_agent(live_api))
        assert [t["id"] for t in r.json()["items"]] == [third["id"]]

        assert _move(client, live_api, third["id"], "triage").status_code == 200
        assert ids(status="triage") == [third["id"]]
        assert ids(status=["new"]) == [made[1]["id"], made[0]["id"]]

        r = client.patch(
            f"/v1/tickets/{made[0]['id']}",
            json={"priority": "high", "category": "billing", "tags": ["vip"], "subject": None},
            headers=_agent(live_api),
        )
        assert r.status_code == 200, r.text
        edited = r.json()
        assert (edited["priority"], edited["category"], edited["tags"]) == (
            "high",
            "billing",
            ["vip"],
        )
        assert edited["subject"] == f"{tag} first"  # null is "leave it" for a required field
        r = client.patch(
            f"/v1/tickets/{made[0]['id']}", json={"category": None}, headers=_agent(live_api)
        )
        assert r.json()["category"] is None
        for raw in (
            '{"subject": "x", "custom_fields": {"a": NaN}}',
            '{"subject": "x", "custom_fields": {"a": [1e400]}}',
        ):
            r = client.post(
                "/v1/tickets",
                content=raw,
                headers={**_agent(live_api), "Content-Type": "application/json"},
            )
            assert r.status_code == 422, (raw, r.text)
        for bad in ({"status": "closed"}, {"priority": "asap"}, {"number": 1}):
            r = client.patch(f"/v1/tickets/{made[0]['id']}", json=bad, headers=_agent(live_api))
            assert r.status_code == 422, (bad, r.text)
        r = client.patch(
            f"/v1/tickets/{made[0]['id']}",
            json={"assignee_id": str(uuid.uuid4())},
            headers=_agent(live_api),
        )
        assert r.status_code == 404 and "assignee_id" in r.json()["message"]

        audit = client.get(
            "/v1/admin/audit",
            params={"target_id": made[0]["id"]},
            headers=bearer(live_api.demo.admin_key),
        ).json()["items"]
        assert [e["action"] for e in audit] == ["ticket.edit", "ticket.edit", "ticket.create"]
        assert audit[1]["detail"]["after"]["priority"] == "high"
        assert audit[1]["detail"]["before"]["priority"] == "low"


def test_the_lifecycle_over_http(live_api: Any) -> None:
    with live_api.client() as client:
        ticket = _create(client, live_api)
        tid = ticket["id"]
        r = _move(client, live_api, tid, "closed")
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
        assert r.json()["message"] == (
            "a ticket cannot move from new to closed; from new it may move to triage,"
            " in_progress, resolved"
        )
        r = _move(client, live_api, tid, "in_progress")
        assert r.status_code == 200 and r.json()["status"] == "in_progress"
        r = _move(client, live_api, tid, "resolved")
        assert r.status_code == 422 and "needs a resolution" in r.json()["message"]
        r = _move(client, live_api, tid, "waiting_customer", resolution=RESOLUTION)
        assert r.status_code == 422
        r = _move(client, live_api, tid, "resolved", resolution={"type": "fixed", "summary": "x"})
        assert r.status_code == 422
        r = _move(client, live_api, tid, "resolved", resolution=RESOLUTION)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "resolved" and done["resolved_at"] is not None
        assert done["resolution"]["type"] == "permanent_fix"
        assert done["resolution"]["resolved_by"] == "user"
        assert done["resolution"]["root_cause"] == "Old fuser"
        assert done["allowed_moves"] == ["in_progress", "closed"]
        r = _move(client, live_api, tid, "closed")
        assert r.json()["status"] == "closed" and r.json()["closed_at"] is not None
        r = _move(client, live_api, tid, "in_progress")
        assert r.status_code == 409 and "closed is final" in r.json()["message"]
        # The older agent route goes through the same table.
        other = _create(client, live_api)
        r = client.patch(
            f"/v1/agent/tickets/{other['id']}", json={"status": "closed"}, headers=_agent(live_api)
        )
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text
        r = client.patch(
            f"/v1/agent/tickets/{other['id']}",
            json={"status": "resolved"},
            headers=_agent(live_api),
        )
        assert r.status_code == 422 and "needs a resolution" in r.json()["message"]

        items = client.get(f"/v1/tickets/{tid}/timeline", headers=_agent(live_api)).json()["items"]
        kinds = [i["kind"] for i in items]
        assert kinds == ["created", "status", "status", "resolved", "status"]
        assert {i["actor"] for i in items} == {items[0]["actor"]} and items[0]["actor"]
        audit = client.get(
            "/v1/admin/audit", params={"target_id": tid}, headers=bearer(live_api.demo.admin_key)
        ).json()["items"]
        assert [e["action"] for e in audit] == [
            "ticket.transition",
            "ticket.transition",
            "ticket.transition",
            "ticket.create",
        ]


def test_a_handoff_ticket_first_response_by_a_person_csat_and_reopen(live_api: Any) -> None:
    with live_api.client() as client:
        conv, ticket = _handed_off(client, live_api)
        assert (ticket["status"], ticket["channel"], ticket["first_response_at"]) == (
            "new",
            "web",
            None,
        )
        csat = f"/v1/conversations/{conv['id']}/csat"
        customer = bearer(conv["customer_token"])
        r = client.post(csat, json={"score": 5}, headers=customer)
        assert r.status_code == 409 and r.json()["code"] == "conflict"  # nothing resolved yet

        assert act(client, live_api, conv["id"], "takeover").status_code == 200
        r = act(client, live_api, conv["id"], "reply", {"text": "Hello, Kim here."})
        assert r.status_code == 200, r.text
        now = client.get(f"/v1/tickets/{ticket['id']}", headers=_agent(live_api)).json()
        assert now["status"] == "in_progress"
        assert now["first_response_at"] is not None and now["ai_first_response"] is False

        r = _move(client, live_api, ticket["id"], "resolved", resolution=RESOLUTION)
        assert r.status_code == 200, r.text
        resolution_id = r.json()["resolution_id"]
        r = client.post(csat, json={"score": 4, "comment": "quick"}, headers=customer)
        assert r.status_code == 200, r.text
        assert (r.json()["score"], r.json()["resolution_id"]) == (4, resolution_id)
        assert r.json()["ticket_number"] == ticket["key"]
        again = client.post(csat, json={"score": 4, "comment": "quick"}, headers=customer)
        assert again.status_code == 200 and again.json() == r.json()
        r = client.post(csat, json={"score": 2}, headers=customer)
        assert r.status_code == 409 and "already rated 4" in r.json()["message"]
        for bad in ({"score": 0}, {"score": 6}, {"score": "5"}, {"score": 4.0}):
            assert client.post(csat, json=bad, headers=customer).status_code == 422

        # The customer writes again: the resolved ticket reopens.
        json_turn(client, conv, "It is broken again")
        now = client.get(f"/v1/tickets/{ticket['id']}", headers=_agent(live_api)).json()
        assert (now["status"], now["reopen_count"]) == ("in_progress", 1)
        items = client.get(f"/v1/tickets/{ticket['id']}/timeline", headers=_agent(live_api))
        kinds = [i["kind"] for i in items.json()["items"]]
        for kind in ("created", "first_response", "resolved", "csat", "reopened", "message"):
            assert kind in kinds, (kind, kinds)


async def test_the_ai_first_response_is_stamped(live_api: Any) -> None:
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        ticket = _create(client, live_api, conversation_id=conv["id"])
        assert (ticket["conversation_id"], ticket["channel"]) == (conv["id"], "web")
        assert _create(client, live_api)["channel"] == "agent"
        r = client.post(
            "/v1/tickets",
            json={"subject": "dup", "conversation_id": conv["id"]},
            headers=_agent(live_api),
        )
        assert r.status_code == 409
        events = dict(sse_turn(client, conv, "What are your opening hours?"))
        assert events["message.completed"]["sender"] == "ai"
        now = client.get(f"/v1/tickets/{ticket['id']}", headers=_agent(live_api)).json()
        assert now["first_response_at"] is not None and now["ai_first_response"] is True


async def test_notes_stay_internal(live_api: Any, services: Any, demo: Any, graph: Any) -> None:
    secret = f"internal-{uuid.uuid4().hex}"
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        ticket = _create(client, live_api, conversation_id=conv["id"])
        r = client.post(
            f"/v1/tickets/{ticket['id']}/notes",
            json={"body": f"Customer owes money. {secret}"},
            headers=_agent(live_api),
        )
        assert r.status_code == 201, r.text
        assert r.json()["author_name"]
        r = client.post(
            f"/v1/tickets/{ticket['id']}/notes", json={"body": ""}, headers=_agent(live_api)
        )
        assert r.status_code == 422
        r = client.post(
            f"/v1/agent/conversations/{conv['id']}/notes",
            json={"body": f"On the conversation: {secret}"},
            headers=_agent(live_api),
        )
        assert r.status_code == 201 and r.json()["conversation_id"] == conv["id"], r.text
        # The AI answers the customer after the note was written.
        turn = sse_turn(client, conv, "What are your opening hours?")
        assert secret not in json.dumps(turn)
        transcript = client.get(
            f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
        )
        assert transcript.status_code == 200 and transcript.json()["messages"]
        assert secret not in transcript.text
        # Staff see it, in the notes and on the timeline.
        notes = client.get(f"/v1/tickets/{ticket['id']}/notes", headers=_agent(live_api))
        both = [f"Customer owes money. {secret}", f"On the conversation: {secret}"]
        assert [n["body"] for n in notes.json()["items"]] == both
        notes = client.get(f"/v1/agent/conversations/{conv['id']}/notes", headers=_agent(live_api))
        assert [n["body"] for n in notes.json()["items"]] == both
        timeline = client.get(f"/v1/tickets/{ticket['id']}/timeline", headers=_agent(live_api))
        on_timeline = [i["detail"]["body"] for i in timeline.json()["items"] if i["kind"] == "note"]
        assert on_timeline == both
        detail = client.get(f"/v1/agent/conversations/{conv['id']}", headers=_agent(live_api))
        assert detail.status_code == 200
    events = await conversations.list_events(services.pool, demo.id, uuid.UUID(conv["id"]))
    assert events and secret not in json.dumps(events, default=str)
    state = await graph.aget_state(thread_config(uuid.UUID(conv["id"])))
    assert state.values and secret not in json.dumps(state.values, default=str)


def test_another_tenants_ticket_is_404_on_every_route(live_api: Any) -> None:
    theirs = bearer(live_api.other.agent_key)
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        ticket = _create(client, live_api, conversation_id=conv["id"])
        tid = ticket["id"]
        calls = [
            ("GET", f"/v1/tickets/{tid}", None),
            ("PATCH", f"/v1/tickets/{tid}", {"priority": "urgent"}),
            ("POST", f"/v1/tickets/{tid}/transition", {"to": "triage"}),
            ("POST", f"/v1/tickets/{tid}/notes", {"body": "hi"}),
            ("GET", f"/v1/tickets/{tid}/notes", None),
            ("GET", f"/v1/tickets/{tid}/timeline", None),
            ("POST", f"/v1/agent/conversations/{conv['id']}/notes", {"body": "hi"}),
            ("GET", f"/v1/agent/conversations/{conv['id']}/notes", None),
        ]
        for method, path, body in calls:
            r = client.request(method, path, json=body, headers=theirs)
            assert (r.status_code, r.json()["code"]) == (404, "not_found"), (method, path, r.text)
        # Ids of this tenant's other things, used from the other tenant, are 404 as well.
        for field in ("conversation_id", "parent_ticket_id"):
            value = conv["id"] if field == "conversation_id" else tid
            r = client.post("/v1/tickets", json={"subject": "x", field: value}, headers=theirs)
            assert r.status_code == 404, (field, r.text)
        listed = client.get("/v1/tickets", params={"q": ticket["key"]}, headers=theirs)
        assert tid not in [t["id"] for t in listed.json()["items"]]
        # Their customer cannot rate this conversation.
        their_conv = start_conversation(client, live_api.other.widget_key)
        r = client.post(
            f"/v1/conversations/{conv['id']}/csat",
            json={"score": 1},
            headers=bearer(their_conv["customer_token"]),
        )
        assert r.status_code in (401, 403, 404), r.text
        # Nothing changed.
        after = client.get(f"/v1/tickets/{tid}", headers=_agent(live_api)).json()
        assert (after["status"], after["priority"]) == ("new", "normal")
        assert client.get(f"/v1/tickets/{tid}/notes", headers=_agent(live_api)).json() == {
            "items": []
        }
        # A customer token is no staff credential.
        r = client.get("/v1/tickets", headers=bearer(conv["customer_token"]))
        assert r.status_code in (401, 403)


@pytest.fixture(scope="module")
async def desk_staff(services: Any, demo: Any) -> StaffTenant:
    return await make_staff(services.pool, tenant=demo)


async def test_assignment_by_a_signed_in_user_is_theirs_and_filters(
    live_api: Any, services: Any, demo: Any, desk_staff: StaffTenant
) -> None:
    other_staff = await make_staff(services.pool)
    team = await teams.create_team(services.pool, demo.id, f"Desk {uuid.uuid4().hex[:6]}")
    tag = uuid.uuid4().hex[:8]
    with live_api.client() as client:
        alice = bearer(token_of(client, desk_staff, "alice"))
        r = client.post(
            "/v1/tickets",
            json={
                "subject": f"{tag} VPN",
                "assignee_id": str(desk_staff.ids["bob"]),
                "team_id": str(team.id),
            },
            headers=alice,
        )
        assert r.status_code == 201, r.text
        assigned = r.json()
        assert assigned["created_by"] == desk_staff.emails["alice"]
        r = client.post("/v1/tickets", json={"subject": f"{tag} free"}, headers=alice)
        free = r.json()
        r = client.patch(
            f"/v1/tickets/{free['id']}",
            json={"assignee_id": str(other_staff.ids["bob"])},
            headers=alice,
        )
        assert r.status_code == 404, "a user of another tenant is no assignee"

        def ids(**params: Any) -> list[str]:
            r = client.get("/v1/tickets", params={"q": tag, **params}, headers=alice)
            return [t["id"] for t in r.json()["items"]]

        assert ids(assignee_id=str(desk_staff.ids["bob"])) == [assigned["id"]]
        assert ids(team_id=str(team.id)) == [assigned["id"]]
        assert ids(unassigned="true") == [free["id"]]

        r = client.post(
            f"/v1/tickets/{assigned['id']}/transition",
            json={"to": "resolved", "resolution": RESOLUTION},
            headers=alice,
        )
        assert r.json()["resolution"]["resolved_by_user_id"] == str(desk_staff.ids["alice"])
        r = client.patch(f"/v1/tickets/{assigned['id']}", json={"assignee_id": None}, headers=alice)
        assert r.status_code == 200 and r.json()["assignee_id"] is None
        audit = client.get(
            "/v1/admin/audit",
            params={"target_id": assigned["id"]},
            headers=bearer(token_of(client, desk_staff, "manager")),
        ).json()["items"]
        assert [e["action"] for e in audit] == [
            "ticket.assign",
            "ticket.transition",
            "ticket.create",
        ]
        assert {e["actor_user_id"] for e in audit} == {str(desk_staff.ids["alice"])}
        timeline = client.get(f"/v1/tickets/{assigned['id']}/timeline", headers=alice).json()
        assert {i["actor"] for i in timeline["items"]} == {desk_staff.emails["alice"]}
