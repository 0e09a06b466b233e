"""Contacts over real HTTP on a real Postgres: a customer's offered details resolve to one
contact, merges move history, signed identities are checked, a hand-off's ticket reaches the
customer who left an email, quote requests become leads, and another tenant's ids are 404."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from helpdesk import contacts, organizations
from helpdesk.identity import ensure_identity_secret, sign_user
from helpdesk.tenancy import tenant_scope
from tests.support.live_api import bearer, sse_turn, start_conversation

pytestmark = pytest.mark.integration


def _email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@Example.com"


def _offer(client: httpx.Client, conv: dict[str, Any], **details: str) -> httpx.Response:
    return client.post(
        f"/v1/conversations/{conv['id']}/contact",
        json=details,
        headers=bearer(conv["customer_token"]),
    )


def _staff(live_api: Any, other: bool = False) -> dict[str, str]:
    return bearer((live_api.other if other else live_api.demo).agent_key)


def _manager(live_api: Any, other: bool = False) -> dict[str, str]:
    """Merging contacts is a manager's action (helpdesk.roles: contact.merge); an admin key."""
    return bearer((live_api.other if other else live_api.demo).admin_key)


def _card(client: httpx.Client, live_api: Any, cid: str) -> dict[str, Any] | None:
    r = client.get(f"/v1/agent/conversations/{cid}", headers=_staff(live_api))
    assert r.status_code == 200, r.text
    card: dict[str, Any] | None = r.json()["contact"]
    return card


def _contact(client: httpx.Client, live_api: Any, contact_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/agent/contacts/{contact_id}", headers=_staff(live_api))
    assert r.status_code == 200, r.text
    detail: dict[str, Any] = r.json()
    return detail


async def _count(services: Any, sql: str, *args: Any) -> int:
    async with services.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        row = await cur.fetchone()
    return int(next(iter(row.values())))


# ------------------------------------------------------------------- resolve and link


def test_email_then_phone_resolve_to_one_contact(live_api: Any) -> None:
    email = _email("ann")
    with live_api.client() as client:
        first = start_conversation(client, live_api.demo.widget_key)
        r = _offer(client, first, name="Ann Lee", email=email)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "name": "Ann Lee",
            "email": email.lower(),
            "phone": None,
            "lead": False,
        }
        card = _card(client, live_api, first["id"])
        assert card is not None and card["email"] == email.lower() and not card["verified"]

        # The same email in other case, now with a phone: the same contact, phone added.
        second = start_conversation(client, live_api.demo.widget_key)
        r = _offer(client, second, email=email.upper(), phone="+1 (555) 010-0199")
        assert r.status_code == 200, r.text
        # The phone alone, typed another way: still the same contact.
        third = start_conversation(client, live_api.demo.widget_key)
        assert _offer(client, third, phone="+1 555 010 0199").status_code == 200

        cards = [_card(client, live_api, c["id"]) for c in (first, second, third)]
        assert {c["id"] for c in cards if c} == {card["id"]}
        assert [c["earlier_conversations"] for c in cards if c] == [0, 1, 2]
        detail = _contact(client, live_api, card["id"])
        assert detail["contact"]["phone"] == "+15550100199"
        assert detail["contact"]["name"] == "Ann Lee"
        assert {c["id"] for c in detail["conversations"]} == {
            first["id"],
            second["id"],
            third["id"],
        }
        assert detail["conversation_count"] == 3
        assert detail["average_csat"] is None and detail["csat_count"] == 0

        # Staff find them by name, by email and by the phone's digits.
        for q in ("Ann Lee", email.split("@")[0].upper(), "0100199"):
            r = client.get("/v1/agent/contacts", params={"q": q}, headers=_staff(live_api))
            assert r.status_code == 200, r.text
            assert [c["id"] for c in r.json()["items"]] == [card["id"]], q


def test_offered_details_are_validated_by_field(live_api: Any) -> None:
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        r = _offer(client, conv, name="Ann", email="ann-at-example.com")
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        assert r.json()["details"][0]["loc"] == ["body", "email"]
        assert "exactly one @" in r.json()["message"]
        r = _offer(client, conv, phone="call me")
        assert r.status_code == 422 and r.json()["details"][0]["loc"] == ["body", "phone"]
        r = _offer(client, conv, name="Ann")
        assert r.status_code == 422 and "email or a phone" in r.json()["message"]
        r = _offer(client, conv, email="ann@example.com", role="admin")
        assert r.status_code == 422 and r.json()["details"][0]["loc"] == ["body", "role"]
        assert _card(client, live_api, conv["id"]) is None  # nothing was linked

        # A customer token acts on its own conversation only.
        other = start_conversation(client, live_api.demo.widget_key)
        r = client.post(
            f"/v1/conversations/{other['id']}/contact",
            json={"email": "ann@example.com"},
            headers=bearer(conv["customer_token"]),
        )
        assert r.status_code == 403


def test_concurrent_offers_of_one_new_email_make_one_contact(live_api: Any) -> None:
    email = _email("rush")
    with live_api.client() as client:
        convs = [start_conversation(client, live_api.demo.widget_key) for _ in range(8)]

    def offer(conv: dict[str, Any]) -> int:
        with live_api.client() as c:
            return _offer(c, conv, email=email, name="Rush").status_code

    with ThreadPoolExecutor(len(convs)) as pool:
        assert list(pool.map(offer, convs)) == [200] * len(convs)
    with live_api.client() as client:
        ids = {(_card(client, live_api, c["id"]) or {}).get("id") for c in convs}
        assert len(ids) == 1 and None not in ids
        r = client.get("/v1/agent/contacts", params={"q": email}, headers=_staff(live_api))
        assert len(r.json()["items"]) == 1


async def test_concurrent_resolves_in_the_repository_make_one_row(services: Any, demo: Any) -> None:
    email = _email("race")

    async def resolve() -> tuple[dict[str, Any], bool]:
        async with tenant_scope(services.pool, demo.id) as conn:
            return await contacts.resolve_contact(conn, demo.id, email=email, phone="+4930123456")

    results = await asyncio.gather(*(resolve() for _ in range(6)))
    assert len({row["id"] for row, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    n = await _count(
        services,
        "SELECT count(*) FROM contacts WHERE tenant_id = %s AND email = %s",
        demo.id,
        email.lower(),
    )
    assert n == 1


# -------------------------------------------------------------------------------- merge


def test_merge_moves_conversations_tickets_and_keeps_the_duplicate(live_api: Any) -> None:
    keep_email, dup_email = _email("keep"), _email("dup")
    with live_api.client() as client:
        a = start_conversation(client, live_api.demo.widget_key)
        assert _offer(client, a, name="Bo Keep", email=keep_email).status_code == 200
        b = start_conversation(client, live_api.demo.widget_key)
        assert _offer(client, b, email=dup_email, phone="+44 20 7946 0101").status_code == 200
        assert "handoff" in dict(sse_turn(client, b, "I want to talk to a person"))
        keep = (_card(client, live_api, a["id"]) or {})["id"]
        dup = (_card(client, live_api, b["id"]) or {})["id"]
        assert keep != dup
        r = client.patch(
            f"/v1/agent/contacts/{dup}", json={"notes": "Called twice"}, headers=_staff(live_api)
        )
        assert r.status_code == 200, r.text

        # An agent may not merge (contact.merge is a manager's action); nothing moves.
        r = client.post(
            f"/v1/agent/contacts/{dup}/merge", json={"into": keep}, headers=_staff(live_api)
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
        assert _contact(client, live_api, dup)["contact"]["merged_into"] is None
        r = client.post(
            f"/v1/agent/contacts/{dup}/merge", json={"into": keep}, headers=_manager(live_api)
        )
        assert r.status_code == 200, r.text
        survivor = r.json()
        assert survivor["id"] == keep and survivor["email"] == keep_email.lower()
        assert survivor["phone"] == "+442079460101"  # taken from the duplicate, which had one
        assert survivor["name"] == "Bo Keep" and survivor["notes"] == "Called twice"

        detail = _contact(client, live_api, keep)
        assert {c["id"] for c in detail["conversations"]} == {a["id"], b["id"]}
        assert [t["conversation_id"] for t in detail["tickets"]] == [b["id"]]
        assert (_card(client, live_api, b["id"]) or {})["id"] == keep
        gone = _contact(client, live_api, dup)  # kept for audit, empty
        assert gone["contact"]["merged_into"] == keep and gone["conversations"] == []
        # who edited and who merged is in the audit log, each with what they changed
        r = client.get("/v1/admin/audit", params={"action": "contact."}, headers=_manager(live_api))
        mine = [e for e in r.json()["items"] if e["target_id"] == dup]
        assert [(e["action"], e["detail"]) for e in mine] == [
            ("contact.merge", {"into": keep}),
            ("contact.edit", {"fields": ["notes"]}),
        ]

        # Never two live: the duplicate is out of search, cannot be edited or merged again,
        # and its email finds the survivor.
        r = client.get("/v1/agent/contacts", params={"q": dup_email}, headers=_staff(live_api))
        assert r.json()["items"] == []
        r = client.patch(f"/v1/agent/contacts/{dup}", json={"name": "x"}, headers=_staff(live_api))
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        r = client.post(
            f"/v1/agent/contacts/{dup}/merge", json={"into": keep}, headers=_manager(live_api)
        )
        assert r.status_code == 409
        r = client.post(
            f"/v1/agent/contacts/{keep}/merge", json={"into": keep}, headers=_manager(live_api)
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        c = start_conversation(client, live_api.demo.widget_key)
        assert _offer(client, c, email=dup_email).status_code == 200
        assert (_card(client, live_api, c["id"]) or {})["id"] == keep


def test_a_phone_or_email_of_another_contact_cannot_be_given_to_one(live_api: Any) -> None:
    with live_api.client() as client:
        a = start_conversation(client, live_api.demo.widget_key)
        _offer(client, a, email=_email("pa"), phone="+1 555 010 0777")
        b = start_conversation(client, live_api.demo.widget_key)
        _offer(client, b, email=_email("pb"))
        cb = (_card(client, live_api, b["id"]) or {})["id"]
        r = client.patch(
            f"/v1/agent/contacts/{cb}", json={"phone": "+15550100777"}, headers=_staff(live_api)
        )
        assert r.status_code == 409 and "merge" in r.json()["message"]
        r = client.patch(f"/v1/agent/contacts/{cb}", json={"phone": "12"}, headers=_staff(live_api))
        assert r.status_code == 422 and r.json()["details"][0]["loc"] == ["body", "phone"]
        # An organisation is set by id, and shows on the card beside the conversation.
        org = client.post(
            "/v1/agent/organizations",
            json={"name": "Acme Heating", "domain": f"https://www.acme-{cb[:8]}.test/x"},
            headers=_staff(live_api),
        )
        assert org.status_code == 201, org.text
        assert org.json()["domain"] == f"acme-{cb[:8]}.test"
        r = client.patch(
            f"/v1/agent/contacts/{cb}",
            json={"organization_id": org.json()["id"], "name": "Pat B"},
            headers=_staff(live_api),
        )
        assert r.status_code == 200 and r.json()["organization_name"] == "Acme Heating"
        card = _card(client, live_api, b["id"]) or {}
        assert (card["name"], card["organization_name"]) == ("Pat B", "Acme Heating")


# ------------------------------------------------------------------------- identities


async def _secret(services: Any, tenant_id: uuid.UUID) -> str:
    secret, _ = await ensure_identity_secret(services.pool, tenant_id)
    return secret


def _start(client: httpx.Client, live_api: Any, identity: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/v1/conversations",
        json={"channel": "web", "identity": identity},
        headers={"X-Widget-Key": live_api.demo.widget_key},
    )


async def test_signed_identities_good_forged_and_stale(
    live_api: Any, services: Any, demo: Any
) -> None:
    secret = await _secret(services, demo.id)
    email = _email("signed")
    user = {"email": email, "name": "Sig Ned", "user_id": "site-9", "iat": int(time.time())}
    conversations_sql = "SELECT count(*) FROM conversations WHERE tenant_id = %s"
    contacts_sql = "SELECT count(*) FROM contacts WHERE tenant_id = %s AND email = %s"

    def refused(identity: dict[str, Any], code: str) -> None:
        with live_api.client() as client:
            r = _start(client, live_api, identity)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == code, r.text

    before = await _count(services, conversations_sql, demo.id)
    forged = {**user, "email": _email("mallory")}
    stale = {**user, "iat": int(time.time()) - 3600}
    future = {**user, "iat": int(time.time()) + 3600}
    other_secret = await _secret(services, (await _other(services)).id)
    for identity, code in [
        ({"user": forged, "signature": sign_user(secret, user)}, "invalid_identity"),
        ({"user": user, "signature": sign_user(other_secret, user)}, "invalid_identity"),
        ({"user": user, "signature": "0" * 64}, "invalid_identity"),
        ({"user": {**user, "iat": str(user["iat"])}, "signature": "0" * 64}, "invalid_identity"),
        ({"user": stale, "signature": sign_user(secret, stale)}, "identity_expired"),
        ({"user": future, "signature": sign_user(secret, future)}, "identity_expired"),
    ]:
        await asyncio.to_thread(refused, identity, code)
    # Refused means nothing at all: no conversation, no contact.
    assert await _count(services, conversations_sql, demo.id) == before
    assert await _count(services, contacts_sql, demo.id, email.lower()) == 0

    def good() -> tuple[dict[str, Any], dict[str, Any] | None, httpx.Response]:
        with live_api.client() as client:
            r = _start(client, live_api, {"user": user, "signature": sign_user(secret, user)})
            assert r.status_code == 201, r.text
            conv = r.json()
            card = _card(client, live_api, conv["id"])
            # The customer of a verified conversation cannot relink it to someone else.
            relink = _offer(client, conv, email=_email("someone-else"))
            return conv, card, relink

    _, card, relink = await asyncio.to_thread(good)
    assert card is not None
    assert (card["email"], card["name"], card["verified"]) == (email.lower(), "Sig Ned", True)
    assert relink.status_code == 409 and relink.json()["code"] == "conflict"
    with live_api.client() as client:
        detail = await asyncio.to_thread(_contact, client, live_api, card["id"])
    assert detail["contact"]["external_ids"] == {"site": "site-9"}
    assert detail["contact"]["verified_at"] is not None


async def _other(services: Any) -> Any:
    from helpdesk.tenants import get_tenant
    from tests.support.live_api import OTHER_SLUG

    return await get_tenant(services.pool, OTHER_SLUG)


# -------------------------------------------------------------- tickets and leads


def test_a_customer_who_left_an_email_after_a_handoff_is_reachable_from_the_ticket(
    live_api: Any,
) -> None:
    email = _email("late")
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        events = dict(sse_turn(client, conv, "I want to talk to a person, nobody answers"))
        ticket_id = events["handoff"]["ticket_id"]
        assert _offer(client, conv, name="Lee Late", email=email).status_code == 200
        ticket = client.get(f"/v1/agent/tickets/{ticket_id}", headers=_staff(live_api)).json()
        assert ticket["contact_id"]
        contact = _contact(client, live_api, ticket["contact_id"])["contact"]
        assert contact["email"] == email.lower()

        # Details left before the hand-off: the ticket starts with the contact.
        early = start_conversation(client, live_api.demo.widget_key)
        assert _offer(client, early, email=_email("early")).status_code == 200
        events = dict(sse_turn(client, early, "Can I talk to a human please"))
        ticket = client.get(
            f"/v1/agent/tickets/{events['handoff']['ticket_id']}", headers=_staff(live_api)
        ).json()
        assert ticket["contact_id"] == (_card(client, live_api, early["id"]) or {})["id"]


def test_a_quote_request_with_contact_details_is_a_lead(live_api: Any) -> None:
    question = "How much would a new tankless water heater cost?"
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, conv, question)
        r = _offer(client, conv, name="Quinn Quote", email=_email("quote"))
        assert r.status_code == 200 and r.json()["lead"] is True
        again = _offer(client, conv, name="Quinn Quote", phone="+1 555 010 0456")
        assert again.status_code == 200 and again.json()["lead"] is True

        r = client.get("/v1/agent/leads", headers=_staff(live_api))
        mine = [lead for lead in r.json()["items"] if lead["conversation_id"] == conv["id"]]
        assert len(mine) == 1  # offered twice, one lead
        lead = mine[0]
        assert (lead["request"], lead["status"], lead["contact_name"]) == (
            question,
            "new",
            "Quinn Quote",
        )
        r = client.patch(
            f"/v1/agent/leads/{lead['id']}", json={"status": "won"}, headers=_staff(live_api)
        )
        assert r.status_code == 200 and r.json()["status"] == "won"
        r = client.get("/v1/agent/leads", params={"status": "won"}, headers=_staff(live_api))
        assert lead["id"] in [x["id"] for x in r.json()["items"]]
        r = client.patch(
            f"/v1/agent/leads/{lead['id']}", json={"status": "maybe"}, headers=_staff(live_api)
        )
        assert r.status_code == 422
        assert [x["id"] for x in _contact(client, live_api, lead["contact_id"])["leads"]] == [
            lead["id"]
        ]

        # A conversation that asked no price makes no lead.
        plain = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, plain, "What are your opening hours?")
        assert _offer(client, plain, email=_email("hours")).json()["lead"] is False


# ------------------------------------------------------------------------ tenancy


def test_another_tenants_contacts_and_leads_are_404(live_api: Any) -> None:
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, conv, "how much do you charge per hour")
        assert _offer(client, conv, email=_email("mine")).status_code == 200
        contact_id = (_card(client, live_api, conv["id"]) or {})["id"]
        lead = next(
            x
            for x in client.get("/v1/agent/leads", headers=_staff(live_api)).json()["items"]
            if x["conversation_id"] == conv["id"]
        )
        theirs = client.post(
            "/v1/agent/contacts", json={"email": _email("theirs")}, headers=_staff(live_api, True)
        )
        assert theirs.status_code == 200, theirs.text
        their_id = theirs.json()["id"]

        other = _staff(live_api, other=True)
        assert client.get(f"/v1/agent/contacts/{contact_id}", headers=other).status_code == 404
        r = client.patch(f"/v1/agent/contacts/{contact_id}", json={"notes": "x"}, headers=other)
        assert r.status_code == 404
        r = client.post(
            f"/v1/agent/contacts/{their_id}/merge",
            json={"into": contact_id},
            headers=_manager(live_api, other=True),
        )
        assert r.status_code == 404
        r = client.post(
            f"/v1/agent/contacts/{contact_id}/merge",
            json={"into": their_id},
            headers=_manager(live_api),
        )
        assert r.status_code == 404
        r = client.patch(f"/v1/agent/leads/{lead['id']}", json={"status": "lost"}, headers=other)
        assert r.status_code == 404
        assert lead["id"] not in [
            x["id"] for x in client.get("/v1/agent/leads", headers=other).json()["items"]
        ]
        r = client.get("/v1/agent/contacts", params={"q": "@example.com"}, headers=other)
        assert contact_id not in [c["id"] for c in r.json()["items"]]
        assert their_id in [c["id"] for c in r.json()["items"]]
        # Another tenant's organisation cannot be given to a contact either.
        org = client.post("/v1/agent/organizations", json={"name": "Theirs"}, headers=other)
        r = client.patch(
            f"/v1/agent/contacts/{contact_id}",
            json={"organization_id": org.json()["id"]},
            headers=_staff(live_api),
        )
        assert r.status_code == 404
        # Unchanged by all of it.
        assert _contact(client, live_api, contact_id)["contact"]["notes"] == ""
        assert client.get("/v1/agent/leads", headers=_staff(live_api)).status_code == 200


# ---------------------------------------------------------------------------- CLI


def test_identity_secret_is_shown_once_and_rotates(cli_database: str, demo: Any) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    slug = f"idsec-{uuid.uuid4().hex[:6]}"
    assert CliRunner().invoke(app, ["tenant", "create", slug, "--name", "Id Co"]).exit_code == 0
    first = CliRunner().invoke(app, ["tenant", "identity-secret", slug])
    assert first.exit_code == 0, first.output
    secret = first.stdout.strip().splitlines()[-1]
    assert secret.startswith("ids_") and len(secret) >= 40
    again = CliRunner().invoke(app, ["tenant", "identity-secret", slug])
    assert again.exit_code == 2 and secret not in again.output
    assert "--rotate" in again.output
    rotated = CliRunner().invoke(app, ["tenant", "identity-secret", slug, "--rotate"])
    assert rotated.exit_code == 0
    new = rotated.stdout.strip().splitlines()[-1]
    assert new.startswith("ids_") and new != secret
    missing = CliRunner().invoke(app, ["tenant", "identity-secret", "no-such-tenant"])
    assert missing.exit_code == 2 and "no tenant" in missing.output


async def test_row_level_security_hides_other_tenants_rows_of_every_new_table(
    live_api: Any, services: Any, demo: Any
) -> None:
    other = await _other(services)
    async with tenant_scope(services.pool, other.id) as conn:
        theirs, _ = await contacts.resolve_contact(conn, other.id, email=_email("rls"))
        org = await organizations.create_organization(conn, other.id, "RLS Co")
    await _secret(services, other.id)
    async with services.pool.connection() as conn:  # as the owner: a lead for their contact
        cur = await conn.execute(
            "INSERT INTO leads (tenant_id, contact_id, request) VALUES (%s, %s, 'q') RETURNING id",
            (other.id, theirs["id"]),
        )
        lead = await cur.fetchone()
    queries = {
        "contacts": ("SELECT count(*) AS n FROM contacts WHERE id = %s", theirs["id"]),
        "organizations": ("SELECT count(*) AS n FROM organizations WHERE id = %s", org["id"]),
        "leads": ("SELECT count(*) AS n FROM leads WHERE id = %s", lead["id"]),
        "identity_secrets": (
            "SELECT count(*) AS n FROM identity_secrets WHERE tenant_id = %s",
            other.id,
        ),
    }
    for table, (sql, arg) in queries.items():
        # No tenant filter in the query: the policy alone hides the row from the demo tenant.
        async with tenant_scope(services.pool, demo.id) as conn:
            cur = await conn.execute(sql, (arg,))
            assert (await cur.fetchone())["n"] == 0, table
        async with tenant_scope(services.pool, other.id) as conn:
            cur = await conn.execute(sql, (arg,))
            assert (await cur.fetchone())["n"] == 1, table
    # Nor can the demo tenant write a row as the other tenant.
    async with tenant_scope(services.pool, demo.id) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(
                "INSERT INTO contacts (tenant_id, email) VALUES (%s, 'x@rls.test')", (other.id,)
            )
