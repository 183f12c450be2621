"""The registry of what a sync reads: one stream per record kind, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stream:
    name: str  # also the sync cursor's name
    connector_method: str  # Connector method yielding pages of records since a cursor
    primary_key: str = "provider_id"
    cursor_field: str = "updated_at"


# Contacts before invoices (invoices point at contacts), invoices before payments.
STREAMS: tuple[Stream, ...] = (
    Stream("contacts", "contacts"),
    Stream("invoices", "invoices"),
    Stream("payments", "payments"),
)
