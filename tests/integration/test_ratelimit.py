"""The per-key token buckets: in memory (embedded mode) and in Redis (shared by every API
process), with the same behaviour. Rates are chosen so that no refill can happen between
calls on any sane machine (a token takes seconds to come back), so no assertion depends on
how fast the test runs."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator

import pytest
import redis

from ragline.config import RateLimits
from ragline.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from tests.support.waiting import wait_for

Factory = Callable[[RateLimits], RateLimiter]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def make_limiter(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Builds limiters of one kind; the Redis ones share one (flushed) database."""
    if request.param == "local":
        yield LocalRateLimiter
        return
    url = request.getfixturevalue("redis_url")
    built: list[RedisRateLimiter] = []

    def build(limits: RateLimits) -> RateLimiter:
        built.append(RedisRateLimiter(url, limits))
        return built[-1]

    yield build
    for limiter in built:
        limiter.close()


SLOW = RateLimits(requests_per_second=0.1, burst=5)  # one token every 10 s


def test_a_burst_is_allowed_then_the_next_request_must_wait(make_limiter: Factory) -> None:
    limiter = make_limiter(SLOW)
    assert [limiter.take("key-a") for _ in range(SLOW.burst)] == [0.0] * SLOW.burst
    wait = limiter.take("key-a")
    assert 0 < wait <= 1 / SLOW.requests_per_second
    # A refused request takes nothing: the next one is refused too, for about as long.
    again = limiter.take("key-a")
    assert 0 < again <= 1 / SLOW.requests_per_second


def test_keys_have_independent_buckets(make_limiter: Factory) -> None:
    limiter = make_limiter(SLOW)
    for _ in range(SLOW.burst):
        assert limiter.take("key-a") == 0
    assert limiter.take("key-a") > 0
    assert [limiter.take("key-b") for _ in range(SLOW.burst)] == [0.0] * SLOW.burst
    assert limiter.take("key-b") > 0
    assert limiter.take("key-a") > 0


@pytest.mark.parametrize("burst", [1, 3])
def test_the_burst_size_is_the_configured_one(make_limiter: Factory, burst: int) -> None:
    limits = RateLimits(requests_per_second=0.1, burst=burst)
    limiter = make_limiter(limits)
    allowed = 0
    while limiter.take("k") == 0:
        allowed += 1
        assert allowed <= burst, "more requests allowed than the burst"
    assert allowed == burst


def test_tokens_come_back_over_time(make_limiter: Factory) -> None:
    limits = RateLimits(requests_per_second=20, burst=1)
    limiter = make_limiter(limits)
    assert limiter.take("k") == 0
    # Whether the very next call is refused depends on timing; that a token comes back
    # does not (bounded poll, no assertion on elapsed time).
    wait_for(lambda: limiter.take("k") == 0, timeout_s=10, every_s=0.01)


@pytest.mark.redis
def test_the_redis_bucket_is_shared_by_every_api_process(redis_url: str) -> None:
    limits = SLOW
    first_client = redis.Redis.from_url(redis_url)
    first = RedisRateLimiter(redis_url, limits)
    second = RedisRateLimiter(redis_url, limits)
    try:
        taken = [first.take("shared"), second.take("shared"), first.take("shared")]
        taken += [second.take("shared") for _ in range(limits.burst - 3)]
        assert taken == [0.0] * limits.burst
        assert first.take("shared") > 0
        assert second.take("shared") > 0
        # Another key is still untouched in both.
        assert second.take("other") == 0 and first.take("other") == 0

        # The bucket lives in Redis and expires once it would be full again anyway.
        ttl = first_client.ttl("ragline:rl:shared")
        assert 0 < ttl <= math.ceil(limits.burst / limits.requests_per_second) + 1
    finally:
        first_client.close()
        first.close()
        second.close()


def test_local_buckets_are_per_process() -> None:
    """Embedded mode has one API process; two in-memory limiters do not share buckets."""
    first, second = LocalRateLimiter(SLOW), LocalRateLimiter(SLOW)
    for _ in range(SLOW.burst):
        assert first.take("k") == 0
    assert first.take("k") > 0
    assert second.take("k") == 0


def test_the_event_loop_path_takes_from_the_same_bucket(make_limiter: Factory) -> None:
    """The API's dependency takes tokens with take_async (no thread blocked on Redis); it
    must count against the same bucket as take()."""
    limiter = make_limiter(SLOW)

    async def burst() -> list[float]:
        return [await limiter.take_async("key-a") for _ in range(SLOW.burst - 1)]

    assert limiter.take("key-a") == 0
    assert asyncio.run(burst()) == [0.0] * (SLOW.burst - 1)
    assert limiter.take("key-a") > 0
    assert asyncio.run(limiter.take_async("key-a")) > 0


def test_the_event_loop_path_limits_locally_while_redis_is_down() -> None:
    # Nothing listens on port 1: take_async falls back to this process's own buckets.
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", SLOW)
    try:

        async def burst() -> list[float]:
            return [await limiter.take_async("k") for _ in range(SLOW.burst + 1)]

        taken = asyncio.run(burst())
    finally:
        limiter.close()
    assert taken[: SLOW.burst] == [0.0] * SLOW.burst
    assert taken[-1] > 0
