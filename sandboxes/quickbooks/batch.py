"""Batches: up to 30 queries and writes in one request, each answered or refused on its own;
POST .../batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.api import Resource, body_json, link_base
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.errors import (
    QboFault,
    bad_json,
    bad_value,
    business,
    required,
    unsupported_operation,
)
from sandboxes.quickbooks.schema import ENTITIES

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def batch(box: QuickBooksSandbox, company: Company, body: Any,
          link_base: str | None) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("BatchItemRequest"), list):
        raise required("BatchItemRequest")
    items = body["BatchItemRequest"]
    if not items:
        raise required("BatchItemRequest")
    if len(items) > box.config.batch_max_items:
        raise business(f"A batch request can have at most {box.config.batch_max_items} "
                       f"BatchItemRequest items; this one has {len(items)}.")
    answers: list[dict[str, Any]] = []
    for item in items:
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        try:
            answers.append({"bId": bid, **_batch_item(box, company, item, link_base)})
        except QboFault as fault:
            answers.append({"bId": bid, "Fault": fault.body()})
    return {"BatchItemResponse": answers}


def _batch_item(box: QuickBooksSandbox, company: Company, item: Any, link_base: str | None
                ) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise bad_json()
    if not item.get("bId"):
        raise required("bId")
    if "Query" in item:
        if not isinstance(item["Query"], str):
            raise bad_value("Query", item["Query"], "java.lang.String")
        return {"QueryResponse": box.query(company, item["Query"], link_base)}
    found = [e for e in ENTITIES if e in item]
    if len(found) != 1:
        raise required("IntuitObject")
    entity = found[0]
    operation = str(item.get("operation") or "")
    if operation not in ("create", "update", "delete"):
        raise unsupported_operation(f"{operation or 'without an operation'} in a batch")
    payload = item[entity]
    if not isinstance(payload, dict):
        raise bad_json()
    if operation == "create" and payload.get("Id") not in (None, "", 0, "0"):
        raise business("An object to create must not carry an Id.")
    if operation == "update" and payload.get("Id") in (None, "", 0, "0"):
        raise required("Id")
    return box.save(company, entity, payload,
                     "delete" if operation == "delete" else None, link_base=link_base)


bp = Resource("quickbooks_batch", __name__)


@bp.operation("batch", methods=("POST",))
def answer_batch(box: QuickBooksSandbox, company: Company, parts: list[str]) -> dict[str, Any]:
    return batch(box, company, body_json(), link_base())
