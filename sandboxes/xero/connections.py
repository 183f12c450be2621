"""The tenants the user connected to the app: GET and DELETE /connections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.context import current
from sandboxes.xero.errors import not_found
from sandboxes.xero.identity import bearer
from sandboxes.xero.limits import app_headers

if TYPE_CHECKING:
    from sandboxes.xero.sandbox import XeroSandbox

bp = Blueprint("xero_connections", __name__)


def connections_of(box: XeroSandbox, token: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tenant the user has connected to the app, whichever consent the token is of
    (github.com/XeroAPI/xero-php-oauth2/issues/18: "this is based on the access token
    being used, which in turn is linked to the user")."""

    def stamp(moment: datetime) -> str:
        # Xero writes 7 fractional digits and no offset: "2019-07-09T23:40:30.1833130".
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"

    found = []
    for event_id, connection_id, c in box.connections(token["client_id"]):
        tenant = box.tenants_by_id[c["tenantId"]]
        found.append({"id": connection_id, "authEventId": event_id,
                      "tenantId": tenant.tenant_id, "tenantType": "ORGANISATION",
                      "tenantName": tenant.name, "createdDateUtc": stamp(c["created"]),
                      "updatedDateUtc": stamp(c.get("updated", c["created"]))})
    return found


@bp.get("/connections")
@bp.get("/Connections")
def list_connections() -> Response:
    box = current()
    with box.lock:
        token = bearer(box)
        event = request.args.get("authEventId")
        return _json([c for c in connections_of(box, token)
                      if not event or c["authEventId"] == event], headers=app_headers(box))


@bp.delete("/connections/<connection_id>")
@bp.delete("/Connections/<connection_id>")
def delete_connection(connection_id: str) -> Response:
    box = current()
    with box.lock:
        token = bearer(box)
        owner = next((event for event, found, _ in box.connections(token["client_id"])
                      if found == connection_id), None)
        if owner is None:
            raise not_found()
        del box.auth_events[owner]["connections"][connection_id]
        return Response(status=204, headers=app_headers(box))
