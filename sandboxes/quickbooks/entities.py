"""The entities a company keeps (Invoice, Customer, Item, Payment, CreditMemo, Account,
Estimate, Purchase): how each is built from a request; GET .../<entity>/<id> reads one, and POST
.../<entity> creates, updates, deletes or voids one (`operation=`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import request

from sandboxes.quickbooks.accounts import build_account
from sandboxes.quickbooks.api import ENTITY, ID, Resource, body_json, entity_named, link_base
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.credit_memos import build_credit_memo
from sandboxes.quickbooks.customers import build_customer
from sandboxes.quickbooks.estimates import build_estimate
from sandboxes.quickbooks.invoices import build_invoice
from sandboxes.quickbooks.items import build_item
from sandboxes.quickbooks.payments import build_payment
from sandboxes.quickbooks.purchases import build_purchase

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

bp = Resource("quickbooks_entities", __name__)

Builder = Callable[["QuickBooksSandbox", Company, dict[str, Any], "dict[str, Any] | None", bool],
                   dict[str, Any]]
BUILDERS: dict[str, Builder] = {
    "Invoice": build_invoice, "CreditMemo": build_credit_memo, "Estimate": build_estimate,
    "Customer": build_customer,
    "Item": build_item, "Account": build_account, "Payment": build_payment,
    "Purchase": build_purchase}


@bp.operation(ENTITY, ID)
def read(box: QuickBooksSandbox, company: Company, parts: list[str]) -> dict[str, Any]:
    entity = entity_named(parts[0])
    return {entity: box.read(company, entity, parts[1], link_base())}


@bp.operation(ENTITY, methods=("POST",))
def save(box: QuickBooksSandbox, company: Company, parts: list[str]) -> dict[str, Any]:
    return box.save(company, entity_named(parts[0]), body_json(),
                    request.args.get("operation"), request.args.get("include", ""),
                    link_base())
