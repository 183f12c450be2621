"""Connecting and disconnecting books: one consent may bring several organisations."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import Connection, Grant, Membership, Organisation, User
from app.providers import token_vault, xero_settings
from app.tokens import store_tokens
from connectors.base import TokenSet, TransientError
from connectors.xero import delete_connection, list_connections
from jobs import ledger

log = logging.getLogger(__name__)


def connect_xero(user: User, tokens: TokenSet) -> list[Organisation]:
    """Record the consent and every tenant it authorised; returns their organisations."""
    settings = xero_settings()
    tenants = list_connections(settings, tokens.access_token)
    session = db.session
    grant = Grant(provider="xero", created_by=user.id, status="active",
                  auth_event_id=tenants[0].auth_event_id if tenants else None)
    store_tokens(grant, tokens, token_vault())
    session.add(grant)
    now = clock.now()
    organisations = []
    for tenant in tenants:
        connection = session.scalar(select(Connection).where(
            Connection.provider == "xero", Connection.tenant_id == tenant.tenant_id))
        if connection is None:
            org = Organisation(name=tenant.tenant_name or "Xero organisation", country="GB",
                               timezone="UTC", base_currency="GBP")
            session.add(org)
            session.flush()
            connection = Connection(org_id=org.id, provider="xero", tenant_id=tenant.tenant_id)
            session.add(connection)
        else:
            org = connection.organisation
        connection.grant = grant
        connection.tenant_name = tenant.tenant_name
        connection.provider_connection_id = tenant.connection_id
        connection.status, connection.last_error = "active", None
        if session.scalar(select(Membership).where(
                Membership.user_id == user.id, Membership.org_id == org.id)) is None:
            session.add(Membership(user_id=user.id, org_id=org.id, role="owner"))
        session.flush()
        ledger.audit(session, org.id, "connected",
                     f"Connected to Xero organisation {tenant.tenant_name}", at=now)
        organisations.append(org)
    session.commit()
    log.info("user %s connected %d Xero organisation(s)", user.id, len(organisations))
    return organisations


def disconnect(org: Organisation) -> None:
    """Remove the tenant at the provider; revoke the consent once no tenant uses it."""
    session = db.session
    connection = org.connection
    if connection is None or connection.status == "disconnected":
        return
    grant = connection.grant
    vault = token_vault()
    if grant is not None and grant.status == "active" and grant.access_token_enc:
        settings = xero_settings()
        others = session.scalar(select(Connection.id).where(
            Connection.grant_id == grant.id, Connection.id != connection.id,
            Connection.status == "active").limit(1))
        try:
            if others is None and grant.refresh_token_enc:
                settings.oauth.revoke(vault.decrypt(grant.refresh_token_enc))
                grant.status = "revoked"
                grant.access_token_enc = grant.refresh_token_enc = None
            elif connection.provider_connection_id:
                delete_connection(settings, vault.decrypt(grant.access_token_enc),
                                  connection.provider_connection_id)
        except TransientError as exc:
            log.warning("org %s: provider-side disconnect failed (%s); disconnected here",
                        org.id, exc)
    connection.status, connection.grant = "disconnected", None
    ledger.audit(session, org.id, "disconnected", "Disconnected from Xero", at=clock.now())
    session.commit()
