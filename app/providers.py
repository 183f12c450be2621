"""From a stored connection to a live connector: the only place that wires the two."""

from __future__ import annotations

from flask import current_app
from redis import Redis
from sqlalchemy.orm import sessionmaker

from store import clock
from store.db import db
from store.models import Connection
from app.tokens import GrantTokenStore, TokenVault
from connectors.base import AuthorizationRevoked, Connector
from connectors.oauth import OAuthClient
from connectors.quickbooks import QuickBooksConnector, QuickBooksSettings
from connectors.ratelimit import RateBudget
from connectors.xero import XeroConnector, XeroSettings

PROVIDER_NAMES = {"xero": "Xero", "quickbooks": "QuickBooks"}


def redis_client() -> Redis:
    """One client per app (connection pool inside), made on first use."""
    client = current_app.extensions.get("dunwell_redis")
    if client is None:
        client = Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["dunwell_redis"] = client
    return client


def token_vault() -> TokenVault:
    vault = current_app.extensions.get("dunwell_vault")
    if vault is None:
        vault = TokenVault(current_app.config["TOKEN_ENCRYPTION_KEYS"])
        current_app.extensions["dunwell_vault"] = vault
    return vault


def xero_settings() -> XeroSettings:
    config = current_app.config
    return XeroSettings(
        oauth=OAuthClient(
            client_id=config["XERO_CLIENT_ID"],
            client_secret=config["XERO_CLIENT_SECRET"],
            authorize_url=config["XERO_AUTHORIZE_URL"],
            token_url=config["XERO_TOKEN_URL"],
            revoke_url=config["XERO_REVOKE_URL"],
            scopes=config["XERO_SCOPES"],
            clock=clock.now,
        ),
        api_url=config["XERO_API_URL"],
        connections_url=config["XERO_CONNECTIONS_URL"],
    )


def quickbooks_settings() -> QuickBooksSettings:
    config = current_app.config
    return QuickBooksSettings(
        client_id=config["QUICKBOOKS_CLIENT_ID"],
        client_secret=config["QUICKBOOKS_CLIENT_SECRET"],
        discovery_url=config["QUICKBOOKS_DISCOVERY_URL"],
        api_url=config["QUICKBOOKS_API_URL"],
        minor_version=config["QUICKBOOKS_MINOR_VERSION"],
        clock=clock.now,
    )


def token_store(grant_id: int) -> GrantTokenStore:
    return GrantTokenStore(grant_id, sessionmaker(bind=db.engine, expire_on_commit=False),
                           token_vault(), redis_client())


def _budget(provider: str) -> RateBudget:
    """The provider's limits from settings (XERO_CALLS_PER_MINUTE, QUICKBOOKS_CALLS_...)."""
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
    if connection.provider == "xero":
        return XeroConnector(xero_settings(), connection.tenant_id, tokens, clock=clock.now,
                             budget=_budget("xero"))
    if connection.provider == "quickbooks":
        # Intuit counts per company and app: QUICKBOOKS_APP_CALLS_PER_MINUTE is unset.
        return QuickBooksConnector(quickbooks_settings(), connection.tenant_id, tokens,
                                   clock=clock.now, budget=_budget("quickbooks"))
    raise ValueError(f"connection {connection.id}: unknown provider {connection.provider!r}")
