"""The time every worker agrees on, for what several workers compare: a claim's lease, when a
provider write began. Each machine's own clock may be minutes off (a VM resumed, NTP gone), so
these are read from Redis's clock, which all workers share (connectors.ratelimit.server_time,
also the rate budget's). A test's or the demo's clock (the app's CLOCK) stands in for it
where one is set, as it does for store.clock."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from collect.providers import redis_client
from connectors.ratelimit import server_time
from store import clock


def now() -> datetime:
    if current_app.config.get("CLOCK") is not None:
        return clock.now()
    return server_time(redis_client())
