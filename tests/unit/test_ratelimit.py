"""The token bucket behind the rate limits (``api/ratelimit.py``) on a fake clock: a minute's
burst then the rate, a bounded number of keys, no rate of zero."""

from __future__ import annotations

import pytest

from api.ratelimit import TokenBucket


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_minutes_burst_then_the_rate_and_a_refusal_costs_nothing() -> None:
    clock = Clock()
    bucket = TokenBucket(6, clock=clock)  # one token every 10 s, six at once
    assert [bucket.take("a") for _ in range(6)] == [0.0] * 6
    assert bucket.take("a") == pytest.approx(10.0)
    clock.now += 4
    assert bucket.take("a") == pytest.approx(6.0)  # the refusal above took nothing
    assert bucket.take("b") == 0.0  # other keys have their own bucket
    clock.now += 6
    assert bucket.take("a") == 0.0
    assert bucket.take("a") > 0
    clock.now += 3600  # idle: full again, never more than a minute's worth
    assert [bucket.take("a") for _ in range(6)] == [0.0] * 6
    assert bucket.take("a") > 0


def test_a_bucket_keeps_at_most_max_keys_dropping_the_least_recently_used() -> None:
    clock = Clock()
    bucket = TokenBucket(1, max_keys=2, clock=clock)
    assert bucket.take("a") == 0.0
    assert bucket.take("b") == 0.0
    assert bucket.take("a") > 0  # touches "a": "b" is now the least recently used
    assert bucket.take("c") == 0.0  # evicts "b"
    assert bucket.take("a") > 0  # "a" was kept, still empty
    assert bucket.take("b") == 0.0  # "b" starts over


def test_a_bucket_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
