"""What each role may do: the one table, enforced on every staff route (``api/permissions.py``)
and rendered in ``docs/roles.md`` (a test checks that the two agree).

Agents act on conversations and tickets. Managers also run the desk: teams, the knowledge base,
the audit log, and reading the user list (to put people in teams); they may take over or
release a conversation another agent owns (someone went home with it). Admins do everything,
including users, keys and the business profile. API keys map to roles: an agent key (``ak_``)
acts as an agent, an admin key (``sk_``) as an admin.
"""

from __future__ import annotations

from helpdesk.users import ROLES, Role

_ALL: frozenset[Role] = frozenset(ROLES)
_MANAGERS: frozenset[Role] = frozenset({"manager", "admin"})
_ADMINS: frozenset[Role] = frozenset({"admin"})

PERMISSIONS: dict[str, tuple[frozenset[Role], str]] = {
    "conversation.read": (_ALL, "see the queue, conversations, their events and tickets"),
    "conversation.reply": (_ALL, "take over, reply, release to the AI, close"),
    "conversation.approve": (_ALL, "approve, edit or reject a held AI draft"),
    "conversation.reassign": (_MANAGERS, "take over or release a conversation another owns"),
    "ticket.update": (_ALL, "change a ticket's status or priority (the older agent route)"),
    "ticket.read": (_ALL, "list and search tickets, read one with its timeline and notes"),
    "ticket.create": (_ALL, "open a ticket by hand, with or without a conversation"),
    "ticket.edit": (_ALL, "edit a ticket's fields and move it through the lifecycle"),
    "ticket.assign": (_ALL, "set or change a ticket's assignee and team"),
    "triage.manage": (_MANAGERS, "edit the triage rules and a team's auto-assignment"),
    "ticket.note": (_ALL, "add internal notes to tickets and conversations"),
    "contact.read": (_ALL, "see contacts, organisations, leads and a contact's history"),
    "contact.edit": (_ALL, "add and edit contacts, organisations and leads"),
    "contact.merge": (_MANAGERS, "merge a duplicate contact into another"),
    "presence.set": (_ALL, "set one's own presence (online, away, offline)"),
    "kb.read": (_ALL, "search the whole knowledge base, internal articles included"),
    "kb.ingest": (_MANAGERS, "upload knowledge-base files and follow ingestion jobs"),
    "kb.draft": (_ALL, "write article drafts from conversations, edit and submit them"),
    "kb.review": (_MANAGERS, "approve, publish or reject article drafts"),
    "teams.read": (_ALL, "list teams and their members"),
    "teams.manage": (_MANAGERS, "create, rename, delete teams and set their members"),
    "users.read": (_MANAGERS, "list staff accounts"),
    "users.manage": (_ADMINS, "create accounts, change roles, disable, issue reset links"),
    "audit.read": (_MANAGERS, "read the audit log"),
    "metrics.read": (_MANAGERS, "read the desk's metrics and export them"),
    "sla.manage": (_MANAGERS, "read and set the SLA policies (targets per priority, category)"),
    "keys.manage": (_ADMINS, "create and revoke API keys"),
    "profile.edit": (_ADMINS, "edit the business profile and chat configuration"),
    "notifications.read": (_ALL, "read one's notifications and set one's preferences"),
    "webhooks.manage": (_ADMINS, "add and remove webhooks, read their delivery log, replay"),
}
"""Action -> (the roles allowed, what the action covers)."""


def allowed_roles(action: str) -> frozenset[Role]:
    """The roles that may do ``action`` (KeyError for an action not in the table)."""
    return PERMISSIONS[action][0]


def allows(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action``."""
    return role in allowed_roles(action)


def markdown_table() -> str:
    """The table as ``docs/roles.md`` shows it (one row per action, one column per role)."""
    lines = [
        "| action | what it covers | " + " | ".join(ROLES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in ROLES) + " |",
    ]
    for action, (roles, what) in PERMISSIONS.items():
        marks = " | ".join("yes" if r in roles else "no" for r in ROLES)
        lines.append(f"| `{action}` | {what} | {marks} |")
    return "\n".join(lines)
