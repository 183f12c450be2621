"""What a QuickBooks company holds: its records by entity, what was deleted, its Id sequences,
e-mails, requests and replays; amounts and times as QBO writes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sandboxes.quickbooks.errors import not_found
from sandboxes.quickbooks.schema import CURRENCY_NAMES, ENTITIES, TRANSACTIONS

CENT = Decimal("0.01")
SEVEN_DP = Decimal("0.0000001")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _plain(value: Decimal) -> Decimal:
    """Quantities and prices as QBO writes them: up to 7 places, no exponent, no zero tail."""
    result = value.quantize(SEVEN_DP, ROUND_HALF_UP).normalize()
    return result.quantize(Decimal(1)) if result == result.to_integral() else result


def _whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass
class Company:
    realm_id: str
    name: str
    country: str
    currency: str
    timezone: str
    created: datetime
    clock: Callable[[], datetime]
    city: str = ""
    postal_code: str = ""
    address_line: str = ""
    region: str = ""
    email: str = ""
    phone: str = ""
    owner: str = "Sandbox Owner"
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    deleted: dict[str, dict[str, datetime]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    emails: list[dict[str, Any]] = field(default_factory=list)
    # The invoice email's subject and message as the owner set them in QuickBooks (Settings,
    # Sales, Messages); None: QuickBooks' own (sandboxes/quickbooks/company_info.py).
    invoice_message: tuple[str, str] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    replays: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entity in ENTITIES:
            self.records.setdefault(entity, {})
            self.deleted.setdefault(entity, {})

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    def utc(self, moment: datetime) -> datetime:
        return _whole_seconds(moment)

    def stamp(self, moment: datetime, millis: bool = False) -> str:
        """ISO 8601 with the company's offset at that moment, as QBO writes MetaData."""
        return moment.astimezone(self.tz).isoformat(
            timespec="milliseconds" if millis else "seconds")

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def today(self) -> date:
        return self.local_date(self.clock())

    def currency_ref(self) -> dict[str, str]:
        return {"value": self.currency, "name": CURRENCY_NAMES.get(self.currency,
                                                                  self.currency)}

    def next_id(self, entity: str) -> str:
        sequence = "Txn" if entity in TRANSACTIONS else entity
        start = 100 if sequence == "Txn" else 0
        self.sequences[sequence] = self.sequences.get(sequence, start) + 1
        return str(self.sequences[sequence])

    def insert(self, entity: str, record: dict[str, Any], created: datetime,
               updated: datetime) -> dict[str, Any]:
        """Stores a new record (already validated) under the next Id."""
        record["Id"] = self.next_id(entity)
        record.setdefault("SyncToken", "0")
        record["_created"] = _whole_seconds(created)
        record["_updated"] = _whole_seconds(updated)
        self.records[entity][record["Id"]] = record
        return record

    def live(self, entity: str) -> list[dict[str, Any]]:
        return list(self.records[entity].values())

    def find(self, entity: str, record_id: Any) -> dict[str, Any]:
        found = self.records[entity].get(str(record_id).strip())
        if found is None:
            raise not_found()
        return found


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
