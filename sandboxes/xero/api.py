"""What every Accounting API call goes through (token, tenant, limits, Idempotency-Key
replays), and what its handlers share: the envelope, paging, filters and request bodies."""

from __future__ import annotations

import hashlib
import json
import math
import time as wall
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

from flask import Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.books import Tenant
from sandboxes.xero.connections import connections_of
from sandboxes.xero.context import current
from sandboxes.xero.errors import ApiError, problem, validation_error
from sandboxes.xero.formats import envelope_stamp, parse_if_modified_since, xml_body
from sandboxes.xero.identity import bearer
from sandboxes.xero.limits import admit, limit_headers, refusal_headers
from sandboxes.xero.query import WhereClause, order_records

PROVIDER_NAME = "Dunwell Xero sandbox"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_ELEMENTS = 50
API = "/api.xro/2.0"


def envelope(key: str, items: list[dict[str, Any]],
             pagination: dict[str, int] | None = None) -> dict[str, Any]:
    box = current()
    body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK",
                            "ProviderName": PROVIDER_NAME,
                            "DateTimeUTC": envelope_stamp(box.now)}
    if pagination is not None:
        body["pagination"] = pagination
    body[key] = items
    return body


def api_error(error: ApiError) -> Response:
    """An ApiError raised anywhere, answered as Xero writes it (the app's error handler)."""
    return _json(error.body, error.status, error.headers)


def accounting(handler: Callable[[Tenant], Response]) -> Response:
    box = current()
    cfg = box.config
    tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
    key = request.headers.get("Idempotency-Key") if request.method in ("POST", "PUT") \
        else None
    fingerprint = f"{request.method} {request.path} " + hashlib.sha256(
        request.get_data()).hexdigest()
    with box.lock:
        try:
            token = bearer(box)
            if not tenant_id:
                raise problem(400, "Bad Request", "The xero-tenant-id header is missing")
            if tenant_id not in {c["tenantId"] for c in connections_of(box, token)}:
                raise problem(403, "Forbidden", "AuthorizationUnsuccessful")
        except ApiError as error:
            error.headers = {**refusal_headers(box, tenant_id), **error.headers}
            raise
        admit(box, tenant_id)
        if key is not None:
            refused = None
            if len(key) > 128:
                refused = "Idempotency-Key must be at most 128 characters"
            stored = box.idempotent.get((tenant_id, key))
            window = timedelta(seconds=cfg.idempotency_window_seconds)
            if stored is not None and stored[4] + window <= box.now:
                del box.idempotent[(tenant_id, key)]  # past the window: forgotten
                stored = None
            if stored is not None and stored[0] != fingerprint:
                refused = "This Idempotency-Key was used for a different request"
            if refused:
                raise ApiError(400, validation_error(refused).body, limit_headers(box, tenant_id))
            if stored is not None:
                _, status, headers, body, _ = stored
                return Response(body, status=status, headers={
                    **headers, **limit_headers(box, tenant_id)}, mimetype="application/json")
        box.in_flight[tenant_id] = box.in_flight.get(tenant_id, 0) + 1
    try:
        if cfg.latency_seconds > 0:
            wall.sleep(cfg.latency_seconds)
        with box.lock:
            tenant = box.tenant(tenant_id)
            try:
                response = handler(tenant)
            except ApiError as error:
                response = _json(error.body, error.status, error.headers)
            if key is not None and response.status_code < 500:
                box.idempotent[(tenant_id, key)] = (
                    fingerprint, response.status_code,
                    {k: v for k, v in response.headers.items()
                     if k.lower() not in ("content-length", "content-type")},
                    response.get_data(as_text=True), box.now)
            response.headers.update(limit_headers(box, tenant_id))
            return response
    finally:
        with box.lock:
            box.in_flight[tenant_id] -= 1


def flag(name: str) -> bool:
    return request.args.get(name, "false").strip().lower() == "true"


def paged(key: str, records: list[dict[str, Any]],
          render: Callable[[dict[str, Any]], dict[str, Any]], kind: str,
          extra_fields: Iterable[str] = ()) -> Response:
    since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
    if since is not None:
        records = [r for r in records if r["_updated"] > since]
    rendered = [render(r) for r in records]
    fields = set(extra_fields).union(*(r.keys() for r in rendered)) if rendered else set()
    where = request.args.get("where") or request.args.get("Where")
    if where:
        keep = WhereClause(where, kind, fields)
        rendered = [r for r in rendered if keep(r)]
    order = (request.args.get("order") or "").strip() or "UpdatedDateUTC"
    rendered = order_records(rendered, order, f"{kind}ID", kind, fields)
    page = request.args.get("page")
    if page is None:
        return _json(envelope(key, rendered))
    try:
        number = max(1, int(page))
        size = min(MAX_PAGE_SIZE, max(1, int(request.args.get("pageSize",
                                                              DEFAULT_PAGE_SIZE))))
    except ValueError as exc:
        raise validation_error("page and pageSize must be whole numbers") from exc
    count = len(rendered)
    chunk = rendered[(number - 1) * size:number * size]
    return _json(envelope(key, chunk, {"page": number, "pageSize": size,
                                       "pageCount": math.ceil(count / size),
                                       "itemCount": count}))


def csv_arg(name: str, lower: bool = False) -> set[str] | None:
    value = request.args.get(name)
    if not value:
        return None
    items = {v.strip().strip('"') for v in value.split(",") if v.strip()}
    return {i.lower() for i in items} if lower else items


def unit_dp() -> int:
    return 4 if request.args.get("unitdp") == "4" else 2


def request_body() -> Any:
    """A write's body, JSON or XML (Xero takes both; pyxero sends XML)."""
    raw = request.get_data() or b"{}"
    if raw.lstrip()[:1] == b"<" or "xml" in (request.content_type or ""):
        try:
            return xml_body(raw)
        except ElementTree.ParseError as exc:
            raise validation_error("The request body is not valid XML") from exc
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise validation_error("The request body is not valid JSON") from exc


def request_items(key: str, what: str) -> list[Any]:
    """The elements of a write: `{"<Key>": [...]}`, one bare object, or a bare list."""
    body = request_body()
    items = body[key] if isinstance(body, dict) and key in body else (
        [body] if isinstance(body, dict) else body)
    if not isinstance(items, list) or not items:
        raise validation_error(f"No {what} in the request")
    if len(items) > MAX_ELEMENTS:
        raise validation_error(f"At most {MAX_ELEMENTS} {what} in one request")
    return items
