"""Connecting and disconnecting books: one consent may bring several organisations."""

from __future__ import annotations

import itertools
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import select

from app import access
from collect import ledger
from collect.providers import PROVIDER_NAMES, settings_for, token_vault
from collect.tokens import store_tokens
from connectors import registry
from connectors.base import AuthorizationRevoked, ConnectorError, TokenSet, TransientError
from jobs import retention
from store import clock
from store.db import db
from store.models import Connection, Grant, Membership, Organisation, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Books that already belong to an organisation the person may not reconnect."""

    books: str  # the tenant's name at the provider
    ask: tuple[str, ...]  # the emails of that organisation's owners and admins


class BooksAlreadyConnected(Exception):
    """Some or all of the books in a consent belong to an organisation whose owners and admins
    alone may replace its connection. Nothing changed for those books, and the new consent
    no longer reaches them. `connected` holds the organisations that were connected."""

    def __init__(self, refusals: list[Refusal], connected: list[Organisation]) -> None:
        super().__init__("books already connected to another organisation")
        self.refusals, self.connected = refusals, connected


def _existing(provider: str, tenant_id: str) -> Connection | None:
    return db.session.scalar(select(Connection).where(
        Connection.provider == provider, Connection.tenant_id == tenant_id))


def _refusal(user: User, connection: Connection | None, tenant_name: str) -> Refusal | None:
    """None when the person may (re)connect these books: they are new to Dunwell, or the
    person is an owner or admin of their organisation. Connecting never grants membership."""
    if connection is None:
        return None
    roles = {user_id: role for user_id, role in db.session.execute(
        select(Membership.user_id, Membership.role).where(
            Membership.org_id == connection.org_id))}
    if access.MANAGERS.allows(roles.get(user.id, "")):
        return None
    ask = tuple(db.session.scalars(select(User.email).where(
        User.id.in_([uid for uid, role in roles.items() if access.MANAGERS.allows(role)]))
        .order_by(User.email)))
    return Refusal(books=tenant_name or connection.tenant_name, ask=ask)


def _attach(user: User, grant: Grant, provider: str, tenant_id: str, tenant_name: str,
            provider_connection_id: str | None = None) -> Organisation:
    """The organisation of one provider tenant, new or reconnected, now using `grant`. The
    caller has checked `_refusal` first: only a new organisation's first owner is added."""
    session = db.session()
    connection = _existing(provider, tenant_id)
    if connection is None:
        org = Organisation(name=tenant_name or f"{PROVIDER_NAMES[provider]} organisation",
                           country="GB", timezone="UTC", base_currency="GBP")
        session.add(org)
        session.flush()
        connection = Connection(org_id=org.id, provider=provider, tenant_id=tenant_id)
        session.add(connection)
        session.add(Membership(user_id=user.id, org_id=org.id, role="owner"))
    else:
        org = connection.organisation
    connection.grant = grant
    connection.tenant_name = tenant_name
    connection.provider_connection_id = provider_connection_id
    connection.status, connection.last_error = "active", None
    if connection.purge_after is not None:
        ledger.audit(session, org.id, "deletion_cancelled",
                     "Reconnected within the grace period: the synced data is kept",
                     at=clock.now(), data={})
    connection.disconnected_at = connection.purge_after = connection.purged_at = None
    session.flush()
    ledger.audit(session, org.id, "connected",
                 f"{user.email} connected {PROVIDER_NAMES[provider]} organisation {tenant_name}",
                 at=clock.now(), data={"by": user.email, "provider": PROVIDER_NAMES[provider],
                                       "tenant": tenant_name})
    return org


def _new_grant(user: User, provider: str, tokens: TokenSet,
               auth_event_id: str | None = None) -> Grant:
    grant = Grant(provider=provider, created_by=user.id, status="active",
                  auth_event_id=auth_event_id)
    store_tokens(grant, tokens, token_vault())
    db.session.add(grant)
    return grant


def _withdraw(what: str, call: Callable[[], None]) -> None:
    """Take the new consent back from books it may not serve (best effort: it is stored
    nowhere here either way)."""
    try:
        call()
    except ConnectorError as exc:
        log.warning("%s not withdrawn at the provider (%s)", what, exc)


def connect_xero(user: User, tokens: TokenSet) -> list[Organisation]:
    """Record the consent and every tenant it authorised; returns their organisations.
    Raises BooksAlreadyConnected (after committing the others) for tenants the person may
    not reconnect: the consent is taken back from those tenants, or revoked if it reaches no
    other, except where the provider's connection is the one the organisation itself uses
    (the same login at Xero): removing that would disconnect the organisation."""
    xero = registry.get("xero")
    settings = settings_for(xero)
    consent_tenants, remove_tenant = xero.consent_tenants, xero.remove_tenant
    assert consent_tenants is not None and remove_tenant is not None
    # Xero lists every tenant the user ever connected to the app: take this consent's own.
    event, tenants = consent_tenants(settings, tokens.access_token)
    allowed, refused, shared = [], {}, False
    for tenant in tenants:
        existing = _existing("xero", tenant.tenant_id)
        refusal = _refusal(user, existing, tenant.tenant_name)
        if refusal is None:
            allowed.append(tenant)
            continue
        assert existing is not None
        if existing.grant is not None and tenant.auth_event_id and \
                tenant.auth_event_id == existing.grant.auth_event_id:
            continue  # an earlier consent's tenant, listed with this one: not part of it
        refused[tenant.connection_id] = refusal
        if tenant.connection_id == existing.provider_connection_id:
            shared = True
        else:
            _withdraw("Xero tenant", lambda t=tenant: remove_tenant(  # type: ignore[misc]
                settings, tokens.access_token, t.connection_id))
    organisations: list[Organisation] = []
    if allowed:
        grant = _new_grant(user, "xero", tokens, event or allowed[0].auth_event_id)
        organisations = [_attach(user, grant, "xero", tenant.tenant_id, tenant.tenant_name,
                                 tenant.connection_id) for tenant in allowed]
    elif refused and not shared:
        _withdraw("Xero consent", lambda: xero.revoke(settings, tokens.refresh_token))
    db.session.commit()
    log.info("user %s connected %d Xero organisation(s), %d refused", user.id,
             len(organisations), len(refused))
    if refused:
        raise BooksAlreadyConnected(list(refused.values()), organisations)
    return organisations


def connect_quickbooks(user: User, tokens: TokenSet, realm_id: str) -> Organisation:
    """One consent, one company. Its name is read at once so the owner sees it. Raises
    BooksAlreadyConnected, with the new consent revoked, if the person may not reconnect it."""
    quickbooks = registry.get("quickbooks")
    settings = settings_for(quickbooks)
    name = f"QuickBooks company {realm_id}"
    try:
        details = quickbooks.connector(settings, realm_id, FixedTokens(tokens), clock.now,
                                       None).organisation()
        name = details.name or name
    except ConnectorError as exc:  # the first sync will read it
        log.warning("realm %s: company details not read at connect (%s)", realm_id, exc)
    refusal = _refusal(user, _existing("quickbooks", realm_id), name)
    if refusal is not None:
        _withdraw("QuickBooks consent", lambda: quickbooks.revoke(settings, tokens.refresh_token))
        log.info("user %s: QuickBooks realm %s refused, already connected", user.id, realm_id)
        raise BooksAlreadyConnected([refusal], [])
    previous = _existing("quickbooks", realm_id)
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


def _grant_shared(grant: Grant, connection: Connection) -> bool:
    """Whether another active connection uses the grant (one consent, several tenants)."""
    return db.session.scalar(select(Connection.id).where(
        Connection.grant_id == grant.id, Connection.id != connection.id,
        Connection.status == "active").limit(1)) is not None


def _revoke_at_provider(connection: Connection, grant: Grant) -> None:
    """Where one consent may reach several tenants (Xero): remove this tenant from it, or
    revoke the whole consent when no other tenant uses it. Where a consent covers one tenant
    (QuickBooks): revoke the consent."""
    vault = token_vault()
    provider = registry.get(connection.provider)
    settings = settings_for(provider)
    remove_tenant = provider.remove_tenant
    if remove_tenant is None or (grant.refresh_token_enc
                                 and not _grant_shared(grant, connection)):
        if grant.refresh_token_enc:
            provider.revoke(settings, vault.decrypt(grant.refresh_token_enc))
        grant.status = "revoked"
        grant.access_token_enc = grant.refresh_token_enc = None
    elif connection.provider_connection_id and grant.access_token_enc:
        remove_tenant(settings, vault.decrypt(grant.access_token_enc),
                      connection.provider_connection_id)


def disconnect(org: Organisation) -> None:
    """Revoke at the provider (best effort), then stop everything here."""
    session = db.session()
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
                 "unless the organisation is reconnected", at=now,
                 data={"provider": PROVIDER_NAMES[connection.provider],
                       "purge_after": connection.purge_after.date().isoformat()})
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
    ledger.audit(db.session(), org.id, "deletion_requested",
                 f"{user.email} asked for the synced data to be deleted now", at=now,
                 data={"by": user.email})
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
    session = db.session()
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
