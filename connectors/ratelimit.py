"""A per-tenant call budget shared by every worker on every machine (Redis, Lua scripts).

Xero allows about 60 calls a minute, 5,000 a day and 5 at once per tenant, and 10,000 a minute
for the whole app. Each call takes a slot in the tenant's and the app's sliding one-minute
windows and the tenant's day counter, then one of the tenant's concurrent places (a lease, so a
worker that dies frees it), all before it is sent. A short wait is absorbed; a longer one, or a
spent day, is raised to the caller, who defers the work.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis

from connectors.base import DailyLimitReached, RateLimited

# KEYS: tenant minute zset, tenant day counter, app minute zset.
# ARGV: now_ms, per_minute, per_day, member, day_ttl_s, app_per_minute.
# Returns 0 when admitted, -1 when the day is spent, else milliseconds to wait.
_TAKE_SLOT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60000)
local used_today = tonumber(redis.call('GET', KEYS[2]) or '0')
if used_today >= tonumber(ARGV[3]) then return -1 end
local wait = 0
for i, limit in ipairs({{KEYS[1], ARGV[2]}, {KEYS[3], ARGV[6]}}) do
  if redis.call('ZCARD', limit[1]) >= tonumber(limit[2]) then
    local oldest = redis.call('ZRANGE', limit[1], 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + 60000 - now, 1)
  end
end
if wait > 0 then return wait end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], 61000)
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('PEXPIRE', KEYS[3], 61000)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return 0
"""

# KEYS: in-flight zset (member -> lease end). ARGV: now_ms, limit, member, lease_ms.
# Returns 0 when a place is taken, else milliseconds until the first lease ends.
_ENTER = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - now)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) + 1000)
return 0
"""
CALL_LEASE_MS = 130_000  # longer than any call may take (Xero and QBO time out at 120 s)


@dataclass
class RateBudget:
    redis: Redis
    provider: str
    per_minute: int
    per_day: int
    concurrent: int = 5
    app_per_minute: int = 9500
    max_wait_seconds: float = 5.0
    poll_seconds: float = 0.05
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep

    def _cooldown_key(self, tenant_id: str) -> str:
        return f"dunwell:budget:{self.provider}:{tenant_id}:cooldown"

    def cool_down(self, tenant_id: str, seconds: float) -> None:
        """The provider said 429: every worker leaves this tenant alone for `seconds`."""
        self.redis.set(self._cooldown_key(tenant_id), "1", px=max(1, int(seconds * 1000)))

    def take(self, tenant_id: str) -> None:
        """Take one call's slot, waiting briefly if the minute is full; otherwise raise."""
        cooling = self.redis.pttl(self._cooldown_key(tenant_id))
        if cooling and cooling > 0:
            raise RateLimited(f"{self.provider} tenant cooling down after a 429",
                              retry_after=cooling / 1000, problem="Cooldown")
        script = self.redis.register_script(_TAKE_SLOT)
        waited = 0.0
        while True:
            now = self.clock()
            keys = [f"dunwell:budget:{self.provider}:{tenant_id}:minute",
                    f"dunwell:budget:{self.provider}:{tenant_id}:day:{now.date().isoformat()}",
                    f"dunwell:budget:{self.provider}:app:minute"]
            answer = int(script(keys=keys, args=[int(now.timestamp() * 1000), self.per_minute,
                                                 self.per_day, uuid.uuid4().hex, 90000,
                                                 self.app_per_minute]))
            if answer == 0:
                return
            if answer < 0:
                raise DailyLimitReached(f"{self.provider} daily budget spent for tenant",
                                        retry_after=3600, problem="Daily")
            wait = answer / 1000
            if waited + wait > self.max_wait_seconds:
                raise RateLimited(f"{self.provider} minute budget full for tenant",
                                  retry_after=wait, problem="Minute")
            self.sleep(wait)
            waited += wait

    @contextmanager
    def call(self, tenant_id: str) -> Iterator[None]:
        """Around one API call: a slot in the windows, then one of the concurrent places."""
        self.take(tenant_id)
        key = f"dunwell:budget:{self.provider}:{tenant_id}:inflight"
        member = uuid.uuid4().hex
        enter = self.redis.register_script(_ENTER)
        waited = 0.0
        while int(enter(keys=[key], args=[int(time.time() * 1000), self.concurrent, member,
                                          CALL_LEASE_MS])):
            # Places free up in milliseconds: poll on the real clock, briefly.
            if waited >= self.max_wait_seconds:
                raise RateLimited(f"{self.provider} tenant has {self.concurrent} calls in flight",
                                  retry_after=1, problem="Concurrent")
            time.sleep(self.poll_seconds)
            waited += self.poll_seconds
        try:
            yield
        finally:
            self.redis.zrem(key, member)
