"""The demo's customers have mobiles Dunwell can text, from ranges kept for fiction: every
customer of both sandboxes' demo books, read through the connectors as a sync reads them,
parses as a mobile in E.164, and none is a number of the UK's drama range (which phonenumbers
refuses) or of no fictional range."""

from __future__ import annotations

from datetime import date

from connectors.quickbooks import contact_record as quickbooks_contact
from connectors.xero import contact_record as xero_contact
from rules.sms import number_for
from sandboxes.fictional import ACMA_MOBILES, fictional_mobile
from sandboxes.quickbooks import QuickBooksSandbox
from sandboxes.xero import XeroSandbox

TODAY = date(2026, 12, 7)
FICTIONAL = {number_for(n, None, None).e164 for n in ACMA_MOBILES} | {
    f"+120155501{n:02d}" for n in range(100)}


def test_every_fictional_number_is_a_mobile_to_phonenumbers() -> None:
    assert len(set(ACMA_MOBILES)) == 30
    for number in ACMA_MOBILES:
        assert number_for(number, None, "GB").region == "AU"
        assert number_for(number, None, "GB").e164 is not None, number
    assert number_for("07700 900123", None, "GB").reason == "unparseable"  # Ofcom's drama range
    assert {number_for(fictional_mobile(i), None, "NO").region for i in range(4)} == {"US", "AU"}


def test_the_xero_demo_customers_parse_as_mobiles() -> None:
    box = XeroSandbox()
    box.seed_demo(TODAY)
    seen = 0
    for tenant in box.tenants_by_id.values():
        for raw in tenant.contacts.values():
            if not raw.get("IsCustomer"):
                continue
            record = xero_contact(raw)
            found = number_for(record.mobile, record.phone, record.country or tenant.country)
            assert found.e164 in FICTIONAL, (raw["Name"], record.mobile, found)
            seen += 1
    assert seen >= 80  # both demo tenants' customers


def test_the_quickbooks_demo_customers_parse_as_mobiles() -> None:
    box = QuickBooksSandbox()
    box.seed_demo(TODAY)
    seen = 0
    for realm, company in box.companies_by_id.items():
        for raw in company.records["Customer"].values():
            record = quickbooks_contact(raw)
            found = number_for(record.mobile, record.phone, record.country or company.country)
            assert found.e164 in FICTIONAL, (realm, raw["DisplayName"], record.mobile, found)
            seen += 1
    assert seen >= 20
