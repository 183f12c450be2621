"""From a stored connection to a live connector: the only place that wires the two."""

from __future__ import annotations

from typing import TypeVar

from flask import current_app
from redis import Redis
from sqlalchemy.orm import sessionmaker

from collect.tokens import GrantTokenStore
from collect.vault import token_vault
from connectors import registry
from connectors.base import AuthorizationRevoked, Connector
from connectors.provider import Provider
from connectors.quickbooks.oauth import QuickBooksSettings
from connectors.ratelimit import RateBudget
from connectors.xero.oauth import XeroSettings
from store import clock
from store.db import db
from store.models import Connection

PROVIDER_NAMES = {provider.name: provider.display_name for provider in registry.all()}
S = TypeVar("S")


def redis_client() -> Redis:
    """One client per app (connection pool inside), made on first use."""
    client = current_app.extensions.get("dunwell_redis")
    if client is None:
        client = Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["dunwell_redis"] = client
    return client


def settings_for(provider: Provider[S] | str) -> S:
    """A provider's settings in this deployment, from the app's configuration and clock."""
    entry = registry.get(provider) if isinstance(provider, str) else provider
    return entry.settings(current_app.config, clock.now)


def xero_settings() -> XeroSettings:
    """For the Xero-only OAuth routes (connect, sign up)."""
    return settings_for("xero")


def quickbooks_settings() -> QuickBooksSettings:
    """For the QuickBooks-only OAuth routes (connect, sign in with Intuit)."""
    return settings_for("quickbooks")


def token_store(grant_id: int) -> GrantTokenStore:
    return GrantTokenStore(grant_id, sessionmaker(bind=db.engine, expire_on_commit=False),
                           token_vault(), redis_client())


def _budget(provider: str) -> RateBudget:
    """The provider's limits from settings (XERO_CALLS_PER_MINUTE, QUICKBOOKS_CALLS_...). A
    provider whose app-wide minute is not counted apart leaves <PREFIX>_APP_CALLS_PER_MINUTE
    unset (Intuit counts per company and app)."""
    config, prefix = current_app.config, provider.upper()
    return RateBudget(redis_client(), provider, per_minute=config[f"{prefix}_CALLS_PER_MINUTE"],
                      per_day=config[f"{prefix}_CALLS_PER_DAY"],
                      concurrent=config[f"{prefix}_CALLS_IN_FLIGHT"],
                      app_per_minute=config.get(f"{prefix}_APP_CALLS_PER_MINUTE", 10**9),
                      # Minute windows on Redis's clock, which every worker shares (a worker's
                      # own may be minutes off); a test's or the demo's clock where one is set.
                      clock=config.get("CLOCK"))


def connector_for(connection: Connection) -> Connector:
    """The live connector of a stored connection; the layers above never learn which."""
    if connection.grant_id is None:
        raise AuthorizationRevoked(f"connection {connection.id} has no grant")
    tokens = token_store(connection.grant_id)
    provider = registry.find(connection.provider)
    if provider is None:
        raise ValueError(f"connection {connection.id}: unknown provider "
                         f"{connection.provider!r}")
    return provider.connector(settings_for(provider), connection.tenant_id, tokens, clock.now,
                              _budget(provider.name))
