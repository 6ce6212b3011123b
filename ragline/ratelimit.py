"""Per-key token buckets: in Redis when there is one (shared by every API process), in
memory in embedded mode. `take(key)` returns 0 when the request may go, else the seconds to
wait before a token is there."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

import redis
import redis.asyncio
import structlog

from ragline.config import RateLimits

log = structlog.get_logger("ragline.ratelimit")


class RateLimiter(Protocol):
    def take(self, key: str) -> float: ...

    async def take_async(self, key: str) -> float:
        """take() for an event loop: no thread is blocked while Redis answers."""
        ...


MAX_BUCKETS = 100_000  # keys (or client addresses) one process tracks at once


class LocalRateLimiter:
    def __init__(self, limits: RateLimits) -> None:
        self.rate = limits.requests_per_second
        self.burst = float(limits.burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
                self._forget_full(now)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    async def take_async(self, key: str) -> float:
        return self.take(key)  # memory only: nothing to wait for

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they hold nothing a fresh one would not);
        if every one is still draining, the oldest half."""
        full = [
            k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: MAX_BUCKETS // 2]:
                del self._buckets[key]

    def wait(self, key: str) -> float:
        """How long until take(key) would succeed, taking nothing."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


# One atomic script: refill by elapsed time (Redis's own clock, so API hosts need not agree
# on time), take a token if there is one, else say how long until there is.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


# A request never waits longer than this on the limiter: an unreachable Redis (a partition,
# not a refused connection) falls back to local buckets after it.
TIMEOUT_S = 2.0


class RedisRateLimiter:
    """Shared buckets in Redis. While Redis is unreachable each process limits with its
    own buckets instead: a broker outage must not turn every authenticated request into an
    error (admission keeps accepting jobs then; the sweeper sends them once Redis is back)."""

    def __init__(self, url: str, limits: RateLimits, prefix: str = "ragline:rl:") -> None:
        self._url = url
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
        )
        self._script = self._client.register_script(_TAKE)
        # take_async's client: an asyncio connection pool belongs to the loop it was made on.
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None
        self.rate = limits.requests_per_second
        self.burst = limits.burst
        self.prefix = prefix
        self._fallback = LocalRateLimiter(limits)
        self._degraded = False

    def take(self, key: str) -> float:
        try:
            wait = self._script(keys=[self.prefix + key], args=[self.rate, self.burst])
        except redis.RedisError as error:
            return self._degrade(key, error)
        return self._shared(wait)

    async def take_async(self, key: str) -> float:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = redis.asyncio.Redis.from_url(
                self._url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
            )
            self._async = (loop, client)
        client = self._async[1]
        try:
            # EVALSHA, loading the script on NOSCRIPT as the sync client's Script does.
            wait = await client.evalsha(
                self._script.sha, 1, self.prefix + key, self.rate, self.burst
            )
        except redis.exceptions.NoScriptError:
            try:
                wait = await client.eval(_TAKE, 1, self.prefix + key, self.rate, self.burst)
            except redis.RedisError as error:
                return self._degrade(key, error)
        except redis.RedisError as error:
            return self._degrade(key, error)
        return self._shared(wait)

    def close(self) -> None:
        # The asyncio client's connections close with their loop; only the sync pool here.
        self._client.close()

    def _degrade(self, key: str, error: Exception) -> float:
        if not self._degraded:
            log.warning("rate_limit_fallback", error=type(error).__name__)
            self._degraded = True
        return self._fallback.take(key)

    def _shared(self, wait: object) -> float:
        if self._degraded:
            log.info("rate_limit_shared_again")
            self._degraded = False
        return float(wait)  # type: ignore[arg-type]
