"""Contacts: who a business's customers are, found again by email or phone, merged when one
person became two. (Organisations: :mod:`helpdesk.organizations`; history:
:mod:`helpdesk.contact_history`.)

Every function takes the tenant id and filters by it, and takes a pool or a connection
(:data:`helpdesk.tenancy.Db`) so the API runs it under row-level security. The rules (what
resolving matches, what a merge keeps) are in ``docs/contacts.md``; in short:

* **Resolve** finds the live contact with this email, else the one with this phone, else creates
  one (an email or phone of a merged duplicate finds its survivor). Email is the stronger key:
  a phone already held by a contact with *another* email stays with that contact, and the new
  email gets a contact of its own. Details the found contact lacks (a phone, an email, a name)
  are filled in, never overwritten, unless the caller is the business's own site
  (``authoritative``), whose name wins.
* Two resolves of the same new email at once create one row: the insert is ``ON CONFLICT DO
  NOTHING`` against the unique indexes of live contacts, and the loser reads the winner's row.
* **Merge** moves a duplicate's conversations, tickets and leads to the survivor, fills the
  survivor's gaps from it, and keeps the duplicate as ``merged_into`` the survivor, for audit:
  never two live contacts for one person, never a row deleted.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk.contact_fields import contains_pattern, normalize_email, normalize_phone
from helpdesk.conversations import append_event
from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.organizations import get_organization
from helpdesk.tenancy import Db, connect

_RESOLVE_ATTEMPTS = 4
"""A resolve that loses a race re-reads and tries again; more than a couple of losses in a row
would need as many concurrent writers of one person."""

CONTACT_EDITABLE = frozenset({"name", "email", "phone", "notes", "organization_id", "external_ids"})


async def get_contact(db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> dict[str, Any]:
    """One contact of the tenant (live or merged); :class:`NotFound` otherwise."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM contacts WHERE id = %s AND tenant_id = %s", (contact_id, tenant_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no contact {contact_id} for this tenant")
    return dict(row)


async def _live_by(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, column: str, value: str | None
) -> dict[str, Any] | None:
    """The live contact with this email / phone; else the survivor of the latest merged
    duplicate that had it (its email or phone found them before the merge, and still does)."""
    if value is None:
        return None
    assert column in ("email", "phone")
    cur = await conn.execute(
        "SELECT COALESCE(merged_into, id) AS id FROM contacts"
        f" WHERE tenant_id = %s AND {column} = %s"
        " ORDER BY merged_into IS NULL DESC, merged_at DESC LIMIT 1",
        (tenant_id, value),
    )
    hit = await cur.fetchone()
    if hit is None:
        return None
    # Merges point every duplicate straight at a live survivor (no chains), so one hop.
    cur = await conn.execute(
        "SELECT * FROM contacts WHERE id = %s AND tenant_id = %s AND merged_into IS NULL",
        (hit["id"], tenant_id),
    )
    row = await cur.fetchone()
    return dict(row) if row else None


async def resolve_contact(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    external_ids: dict[str, str] | None = None,
    authoritative: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Find the live contact with this email or phone, or create it; return ``(row, created)``.

    ``email`` and ``phone`` are normalised here (:mod:`helpdesk.contact_fields`); at least one
    is needed. ``authoritative``: the details come from the business's site (a verified
    identity), so its name replaces the stored one; otherwise details only fill gaps.
    """
    stored_email = normalize_email(email) if email else None
    stored_phone = normalize_phone(phone) if phone else None
    if stored_email is None and stored_phone is None:
        raise InvalidInput("a contact needs an email or a phone")
    name = (name or "").strip()[:200]  # a signed identity's name may be longer than we keep
    async with connect(db) as conn:
        for _ in range(_RESOLVE_ATTEMPTS):
            try:
                async with conn.transaction():
                    found = await _resolve_once(
                        conn,
                        tenant_id,
                        stored_email,
                        stored_phone,
                        name,
                        external_ids or {},
                        authoritative,
                    )
            except psycopg.errors.UniqueViolation:
                continue  # another resolve wrote this email or phone meanwhile: read it
            if found is not None:
                return found
    raise Conflict("the contact kept changing while it was resolved; try again")


async def _resolve_once(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    email: str | None,
    phone: str | None,
    name: str,
    external_ids: dict[str, str],
    authoritative: bool,
) -> tuple[dict[str, Any], bool] | None:
    """One try: the found contact, completed, or a new one; None when an insert lost a race."""
    by_email = await _live_by(conn, tenant_id, "email", email)
    by_phone = await _live_by(conn, tenant_id, "phone", phone)
    contact = by_email
    if contact is None and by_phone is not None and (email is None or by_phone["email"] is None):
        contact = by_phone
    if contact is None:
        # The phone stays with the contact that has it (and another email): email decides.
        keep_phone = phone if by_phone is None else None
        cur = await conn.execute(
            "INSERT INTO contacts (tenant_id, name, email, phone, external_ids)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING *",
            (tenant_id, name, email, keep_phone, Jsonb(external_ids)),
        )
        row = await cur.fetchone()
        return (dict(row), True) if row else None
    cur = await conn.execute(
        """
        UPDATE contacts SET
            email = COALESCE(email, %(email)s),
            phone = COALESCE(phone, %(phone)s),
            name = CASE WHEN %(name)s <> '' AND (%(authoritative)s OR name = '')
                        THEN %(name)s ELSE name END,
            external_ids = external_ids || %(ext)s,
            updated_at = now()
        WHERE id = %(id)s AND tenant_id = %(tenant)s
        RETURNING *
        """,
        {
            "email": email,
            # A phone another live contact holds is not taken from it.
            "phone": phone if by_phone is None or by_phone["id"] == contact["id"] else None,
            "name": name,
            "authoritative": authoritative,
            "ext": Jsonb(external_ids),
            "id": contact["id"],
            "tenant": tenant_id,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(row), False


async def search_contacts(
    db: Db, tenant_id: uuid.UUID, q: str | None = None, *, limit: int = 50
) -> list[dict[str, Any]]:
    """Live contacts whose name or email contains ``q`` or whose phone contains its digits,
    most recently updated first; each row has ``organization_name``."""
    q = (q or "").strip() or None
    digits = "".join(ch for ch in q or "" if ch.isdigit())
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT c.*, o.name AS organization_name FROM contacts c
            LEFT JOIN organizations o ON o.id = c.organization_id AND o.tenant_id = c.tenant_id
            WHERE c.tenant_id = %(t)s AND c.merged_into IS NULL
              AND (%(q)s::text IS NULL OR c.name ILIKE %(like)s OR c.email ILIKE %(like)s
                   OR (%(digits)s <> '' AND c.phone LIKE %(dlike)s))
            ORDER BY c.updated_at DESC, c.id LIMIT %(n)s
            """,
            {
                "t": tenant_id,
                "q": q,
                "like": contains_pattern(q or ""),
                "digits": digits if len(digits) >= 3 else "",
                "dlike": f"%{digits}%",
                "n": limit,
            },
        )
        return [dict(r) for r in await cur.fetchall()]


async def update_contact(
    db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change fields of a live contact (:data:`CONTACT_EDITABLE`); return the row.

    ``None`` clears email, phone or organisation. An email or phone another live contact holds
    is a :class:`Conflict` (merge the two instead); a merged contact cannot be edited.
    """
    unknown = set(changes) - CONTACT_EDITABLE
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    values = dict(changes)
    if values.get("email") is not None:
        values["email"] = normalize_email(values["email"])
    if values.get("phone") is not None:
        values["phone"] = normalize_phone(values["phone"])
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
    if "external_ids" in values:
        values["external_ids"] = Jsonb(values["external_ids"] or {})
    async with connect(db) as conn:
        current = await get_contact(conn, tenant_id, contact_id)
        if current["merged_into"] is not None:
            raise Conflict(f"contact {contact_id} was merged into {current['merged_into']}")
        if values.get("organization_id") is not None:
            await get_organization(conn, tenant_id, values["organization_id"])
        if not values:
            return current
        sets = ", ".join(f"{col} = %({col})s" for col in values)
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    f"UPDATE contacts SET {sets}, updated_at = now()"
                    " WHERE id = %(id)s AND tenant_id = %(tenant)s RETURNING *",
                    {**values, "id": contact_id, "tenant": tenant_id},
                )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(
                "another contact has this email or phone; merge the two contacts instead"
            ) from exc
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def mark_verified(db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> None:
    """Record that the business's site has just vouched for this contact."""
    async with connect(db) as conn:
        await conn.execute(
            "UPDATE contacts SET verified_at = now() WHERE id = %s AND tenant_id = %s",
            (contact_id, tenant_id),
        )


async def link_conversation(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    contact_id: uuid.UUID,
    *,
    verified: bool = False,
) -> bool:
    """Link the conversation and every ticket of it to the contact; return whether anything
    changed.

    A conversation the business's site has vouched for (``contact_verified``) keeps its contact:
    details a customer offers later never relink it (:class:`Conflict` when they would). A
    change is logged as a ``contact.linked`` event (for the console; customers do not get it).
    """
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT contact_id, contact_verified FROM conversations"
            " WHERE id = %s AND tenant_id = %s FOR UPDATE",
            (conversation_id, tenant_id),
        )
        conv = await cur.fetchone()
        if conv is None:
            raise NotFound(f"no conversation {conversation_id} for this tenant")
        if conv["contact_verified"] and conv["contact_id"] != contact_id:
            raise Conflict("this conversation is with a verified contact; it is not relinked")
        if conv["contact_id"] == contact_id and (conv["contact_verified"] or not verified):
            return False
        await conn.execute(
            "UPDATE conversations SET contact_id = %s, contact_verified = %s"
            " WHERE id = %s AND tenant_id = %s",
            (contact_id, verified or conv["contact_verified"], conversation_id, tenant_id),
        )
        await conn.execute(
            "UPDATE tickets SET contact_id = %s, updated_at = now()"
            " WHERE conversation_id = %s AND tenant_id = %s",
            (contact_id, conversation_id, tenant_id),
        )
        await append_event(
            conn,
            tenant_id,
            conversation_id,
            "contact.linked",
            {"contact_id": str(contact_id), "verified": verified or conv["contact_verified"]},
        )
    return True


async def merge_contacts(
    db: Db, tenant_id: uuid.UUID, duplicate_id: uuid.UUID, survivor_id: uuid.UUID
) -> dict[str, Any]:
    """Merge ``duplicate_id`` into ``survivor_id``; return the survivor's row.

    The duplicate's conversations, tickets and leads move to the survivor, and contacts merged
    into the duplicate earlier now point at the survivor too (no chains). The survivor keeps
    its own details and takes the duplicate's where it has none; notes are joined. The
    duplicate stays, ``merged_into`` the survivor.
    """
    if duplicate_id == survivor_id:
        raise InvalidInput("a contact cannot be merged into itself")
    async with connect(db) as conn, conn.transaction():
        # Both rows locked, in id order, so two opposite merges cannot deadlock.
        cur = await conn.execute(
            "SELECT * FROM contacts WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
            (tenant_id, [duplicate_id, survivor_id]),
        )
        rows = {r["id"]: dict(r) for r in await cur.fetchall()}
        for cid in (duplicate_id, survivor_id):
            if cid not in rows:
                raise NotFound(f"no contact {cid} for this tenant")
            if rows[cid]["merged_into"] is not None:
                raise Conflict(f"contact {cid} was already merged into {rows[cid]['merged_into']}")
        dup, keep = rows[duplicate_id], rows[survivor_id]
        args = (survivor_id, duplicate_id, tenant_id)
        for table in ("conversations", "tickets", "leads"):
            await conn.execute(
                f"UPDATE {table} SET contact_id = %s WHERE contact_id = %s AND tenant_id = %s",
                args,
            )
        await conn.execute(
            "UPDATE contacts SET merged_into = %s WHERE merged_into = %s AND tenant_id = %s", args
        )
        # The duplicate leaves the unique indexes first, so the survivor can take its email.
        await conn.execute(
            "UPDATE contacts SET merged_into = %s, merged_at = now(), updated_at = now()"
            " WHERE id = %s AND tenant_id = %s",
            args,
        )
        notes = "\n\n".join(n for n in (keep["notes"], dup["notes"]) if n)
        cur = await conn.execute(
            """
            UPDATE contacts SET
                name = CASE WHEN name = '' THEN %(name)s ELSE name END,
                email = COALESCE(email, %(email)s),
                phone = COALESCE(phone, %(phone)s),
                organization_id = COALESCE(organization_id, %(org)s),
                external_ids = %(ext)s::jsonb || external_ids,
                notes = %(notes)s,
                verified_at = GREATEST(verified_at, %(verified)s),
                updated_at = now()
            WHERE id = %(id)s AND tenant_id = %(tenant)s RETURNING *
            """,
            {
                "name": dup["name"],
                "email": dup["email"],
                "phone": dup["phone"],
                "org": dup["organization_id"],
                "ext": Jsonb(dup["external_ids"]),
                "notes": notes[:10000],
                "verified": dup["verified_at"],
                "id": survivor_id,
                "tenant": tenant_id,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


CONTACT_REQUEST_EVENT = "contact.request"
"""The event type the widget shows its contact form on."""


async def request_contact(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    reason: str,
    message: str,
    dedupe_key: str | None = None,
) -> int:
    """Ask the customer for their name and email: log a ``contact.request`` event.

    ``reason`` says why, as a code (``before_quote``: the profile wants contact details before
    a quote; ``nobody_online``: a hand-off found nobody to answer now; ``asked``: anything
    else); ``message`` is what the widget shows above its form ("Nobody is in right now.
    Leave your email and we'll write back."). ``dedupe_key`` makes a node that re-runs on
    resume ask once. Returns the event's sequence number.
    """
    return await append_event(
        db,
        tenant_id,
        conversation_id,
        CONTACT_REQUEST_EVENT,
        {"reason": reason, "message": message},
        dedupe_key=dedupe_key,
    )
