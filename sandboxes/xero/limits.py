"""Xero's rate limits: per tenant a minute, a (rolling) day and calls in flight, and the app's
minute; the headers that tell what is left, and the 429 when nothing is."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandboxes.wire import forget_before
from sandboxes.xero.errors import ApiError
from sandboxes.xero.formats import retry_after

if TYPE_CHECKING:
    from sandboxes.xero.sandbox import XeroSandbox


def app_headers(box: XeroSandbox) -> dict[str, str]:
    """Tenantless calls (like /connections) carry only the app-wide budget."""
    cfg = box.config
    window = box.now - timedelta(seconds=60)
    used = sum(1 for stamp in box.app_calls if stamp > window)
    return {"X-AppMinLimit-Remaining": str(max(0, cfg.app_minute_limit - used))}


def day_used(box: XeroSandbox, tenant_id: str) -> int:
    cfg = box.config
    if not cfg.rolling_day:
        return box.day_calls.get((tenant_id, box.now.date()), 0)
    return len(forget_before(box.day_window.setdefault(tenant_id, deque()),
                             box.now - timedelta(days=1)))


def day_ends(box: XeroSandbox, tenant_id: str) -> datetime:
    """When a spent day frees a call: 24 h after the oldest call in the window, or the
    next 00:00 UTC when days are calendar days."""
    cfg = box.config
    if cfg.rolling_day and box.day_window.get(tenant_id):
        return box.day_window[tenant_id][0] + timedelta(days=1)
    return datetime.combine(box.now.date() + timedelta(days=1), datetime.min.time(),
                            tzinfo=UTC)


def limit_headers(box: XeroSandbox, tenant_id: str) -> dict[str, str]:
    cfg = box.config
    window = box.now - timedelta(seconds=60)
    minute = sum(1 for stamp in box.minute_calls.get(tenant_id, ()) if stamp > window)
    day = day_used(box, tenant_id)
    return {"X-DayLimit-Remaining": str(max(0, cfg.per_day_limit - day)),
            "X-MinLimit-Remaining": str(max(0, cfg.per_minute_limit - minute)),
            **app_headers(box)}


def refusal_headers(box: XeroSandbox, tenant_id: str) -> dict[str, str]:
    return limit_headers(box, tenant_id) if tenant_id in box.tenants_by_id else app_headers(box)


def admit(box: XeroSandbox, tenant_id: str) -> None:
    """Count the call against the tenant's budgets, or refuse it with a 429."""
    cfg = box.config
    now = box.now
    window = now - timedelta(seconds=60)
    minute = forget_before(box.minute_calls.setdefault(tenant_id, deque()), window)
    forget_before(box.app_calls, window)
    box.call_count[tenant_id] = box.call_count.get(tenant_id, 0) + 1
    day_key = (tenant_id, now.date())
    names = cfg.rate_limit_problems
    refusal: tuple[str, int] | None = None
    if day_used(box, tenant_id) >= cfg.per_day_limit:
        refusal = (names.get("day", "day"), retry_after(day_ends(box, tenant_id) - now))
    elif len(box.app_calls) >= cfg.app_minute_limit:
        refusal = (names.get("appminute", "appminute"), retry_after(box.app_calls[0] - window))
    elif len(minute) >= cfg.per_minute_limit:
        refusal = (names.get("minute", "minute"), retry_after(minute[0] - window))
    elif box.in_flight.get(tenant_id, 0) >= cfg.concurrent_limit:
        refusal = (names.get("concurrent", "concurrent"), 1)
    if refusal is not None:
        raise ApiError(429, {"Title": "Too Many Requests", "Status": 429,
                             "Detail": f"Rate limit exceeded: {refusal[0]}"},
                       {**limit_headers(box, tenant_id), "Retry-After": str(refusal[1]),
                        "X-Rate-Limit-Problem": refusal[0]})
    minute.append(now)
    box.app_calls.append(now)
    box.day_calls[day_key] = box.day_calls.get(day_key, 0) + 1
    if cfg.rolling_day:
        box.day_window.setdefault(tenant_id, deque()).append(now)
