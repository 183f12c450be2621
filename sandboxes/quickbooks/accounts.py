"""Accounts of the chart: types, subtypes and numbers."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import _bool, _check_currency, _list_name, _text, _unique_name
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.errors import bad_value, duplicate_name, required
from sandboxes.quickbooks.schema import SCHEMA

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

ACCOUNT_TYPES = {
    "Bank": ("Asset", "Checking"), "Other Current Asset": ("Asset", "OtherCurrentAssets"),
    "Fixed Asset": ("Asset", "OtherFixedAssets"), "Other Asset": ("Asset", "OtherLongTermAssets"),
    "Accounts Receivable": ("Asset", "AccountsReceivable"),
    "Equity": ("Equity", "OpeningBalanceEquity"),
    "Expense": ("Expense", "OtherMiscellaneousServiceCost"),
    "Other Expense": ("Expense", "OtherMiscellaneousExpense"),
    "Cost of Goods Sold": ("Expense", "SuppliesMaterialsCogs"),
    "Accounts Payable": ("Liability", "AccountsPayable"),
    "Credit Card": ("Liability", "CreditCard"),
    "Long Term Liability": ("Liability", "OtherLongTermLiabilities"),
    "Other Current Liability": ("Liability", "OtherCurrentLiabilities"),
    "Income": ("Revenue", "ServiceFeeIncome"),
    "Other Income": ("Revenue", "OtherMiscellaneousIncome"),
}


def build_account(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                  current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "SubAccount": False, "Active": True, "CurrentBalance": Decimal("0.00"),
        "CurrentBalanceWithSubAccounts": Decimal("0.00")}
    name = _list_name(body, current)
    _unique_name(company, "Account", "Name", name, record, "account")
    record["Name"] = record["FullyQualifiedName"] = name
    kind = _text(body.get("AccountType"), "AccountType")
    if kind:
        if kind not in ACCOUNT_TYPES:
            raise bad_value("AccountType", kind, f"{SCHEMA}.AccountTypeEnum")
        record["AccountType"] = kind
        record["Classification"], default_subtype = ACCOUNT_TYPES[kind]
        record["AccountSubType"] = _text(body.get("AccountSubType"), "AccountSubType") or \
            default_subtype
    elif "AccountType" not in record:
        raise required("AccountType")
    active = _bool(body.get("Active"), "Active")
    if active is not None:
        record["Active"] = active
    description = _text(body.get("Description"), "Description")
    if description:
        record["Description"] = description
    number = _text(body.get("AcctNum"), "AcctNum")  # the account's number in the chart
    if number and number.strip():
        if any(a.get("AcctNum") == number.strip() and a["Id"] != record.get("Id")
               for a in company.records["Account"].values()):
            raise duplicate_name("account number")  # UNVERIFIED: QBO's wording for it
        record["AcctNum"] = number.strip()
    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    return record
