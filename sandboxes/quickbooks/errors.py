"""QBO's Fault answers, with the codes Intuit uses, and the answers decided before a company's
API handler runs."""

from __future__ import annotations

from typing import Any

from flask import Response

from sandboxes.quickbooks.schema import SCHEMA

INACTIVE_DETAIL = ("Something you're trying to use has been made inactive. Check the fields "
                   "with accounts, customers, items, vendors or employees.")


class QboFault(Exception):
    """A Fault answer: one or more errors, a fault type and the HTTP status QBO uses."""

    def __init__(self, code: str, message: str, detail: str, element: str = "",
                 kind: str = "ValidationFault", status: int = 400) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail, self.element = code, message, detail, element
        self.kind, self.status = kind, status

    def body(self) -> dict[str, Any]:
        return {"Error": [{"Message": self.message, "Detail": self.detail, "code": self.code,
                           "element": self.element}], "type": self.kind}


def required(name: str) -> QboFault:
    return QboFault("2020", "Required param missing, need to supply the required value for "
                    "the API", f"Required parameter {name} is missing in the request", name)


def unsupported_property(entity: str, name: str) -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property",
                    f'Property Name:Unrecognized field "{name}" (class {SCHEMA}.{entity}), not '
                    "marked as ignorable specified is unsupported or invalid", name)


def bad_value(name: str, value: Any, kind: str = "java.math.BigDecimal") -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property",
                    f"Property Name:Can not construct instance of {kind} from String value "
                    f"'{value}': not a valid representation specified is unsupported or "
                    "invalid", name)


def bad_json() -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property",
                    "Property Name:failed to parse json object; a property specified is "
                    "unsupported or invalid")


def invalid_reference(element: str, detail: str = INACTIVE_DETAIL) -> QboFault:
    return QboFault("2500", "Invalid Reference Id", f"Invalid Reference Id : {detail}", element)


def business(detail: str, element: str = "") -> QboFault:
    return QboFault("6000", "A business validation error has occurred while processing your "
                    "request", f"Business Validation Error: {detail}", element)


def not_found() -> QboFault:
    return QboFault("610", "Object Not Found", f"Object Not Found : {INACTIVE_DETAIL}")


def unsupported_operation(detail: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", f"Operation {detail} is not supported.")


def duplicate_name(what: str) -> QboFault:
    return QboFault("6240", "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another {what} is already using this "
                    "name. Please use a different name.")


def stale(user: str) -> QboFault:
    return QboFault("5010", "Stale Object Error",
                    f"Stale Object Error : You and {user} were working on this at the same "
                    f"time. {user} finished before you did, so your work was not saved.")


def too_long(name: str, limit: int, given: int) -> QboFault:
    return QboFault("6000", "A business validation error has occurred while processing your "
                    "request", f"Business Validation Error: You cannot enter more than {limit} "
                    f"characters in the {name} field. You tried entering {given} characters.",
                    name)


def parse_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QboFault:
    return QboFault("4001", "Invalid query", f"QueryValidationError: {detail}")


class Refused(Exception):
    """An answer decided before the company's API handler runs (auth, limits)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response
