"""The Accounting API's one route, `/v3/company/<realmId>/...`, and what every call goes
through: the token and the company it is for, the limits, `requestid` replays, `intuit_tid`.

QBO matches a path's names in any case (`/query`, `/Invoice/130`, `/invoice/130/send`), so the
resources are not Flask routes of their own: each resource module is a `Resource` blueprint
whose `operation`s (a path of lower-case names, `ID` for an Id, `ENTITY` for any entity's
name) join its app's table when the blueprint is registered; an admitted call goes to the one
that matches, and a call no operation matches is QBO's "Unsupported Operation" fault.
"""

from __future__ import annotations

import json
import secrets
import time as wall
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request

from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.context import current
from sandboxes.quickbooks.errors import QboFault, Refused, bad_json, too_long, unsupported_operation
from sandboxes.quickbooks.oauth import live_token
from sandboxes.quickbooks.schema import ENTITIES
from sandboxes.wire import forget_before
from sandboxes.wire import json_response as _json

if TYPE_CHECKING:
    from flask.sansio.blueprints import BlueprintSetupState

    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

bp = Blueprint("quickbooks_api", __name__)

OPERATIONS = "quickbooks_operations"  # the app's operations, in app.extensions
ID = "<id>"  # a path segment that is an Id: any text
ENTITY = "<entity>"  # a path segment that names an entity the sandbox keeps, in any case
ENTITY_NAMES = {e.lower(): e for e in ENTITIES}

# (the sandbox, the company, the path's segments as sent) -> the answer's body (or answer)
Handler = Callable[["QuickBooksSandbox", Company, list[str]], "dict[str, Any] | Response"]


@dataclass(frozen=True)
class Operation:
    path: tuple[str, ...]
    methods: frozenset[str] | None  # None: any method the route takes
    handler: Handler

    def matches(self, method: str, lowered: list[str]) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return len(lowered) == len(self.path) and all(
            want == ID or (want == ENTITY and got in ENTITY_NAMES) or want == got
            for want, got in zip(self.path, lowered, strict=True))


class Resource(Blueprint):
    """A blueprint of the Accounting API: its ordinary routes, and its operations under
    /v3/company/<realmId>/, answered once a call is admitted."""

    def operation(self, *path: str, methods: tuple[str, ...] | None = ("GET",)
                  ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            found = Operation(path, frozenset(methods) if methods is not None else None,
                              handler)

            def join(state: BlueprintSetupState) -> None:
                state.app.extensions.setdefault(OPERATIONS, []).append(found)

            self.record(join)
            return handler
        return register


def entity_named(segment: str) -> str:
    """The entity's name as QBO spells it, for a path segment that ENTITY matched."""
    return ENTITY_NAMES[segment.lower()]


def throttled(stamp: str) -> Response:
    """QBO answers a throttled call in XML whatever Accept says (this body, as quoted in
    github.com/intuit/QuickBooks-V3-PHP-SDK/issues/54 and ruckus/quickbooks-ruby#348; XML for a
    JSON request: ej2/python-quickbooks#43), and without Retry-After (UNVERIFIED)."""
    body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<IntuitResponse time="{stamp}" xmlns="http://schema.intuit.com/finance/v3">\n'
            '    <Fault type="SERVICE">\n        <Error code="3001">\n'
            "            <Message>message=ThrottleExceeded; errorCode=003001; "
            "statusCode=429</Message>\n"
            "            <Detail>The request limit was reached.  Try again later</Detail>\n"
            "        </Error>\n    </Fault>\n</IntuitResponse>")
    return Response(body, status=429, mimetype="application/xml")


def platform_fault(status: int, message: str, code: str, detail: str | None, kind: str,
                   moment: datetime) -> Response:
    """401/403 come from Intuit's gateway, with its lower-case envelope and epoch `time`."""
    body: dict[str, Any] = {"warnings": None, "intuitObject": None,
            "fault": {"error": [{"message": message, "detail": detail, "code": code,
                                 "element": None}], "type": kind},
            "report": None, "queryResponse": None, "batchItemResponse": [],
            "attachableResponse": [], "syncErrorResponse": None, "requestId": None,
            "time": int(moment.timestamp() * 1000), "status": None, "cdcresponse": []}
    headers = {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'} \
        if status == 401 else {}
    return _json(body, status, headers)


def intuit_tid(response: Response) -> Response:
    """Every answer carries Intuit's transaction id (the app's after_request)."""
    response.headers["intuit_tid"] = f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
    return response


def authorised(box: QuickBooksSandbox, realm_id: str) -> Company:
    found = live_token(box)
    if isinstance(found, str):
        raise Refused(platform_fault(
            401, "message=AuthenticationFailed; errorCode=003200; statusCode=401", "3200",
            found, "AUTHENTICATION", box.now))
    if found[1].realm_id != realm_id or realm_id not in box.companies_by_id:
        raise Refused(platform_fault(
            403, "message=AuthorizationFailed; errorCode=003100; statusCode=403", "3100",
            None, "SERVICE", box.now))
    return box.companies_by_id[realm_id]


def admit(box: QuickBooksSandbox, company: Company, batch: bool) -> None:
    cfg = box.config
    realm = company.realm_id
    now = box.now
    window = now - timedelta(seconds=60)
    minute = forget_before(box.minute_calls.setdefault(realm, deque()), window)
    batches = forget_before(box.batch_calls.setdefault(realm, deque()), window)
    if len(minute) >= cfg.per_minute_limit or \
            box.in_flight.get(realm, 0) >= cfg.concurrent_limit or \
            (batch and len(batches) >= cfg.batch_per_minute_limit):
        raise Refused(throttled(company.stamp(now, millis=True)))
    minute.append(now)
    if batch:
        batches.append(now)


def answer(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
           status: int = 200) -> Response:
    return _json({**body, "time": company.stamp(box.now, millis=True)}, status)


def fault_answer(box: QuickBooksSandbox, company: Company, fault: QboFault) -> Response:
    return _json({"Fault": fault.body(), "time": company.stamp(box.now, millis=True)},
                 fault.status)


def link_base() -> str | None:
    """Where InvoiceLink points, when the call asks for it (`include=invoiceLink`)."""
    include = request.args.get("include", "")
    if "invoicelink" not in include.lower().split(","):
        return None
    return current().config.invoice_link_base or request.host_url


def body_json() -> Any:
    try:
        return json.loads(request.get_data() or b"", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_json() from exc


def dispatch(box: QuickBooksSandbox, company: Company, rest: str) -> Response:
    parts = [p for p in rest.split("/") if p]
    lowered = [p.lower() for p in parts]
    for operation in current_app.extensions.get(OPERATIONS, ()):
        if operation.matches(request.method, lowered):
            found = operation.handler(box, company, parts)
            # A body as JSON, or an answer of its own (the invoice's PDF).
            return found if isinstance(found, Response) else answer(box, company, found)
    raise unsupported_operation(
        f"Could not find resource for relative : {request.path} of full path: "
        f"{request.url}")


@bp.route("/v3/company/<realm_id>/<path:rest>", methods=["GET", "POST"])
def accounting(realm_id: str, rest: str) -> Response:
    box = current()
    cfg = box.config
    lowered = rest.strip("/").lower()
    write = request.method == "POST" and lowered != "query"
    is_batch = lowered == "batch"
    requestid = request.args.get("requestid") if write else None
    with box.lock:
        try:
            company = authorised(box, realm_id)
            box.call_count[realm_id] = box.call_count.get(realm_id, 0) + 1
            company.requests.append({"method": request.method, "path": request.path,
                                     "query": request.args.to_dict(),
                                     "requestid": request.args.get("requestid")})
            admit(box, company, is_batch)
        except Refused as refused:
            return refused.response
        if requestid is not None:
            if len(requestid) > 50:
                return fault_answer(box, company, too_long("request_id", 50, len(requestid)))
            stored = company.replays.get(requestid)
            if stored is not None:
                status, mimetype, text = stored
                return Response(text, status=status, mimetype=mimetype)
        box.in_flight[realm_id] = box.in_flight.get(realm_id, 0) + 1
    try:
        if cfg.latency_seconds > 0:
            wall.sleep(cfg.latency_seconds)
        with box.lock:
            try:
                response = dispatch(box, company, rest)
            except QboFault as fault:
                response = fault_answer(box, company, fault)
            if requestid:
                company.replays[requestid] = (response.status_code,
                                              response.mimetype or "application/json",
                                              response.get_data(as_text=True))
            return response
    finally:
        with box.lock:
            box.in_flight[realm_id] -= 1
