"""Shared rate budgets under load: many tenants, several workers each, against a sandbox that
enforces the provider's real limits, on a clock that runs `scale` times faster than the wall.

Every worker keeps calling (there is always work waiting) through the real connector and the
shared RateBudget in Redis; a budget refusal makes the worker wait what it was told (never a
hot loop). Figures: 429s the sandbox served (each one a budget mistake: nothing else calls it),
and the calls answered as a share of what the provider allows per tenant in the time run.

    .venv/bin/python -m benchmarks.rate_budget --provider xero --tenants 100 --workers 4 \
        --scale 6 --minutes 3

prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from werkzeug.serving import make_server

from connectors.base import ConnectorError, RateLimited, TokenSet
from connectors.ratelimit import RateBudget

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
# Our budgets, as configured by default (README), under the providers' limits.
BUDGETS = {"xero": {"per_minute": 55, "per_day": 4800, "concurrent": 5, "app_per_minute": 9500},
           "quickbooks": {"per_minute": 450, "per_day": 500_000, "concurrent": 10,
                          "app_per_minute": 10**9}}
LIMITS = {"xero": 60, "quickbooks": 500}  # the providers' calls a minute per tenant


class ScaledClock:
    """A clock running `scale` times faster than the wall clock, and a sleep to match."""

    def __init__(self, start: datetime, scale: float) -> None:
        self.start, self.scale, self._t0 = start, scale, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.scale)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.scale)


@dataclass
class StaticTokens:
    """A TokenStore with one live token: refreshes are not what is measured here."""

    tokens: TokenSet

    def load(self) -> TokenSet:
        return self.tokens

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        return self.tokens


class StatusCount:
    """WSGI wrapper counting the answers the sandbox served, by status code."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = wsgi_app
        self.by_status: dict[int, int] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        def counted(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            code = int(status.split(" ", 1)[0])
            with self._lock:
                self.by_status[code] = self.by_status.get(code, 0) + 1
            return start_response(status, headers, exc_info)

        return self.app(environ, counted)


def _xero(tenants: int, clock: ScaledClock) -> tuple[Any, Callable[[str], Any], list[str], Any]:
    from connectors.oauth import OAuthClient
    from connectors.xero import XeroConnector, XeroSettings
    from sandboxes.xero import SandboxConfig, XeroSandbox, create_app

    state = XeroSandbox(SandboxConfig(clock=clock))  # Xero's real limits
    ids = [state.add_tenant(f"Tenant {n}", "GB", "GBP", "GMTSTANDARDTIME")
           for n in range(tenants)]
    event, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
    state.auth_events[event] = {"client_id": "dunwell-demo", "connections": {
        str(uuid.uuid4()): {"tenantId": t, "created": clock()} for t in ids}}
    state.access_tokens[token] = {"auth_event_id": event, "client_id": "dunwell-demo",
                                  "expires_at": clock() + timedelta(days=365)}
    watch = StatusCount(create_app(state))
    server = make_server("127.0.0.1", 0, watch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    settings = XeroSettings(OAuthClient("dunwell-demo", "dunwell-demo-secret", "", "", "", ""),
                            api_url=f"{url}/api.xro/2.0", connections_url=f"{url}/connections")
    tokens = StaticTokens(TokenSet(token, "unused", START + timedelta(days=3650)))

    def connector(tenant_id: str) -> Any:
        return XeroConnector(settings, tenant_id, tokens, clock=clock)

    return server, connector, ids, watch


def _quickbooks(tenants: int, clock: ScaledClock
                ) -> tuple[Any, Callable[[str], Any], list[str], Any]:
    from connectors.quickbooks import QuickBooksConnector, QuickBooksSettings
    from sandboxes.quickbooks import (
        Consent,
        QuickBooksSandbox,
        SandboxConfig,
        create_app,
    )

    state = QuickBooksSandbox(SandboxConfig(clock=clock))  # QuickBooks' real limits
    ids, token_of = [], {}
    for n in range(tenants):
        realm = state.add_company(f"Company {n}", "US", "USD", "America/New_York")
        consent = Consent(str(uuid.uuid4()), "dunwell-demo", realm,
                          "com.intuit.quickbooks.accounting", clock())
        state.consents[consent.consent_id] = consent
        token = secrets.token_urlsafe(48)
        state.access_tokens[token] = {"consent_id": consent.consent_id,
                                      "expires_at": clock() + timedelta(days=365)}
        ids.append(realm)
        token_of[realm] = token
    watch = StatusCount(create_app(state))
    server = make_server("127.0.0.1", 0, watch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    settings = QuickBooksSettings("dunwell-demo", "dunwell-demo-secret",
                                  f"{url}/.well-known/openid_configuration", f"{url}/v3", 75)

    def connector(realm: str) -> Any:
        tokens = StaticTokens(TokenSet(token_of[realm], "unused", START + timedelta(days=3650)))
        return QuickBooksConnector(settings, realm, tokens, clock=clock)

    return server, connector, ids, watch


def run_load(provider: str, tenants: int, workers: int, scale: float, minutes: float,
             redis_url: str) -> dict[str, Any]:
    """Run the load; answer the figures (see the module docstring)."""
    # The sandbox's access lines, thousands a run, are kept quiet while it runs and only then:
    # the tests call this in their own process, where later tests read werkzeug's log.
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.ERROR)
    try:
        return _run_load(provider, tenants, workers, scale, minutes, redis_url)
    finally:
        access_log.setLevel(level)


def _run_load(provider: str, tenants: int, workers: int, scale: float, minutes: float,
              redis_url: str) -> dict[str, Any]:
    redis = Redis.from_url(redis_url, max_connections=tenants * workers + 16)
    for key in redis.scan_iter(f"dunwell:budget:{provider}:*"):
        redis.delete(key)
    clock = ScaledClock(START, scale)
    server, make_connector, ids, watch = (_xero if provider == "xero" else _quickbooks)(
        tenants, clock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answered = {tenant: 0 for tenant in ids}
    refusals: dict[str, float] = {"budget_waits": 0, "seconds_told_to_wait": 0.0,
                                  "other_errors": 0}
    lock = threading.Lock()
    end = START + timedelta(minutes=minutes)

    def work(tenant_id: str) -> None:
        budget = RateBudget(redis, provider, **BUDGETS[provider], clock=clock,
                            sleep=clock.sleep)
        connector = make_connector(tenant_id)
        connector.budget = budget
        call = connector.organisation if provider == "xero" else \
            (lambda: next(iter(connector.invoices(None))))
        while clock() < end:
            try:
                call()
            except RateLimited as refused:
                with lock:
                    refusals["budget_waits"] += 1
                    refusals["seconds_told_to_wait"] += refused.retry_after
                clock.sleep(refused.retry_after)  # told how long: never a hot loop
                continue
            except ConnectorError:
                with lock:
                    refusals["other_errors"] += 1
                continue
            if clock() <= end:
                with lock:
                    answered[tenant_id] += 1

    threads = [threading.Thread(target=work, args=(tenant,), daemon=True)
               for tenant in ids for _ in range(workers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=minutes * 60 / scale + 120)
    wall = time.monotonic() - began
    server.shutdown()
    allowed = LIMITS[provider] * minutes
    shares = sorted(answered[t] / allowed for t in ids)
    return {
        "provider": provider, "tenants": tenants, "workers_per_tenant": workers,
        "clock_scale": scale, "scaled_minutes": minutes, "wall_seconds": round(wall, 1),
        "provider_limit_per_minute": LIMITS[provider],
        "budget_per_minute": BUDGETS[provider]["per_minute"],
        "calls_answered": sum(answered.values()),
        "calls_allowed": int(allowed * tenants),
        "used_share_of_allowed": round(sum(answered.values()) / (allowed * tenants), 4),
        "worst_tenant_share": round(shares[0], 4), "best_tenant_share": round(shares[-1], 4),
        "sandbox_429s": watch.by_status.get(429, 0),
        "sandbox_answers_by_status": dict(sorted(watch.by_status.items())),
        "budget_waits": int(refusals["budget_waits"]),
        "seconds_told_to_wait": round(refusals["seconds_told_to_wait"], 1),
        "other_errors": int(refusals["other_errors"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=("xero", "quickbooks"), default="xero")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL",
                                                              "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    print(json.dumps(run_load(args.provider, args.tenants, args.workers, args.scale,
                              args.minutes, args.redis_url)))


if __name__ == "__main__":
    main()
