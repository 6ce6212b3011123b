"""Per-key token buckets: in Redis when there is one (shared by every API process), in
memory in embedded mode. `take(key)` returns 0 when the request may go, else the seconds to
wait before a token is there."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis
import structlog

from ragline.config import RateLimits

log = structlog.get_logger("ragline.ratelimit")


class RateLimiter(Protocol):
    def take(self, key: str) -> float: ...


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
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


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


class RedisRateLimiter:
    """Shared buckets in Redis. While Redis is unreachable each process limits with its
    own buckets instead: a broker outage must not turn every authenticated request into an
    error (admission keeps accepting jobs then; the sweeper sends them once Redis is back)."""

    def __init__(
        self, client: redis.Redis, limits: RateLimits, prefix: str = "ragline:rl:"
    ) -> None:
        self._script = client.register_script(_TAKE)
        self.rate = limits.requests_per_second
        self.burst = limits.burst
        self.prefix = prefix
        self._fallback = LocalRateLimiter(limits)
        self._degraded = False

    def take(self, key: str) -> float:
        try:
            wait = self._script(keys=[self.prefix + key], args=[self.rate, self.burst])
        except redis.RedisError as error:
            if not self._degraded:
                log.warning("rate_limit_fallback", error=type(error).__name__)
                self._degraded = True
            return self._fallback.take(key)
        if self._degraded:
            log.info("rate_limit_shared_again")
            self._degraded = False
        return float(wait)
