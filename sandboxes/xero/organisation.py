"""The organisation and its currencies: GET /Organisation and /Currencies."""

from __future__ import annotations

from flask import Blueprint, Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope
from sandboxes.xero.books import CURRENCY_NAMES, Tenant
from sandboxes.xero.formats import ms_date
from sandboxes.xero.query import WhereClause

bp = Blueprint("xero_organisation", __name__)


# pyxero (a client used against Xero for years) asks for the plural.
@bp.get(f"{API}/Organisations")
@bp.get(f"{API}/Organisation")
def organisation() -> Response:
    def handle(t: Tenant) -> Response:
        return _json(envelope("Organisations", [{
            "OrganisationID": t.tenant_id, "APIKey": "", "Name": t.name,
            "LegalName": t.name, "PaysTax": True,
            "Version": {"GB": "UK", "AU": "AU", "NZ": "NZ", "US": "US"}.get(t.country,
                                                                        "GLOBAL"),
            "OrganisationType": "COMPANY", "BaseCurrency": t.base_currency,
            "CountryCode": t.country, "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE", "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 12, "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1", "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "CreatedDateUTC": ms_date(t.created), "OrganisationEntityType": "COMPANY",
            "Timezone": t.timezone, "ShortCode": t.short_code, "Edition": "BUSINESS",
            "Class": "STANDARD", "Addresses": [], "Phones": [], "ExternalLinks": [],
            "PaymentTerms": {}}]))
    return accounting(handle)


@bp.get(f"{API}/Currencies")
def currencies() -> Response:
    """The organisation's currencies: its base currency and every one its invoices use
    (shape: Xero's description's example, {Code, Description}). tap-xero reads it first
    to check access."""
    def handle(t: Tenant) -> Response:
        used = {t.base_currency} | {str(i.get("CurrencyCode") or t.base_currency)
                                    for i in t.invoices.values()}
        rows = [{"Code": code, "Description": CURRENCY_NAMES.get(code, code)}
                for code in sorted(used)]
        where = request.args.get("where") or request.args.get("Where")
        if where:
            keep = WhereClause(where, "Currency", {"Code", "Description"})
            rows = [r for r in rows if keep(r)]
        return _json(envelope("Currencies", rows))
    return accounting(handle)
