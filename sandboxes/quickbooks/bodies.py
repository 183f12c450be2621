"""Reading request bodies: QBO's value types, references and fields, and the Fault for each
wrong one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.quickbooks.books import Company, _money
from sandboxes.quickbooks.errors import (
    INACTIVE_DETAIL,
    bad_value,
    business,
    duplicate_name,
    invalid_reference,
    required,
    stale,
    too_long,
    unsupported_property,
)
from sandboxes.quickbooks.schema import FIELDS, SCHEMA

# How QBO shows the name of an inactive customer or item.
DELETED = " (deleted)"


def _decimal(value: Any, name: str) -> Decimal | None:
    """A JSON number (or numeric string) as Decimal; None/"" mean absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise bad_value(name, value)
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise bad_value(name, value) from exc
    if not result.is_finite():
        raise bad_value(name, value)
    return result


def _date(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_value(name, value, "java.util.Date")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise bad_value(name, value, "java.util.Date") from exc


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise bad_value(name, value, "java.lang.String")
    return str(value)


def _bool(value: Any, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_value(name, value, "java.lang.Boolean")


def _ref_id(value: Any, name: str) -> str | None:
    """A ReferenceType: {"value": "12", "name": ...} (a bare id is accepted too)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        raw = value.get("value")
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool | dict | list):
            raise bad_value(f"{name}.value", raw, "java.lang.String")
        return str(raw).strip()
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value).strip()
    raise bad_value(name, value, "com.intuit.schema.finance.v3.ReferenceType")


def _email(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise bad_value(name, value, f"{SCHEMA}.EmailAddress")
    address = _text(value.get("Address"), f"{name}.Address")
    return address.strip() if address and address.strip() else None


def _check_fields(entity: str, body: dict[str, Any]) -> None:
    allowed = FIELDS[entity]
    for key in body:
        if key not in allowed:
            raise unsupported_property(entity, str(key))


def _sync_token(body: dict[str, Any], record: dict[str, Any], owner: str) -> None:
    given = body.get("SyncToken")
    if given is None or given == "":
        raise required("SyncToken")
    if isinstance(given, bool | dict | list) or not str(given).strip().isdigit():
        raise bad_value("SyncToken", given, "java.lang.String")
    if int(str(given).strip()) != int(record["SyncToken"]):
        raise stale(owner)


def _resolve(company: Company, entity: str, value: Any, element: str,
             required_here: bool = True) -> dict[str, Any] | None:
    ref = _ref_id(value, element)
    if ref is None:
        if required_here:
            raise required(element)
        return None
    found = company.records[entity].get(ref)
    if found is None:
        raise invalid_reference(element, element if entity == "Item" else INACTIVE_DETAIL)
    if found.get("Active") is False:
        raise invalid_reference(element)
    return found


def _set_texts(record: dict[str, Any], body: dict[str, Any],
               limits: tuple[tuple[str, int], ...], even_absent: bool) -> None:
    """Text fields of a write, each within its length: given empty (or, with `even_absent`,
    not given) takes the field away."""
    for name, limit in limits:
        if name in body or even_absent:
            text = _text(body.get(name), name)
            if text:
                if len(text) > limit:
                    raise too_long(name, limit, len(text))
                record[name] = text
            else:
                record.pop(name, None)


def _name_ref(record: dict[str, Any], key: str = "Name") -> dict[str, str]:
    return {"value": record["Id"], "name": record[key]}


def _check_currency(company: Company, body: dict[str, Any]) -> None:
    given = _ref_id(body.get("CurrencyRef"), "CurrencyRef")
    if given is not None and given.upper() != company.currency:
        raise business(f"Multicurrency is not turned on for this company; the currency must "
                       f"be {company.currency}.", "CurrencyRef")


def _take_parts(record: dict[str, Any], body: dict[str, Any], names: tuple[str, ...]) -> None:
    """Copy the named address or phone objects the body gives (null removes one)."""
    for name in names:
        if name not in body:
            continue
        if body[name] is None:
            record.pop(name, None)
        elif not isinstance(body[name], dict):
            raise bad_value(name, body[name], f"{SCHEMA}.{name}")
        else:
            record[name] = {str(k): v for k, v in body[name].items()
                            if isinstance(v, str | int) and not isinstance(v, bool)}


def _amount(value: Any, name: str, negative: str) -> Decimal:
    """A required amount in whole cents; below zero is the business fault `negative`."""
    amount = _decimal(value, name)
    if amount is None:
        raise required(name)
    amount = _money(amount)
    if amount < 0:
        raise business(negative, name)
    return amount


def _list_name(body: dict[str, Any], current: dict[str, Any] | None) -> str:
    """A list entity's Name: the one given, else the one it has; at most 100 characters."""
    name = _text(body.get("Name"), "Name")
    name = name.strip() if name else (current["Name"] if current else "")
    if not name:
        raise required("Name")
    if len(name) > 100:
        raise too_long("Name", 100, len(name))
    return name


def _active_name(record: dict[str, Any], body: dict[str, Any], name: str) -> tuple[str, str]:
    """Sets Active as the body says; returns the name without " (deleted)" and the name as
    QBO shows it, " (deleted)" appended while inactive."""
    active = _bool(body.get("Active"), "Active")
    if active is not None:
        record["Active"] = active
    base = name[:-len(DELETED)] if name.endswith(DELETED) else name
    return base, base if record["Active"] else base + DELETED


def _unique_name(company: Company, entity: str, key: str, name: str, record: dict[str, Any],
                 what: str) -> None:
    """No other record of the entity may have the name, in any case (6240)."""
    if any(other[key].casefold() == name.casefold() and other["Id"] != record.get("Id")
           for other in company.records[entity].values()):
        raise duplicate_name(what)
