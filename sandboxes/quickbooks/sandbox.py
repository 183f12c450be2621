"""The QuickBooks sandbox's state: every company's books, consents, tokens and call counts, in
memory; and the changes people make "in QuickBooks" for tests and the demo."""

from __future__ import annotations

import copy
import random
import secrets
import threading
import uuid
from collections import deque
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sandboxes.quickbooks.bodies import _bool, _check_fields, _sync_token
from sandboxes.quickbooks.books import Company, _money, _whole_seconds, _zone
from sandboxes.quickbooks.config import SandboxConfig
from sandboxes.quickbooks.entities import BUILDERS
from sandboxes.quickbooks.errors import bad_json, business, unsupported_operation
from sandboxes.quickbooks.estimates import link_estimate
from sandboxes.quickbooks.oauth import Consent, RefreshToken
from sandboxes.quickbooks.payments import apply_payment
from sandboxes.quickbooks.query import run_query
from sandboxes.quickbooks.records import _applied, render
from sandboxes.quickbooks.schema import TRANSACTIONS
from sandboxes.quickbooks.seed import seed_company
from sandboxes.quickbooks.webhooks import IntuitWebhooks


class QuickBooksSandbox:
    """All state, in memory, thread-safe (one threading.RLock)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.companies_by_id: dict[str, Company] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.consents: dict[str, Consent] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.minute_calls: dict[str, deque[datetime]] = {}
        self.batch_calls: dict[str, deque[datetime]] = {}
        self.in_flight: dict[str, int] = {}
        self.call_count: dict[str, int] = {}
        self.link_secret = secrets.token_bytes(16)
        self._realm_rng = random.Random(f"realms-{self.config.seed}")
        self.user_sub = str(uuid.UUID(int=random.Random(f"user-{self.config.seed}")
                                      .getrandbits(128), version=4))
        self.webhooks = IntuitWebhooks(self)  # start() once webhook_url is set

    @property
    def now(self) -> datetime:
        return self.config.clock()

    # companies and seed data

    def add_company(self, name: str, country: str, currency: str, timezone: str, *,
                    realm_id: str | None = None, created: datetime | None = None,
                    city: str = "", postal_code: str = "", address_line: str = "",
                    region: str = "", email: str = "", phone: str = "") -> str:
        _zone(timezone)  # an unknown zone fails here, not on the first answer
        with self.lock:
            if realm_id is None:
                realm_id = "9341" + "".join(str(self._realm_rng.randint(0, 9))
                                            for _ in range(12))
            slug = "".join(ch for ch in name.lower() if ch.isalnum())[:20]
            self.companies_by_id[realm_id] = Company(
                realm_id, name, country, currency, timezone,
                _whole_seconds(created or self.now), self.config.clock, city=city,
                postal_code=postal_code, address_line=address_line, region=region,
                email=email or f"office.{slug}@example.com", phone=phone,
                owner=f"{self.config.owner_given_name} {self.config.owner_family_name}")
            return realm_id

    def seed_demo(self, today: date) -> None:
        with self.lock:
            for index, (name, country, currency, zone, city, postal, line, region, phone) in \
                    enumerate((
                        ("Craig's Design and Landscaping Services", "US", "USD",
                         "America/Los_Angeles", "San Pablo", "87999", "123 Sierra Way", "CA",
                         "(650) 555-0142"),
                        ("Thistle & Thorn Garden Studio Ltd", "GB", "GBP", "Europe/London",
                         "York", "YO1 7HH", "14 Minster Yard", "", "01632 960123"))):
                realm = self.add_company(
                    name, country, currency, zone, city=city, postal_code=postal,
                    address_line=line, region=region, phone=phone,
                    created=datetime.combine(today.replace(year=today.year - 3, day=1),
                                             time(17), tzinfo=UTC))
                seed_company(self.companies_by_id[realm], today, seed=self.config.seed + index,
                             history=self.config.paid_history)

    def reset(self, today: date | None = None) -> None:
        """Fresh demo books (same realm ids for the same seed); connections stay."""
        with self.lock:
            self.companies_by_id.clear()
            self.minute_calls.clear()
            self.batch_calls.clear()
            self.call_count.clear()
            self._realm_rng = random.Random(f"realms-{self.config.seed}")
            self.seed_demo(today or self.now.date())

    def company(self, realm_id: str) -> Company:
        found = self.companies_by_id.get(realm_id)
        if found is None:
            raise KeyError(f"no company {realm_id}")
        return found

    # introspection

    def companies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"realmId": c.realm_id, "CompanyName": c.name, "Country": c.country,
                     "HomeCurrency": c.currency, "DefaultTimeZone": c.timezone}
                    for c in self.companies_by_id.values()]

    def _rendered(self, realm_id: str, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            company = self.company(realm_id)
            return [render(company, entity, r) for r in company.live(entity)]

    def invoices(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Invoice")

    def customers(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Customer")

    def payments(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Payment")

    def items(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Item")

    def accounts(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Account")

    def credit_memos(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "CreditMemo")

    def emails(self, realm_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.company(realm_id).emails]

    def requests(self, realm_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(r) for r in self.company(realm_id).requests]

    def calls(self, realm_id: str | None = None) -> int:
        with self.lock:
            if realm_id is None:
                return sum(self.call_count.values())
            return self.call_count.get(realm_id, 0)

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token["expires_at"] = self.now - timedelta(seconds=1)

    def revoke_all(self, realm_id: str) -> None:
        """The owner disconnects every app from the company inside QuickBooks."""
        with self.lock:
            for consent in self.consents.values():
                if consent.realm_id == realm_id:
                    consent.revoked = True

    # changes made "in QuickBooks" by people, for tests and the demo

    def create(self, realm_id: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(realm_id)
            return self.save(company, entity, copy.deepcopy(body))[entity]

    def pay_invoice(self, realm_id: str, invoice_id: str, amount: Decimal | str,
                    on: date | None = None) -> dict[str, Any]:
        """A customer pays: a Payment applied to the invoice, which moves its Balance,
        LinkedTxn, SyncToken and LastUpdatedTime."""
        with self.lock:
            company = self.company(realm_id)
            invoice = company.records["Invoice"].get(str(invoice_id))
            if invoice is None:
                raise KeyError(f"no invoice {invoice_id}")
            paid = _money(Decimal(str(amount)))
            balance = invoice["TotalAmt"] - _applied(invoice)
            if invoice.get("_voided") or not 0 < paid <= balance:
                raise ValueError(f"a payment must be positive and at most the balance "
                                 f"({balance}) of a live invoice")
            body = {"CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                    "TotalAmt": paid, "TxnDate": (on or company.today()).isoformat(),
                    "Line": [{"Amount": paid, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                             "TxnType": "Invoice"}]}]}
            return self.save(company, "Payment", body)["Payment"]

    def update_invoice(self, realm_id: str, invoice_id: str, **fields: Any) -> dict[str, Any]:
        """A bookkeeper's edit in QuickBooks: a sparse update with QBO field names."""
        with self.lock:
            company = self.company(realm_id)
            invoice = company.find("Invoice", invoice_id)
            body = {**copy.deepcopy(fields), "Id": invoice["Id"],
                    "SyncToken": invoice["SyncToken"], "sparse": True}
            return self.save(company, "Invoice", body)["Invoice"]

    # the API's operations (callers hold the lock)

    def touch(self, record: dict[str, Any]) -> None:
        record["SyncToken"] = str(int(record["SyncToken"]) + 1)
        record["_updated"] = max(_whole_seconds(self.now), record["_updated"])

    def read(self, company: Company, entity: str, record_id: str,
             link_base: str | None = None) -> dict[str, Any]:
        return render(company, entity, company.find(entity, record_id), link_base)

    def save(self, company: Company, entity: str, body: Any, operation: str | None = None,
             include: str = "", link_base: str | None = None) -> dict[str, Any]:
        """Create (no Id) or update (Id + SyncToken, sparse or full); delete and void."""
        if not isinstance(body, dict):
            raise bad_json()
        if operation == "delete":
            return self.delete(company, entity, body)
        if operation == "void" or (operation == "update" and "void" in include.split(",")):
            return self.void(company, entity, body, link_base)
        if operation not in (None, "", "create", "update"):
            raise unsupported_operation(f"{operation} on {entity}")
        _check_fields(entity, body)
        record_id = body.get("Id")
        if record_id not in (None, "", 0, "0"):
            current = company.find(entity, record_id)
            _sync_token(body, current, company.owner)
            sparse = _bool(body.get("sparse"), "sparse") is True
            updated = BUILDERS[entity](self, company, body, current, sparse)
            self._commit(company, entity, current, updated)
            record = current
        else:
            record = BUILDERS[entity](self, company, body, None, False)
            now = self.now
            company.insert(entity, record, now, now)
            self._after_insert(company, entity, record)
        return {entity: render(company, entity, record, link_base)}

    def _commit(self, company: Company, entity: str, current: dict[str, Any],
                updated: dict[str, Any]) -> None:
        if entity == "Payment":
            apply_payment(self, company, current["Id"], current["_applied"],
                          updated["_applied"])
        current.clear()
        current.update(updated)
        self.touch(current)

    def _after_insert(self, company: Company, entity: str, record: dict[str, Any]) -> None:
        if entity == "Payment":
            apply_payment(self, company, record["Id"], {}, record["_applied"])
        if entity == "Invoice" and record.get("_estimate"):
            link_estimate(self, company, record)

    def set_estimate_status(self, realm_id: str, estimate_id: str, status: str,
                            accepted_by: str | None = None) -> dict[str, Any]:
        """The customer accepts or rejects an estimate in QuickBooks (a sparse update)."""
        with self.lock:
            company = self.company(realm_id)
            estimate = company.find("Estimate", estimate_id)
            body: dict[str, Any] = {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"],
                                    "sparse": True, "TxnStatus": status}
            if status == "Accepted":
                body["AcceptedDate"] = company.today().isoformat()
                body["AcceptedBy"] = accepted_by or estimate["CustomerRef"]["name"]
            return self.save(company, "Estimate", body)["Estimate"]

    def delete(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if entity not in TRANSACTIONS:
            raise unsupported_operation(f"Delete for {entity}")
        record = company.find(entity, body.get("Id"))
        _sync_token(body, record, company.owner)
        if entity in ("Invoice", "CreditMemo") and record["_applied"]:
            raise business(f"This {entity.lower()} has payments applied to it and can't be "
                           "deleted. Delete or change the payments first.")
        if entity == "Payment":
            apply_payment(self, company, record["Id"], record["_applied"], {})
        del company.records[entity][record["Id"]]
        company.deleted[entity][record["Id"]] = max(_whole_seconds(self.now),
                                                    record["_updated"])
        return {entity: {"domain": "QBO", "status": "Deleted", "Id": record["Id"]}}

    def void(self, company: Company, entity: str, body: dict[str, Any],
             link_base: str | None) -> dict[str, Any]:
        if entity not in ("Invoice", "Payment"):
            raise unsupported_operation(f"Void for {entity}")
        record = company.find(entity, body.get("Id"))
        _sync_token(body, record, company.owner)
        if record.get("_voided"):
            raise business("This transaction has already been voided.")
        if entity == "Invoice":
            if record["_applied"]:
                raise business("This invoice has payments applied to it and can't be voided. "
                               "Delete or change the payments first.")
            for line in record["Line"]:
                if "Amount" in line:
                    line["Amount"] = Decimal("0.00")
                detail = line.get("SalesItemLineDetail")
                if detail is not None:
                    detail["Qty"] = Decimal(0)
        else:
            apply_payment(self, company, record["Id"], record["_applied"], {})
            record["_applied"] = {}
            for line in record["Line"]:
                line["Amount"] = Decimal("0.00")
            record["UnappliedAmt"] = Decimal("0.00")
        record["TotalAmt"] = Decimal("0.00")
        record["PrivateNote"] = "Voided"
        record["_voided"] = True
        self.touch(record)
        return {entity: render(company, entity, record, link_base)}

    def query(self, company: Company, text: str, link_base: str | None = None
              ) -> dict[str, Any]:
        """The answer to a query in QBO's language (sandboxes/quickbooks/query.py)."""
        return run_query(self, company, text, link_base)
