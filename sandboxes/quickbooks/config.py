"""How a QuickBooks sandbox behaves: its client apps, limits, lifetimes and the choices Intuit
does not publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sandboxes.wire import ClientApp


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SandboxConfig:
    clients: dict[str, ClientApp] = field(default_factory=lambda: {
        "dunwell-demo": ClientApp("dunwell-demo-secret", [], "Dunwell (demo)")})
    access_token_seconds: int = 3600
    refresh_token_days: int = 100
    # How long a refresh token still works after its first use (UNVERIFIED).
    refresh_grace_seconds: int = 24 * 3600
    # Intuit's hard limit on a consent, however often it is refreshed.
    consent_max_days: int = 5 * 365
    code_seconds: int = 300
    per_minute_limit: int = 500
    concurrent_limit: int = 10
    batch_per_minute_limit: int = 40
    batch_max_items: int = 30
    emails_per_day: int = 40
    cdc_max_objects: int = 1000
    cdc_max_days: int = 30
    # Where InvoiceLink points: https on Intuit's host, as Intuit sends it (the path after the
    # host is ours, UNVERIFIED: Intuit's is an opaque scs-v1-... token). None: this sandbox's
    # own address, so the demo's links open the sandbox's page for the invoice.
    invoice_link_base: str | None = "https://connect.intuit.com/"
    query_max_results: int = 1000
    clock: Callable[[], datetime] = _utcnow
    seed: int = 7
    # The demo's books also hold each customer's paid invoices of the year and a half before,
    # paid by habit (sandboxes/quickbooks/seed.py), for the risk backtest. Off for the tests'
    # books, whose forty invoices many tests count on.
    paid_history: bool = False
    # Wall-clock seconds each API call takes, so calls overlap as they do against QBO.
    latency_seconds: float = 0.0
    owner_given_name: str = "Sandbox"
    owner_family_name: str = "Owner"
    owner_email: str = "owner@example.com"
    # Where changes are posted as signed webhooks (None: not sent); sandboxes/webhooks.py.
    webhook_url: str | None = None
    webhook_verifier: str = "sandbox-webhook-verifier"
    webhook_format: str = "legacy"  # legacy (eventNotifications) | cloudevents
    webhook_batch_seconds: float = 0.5
    webhook_retries: int = 3


# How QBO words Cache-Control on its pages and token answers.
CACHE_CONTROL = "no-cache, no-store"
