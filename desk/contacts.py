"""The customer's side of contacts: details a customer offers, an identity the business's site
vouches for, and asking the customer for their details.

* :func:`offer_contact`: a customer gives name / email / phone in a conversation. The contact is
  resolved (or created), the conversation and its tickets are linked to it, and a lead is
  recorded when the conversation asked for a quote and has no lead yet.
* :func:`identify`: a conversation started with a signed identity (:mod:`helpdesk.identity`):
  the same linking, marked verified. It runs before anything is written, so a refused
  signature leaves nothing behind.
* Asking the customer for their details is :func:`helpdesk.contacts.request_contact` (the
  graph's hand-off calls it, below this layer): a ``contact.request`` event on which the widget
  shows its name + email form, posted to ``POST /v1/conversations/{id}/contact``, which calls
  :func:`offer_contact`.

All of them take a connection already inside the caller's tenant scope
(:func:`helpdesk.tenancy.tenant_scope`), so what they write commits or fails together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from desk.stream import Graph, thread_config
from helpdesk import contacts, conversations, identity, leads
from helpdesk.tenancy import Db


@dataclass(frozen=True)
class Offered:
    """What offering contact details did."""

    contact: dict[str, Any]
    created: bool
    """A new contact (no earlier one had this email or phone)."""
    lead: dict[str, Any] | None
    """The conversation's lead when it has one (made now or before)."""
    lead_created: bool


async def thread_quote(graph: Graph, conversation_id: uuid.UUID) -> str | None:
    """The question of the thread's latest turn when it asked for a quote.

    A quote request whose answer is held for review (a price above the tenant's limit usually
    is) or still being written has no stored answer with its intent yet; the thread's state
    has the turn's intent and question. The caller has checked the conversation's tenant.
    """
    snapshot = await graph.aget_state(thread_config(conversation_id))
    values = snapshot.values or {}
    question = values.get("question")
    if values.get("intent") in leads.QUOTE_INTENTS and isinstance(question, str) and question:
        return question
    return None


async def offer_contact(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    graph: Graph | None = None,
) -> Offered:
    """Resolve the offered details to a contact, link the conversation (and its tickets) to
    it, and record a lead when the conversation has a quote request and no lead yet.

    The quote request is found in the stored messages and tickets
    (:func:`helpdesk.leads.quote_request`), else in the ``graph`` thread's latest turn
    (:func:`thread_quote`). Raises :class:`helpdesk.errors.NotFound` for another tenant's
    conversation, :class:`helpdesk.errors.InvalidInput` for a bad email or phone, and
    :class:`helpdesk.errors.Conflict` when the conversation is with a verified contact.
    """
    await conversations.get_conversation(db, tenant_id, conversation_id)
    contact, created = await contacts.resolve_contact(
        db, tenant_id, email=email, phone=phone, name=name
    )
    await contacts.link_conversation(db, tenant_id, conversation_id, contact["id"])
    lead, lead_created = None, False
    request = await leads.quote_request(db, tenant_id, conversation_id)
    if request is None and graph is not None:
        request = await thread_quote(graph, conversation_id)
    if request is not None:
        lead, lead_created = await leads.record_lead(
            db, tenant_id, contact["id"], conversation_id, request
        )
    return Offered(contact, created, lead, lead_created)


async def identify(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    user: dict[str, Any],
    signature: str,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a signed identity and link the (new) conversation to its contact, verified.

    Raises :class:`helpdesk.identity.InvalidIdentity` / :class:`~helpdesk.identity.
    IdentityExpired` before writing anything; call it in the transaction that creates the
    conversation, so a refusal creates nothing at all.
    """
    secret = await identity.load_identity_secret(db, tenant_id)
    who = identity.verify_identity(secret, user, signature, now=now)
    external = {"site": who.user_id} if who.user_id else None
    contact, _ = await contacts.resolve_contact(
        db,
        tenant_id,
        email=who.email,
        phone=who.phone,
        name=who.name,
        external_ids=external,
        authoritative=True,
    )
    await contacts.mark_verified(db, tenant_id, contact["id"])
    await contacts.link_conversation(db, tenant_id, conversation_id, contact["id"], verified=True)
    return contact
