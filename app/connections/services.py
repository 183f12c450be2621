"""Connecting and disconnecting books: one consent may bring several organisations."""

from __future__ import annotations

import itertools
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import Connection, Grant, Membership, Organisation, User
from app.providers import PROVIDER_NAMES, quickbooks_settings, token_vault, xero_settings
from app.tokens import store_tokens
from connectors.base import AuthorizationRevoked, ConnectorError, TokenSet, TransientError
from connectors.quickbooks import QuickBooksConnector
from connectors.xero import delete_connection, list_connections
from jobs import ledger, retention

log = logging.getLogger(__name__)


def _attach(user: User, grant: Grant, provider: str, tenant_id: str, tenant_name: str,
            provider_connection_id: str | None = None) -> Organisation:
    """The organisation of one provider tenant, new or reconnected, now using `grant`."""
    session = db.session
    connection = session.scalar(select(Connection).where(
        Connection.provider == provider, Connection.tenant_id == tenant_id))
    if connection is None:
        org = Organisation(name=tenant_name or f"{PROVIDER_NAMES[provider]} organisation",
                           country="GB", timezone="UTC", base_currency="GBP")
        session.add(org)
        session.flush()
        connection = Connection(org_id=org.id, provider=provider, tenant_id=tenant_id)
        session.add(connection)
    else:
        org = connection.organisation
    connection.grant = grant
    connection.tenant_name = tenant_name
    connection.provider_connection_id = provider_connection_id
    connection.status, connection.last_error = "active", None
    if connection.purge_after is not None:
        ledger.audit(session, org.id, "deletion_cancelled",
                     "Reconnected within the grace period: the synced data is kept",
                     at=clock.now())
    connection.disconnected_at = connection.purge_after = connection.purged_at = None
    if session.scalar(select(Membership).where(
            Membership.user_id == user.id, Membership.org_id == org.id)) is None:
        session.add(Membership(user_id=user.id, org_id=org.id, role="owner"))
    session.flush()
    ledger.audit(session, org.id, "connected",
                 f"Connected to {PROVIDER_NAMES[provider]} organisation {tenant_name}",
                 at=clock.now())
    return org


def _new_grant(user: User, provider: str, tokens: TokenSet,
               auth_event_id: str | None = None) -> Grant:
    grant = Grant(provider=provider, created_by=user.id, status="active",
                  auth_event_id=auth_event_id)
    store_tokens(grant, tokens, token_vault())
    db.session.add(grant)
    return grant


def connect_xero(user: User, tokens: TokenSet) -> list[Organisation]:
    """Record the consent and every tenant it authorised; returns their organisations."""
    tenants = list_connections(xero_settings(), tokens.access_token)
    grant = _new_grant(user, "xero", tokens, tenants[0].auth_event_id if tenants else None)
    organisations = [_attach(user, grant, "xero", tenant.tenant_id, tenant.tenant_name,
                             tenant.connection_id) for tenant in tenants]
    db.session.commit()
    log.info("user %s connected %d Xero organisation(s)", user.id, len(organisations))
    return organisations


def connect_quickbooks(user: User, tokens: TokenSet, realm_id: str) -> Organisation:
    """One consent, one company. Its name is read at once so the owner sees it."""
    settings = quickbooks_settings()
    name = f"QuickBooks company {realm_id}"
    try:
        details = QuickBooksConnector(settings, realm_id, FixedTokens(tokens),
                                      clock=clock.now).organisation()
        name = details.name or name
    except ConnectorError as exc:  # the first sync will read it
        log.warning("realm %s: company details not read at connect (%s)", realm_id, exc)
    previous = db.session.scalar(select(Connection).where(
        Connection.provider == "quickbooks", Connection.tenant_id == realm_id))
    old_grant = previous.grant if previous is not None else None
    grant = _new_grant(user, "quickbooks", tokens)
    org = _attach(user, grant, "quickbooks", realm_id, name)
    if old_grant is not None and old_grant.id != grant.id:
        # The new consent supersedes the old one; its tokens are of no further use.
        old_grant.status = "revoked"
        old_grant.access_token_enc = old_grant.refresh_token_enc = None
    db.session.commit()
    log.info("user %s connected QuickBooks realm %s as org %s", user.id, realm_id, org.id)
    return org


class FixedTokens:
    """Tokens fresh from the consent, for the one call made before they are stored."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens

    def load(self) -> TokenSet:
        return self.tokens

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        raise AuthorizationRevoked("fresh tokens were refused")


def _revoke_at_provider(connection: Connection, grant: Grant) -> None:
    """Xero: remove the tenant, or the whole consent when no other tenant uses it.
    QuickBooks: revoke the consent (it covers one company)."""
    session, vault = db.session, token_vault()
    if connection.provider == "quickbooks":
        if grant.refresh_token_enc:
            quickbooks_settings().revoke(vault.decrypt(grant.refresh_token_enc))
        grant.status = "revoked"
        grant.access_token_enc = grant.refresh_token_enc = None
        return
    settings = xero_settings()
    others = session.scalar(select(Connection.id).where(
        Connection.grant_id == grant.id, Connection.id != connection.id,
        Connection.status == "active").limit(1))
    if others is None and grant.refresh_token_enc:
        settings.oauth.revoke(vault.decrypt(grant.refresh_token_enc))
        grant.status = "revoked"
        grant.access_token_enc = grant.refresh_token_enc = None
    elif connection.provider_connection_id and grant.access_token_enc:
        delete_connection(settings, vault.decrypt(grant.access_token_enc),
                          connection.provider_connection_id)


def disconnect(org: Organisation) -> None:
    """Revoke at the provider (best effort), then stop everything here."""
    session = db.session
    connection = org.connection
    if connection is None or connection.status == "disconnected":
        return
    grant = connection.grant
    if grant is not None and grant.status == "active":
        try:
            _revoke_at_provider(connection, grant)
        except TransientError as exc:
            log.warning("org %s: provider-side disconnect failed (%s); disconnected here",
                        org.id, exc)
    now = clock.now()
    connection.status, connection.grant = "disconnected", None
    connection.disconnected_at, connection.purged_at = now, None
    connection.purge_after = now + retention.grace_period()
    ledger.audit(session, org.id, "disconnected",
                 f"Disconnected from {PROVIDER_NAMES[connection.provider]}; the synced data "
                 f"will be deleted after {connection.purge_after.date().isoformat()} (UTC) "
                 "unless the organisation is reconnected", at=now)
    session.commit()


class DeletionRefused(ValueError):
    """Delete-now asked of a book that is not waiting for deletion; the message is for the
    owner."""


def delete_now(org: Organisation, user: User) -> None:
    """Cut the grace short: the deletion is due now, and its job is enqueued at once."""
    connection = org.connection
    if connection is None or connection.status != "disconnected" \
            or connection.purge_after is None or connection.purged_at is not None:
        raise DeletionRefused("Only a disconnected book whose data is still kept can be "
                              "deleted now.")
    now = clock.now()
    connection.purge_after = now
    ledger.audit(db.session, org.id, "deletion_requested",
                 f"{user.email} asked for the synced data to be deleted now", at=now)
    db.session.commit()
    retention.enqueue_purge(org.id)


# -- Export ---------------------------------------------------------------------------------

EXPORTED_TABLES = ("contacts", "invoices", "payments", "payment_plans", "actions", "tasks",
                   "documents", "webhook_events", "audit_events")


def _plain(value: Any) -> Any:
    """A column value as JSON: money as exact decimal text, moments in ISO 8601 (UTC)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def export_archive(org: Organisation, out: IO[bytes]) -> None:
    """Write a ZIP of the organisation's synced data and every action and activity-log entry to
    `out`, one JSON file per kind (documents' PDFs as files of their own); the owner's copy
    before the data is deleted. Tokens and credentials are never in it.

    Rows are read and written a batch at a time, so memory does not grow with the books: a
    large organisation's export held every row as a dict, then as JSON text, then the ZIP."""
    session = db.session
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        connection = org.connection
        archive.writestr("organisation.json", json.dumps({
            "id": org.id, "name": org.name, "country": org.country, "timezone": org.timezone,
            "base_currency": org.base_currency,
            "provider": connection.provider if connection else None,
            "tenant_name": connection.tenant_name if connection else None,
            "connection_status": connection.status if connection else None,
            "disconnected_at": _plain(connection.disconnected_at) if connection else None,
            "data_deleted_after": _plain(connection.purge_after) if connection else None,
            "exported_at": clock.now().isoformat()}, indent=1))
        for name in EXPORTED_TABLES:
            table = db.metadata.tables[name]
            rows = session.execute(select(table).where(table.c.org_id == org.id)
                                   .order_by(table.c.id)
                                   .execution_options(yield_per=EXPORT_BATCH)).mappings()
            records: Iterator[dict[str, Any]]
            if name == "documents":  # each PDF a member of its own, written before the list
                records = iter([_with_file(archive, row) for row in rows])
            else:
                records = ({k: _plain(v) for k, v in row.items()} for row in rows)
            with archive.open(f"{name}.json", "w") as member:
                write_json_array(member, records)
    log.info("org %s: export made", org.id)


EXPORT_BATCH = 500


def _with_file(archive: zipfile.ZipFile, row: Any) -> dict[str, Any]:
    path = f"documents/{row['id']}-{safe_filename(row['filename'])}"
    archive.writestr(path, row["content"])
    return {**{k: _plain(v) for k, v in row.items() if k != "content"}, "file": path}


def write_json_array(out: IO[bytes], records: Iterator[dict[str, Any]]) -> None:
    """The same bytes as `json.dumps(list(records), indent=1)`, one record at a time."""
    first = next(records, None)
    if first is None:
        out.write(b"[]")
        return
    out.write(b"[\n")
    for n, record in enumerate(itertools.chain([first], records)):
        text = json.dumps(record, indent=1).replace("\n", "\n ")  # JSON text has no raw \n
        out.write(((",\n " if n else " ") + text).encode())
    out.write(b"\n]")


def safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)[:100] or "document"
