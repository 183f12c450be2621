"""A per-tenant call budget shared by every worker on every machine (Redis, Lua scripts).

Xero allows 60 calls a minute, 5,000 a day and 5 at once per tenant, and 10,000 a minute for
the whole app; QuickBooks 500 a minute and 10 at once per company, and 40 batch requests a
minute. A call first takes one of the tenant's concurrent places (a lease, so a worker that
dies frees it), then, right before it is sent, a slot in every sliding one-minute window that
applies (tenant, app, batch) and the tenant's day counter, all in one atomic script. Taking the
slot last keeps its time stamp next to the moment the provider counts the call, so our window
frees no earlier than the provider's does.

A short wait is absorbed here; a longer one is raised (RateLimited with how long to wait), and
a spent day is raised as DailyLimitReached with the time left until the provider's day ends
(00:00 UTC), so the caller defers the work rather than spinning. A 429 puts the tenant in a
cooldown every worker honours.

Every window is measured on one clock all workers share, Redis's own (TIME): a worker whose
clock runs minutes slow or fast would otherwise stamp its calls outside the window the others
count, and the tenant would see more calls in a minute than the budget allows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis import Redis

from connectors.base import DailyLimitReached, RateLimited

# KEYS: the tenant's day counter, then one sorted set per one-minute window.
# ARGV: now_ms, per_day, member, day_ttl_s, then the limit of each window in KEYS order.
# Returns 0 when admitted (the slot is taken in every window), -1 when the day is spent, else
# the milliseconds until every window has room.
_TAKE_SLOT = """
local now = tonumber(ARGV[1])
local used_today = tonumber(redis.call('GET', KEYS[1]) or '0')
if used_today >= tonumber(ARGV[2]) then return -1 end
local wait = 0
for i = 2, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - 60000)
  local limit = tonumber(ARGV[i + 3])
  local used = redis.call('ZCARD', KEYS[i])
  if used >= limit then
    local frees = redis.call('ZRANGE', KEYS[i], used - limit, used - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(frees[2]) + 60000 - now, 1)
  end
end
if wait > 0 then return wait end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], 61000)
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 0
"""

# KEYS: in-flight zset (member -> lease end). ARGV: limit, member, lease_ms; the time is
# Redis's own. Returns 0 when a place is taken, else milliseconds until the first lease ends.
_ENTER = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - now)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
return 0
"""

# KEYS: the cooldown key. ARGV: ms. A later, shorter 429 never shortens a longer cooldown.
_COOL_DOWN = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
end
return 0
"""
CALL_LEASE_MS = 130_000  # longer than any call may take (Xero and QBO time out at 120 s)
DAY_TTL_SECONDS = 2 * 86_400


def server_time(redis: Redis) -> datetime:
    """Redis's clock: the one time every worker on every machine reads alike."""
    seconds, microseconds = redis.time()
    return datetime.fromtimestamp(seconds + microseconds / 1_000_000, UTC)


def seconds_to_next_day(now: datetime) -> float:
    """Until 00:00 UTC, when Xero's day (and so the day counter) starts again."""
    moment = now.astimezone(UTC)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(),
                                tzinfo=UTC)
    return max(1.0, (midnight - moment).total_seconds())


@dataclass
class RateBudget:
    redis: Redis
    provider: str
    per_minute: int
    per_day: int
    concurrent: int = 5
    app_per_minute: int = 9500
    # QuickBooks counts batch requests in a window of their own (40 a minute per company).
    batch_per_minute: int | None = None
    # Scaled seconds: with a test clock that runs fast, `sleep` runs fast too.
    max_wait_seconds: float = 5.0
    poll_seconds: float = 0.05
    # None: Redis's clock (server_time), shared by every worker; a test or the demo may set
    # its own.
    clock: Callable[[], datetime] | None = None
    sleep: Callable[[float], None] = time.sleep

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else server_time(self.redis)

    def _key(self, tenant_id: str, what: str) -> str:
        return f"dunwell:budget:{self.provider}:{tenant_id}:{what}"

    def _cooldown_key(self, tenant_id: str) -> str:
        return self._key(tenant_id, "cooldown")

    def cool_down(self, tenant_id: str, seconds: float) -> None:
        """The provider said 429: every worker leaves this tenant alone for `seconds`."""
        script = self.redis.register_script(_COOL_DOWN)
        script(keys=[self._cooldown_key(tenant_id)], args=[max(1, int(seconds * 1000))])

    def cooling(self, tenant_id: str) -> float:
        """Seconds the tenant still cools down after a 429 (0: not cooling)."""
        left = self.redis.pttl(self._cooldown_key(tenant_id))
        return left / 1000 if left and left > 0 else 0.0

    def take(self, tenant_id: str, batch: bool = False) -> None:
        """Take one call's slot, waiting briefly if a minute is full; otherwise raise."""
        cooling = self.cooling(tenant_id)
        if cooling:
            raise RateLimited(f"{self.provider} tenant cooling down after a 429",
                              retry_after=cooling, problem="Cooldown")
        script = self.redis.register_script(_TAKE_SLOT)
        waited = 0.0
        while True:
            now = self.now()
            day = now.astimezone(UTC).date().isoformat()
            keys = [self._key(tenant_id, f"day:{day}"), self._key(tenant_id, "minute"),
                    f"dunwell:budget:{self.provider}:app:minute"]
            limits = [self.per_minute, self.app_per_minute]
            if batch and self.batch_per_minute is not None:
                keys.append(self._key(tenant_id, "batch-minute"))
                limits.append(self.batch_per_minute)
            answer = int(script(keys=keys, args=[int(now.timestamp() * 1000), self.per_day,
                                                 uuid.uuid4().hex, DAY_TTL_SECONDS, *limits]))
            if answer == 0:
                return
            if answer < 0:
                raise DailyLimitReached(f"{self.provider} daily budget spent for tenant",
                                        retry_after=seconds_to_next_day(now), problem="Daily")
            wait = answer / 1000
            if waited + wait > self.max_wait_seconds:
                raise RateLimited(f"{self.provider} minute budget full for tenant",
                                  retry_after=wait, problem="Minute")
            self.sleep(wait)
            waited += wait

    @contextmanager
    def call(self, tenant_id: str, batch: bool = False) -> Iterator[None]:
        """Around one API call: one of the concurrent places, then a slot in the windows."""
        key = self._key(tenant_id, "inflight")
        member = uuid.uuid4().hex
        enter = self.redis.register_script(_ENTER)
        waited = 0.0
        while int(enter(keys=[key], args=[self.concurrent, member, CALL_LEASE_MS])):
            # Places free up in milliseconds: poll on the real clock, briefly.
            if waited >= self.max_wait_seconds:
                raise RateLimited(f"{self.provider} tenant has {self.concurrent} calls in flight",
                                  retry_after=1, problem="Concurrent")
            time.sleep(self.poll_seconds)
            waited += self.poll_seconds
        try:
            self.take(tenant_id, batch)
            yield
        finally:
            self.redis.zrem(key, member)
