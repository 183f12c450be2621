"""Which Xero organisations (tenants) a consent reaches: Xero's /connections, read and pruned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import requests

from connectors.base import AuthorizationRevoked, TenantRecord, TransientError
from connectors.xero.oauth import REQUEST_TIMEOUT, XeroSettings


def consent_tenants(settings: XeroSettings, access_token: str
                    ) -> tuple[str | None, list[TenantRecord]]:
    """The consent an access token was issued for (its auth event) and the tenants that
    consent connected.

    Xero lists every tenant the user ever connected to the app, whichever token asks
    (github.com/XeroAPI/xero-ruby/issues/85, from Xero's API team). A consent's own tenants
    are those whose `authEventId` is the token's `authentication_event_id` (Xero's advice,
    XeroAPI/xero-php-oauth2#18), and those connected again by it: one developer reports that
    reconnecting keeps the old `authEventId` (the same thread), while `updatedDateUtc` moves
    (xero-identity.yaml), so a tenant connected before the token's `auth_time` and updated
    since belongs to this consent too (were two consents interleaved, the later one's
    reconnections would be taken as well: a guess no document settles). The token is read
    without checking its signature: it came straight from Xero's token endpoint, and it only
    picks among what the same token may list. A token that is not a JWT gets every tenant
    listed."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    event = str(claims.get("authentication_event_id") or "") or None
    items = _connections(settings, access_token)
    if event is None:
        return None, [_tenant(item) for item in items]
    signed_in = claims.get("auth_time")
    since = datetime.fromtimestamp(int(signed_in), UTC) if signed_in else None

    def of_this_consent(item: dict[str, Any]) -> bool:
        if item.get("authEventId") == event:
            return True
        # Connected before this sign-in and again since: reconnected by it. (A tenant a later
        # consent connects for the first time has its own event and a later created date.)
        created = _connection_stamp(item.get("createdDateUtc"))
        updated = _connection_stamp(item.get("updatedDateUtc"))
        return since is not None and created is not None and updated is not None \
            and created < since <= updated

    return event, [_tenant(item) for item in items if of_this_consent(item)]


def _connection_stamp(value: Any) -> datetime | None:
    """/connections writes UTC without an offset, to 7 decimals: "2019-07-09T23:40:30.1833130"."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _tenant(item: dict[str, Any]) -> TenantRecord:
    return TenantRecord(connection_id=str(item["id"]), tenant_id=str(item["tenantId"]),
                        tenant_name=str(item.get("tenantName") or ""),
                        auth_event_id=item.get("authEventId"))


def _connections(settings: XeroSettings, access_token: str,
                 auth_event_id: str | None = None) -> list[dict[str, Any]]:
    params = {"authEventId": auth_event_id} if auth_event_id else None
    try:
        response = requests.get(
            settings.connections_url,
            params=params,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise TransientError(f"Xero connections unreachable: {type(exc).__name__}") from exc
    if response.status_code == 401:
        raise AuthorizationRevoked("Xero refused the access token for /connections")
    if response.status_code != 200:
        raise TransientError(f"Xero /connections answered {response.status_code}")
    return [item for item in response.json()
            if item.get("tenantType", "ORGANISATION") == "ORGANISATION"]


def list_connections(settings: XeroSettings, access_token: str,
                     auth_event_id: str | None = None) -> list[TenantRecord]:
    """The tenants the user has connected to the app; with `auth_event_id`, only those whose
    connection Xero files under that consent."""
    return [_tenant(item) for item in _connections(settings, access_token, auth_event_id)]


def delete_connection(settings: XeroSettings, access_token: str, connection_id: str) -> None:
    try:
        response = requests.delete(
            f"{settings.connections_url}/{connection_id}",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=REQUEST_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise TransientError(f"Xero connection delete failed: {type(exc).__name__}") from exc
    if response.status_code not in (200, 204, 404):
        raise TransientError(f"Xero connection delete answered {response.status_code}")
