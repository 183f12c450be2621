"""From a stored connection to a live connector: the only place that wires the two."""

from __future__ import annotations

from flask import current_app
from redis import Redis
from sqlalchemy.orm import sessionmaker

from app import clock
from app.extensions import db
from app.models import Connection
from app.tokens import GrantTokenStore, TokenVault
from connectors.base import AuthorizationRevoked, Connector
from connectors.oauth import OAuthClient
from connectors.ratelimit import RateBudget
from connectors.xero import XeroConnector, XeroSettings


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


def connector_for(connection: Connection) -> Connector:
    if connection.provider != "xero":
        raise ValueError(f"connection {connection.id}: unknown provider {connection.provider!r}")
    if connection.grant_id is None:
        raise AuthorizationRevoked(f"connection {connection.id} has no grant")
    store = GrantTokenStore(
        connection.grant_id,
        sessionmaker(bind=db.engine, expire_on_commit=False),
        token_vault(),
        redis_client(),
    )
    config = current_app.config
    budget = RateBudget(redis_client(), "xero", per_minute=config["XERO_CALLS_PER_MINUTE"],
                        per_day=config["XERO_CALLS_PER_DAY"],
                        concurrent=config["XERO_CALLS_IN_FLIGHT"],
                        app_per_minute=config["XERO_APP_CALLS_PER_MINUTE"], clock=clock.now)
    return XeroConnector(xero_settings(), connection.tenant_id, store, clock=clock.now,
                         budget=budget)
