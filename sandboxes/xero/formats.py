"""Xero's wire formats: `/Date(ms+0000)/` times, exact decimals, dates as the SDKs send them, and
XML writes read as the JSON the handlers take."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree

from sandboxes.xero.errors import validation_error

CENT = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def ms_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def day_ms(day: date) -> str:
    return ms_date(datetime(day.year, day.month, day.day, tzinfo=UTC))


def envelope_stamp(moment: datetime) -> str:
    """The envelope's DateTimeUTC carries no offset, unlike the records inside it."""
    return f"/Date({int(moment.timestamp() * 1000)})/"


def retry_after(delta: timedelta) -> int:
    """Retry-After: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(delta.total_seconds()))


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    result = Decimal(str(value))
    if not result.is_finite():
        raise InvalidOperation
    return result


def parse_if_modified_since(value: str | None) -> datetime | None:
    """ISO 8601 as xero-python sends it (naive means UTC), or an RFC 7231 HTTP-date."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError) as exc:
            raise validation_error(f"If-Modified-Since '{value}' is not a date") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_day(value: Any, name: str) -> date:
    """`/Date(ms)/`, `/Date(ms+0000)/` or `YYYY-MM-DD[THH:MM:SS]`, as the SDKs send dates."""
    text = str(value)
    match = MS_DATE.match(text)
    try:
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise validation_error(f"{name} '{text}' is not a valid date") from exc


def _xml_value(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children:
        text = (element.text or "").strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return Decimal(text)
        return text
    tags = {child.tag for child in children}
    if len(tags) == 1 and element.tag == f"{children[0].tag}s":  # <LineItems><LineItem>...
        return [_xml_value(child) for child in children]
    return {child.tag: _xml_value(child) for child in children}


def xml_body(raw: bytes) -> Any:
    """Xero's XML writes as the JSON the handlers read: a plural root (<Invoices>) is
    {"Invoices": [...]}, a singular one (<HistoryRecord>) one bare object; a container named
    the plural of its repeated child is a list."""
    if b"<!" in raw:  # no DOCTYPE, so no entities to expand: the parse below stays bounded
        raise ElementTree.ParseError("a DOCTYPE is not accepted")
    root = ElementTree.fromstring(raw)  # noqa: S314 - no DTD can reach it (above)
    value = _xml_value(root)
    return {root.tag: value} if isinstance(value, list) else value
