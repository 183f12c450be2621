"""A per-tenant call budget shared by every worker on every machine (Redis, one Lua script).

Xero allows about 60 calls a minute and 5,000 a day per tenant. Each call takes a slot in a
sliding one-minute window and a per-day counter before it is sent; when the minute is full the
caller learns how long to wait, and when the day is spent it gets DailyLimitReached at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis

from connectors.base import DailyLimitReached, RateLimited

# KEYS: minute zset, day counter. ARGV: now_ms, per_minute, per_day, member, day_ttl_s.
# Returns 0 when admitted, -1 when the day is spent, else milliseconds to wait.
_TAKE_SLOT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
local used_today = tonumber(redis.call('GET', KEYS[2]) or '0')
if used_today >= tonumber(ARGV[3]) then return -1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + 60000 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], 61000)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return 0
"""


@dataclass
class RateBudget:
    redis: Redis
    provider: str
    per_minute: int
    per_day: int
    max_wait_seconds: float = 5.0
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
                    f"dunwell:budget:{self.provider}:{tenant_id}:day:{now.date().isoformat()}"]
            answer = int(script(keys=keys, args=[int(now.timestamp() * 1000), self.per_minute,
                                                 self.per_day, uuid.uuid4().hex, 90000]))
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
