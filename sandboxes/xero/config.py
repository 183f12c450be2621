"""How a Xero sandbox behaves: its client apps, limits, lifetimes and the choices Xero does
not publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sandboxes.wire import ClientApp


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _default_problems() -> dict[str, str]:
    return {"minute": "minute", "day": "day", "appminute": "appminute",
            "concurrent": "concurrent"}


@dataclass
class SandboxConfig:
    clients: dict[str, ClientApp] = field(default_factory=lambda: {
        "dunwell-demo": ClientApp("dunwell-demo-secret", [], "Dunwell (demo)")})
    access_token_seconds: int = 1800
    refresh_grace_seconds: int = 1800
    refresh_token_days: int = 60
    per_minute_limit: int = 60
    per_day_limit: int = 5000
    concurrent_limit: int = 5
    app_minute_limit: int = 10000
    clock: Callable[[], datetime] = _utcnow
    seed: int = 7
    webhook_key: str = "sandbox-webhook-key"
    # Where changes are posted as signed webhooks (None: not sent); sandboxes/webhooks.py.
    webhook_url: str | None = None
    webhook_batch_seconds: float = 0.5
    webhook_retries: int = 3
    webhook_api_url: str = "https://api.xero.com/api.xro/2.0"  # resourceUrl's base
    # Wall-clock seconds each Accounting call takes, so calls overlap as they do against Xero.
    latency_seconds: float = 0.0
    # Xero refuses line edits once a payment is allocated; True refuses every edit (UNVERIFIED).
    lock_paid_invoices: bool = False
    # X-Rate-Limit-Problem values, by limit.
    rate_limit_problems: dict[str, str] = field(default_factory=_default_problems)
    # How long an Idempotency-Key's first answer is replayed; past it the key is forgotten and
    # the same request is carried out again. UNVERIFIED: Xero's documentation of the header
    # (the Accounting API's OpenAPI description, specs/xero) names no retention period;
    # searched Xero's developer pages, SDK sources and issue threads without finding one.
    idempotency_window_seconds: int = 3600
    # Where OnlineInvoiceUrl points: https on Xero's host, as Xero sends it (the path is ours,
    # UNVERIFIED: Xero's is an opaque token). None: this sandbox's own address, so the demo's
    # links open the sandbox's page for the invoice.
    invoice_link_base: str | None = "https://in.xero.com/"
    # What a consent does to a tenant the user had already connected: True moves its connection
    # to the new auth event; False keeps the old authEventId and moves only updatedDateUtc, as
    # one developer reported (github.com/XeroAPI/xero-php-oauth2/issues/18). UNVERIFIED which
    # Xero does; Dunwell's connect flow is tested against both.
    reconsent_moves_auth_event: bool = True
    # Xero's daily limit counts "5000 calls in a rolling 24 hour window" (Xero's limits page,
    # as quoted in github.com/XeroAPI/xero-node/issues/262; later "a fixed window which will
    # reset at different times for each tenant"); False counts UTC calendar days.
    rolling_day: bool = True
