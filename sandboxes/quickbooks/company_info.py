"""The company itself: CompanyInfo and Preferences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.api import ID, Resource
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.errors import not_found

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def company_info(company: Company) -> dict[str, Any]:
    address = {"Id": "1", "Line1": company.address_line, "City": company.city,
               "Country": company.country, "PostalCode": company.postal_code,
               **({"CountrySubDivisionCode": company.region} if company.region else {})}
    created = company.created
    return {
        "CompanyName": company.name, "LegalName": company.name, "CompanyAddr": address,
        "CustomerCommunicationAddr": dict(address), "LegalAddr": dict(address),
        "CustomerCommunicationEmailAddr": {"Address": company.email},
        "PrimaryPhone": {"FreeFormNumber": company.phone},
        "CompanyStartDate": company.local_date(created).isoformat(),
        "FiscalYearStartMonth": "January", "Country": company.country,
        "Email": {"Address": company.email}, "WebAddr": {},
        "SupportedLanguages": "en", "DefaultTimeZone": company.timezone,
        "NameValue": [{"Name": "NeoEnabled", "Value": "true"},
                      {"Name": "IsQbdtMigrated", "Value": "false"},
                      {"Name": "SubscriptionStatus", "Value": "SUBSCRIBED"},
                      {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                      {"Name": "PayrollFeature", "Value": "false"},
                      {"Name": "AccountantFeature", "Value": "false"}],
        "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
        "MetaData": {"CreateTime": company.stamp(created),
                     "LastUpdatedTime": company.stamp(created)}}


def invoice_message(company: Company) -> tuple[str, str]:
    """The invoice email's subject and message: the owner's, else QuickBooks' own."""
    return company.invoice_message or (
        f"Invoice [Invoice No.] from {company.name}",
        "Dear [Full Name],\n\nWe appreciate your business. Please find your invoice details"
        " here. Feel free to contact us if you have any questions.\n\nHave a great day!\n"
        f"{company.name}")


def preferences(company: Company) -> dict[str, Any]:
    created = company.created
    return {
        "AccountingInfoPrefs": {"TrackDepartments": False, "ClassTrackingPerTxn": False,
                                "ClassTrackingPerTxnLine": False,
                                "CustomerTerminology": "Customers", "UseAccountNumbers":
                                False, "FirstMonthOfFiscalYear": "January"},
        "ProductAndServicesPrefs": {"ForSales": True, "ForPurchase": True,
                                    "QuantityWithPriceAndRate": True,
                                    "QuantityOnHand": True},
        "SalesFormsPrefs": {"CustomTxnNumbers": False, "AllowDeposit": False,
                            "AllowDiscount": True, "AllowEstimates": True,
                            "AllowServiceDate": False, "AllowShipping": False,
                            "DefaultTerms": {"value": "3"}, "ETransactionEnabledStatus":
                            "NotApplicable", "ETransactionAttachPDF": False,
                            "ETransactionPaymentEnabled": False, "IPNSupportEnabled": False,
                            "AutoApplyCredit": False, "AutoApplyPayments": False,
                            "PrintItemWithZeroAmount": False, "UsingPriceLevels": False,
                            "UsingProgressInvoicing": False},
        "EmailMessagesPrefs": {"InvoiceMessage": dict(zip(
            ("Subject", "Message"), invoice_message(company), strict=True))},
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": False, "BillableExpenseTracking":
                                    False, "POCustomField": []},
        "TimeTrackingPrefs": {"UseServices": False, "WorkWeekStartDate": "Monday",
                              "MarkTimeEntriesBillable": False},
        "TaxPrefs": {"UsingSalesTax": False},
        "CurrencyPrefs": {"MultiCurrencyEnabled": False,
                          "HomeCurrency": {"value": company.currency}},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.DefaultCustomerMessage",
                                      "Value": "Thank you for your business."}]},
        "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
        "MetaData": {"CreateTime": company.stamp(created),
                     "LastUpdatedTime": company.stamp(created)}}


bp = Resource("quickbooks_company_info", __name__)


@bp.operation("companyinfo", ID)
def read_company_info(box: QuickBooksSandbox, company: Company,
                      parts: list[str]) -> dict[str, Any]:
    if parts[1] != company.realm_id:
        raise not_found()
    return {"CompanyInfo": company_info(company)}


@bp.operation("preferences")
def read_preferences(box: QuickBooksSandbox, company: Company,
                     parts: list[str]) -> dict[str, Any]:
    return {"Preferences": preferences(company)}
