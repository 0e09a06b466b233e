"""Agent actions by two real users over HTTP: the actor always comes from the credential, agent
A cannot reply, approve, release or close what agent B owns (409 and nothing applied), a
manager may reassign, and every action lands in the transcript and the audit log under its real
actor, a plain approve included."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from helpdesk import keys
from tests.support.agent_api import act
from tests.support.live_api import bearer, sse_turn, start_conversation
from tests.support.staff import StaffTenant, make_staff, token_of

pytestmark = pytest.mark.integration

HELD = "How much does an electric water heater installation cost?"  # above the demo's limit


@pytest.fixture(scope="module")
async def desk_staff(services, demo) -> StaffTenant:
    staff = await make_staff(services.pool, tenant=demo)
    # A key named exactly like Alice's email: still not Alice.
    staff.tokens["alice's namesake"], _ = await keys.create_key(
        services.pool, demo.id, "agent", name=staff.emails["alice"]
    )
    return staff


def _detail(client, token: str, cid: str) -> dict:
    r = client.get(f"/v1/agent/conversations/{cid}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def _audit(client, staff: StaffTenant, cid: str) -> list[dict]:
    r = client.get(
        "/v1/admin/audit",
        params={"target_id": cid},
        headers=bearer(token_of(client, staff, "manager")),
    )
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["items"]))  # oldest first


def test_agent_b_cannot_act_on_a_conversation_agent_a_owns(live_api, desk_staff):
    staff = desk_staff
    with live_api.client() as client:
        alice, bob = token_of(client, staff, "alice"), token_of(client, staff, "bob")
        manager = token_of(client, staff, "manager")
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        cid = conv["id"]

        r = act(client, live_api, cid, "takeover", key=alice)
        assert r.status_code == 200, r.text
        assert r.json()["conversation"]["owner_agent"] == staff.emails["alice"]
        before = _detail(client, alice, cid)

        # Bob, and a key that merely carries Alice's name, get 409 and change nothing. A body
        # naming an agent is refused outright: the actor is never a request field.
        for token in (bob, staff.tokens["alice's namesake"]):
            for action, body in [
                ("takeover", {}),
                ("reply", {"text": "Alice here (not really)."}),
                ("release", {}),
                ("close", {}),
            ]:
                r = act(client, live_api, cid, action, body, key=token)
                assert r.status_code == 409, (action, r.text)
                assert r.json()["code"] == "conversation_owned", (action, r.text)
                assert staff.emails["alice"] in r.json()["message"]
        r = act(client, live_api, cid, "reply", {"text": "x", "agent": "bob"}, key=alice)
        assert r.status_code == 422
        after = _detail(client, alice, cid)
        assert after["messages"] == before["messages"]
        assert after["conversation"] == before["conversation"]
        assert after["pending"] == before["pending"]

        # Alice answers; a manager releases it back to the AI (the role table lets managers
        # reassign); then it is Bob's, and now Alice is the one refused.
        r = act(client, live_api, cid, "reply", {"text": "Hi, Alice here. Let me look."}, key=alice)
        assert r.status_code == 200, r.text
        assert act(client, live_api, cid, "release", key=manager).status_code == 200
        assert act(client, live_api, cid, "takeover", key=bob).status_code == 200
        r = act(client, live_api, cid, "reply", {"text": "Me again"}, key=alice)
        assert r.status_code == 409 and r.json()["code"] == "conversation_owned"
        assert act(client, live_api, cid, "close", key=bob).status_code == 200

        # The transcript names each real actor.
        messages = _detail(client, bob, cid)["messages"]
        acted = [(m["sender"], m["agent"]) for m in messages if m["sender"] in ("agent", "system")]
        assert acted == [
            ("agent", staff.emails["alice"]),
            ("system", staff.emails["manager"]),
            ("system", staff.emails["bob"]),
        ]
        # So does the audit log, by user id, and only for what was applied.
        entries = _audit(client, staff, cid)
        assert [(e["action"], e["actor_user_id"]) for e in entries] == [
            ("conversation.takeover", str(staff.ids["alice"])),
            ("conversation.reply", str(staff.ids["alice"])),
            ("conversation.release", str(staff.ids["manager"])),
            ("conversation.takeover", str(staff.ids["bob"])),
            ("conversation.close", str(staff.ids["bob"])),
        ]
        assert entries[2]["detail"]["reassigned_from"] == staff.emails["alice"]
        assert all(e["at"] for e in entries)


def test_a_plain_approve_records_its_reviewer_and_a_second_approve_is_refused(
    live_api, desk_staff, database_url
):
    staff = desk_staff
    with live_api.client() as client:
        alice, bob = token_of(client, staff, "alice"), token_of(client, staff, "bob")
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "approval.pending" in dict(sse_turn(client, conv, HELD))
        cid = conv["id"]
        interrupt = _detail(client, bob, cid)["pending"]["interrupt_id"]

        r = act(client, live_api, cid, "approve", {"interrupt_id": interrupt}, key=alice)
        assert r.status_code == 200, r.text
        r = act(client, live_api, cid, "approve", {"interrupt_id": interrupt}, key=bob)
        assert r.status_code == 409 and r.json()["code"] == "interrupt_conflict"

        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT data FROM conversation_events WHERE conversation_id = %s"
                " AND type = 'approval.approved'",
                (cid,),
            ).fetchall()
        assert [row[0]["reviewer"] for row in rows] == [staff.emails["alice"]]
        entries = _audit(client, staff, cid)
        assert [(e["action"], e["actor_name"]) for e in entries] == [
            ("conversation.approve", staff.emails["alice"])
        ]
        assert entries[0]["detail"]["waiting_on"] == "approval"


def test_a_release_or_close_that_resumes_the_hand_off_names_its_agent(live_api, desk_staff):
    staff = desk_staff
    with live_api.client() as client:
        alice = token_of(client, staff, "alice")
        for action in ("release", "close"):
            conv = start_conversation(client, live_api.demo.widget_key)
            assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
            r = act(client, live_api, conv["id"], action, key=alice)
            assert r.status_code == 200, r.text
            last = _detail(client, alice, conv["id"])["messages"][-1]
            assert (last["sender"], last["agent"]) == ("system", staff.emails["alice"]), action
            [entry] = _audit(client, staff, conv["id"])
            assert entry["action"] == f"conversation.{action}"
            assert entry["detail"]["waiting_on"] == "handoff"


def test_a_ticket_update_is_audited_under_its_actor(live_api, desk_staff):
    staff = desk_staff
    with live_api.client() as client:
        bob = token_of(client, staff, "bob")
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        ticket = _detail(client, bob, conv["id"])["ticket"]
        r = client.patch(
            f"/v1/agent/tickets/{ticket['id']}", json={"priority": "high"}, headers=bearer(bob)
        )
        assert r.status_code == 200, r.text
        r = client.get(
            "/v1/admin/audit",
            params={"target_id": ticket["id"]},
            headers=bearer(token_of(client, staff, "manager")),
        )
        [entry] = r.json()["items"]
        assert entry["action"] == "ticket.update" and entry["actor_user_id"] == str(
            staff.ids["bob"]
        )
        assert entry["detail"]["after"]["priority"] == "high"
        # Agents do not read the audit log.
        r = client.get("/v1/admin/audit", headers=bearer(bob))
        assert r.status_code == 403


def test_the_queue_filtered_by_team_and_who_is_online(live_api, desk_staff, services):
    staff = desk_staff
    with live_api.client() as client:
        alice, bob = token_of(client, staff, "alice"), token_of(client, staff, "bob")
        manager = bearer(token_of(client, staff, "manager"))
        r = client.post(
            "/v1/admin/teams",
            json={
                "name": f"Heating {staff.slug}-{staff.ids['alice'].hex[:4]}",
                "members": [str(staff.ids["alice"])],
            },
            headers=manager,
        )
        assert r.status_code == 201, r.text
        team = r.json()["id"]
        convs = []
        for owner in (alice, bob, None):
            conv = start_conversation(client, live_api.demo.widget_key)
            assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
            if owner:
                assert act(client, live_api, conv["id"], "takeover", key=owner).status_code == 200
            convs.append(conv["id"])
        alices, bobs, nobodys = convs

        r = client.get("/v1/agent/queue", params={"team": team}, headers=bearer(bob))
        assert r.status_code == 200, r.text
        listed = {i["conversation_id"] for i in r.json()["items"]}
        assert alices in listed and nobodys in listed and bobs not in listed
        everyone = client.get("/v1/agent/queue", headers=bearer(bob)).json()
        assert set(convs) <= {i["conversation_id"] for i in everyone["items"]}

        # Alice is signed in and online; set offline, her team has nobody online.
        client.put("/v1/agent/me/presence", json={"status": "online"}, headers=bearer(alice))
        assert r.json()["people_online"] == 1
        client.put("/v1/agent/me/presence", json={"status": "offline"}, headers=bearer(alice))
        r = client.get("/v1/agent/queue", params={"team": team}, headers=bearer(bob))
        assert r.json()["people_online"] == 0
        assert everyone["people_online"] >= 2  # bob and the manager at least
        client.put("/v1/agent/me/presence", json={"status": "online"}, headers=bearer(alice))

        r = client.get("/v1/agent/queue", params={"team": str(uuid.uuid4())}, headers=bearer(bob))
        assert r.status_code == 404
