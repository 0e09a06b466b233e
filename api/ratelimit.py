"""Rate limits on the public endpoints: what a widget key or a customer token can do per minute.

Token buckets keyed by tenant and client address, per process: new conversations, messages and
widget searches each have their own (``Settings``; ``0`` turns one off). A refused request gets
429 ``rate_limited`` with ``Retry-After`` and consumes nothing. Staff keys are never limited.
Behind a reverse proxy run uvicorn with ``--forwarded-allow-ips`` naming the proxy, or every
customer shares the proxy's bucket.

Why these keys, defaults and per-process counting: docs/decisions/rate-limits.md.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from api.auth import Principal
from api.errors import ApiError

Action = Literal["conversation", "message", "search"]
_PLURAL: dict[str, str] = {
    "conversation": "new conversations",
    "message": "messages",
    "search": "searches",
}


class TokenBucket:
    """Many token buckets of one rate, one per key.

    Args:
        per_minute: sustained rate; also the burst (a full bucket holds a minute's allowance).
        max_keys: buckets kept; the least recently used goes first when more are needed.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        per_minute: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive (leave the limit out to disable it)")
        self.capacity = max(1.0, float(per_minute))
        self.refill_per_s = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def take(self, key: object) -> float:
        """Take one token for ``key``: 0.0 if allowed, else seconds until a token is available
        (nothing is taken then)."""
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_s)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.refill_per_s
        self._buckets[key] = (tokens, now)  # re-inserted: most recently used last
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


@dataclass
class RateLimits:
    """The limits of one API process (``None``: that action is not limited)."""

    conversation: TokenBucket | None
    message: TokenBucket | None
    search: TokenBucket | None

    @classmethod
    def per_minute(cls, conversations: float, messages: float, searches: float) -> RateLimits:
        """Buckets at these rates; 0 leaves an action unlimited."""

        def bucket(rate: float) -> TokenBucket | None:
            return TokenBucket(rate) if rate > 0 else None

        return cls(bucket(conversations), bucket(messages), bucket(searches))

    def check(self, action: Action, caller: Principal, request: Request) -> None:
        """Count one ``action`` by a customer-side caller; staff callers are never limited.

        Raises:
            ApiError: 429 ``rate_limited`` with ``Retry-After``, over the limit.
        """
        bucket: TokenBucket | None = getattr(self, action)
        if bucket is None or caller.is_staff:
            return
        wait = bucket.take((caller.tenant.id, client_address(request)))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"too many {_PLURAL[action]} from this address; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )


def client_address(request: Request) -> str:
    """The caller's address (the customer's, when uvicorn trusts the proxy in front of it)."""
    return request.client.host if request.client is not None else "unknown"
