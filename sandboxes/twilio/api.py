"""The Messages resource of Twilio's REST API (2010-04-01), with HTTP basic auth, and our own
`/_sandbox/...` pages and controls for tests and the demo."""

from __future__ import annotations

import html
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from sandboxes.twilio.sandbox import API_VERSION, Rejected, TwilioSandbox, rfc2822

EXTENSION = "twilio_sandbox"
PAGE_SIZE = 50
bp = Blueprint("twilio", __name__)


def sandbox() -> TwilioSandbox:
    box: TwilioSandbox = current_app.extensions[EXTENSION]
    return box


def error(status: int, code: int, message: str) -> tuple[Response, int]:
    return jsonify({"code": code, "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}), status


def rejected(exc: Rejected) -> tuple[Response, int]:
    return error(exc.status, exc.code, exc.message)


def authenticated(account_sid: str) -> None:
    auth = request.authorization
    token = sandbox().token_of(account_sid)
    if auth is None or token is None or auth.username != account_sid \
            or auth.password != token:
        raise Rejected(401, 20003, "Authenticate")


def render(message: dict[str, Any]) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{message['account_sid']}/Messages/{message['sid']}"
    return {**message,
            "date_created": rfc2822(message["date_created"]),
            "date_sent": rfc2822(message["date_sent"]),
            "date_updated": rfc2822(message["date_updated"]),
            "uri": f"{base}.json",
            "subresource_uris": {"media": f"{base}/Media.json",
                                 "feedback": f"{base}/Feedback.json"}}


@bp.post("/2010-04-01/Accounts/<account_sid>/Messages.json")
def create(account_sid: str) -> tuple[Response, int]:
    authenticated(account_sid)
    message = sandbox().create_message(account_sid, request.form.to_dict())
    return jsonify(render(message)), 201


@bp.get("/2010-04-01/Accounts/<account_sid>/Messages/<sid>.json")
def fetch(account_sid: str, sid: str) -> Response | tuple[Response, int]:
    authenticated(account_sid)
    message = sandbox().message(account_sid, sid)
    if message is None:
        return error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/"
                                 f"{account_sid}/Messages/{sid}.json was not found")
    return jsonify(render(message))


@bp.get("/2010-04-01/Accounts/<account_sid>/Messages.json")
def listing(account_sid: str) -> Response:
    authenticated(account_sid)
    args = request.args
    found = sandbox().list_messages(account_sid, to=args.get("To"), sender=args.get("From"),
                                    sent_on=args.get("DateSent"),
                                    sent_before=args.get("DateSent<"),
                                    sent_after=args.get("DateSent>"))
    size = min(max(int(args.get("PageSize", PAGE_SIZE)), 1), 1000)
    page = max(int(args.get("Page", 0)), 0)
    start = page * size
    chunk = found[start:start + size]
    path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
    kept = "&".join(f"{k}={v}" for k, v in args.items() if k not in ("Page", "PageSize",
                                                                        "PageToken"))
    def uri(number: int) -> str:
        return f"{path}?{kept + '&' if kept else ''}PageSize={size}&Page={number}"

    more = start + size < len(found)
    return jsonify({
        "messages": [render(m) for m in chunk], "page": page, "page_size": size,
        "start": start, "end": start + len(chunk) - 1 if chunk else start,
        "uri": uri(page), "first_page_uri": uri(0),
        "next_page_uri": f"{uri(page + 1)}&PageToken=PA{page + 1}" if more else None,
        "previous_page_uri": uri(page - 1) if page else None})


# --- ours: the demo's page and the tests' controls ----------------------------------------


@bp.get("/_sandbox/messages")
def page() -> Response:
    """Every text the emulator has carried, newest first, for the demo."""
    box = sandbox()
    with box.lock:
        rows = sorted(box.messages.values(), key=lambda m: m["date_created"], reverse=True)
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(value or ''))}</td>" for value in (
            rfc2822(m["date_created"]), m["direction"], m["from"], m["to"], m["status"],
            m["num_segments"], m["error_code"], m["body"])) + "</tr>"
        for m in rows)
    body = ("<!doctype html><meta charset=utf-8><title>Twilio sandbox: texts</title>"
            "<h1>Texts</h1><table border=1 cellpadding=4><tr><th>Created<th>Direction"
            "<th>From<th>To<th>Status<th>Segments<th>Error<th>Body</tr>"
            f"{cells}</table>")
    return Response(body, mimetype="text/html")


@bp.get("/_sandbox/messages.json")
def all_messages() -> Response:
    box = sandbox()
    with box.lock:
        rows = [render(m) for m in box.messages.values()]
    return jsonify(rows)


@bp.post("/_sandbox/inbound")
def inbound() -> Response:
    """A customer texts one of our numbers (From, To, Body; optional Url)."""
    form = request.form
    message = sandbox().receive(form["From"], form["To"], form.get("Body", ""),
                                url=form.get("Url") or None)
    return jsonify(render(message))


@bp.post("/_sandbox/fail")
def fail() -> Response:
    """Texts to Number end as Status (undelivered or failed) with ErrorCode."""
    form = request.form
    sandbox().fail_number(form["Number"], form.get("Status", "undelivered"),
                          int(form.get("ErrorCode", "30003")))
    return jsonify({"ok": True})


@bp.post("/_sandbox/settle")
def settle() -> Response:
    sandbox().settle()
    return jsonify({"ok": True})
