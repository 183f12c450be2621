"""The books' phone numbers and country reach the contact records, as each provider holds them."""

from __future__ import annotations

from connectors.quickbooks import contact_record as quickbooks_contact
from connectors.xero import contact_record as xero_contact
from rules.sms import number_for


def test_xero_mobile_first_then_default_phone_and_a_two_letter_country() -> None:
    record = xero_contact({
        "ContactID": "c-1", "Name": "Ada Ltd", "IsCustomer": True,
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "234 5678", "PhoneAreaCode": "121",
                    "PhoneCountryCode": "44"},
                   {"PhoneType": "MOBILE", "PhoneNumber": "7400 123456", "PhoneAreaCode": "",
                    "PhoneCountryCode": "+44"},
                   {"PhoneType": "FAX", "PhoneNumber": "", "PhoneAreaCode": "",
                    "PhoneCountryCode": ""}],
        "Addresses": [{"AddressType": "POBOX", "Country": "gb"}]})
    assert (record.mobile, record.phone, record.country) == (
        "+44 7400 123456", "+44 121 234 5678", "GB")
    assert number_for(record.mobile, record.phone, record.country).e164 == "+447400123456"
    bare = xero_contact({"ContactID": "c-2", "Name": "B", "Phones": [],
                         "Addresses": [{"Country": "United Kingdom"}]})
    assert (bare.mobile, bare.phone, bare.country) == (None, None, None)


def test_quickbooks_mobile_primary_phone_and_bill_country() -> None:
    record = quickbooks_contact({
        "Id": "7", "DisplayName": "Craig's", "Mobile": {"FreeFormNumber": "(201) 555-0123"},
        "PrimaryPhone": {"FreeFormNumber": "(650) 555-0142"}, "BillAddr": {"Country": "US"}})
    assert (record.mobile, record.phone, record.country) == (
        "(201) 555-0123", "(650) 555-0142", "US")
    assert quickbooks_contact({"Id": "8", "DisplayName": "x"}).mobile is None
