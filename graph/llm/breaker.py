"""A small in-process circuit breaker, one per provider (base URL).

After ``failures`` provider failures in a row the breaker opens: for ``open_s`` seconds no call
is made and the nodes answer on the offline tier at once, instead of each turn waiting out the
timeouts and retries of a provider that is down. Then one call is let through (half-open); its
success closes the breaker, its failure opens it again. Answers that arrive but cannot be used
(malformed JSON) are not provider failures and do not count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    """Failures in a row and, while open, until when."""

    failures: int = 3
    open_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _streak: int = 0
    _open_until: float | None = None
    _probing: bool = False

    @property
    def is_open(self) -> bool:
        """Whether calls are refused now (a half-open probe in flight counts as open)."""
        if self._open_until is None:
            return False
        return self._probing or self.clock() < self._open_until

    def allow(self) -> bool:
        """Whether a call may be made now; past the open period, one probe call is."""
        if self._open_until is None:
            return True
        if self._probing or self.clock() < self._open_until:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._streak, self._open_until, self._probing = 0, None, False

    def failure(self) -> None:
        self._streak += 1
        if self._probing or self._streak >= self.failures:
            self._open_until = self.clock() + self.open_s
        self._probing = False


@dataclass
class Breakers:
    """The breakers of a process, by provider."""

    failures: int = 3
    open_s: float = 30.0
    _by_provider: dict[str, CircuitBreaker] = field(default_factory=dict)

    def get(self, provider: str) -> CircuitBreaker:
        if provider not in self._by_provider:
            self._by_provider[provider] = CircuitBreaker(self.failures, self.open_s)
        return self._by_provider[provider]
