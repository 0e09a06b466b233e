"""Throttling of failed sign-ins, per (tenant, email) and per (tenant, client address).

The counts live in Postgres (``sign_in_throttle``), so every API process sees the same ones and
a restart forgets nothing. The rule, applied in one statement per failure so concurrent
failures on two processes cannot both slip under it:

* failures older than ``window_s`` (1 hour) since the last one are forgotten;
* from the ``max_failures``-th failure on, the subject is locked for ``lock_s`` (30 s), doubled
  for every further failure, at most ``max_lock_s`` (15 minutes);
* a locked subject is refused before its password is checked (429 ``too_many_attempts`` with
  ``Retry-After``), so a lock cannot be used to test guesses, and refused attempts do not count;
* a successful sign-in clears its email's count, not its address's (an attacker who owns one
  account must not reset the address count of their guessing).

Emails get 5 failures, addresses 20 (an office behind one NAT shares an address). Why these
numbers: ``docs/decisions/console-sessions.md``.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Literal

from helpdesk.tenancy import Db, connect

Scope = Literal["email", "address"]


@dataclass(frozen=True)
class ThrottleRule:
    """When a subject gets locked, and for how long."""

    max_failures: int = 5
    lock_s: float = 30.0
    max_lock_s: float = 900.0
    window_s: float = 3600.0


async def locked_for(db: Db, tenant_id: uuid.UUID, subjects: list[tuple[Scope, str]]) -> float:
    """Seconds until every one of ``subjects`` is unlocked (0 when none is locked)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT max(EXTRACT(EPOCH FROM locked_until - now())) AS wait FROM sign_in_throttle"
            " WHERE tenant_id = %s AND (scope, subject) IN (SELECT * FROM unnest(%s::text[],"
            " %s::text[])) AND locked_until > now()",
            (tenant_id, [s for s, _ in subjects], [x[:300] for _, x in subjects]),
        )
        row = await cur.fetchone()
    wait = row["wait"] if row else None
    return float(wait) if wait is not None else 0.0


async def record_failure(
    db: Db, tenant_id: uuid.UUID, scope: Scope, subject: str, rule: ThrottleRule
) -> int:
    """Count one failed sign-in for ``subject``; return its failures in the window."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "INSERT INTO sign_in_throttle AS t (tenant_id, scope, subject, failures)"
            " VALUES (%(tenant)s, %(scope)s, %(subject)s, 1)"
            " ON CONFLICT (tenant_id, scope, subject) DO UPDATE SET"
            "  failures = CASE WHEN t.last_failure_at < now() - make_interval(secs => %(window)s)"
            "    THEN 1 ELSE t.failures + 1 END,"
            "  last_failure_at = now()"
            " RETURNING failures",
            {
                "tenant": tenant_id,
                "scope": scope,
                "subject": subject[:300],
                "window": rule.window_s,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        failures = int(row["failures"])
        if failures >= rule.max_failures:
            lock = min(rule.max_lock_s, rule.lock_s * 2 ** (failures - rule.max_failures))
            await conn.execute(
                "UPDATE sign_in_throttle SET locked_until = now() + make_interval(secs => %s)"
                " WHERE tenant_id = %s AND scope = %s AND subject = %s",
                (lock, tenant_id, scope, subject[:300]),
            )
    return failures


async def clear(db: Db, tenant_id: uuid.UUID, scope: Scope, subject: str) -> None:
    """Forget ``subject``'s failures (after a successful sign-in)."""
    async with connect(db) as conn:
        await conn.execute(
            "DELETE FROM sign_in_throttle WHERE tenant_id = %s AND scope = %s AND subject = %s",
            (tenant_id, scope, subject[:300]),
        )


def retry_after(wait_s: float) -> int:
    """The ``Retry-After`` value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))
