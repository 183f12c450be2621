"""What Finance.xsd says of the entities the sandbox keeps: their names and fields."""

from __future__ import annotations

import re

MINOR_VERSION = 75


SCHEMA = "com.intuit.schema.finance.v3"


CURRENCY_NAMES = {"USD": "United States Dollar", "GBP": "British Pound Sterling",
                  "EUR": "Euro", "CAD": "Canadian Dollar", "AUD": "Australian Dollar",
                  "NZD": "New Zealand Dollar"}
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
TRANSACTIONS = ("Invoice", "Payment", "CreditMemo", "Estimate", "Purchase")
ENTITIES = ("Invoice", "Customer", "Item", "Payment", "CreditMemo", "Account", "Estimate",
            "Purchase")
# An Estimate's TxnStatus (Finance.xsd leaves it a string; these are the values QBO uses).
ESTIMATE_STATUSES = ("Pending", "Accepted", "Closed", "Rejected")
SINGLETONS = ("CompanyInfo", "Preferences")


# Element names of each entity type (with its bases) in Finance.xsd: a property outside these
# is the 2010 "unsupported property" fault, as in QBO.
_FIELDS = {
    "Invoice": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote TxnStatus
        LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum TransactionLocationType Tag
        TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef TotalCostAmount
        HomeTotalCostAmount AutoDocNumber CustomerRef CustomerMemo BillAddr ShipAddr
        FreeFormAddress ShipFromAddr RemitToRef ClassRef SalesTermRef DueDate SalesRepRef
        PONumber FOB ShipMethodRef ShipDate TrackingNum GlobalTaxCalculation TotalAmt
        HomeTotalAmt ApplyTaxAfterDiscount ShippingTaxIncludedInTotalTax TemplateRef
        PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc ARAccountRef Balance
        HomeBalance FinanceCharge PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment DepositToAccountRef DeliveryInfo DiscountRate DiscountAmt
        GovtTxnRefIdentifier TaxExemptionRef Deposit AllowIPNPayment AllowOnlinePayment
        AllowOnlineCreditCardPayment AllowOnlineACHPayment AllowOnlinePayPalPayment
        EInvoiceStatus ECloudStatusTimeStamp CfdiUse Exportation GlobalInfo invoiceStatus
        callToAction invoiceStatusLog InvoiceEx LessCIS InvoiceLink PaymentDetailsMessage
        ConvenienceFeeDetail InvoiceLinkSecurityCode InvoiceLinkExpiryDate AutoPayEligible
        SchedulePayEligible ScheduledPaymentId GratuityEnabled FinancingProductType
        SubscriptionPaymentsSetting""",
    "CreditMemo": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount AutoDocNumber CustomerRef CustomerMemo BillAddr
        ShipAddr FreeFormAddress ShipFromAddr RemitToRef ClassRef SalesTermRef DueDate
        SalesRepRef PONumber FOB ShipMethodRef ShipDate TrackingNum GlobalTaxCalculation
        TotalAmt HomeTotalAmt ApplyTaxAfterDiscount ShippingTaxIncludedInTotalTax TemplateRef
        PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc ARAccountRef Balance
        HomeBalance FinanceCharge PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment DepositToAccountRef DeliveryInfo DiscountRate DiscountAmt
        GovtTxnRefIdentifier TaxExemptionRef RemainingCredit InvoiceRef CreditMemoEx""",
    "Estimate": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount AutoDocNumber CustomerRef CustomerMemo BillAddr
        ShipAddr FreeFormAddress ShipFromAddr RemitToRef ClassRef SalesTermRef DueDate
        SalesRepRef PONumber FOB ShipMethodRef ShipDate TrackingNum GlobalTaxCalculation
        TotalAmt HomeTotalAmt ApplyTaxAfterDiscount ShippingTaxIncludedInTotalTax TemplateRef
        PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc ARAccountRef Balance
        HomeBalance FinanceCharge PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment DepositToAccountRef DeliveryInfo DiscountRate DiscountAmt
        GovtTxnRefIdentifier TaxExemptionRef ExpirationDate AcceptedBy AcceptedDate
        EstimateEx""",
    "Purchase": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount AccountRef PaymentMethodRef PaymentRefNum
        PaymentType CheckPayment CreditCardPayment EntityRef Credit RemitToAddr TotalAmt Memo
        PrintStatus GlobalTaxCalculation PurchaseEx LessCIS IncludeInAnnualTPAR""",
    "Payment": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount CustomerRef RemitToRef ARAccountRef
        DepositToAccountRef PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment TotalAmt UnappliedAmt ProcessPayment PaymentEx""",
    "Customer": """IntuitId Organization Title GivenName MiddleName FamilyName Suffix
        FullyQualifiedName CompanyName DisplayName PrintOnCheckName UserId Active V4IDPseudonym
        PrimaryPhone AlternatePhone Mobile Fax PrimaryEmailAddr WebAddr OtherContactInfo
        DefaultTaxCodeRef Taxable BillAddr ShipAddr OtherAddr ContactName AltContactName Notes
        Job BillWithParent RootCustomerRef ParentRef Level CustomerTypeRef SalesTermRef
        SalesRepRef TaxGroupCodeRef TaxRateRef PaymentMethodRef CCDetail PriceLevelRef Balance
        OpenBalanceDate BalanceWithJobs CreditLimit AcctNum CurrencyRef OverDueBalance
        TotalRevenue TotalExpense PreferredDeliveryMethod ResaleNum JobInfo TDSEnabled
        CustomerEx SecondaryTaxIdentifier ARAccountRef PrimaryTaxIdentifier
        TaxExemptionReasonId IsProject BusinessNumber GSTIN GSTRegistrationType
        IsCISContractor ClientCompanyId ClientEntityId Source TaxRegime""",
    "Item": """Name Sku Description Active SubItem ParentRef Level FullyQualifiedName Taxable
        SalesTaxIncluded PercentBased UnitPrice RatePercent Type PaymentMethodRef UOMSetRef
        IncomeAccountRef PurchaseDesc PurchaseTaxIncluded PurchaseCost ExpenseAccountRef
        COGSAccountRef AssetAccountRef PrefVendorRef AvgCost TrackQtyOnHand QtyOnHand
        QtyOnPurchaseOrder QtyOnSalesOrder ReorderPoint ManPartNum DepositToAccountRef
        SalesTaxCodeRef PurchaseTaxCodeRef InvStartDate BuildPoint PrintGroupedItems
        SpecialItem SpecialItemType ItemGroupDetail ItemAssemblyDetail AbatementRate
        ReverseChargeRate ServiceType ItemCategoryType ItemEx TaxClassificationRef
        UQCDisplayText UQCId ClassRef Source DeferredRevenue""",
    "Account": """Name SubAccount ParentRef Description FullyQualifiedName AccountAlias
        TxnLocationType Active Classification AccountType AccountSubType AccountPurposes
        AcctNum AcctNumExtn BankNum OpeningBalance OpeningBalanceDate CurrentBalance
        CurrentBalanceWithSubAccounts CurrencyRef TaxAccount TaxCodeRef OnlineBankingEnabled
        FIName JournalCodeRef AccountEx""",
    "CompanyInfo": """CompanyName LegalName CompanyAddr CustomerCommunicationAddr LegalAddr
        CompanyEmailAddr CustomerCommunicationEmailAddr CompanyURL PrimaryPhone
        OtherContactInfo CompanyFileName FlavorStratum SampleFile CompanyUserId
        CompanyUserAdminEmail CompanyStartDate EmployerId FiscalYearStartMonth
        TaxYearStartMonth QBVersion Country ShipAddr OtherAddr Mobile Fax Email WebAddr
        LastImportedTime LastSyncTime SupportedLanguages DefaultTimeZone
        MultiByteCharsSupported NameValue FifoCalculationStatus CompanyInfoEx""",
    "Preferences": """AccountingInfoPrefs AdvancedInventoryPrefs ProductAndServicesPrefs
        SalesFormsPrefs EmailMessagesPrefs PrintDocumentPrefs VendorAndPurchasesPrefs
        TimeTrackingPrefs TaxPrefs FinanceChargesPrefs CurrencyPrefs ReportPrefs OtherPrefs""",
}
BASE_FIELDS = frozenset("Id SyncToken MetaData CustomField AttachableRef domain status "
                        "sparse".split())
FIELDS: dict[str, frozenset[str]] = {k: frozenset(v.split()) | BASE_FIELDS
                                     for k, v in _FIELDS.items()}
