"""Credit memos: sales forms that credit a customer, applied through a payment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.sales import build_sales

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def build_credit_memo(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                      current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    return build_sales(box, company, "CreditMemo", body, current, sparse)
