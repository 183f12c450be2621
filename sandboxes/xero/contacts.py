"""Contacts: how Xero writes them, whole and inside other records; finding or making the
contact of a new document; GET /Contacts."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request

from sandboxes.xero.api import API, accounting, csv_arg, flag, paged
from sandboxes.xero.books import Tenant
from sandboxes.xero.formats import ms_date

bp = Blueprint("xero_contacts", __name__)


# Fields every contact in the examples of Xero's description carries, empty when unset
# (tap-xero reads ContactGroups on every contact).
CONTACT_DEFAULTS: dict[str, Any] = {"BankAccountDetails": "", "TaxNumber": "",
                                    "HasValidationErrors": False}


# A contact's two addresses and four phones, empty until filled in, as every contact in the
# examples of Xero's description lists them.
EMPTY_ADDRESSES = ({"AddressType": "STREET", "City": "", "Region": "", "PostalCode": "",
                    "Country": ""},
                   {"AddressType": "POBOX", "AddressLine1": "", "AddressLine2": "",
                    "AddressLine3": "", "AddressLine4": "", "City": "", "Region": "",
                    "PostalCode": "", "Country": ""})
EMPTY_PHONES = tuple({"PhoneType": kind, "PhoneNumber": "", "PhoneAreaCode": "",
                      "PhoneCountryCode": ""} for kind in ("DDI", "DEFAULT", "FAX", "MOBILE"))


# How a contact appears inside another record (an invoice, a credit note): the lists empty.
NESTED_CONTACT_DEFAULTS: dict[str, Any] = {"Addresses": [], "Phones": [], "ContactGroups": [],
                                           "ContactPersons": [], "HasValidationErrors": False}


def _filled(given: list[dict[str, Any]], empty: tuple[dict[str, Any], ...],
            key: str) -> list[dict[str, Any]]:
    kinds = {item.get(key) for item in given}
    return [*copy.deepcopy(given), *(dict(e) for e in empty if e[key] not in kinds)]


def render_contact(contact: dict[str, Any]) -> dict[str, Any]:
    out = {**CONTACT_DEFAULTS, **{k: v for k, v in contact.items() if not k.startswith("_")}}
    out.setdefault("ContactGroups", [])
    out.setdefault("ContactPersons", [])
    out["Addresses"] = _filled(out.get("Addresses") or [], EMPTY_ADDRESSES, "AddressType")
    out["Phones"] = _filled(out.get("Phones") or [], EMPTY_PHONES, "PhoneType")
    out["UpdatedDateUTC"] = ms_date(contact["_updated"])
    return out


def contact_for(tenant: Tenant, given: Any, invoice_type: str, now: datetime,
                 problems: list[str]) -> dict[str, Any] | None:
    """By ContactID, else by Name; an unknown Name makes a new contact, as in Xero."""
    if not isinstance(given, dict) or not (given.get("ContactID") or given.get("Name")):
        problems.append("A Contact must be specified for this type of transaction")
        return None
    if given.get("ContactID"):
        found = tenant.contacts.get(str(given["ContactID"]).lower())
        if found is None:
            problems.append(f"The contact with ID '{given['ContactID']}' could not be found")
        return found
    name = str(given["Name"]).strip()
    found = next((c for c in tenant.contacts.values() if c["Name"].casefold() ==
                  name.casefold()), None)
    if found is None:
        found = {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "Name": name,
                 "IsCustomer": invoice_type == "ACCREC", "IsSupplier": invoice_type == "ACCPAY",
                 "Addresses": [], "Phones": [], "HasAttachments": False, "_updated": now,
                 "_new": True}
        if given.get("EmailAddress"):
            found["EmailAddress"] = str(given["EmailAddress"])
    return found


@bp.get(f"{API}/Contacts")
def contacts() -> Response:
    def handle(t: Tenant) -> Response:
        records = list(t.contacts.values())
        ids = csv_arg("IDs", lower=True)
        if ids:
            records = [c for c in records if c["ContactID"] in ids]
        if not flag("includeArchived"):
            records = [c for c in records if c["ContactStatus"] != "ARCHIVED"]
        term = (request.args.get("searchTerm") or "").casefold()
        if term:
            records = [c for c in records if any(
                term in str(c.get(f) or "").casefold() for f in
                ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress",
                 "CompanyNumber"))]
        summary = flag("summaryOnly")

        def render(c: dict[str, Any]) -> dict[str, Any]:
            out = render_contact(c)
            if summary:
                out.pop("Addresses", None)
                out.pop("Phones", None)
            return out

        return paged("Contacts", records, render, "Contact",
                     {"EmailAddress", "AccountNumber", "CompanyNumber"})
    return accounting(handle)
