"""Checkout Sessions: POST /v1/checkout/sessions, GET /v1/checkout/sessions/<id>, POST
/v1/checkout/sessions/<id>/expire, and the hosted page the session's `url` leads to
(/c/pay/<id>: a card form; a card that asks for authentication shows a second page)."""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from sandboxes.stripe.api import StripeError, api, current, found, integer
from sandboxes.stripe.sandbox import StripeSandbox, new_id

bp = Blueprint("stripe_checkout", __name__)

METHODS = {"card", "ideal", "bancontact", "eps", "blik", "p24", "sepa_debit", "bacs_debit",
           "us_bank_account", "au_becs_debit", "klarna", "link"}


def _create(box: StripeSandbox, key: str, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("mode") != "payment":
        raise StripeError(400, "invalid_request_error", "Only mode=payment is emulated",
                          "parameter_invalid", "mode")
    for name in ("success_url",):
        if not params.get(name):
            raise StripeError(400, "invalid_request_error", f"Missing required param: {name}.",
                              "parameter_missing", name)
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        raise StripeError(400, "invalid_request_error", "Missing required param: line_items.",
                          "parameter_missing", "line_items")
    total, currency, names = 0, None, []
    for index, item in enumerate(items):
        price = item.get("price_data") or {}
        quantity = integer(params, f"line_items[{index}][quantity]", item.get("quantity", 1))
        amount = integer(params, f"line_items[{index}][price_data][unit_amount]",
                         price.get("unit_amount"))
        if amount < 1 or quantity < 1:
            raise StripeError(400, "invalid_request_error", "Amounts must be positive",
                              "parameter_invalid_integer",
                              f"line_items[{index}][price_data][unit_amount]")
        currency = str(price.get("currency") or "").lower() or currency
        total += amount * quantity
        names.append(str((price.get("product_data") or {}).get("name") or ""))
    if not currency or len(currency) != 3:
        raise StripeError(400, "invalid_request_error", "Missing required param: currency.",
                          "parameter_missing", "line_items[0][price_data][currency]")
    methods = params.get("payment_method_types") or ["card"]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise StripeError(400, "invalid_request_error",
                          f"Invalid payment_method_types[0]: must be one of {sorted(METHODS)}",
                          "parameter_invalid", "payment_method_types")
    metadata = dict(params.get("metadata") or {})
    intent_data = params.get("payment_intent_data") or {}
    session_id = "cs_test_" + new_id("x")[2:]
    intent = box.store(key, box.render("payment_intent", {
        "id": new_id("pi"), "amount": total, "amount_received": 0, "currency": currency,
        "created": box.now(), "status": "requires_payment_method", "canceled_at": None,
        "client_secret": None, "last_payment_error": None, "next_action": None,
        "latest_charge": None, "processing": None, "transfer_data": None,
        "payment_method_types": methods, "automatic_payment_methods": None,
        "metadata": dict(intent_data.get("metadata") or {}),
        "description": intent_data.get("description"),
        "receipt_email": params.get("customer_email")}))
    session = box.store(key, box.render("checkout.session", {
        "id": session_id, "object": "checkout.session", "mode": "payment",
        "amount_subtotal": total, "amount_total": total, "currency": currency,
        "created": box.now(), "expires_at": box.now() + 24 * 3600,
        "client_reference_id": params.get("client_reference_id"),
        "customer_email": params.get("customer_email"), "metadata": metadata,
        "payment_intent": intent["id"], "payment_method_types": methods,
        "payment_status": "unpaid", "status": "open",
        "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
        "locale": params.get("locale"), "url": f"{box.config.base_url}/c/pay/{session_id}",
        "_names": names}))
    return _public(session)


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


@bp.post("/v1/checkout/sessions")
def create() -> Response:
    return api(_create)


@bp.get("/v1/checkout/sessions/<session_id>")
def get_one(session_id: str) -> Response:
    return api(lambda box, key, params: _public(found(box, key, "checkout.session",
                                                      session_id)))


@bp.post("/v1/checkout/sessions/<session_id>/expire")
def expire(session_id: str) -> Response:
    def handle(box: StripeSandbox, key: str, params: dict[str, Any]) -> dict[str, Any]:
        session = found(box, key, "checkout.session", session_id)
        if session["status"] != "open":
            raise StripeError(400, "invalid_request_error",
                              "Only Checkout Sessions with a status in [\"open\"] can be expired.")
        session["status"] = "expired"
        box.emit(key, "checkout.session.expired", _public(session))
        return _public(session)
    return api(handle)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {business}</title><style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;
padding:0 1rem}}label{{display:block;margin-top:.8rem}}input{{width:100%;font-size:1.1rem;
padding:.4rem}}button{{margin-top:1rem;font-size:1.1rem;padding:.6rem 1.2rem}}
.error{{color:#a00}}</style></head><body><h1>Stripe sandbox checkout</h1>
<p>{names}</p><p class="amount">{amount} {currency}</p>{message}{body}</body></html>"""


def _page(session: dict[str, Any], body: str, message: str = "") -> str:
    amount = session["amount_total"]
    return PAGE.format(business=escape(" ".join(session.get("_names") or [])),
                       names=escape(", ".join(session.get("_names") or [])),
                       amount=f"{amount / 100:.2f}", currency=session["currency"].upper(),
                       message=f'<p class="error" role="alert">{escape(message)}</p>'
                       if message else "", body=body)


CARD_FORM = """<form method="post"><label for="cardNumber">Card number</label>
<input id="cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number" required>
<label for="cardExpiry">Expiry (MM / YY)</label><input id="cardExpiry" name="cardExpiry" required>
<label for="cardCvc">CVC</label><input id="cardCvc" name="cardCvc" required>
<label for="billingName">Name on card</label><input id="billingName" name="billingName">
<button type="submit" id="pay">Pay</button></form>
{cancel}"""

AUTH_FORM = """<p>Your bank asks you to confirm this payment.</p>
<form method="post" action="{action}"><input type="hidden" name="name" value="{name}">
<button type="submit" name="answer" value="approve" id="approve">Complete authentication</button>
<button type="submit" name="answer" value="fail" id="fail">Fail authentication</button></form>"""


def _session(session_id: str) -> tuple[StripeSandbox, dict[str, Any]]:
    box = current()
    session = box.objects.get(session_id)
    if session is None or session.get("object") != "checkout.session":
        raise StripeError(404, "invalid_request_error", "No such page")
    return box, session


def _card_form(session: dict[str, Any]) -> str:
    cancel = (f'<p><a href="{escape(session["cancel_url"])}" id="cancel">Back</a></p>'
              if session.get("cancel_url") else "")
    return CARD_FORM.format(cancel=cancel)


@bp.get("/c/pay/<session_id>")
def hosted(session_id: str) -> WerkzeugResponse | str:
    _box, session = _session(session_id)
    if session["status"] == "complete":
        return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))
    if session["status"] != "open":
        return _page(session, "<p>This checkout has expired.</p>")
    return _page(session, _card_form(session))


@bp.post("/c/pay/<session_id>")
def submit(session_id: str) -> WerkzeugResponse | str:
    box, session = _session(session_id)
    if session["status"] != "open":
        return hosted(session_id)
    outcome = box.pay(session_id, request.form.get("cardNumber", ""),
                      request.form.get("billingName", ""))
    if outcome == "succeeded":
        return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id),
                        code=303)
    if outcome == "requires_action":
        return _page(session, AUTH_FORM.format(action=f"/c/pay/{session_id}/authenticate",
                                               name=escape(request.form.get("billingName", ""))))
    return _page(session, _card_form(session), "Your card was declined.")


@bp.post("/c/pay/<session_id>/authenticate")
def authenticate(session_id: str) -> WerkzeugResponse | str:
    box, session = _session(session_id)
    outcome = box.authenticate(session_id, request.form.get("answer") == "approve",
                               request.form.get("name", ""))
    if outcome == "succeeded":
        return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id),
                        code=303)
    return _page(session, _card_form(session), "The card's authentication failed.")
