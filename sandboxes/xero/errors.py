"""Xero's error answers: validation, query parse errors and problem details."""

from __future__ import annotations

import uuid
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def validation_error(*messages: str, element: dict[str, Any] | None = None) -> ApiError:
    return validation_errors([{**(element or {}),
                               "ValidationErrors": [{"Message": m} for m in messages]}])


def validation_errors(elements: list[dict[str, Any]]) -> ApiError:
    return ApiError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                          "Message": "A validation exception occurred", "Elements": elements})


def query_parse_error(message: str) -> ApiError:
    """A `where` Xero cannot parse: 400 QueryParseException, ErrorNumber 16, no Elements, with
    messages such as "Syntax error" and "Expression expected" (as quoted from Xero in
    github.com/XeroAPI/xero-php-oauth2/issues/23 and /307, waynerobinson/xeroizer#164 and
    XeroAPI/Xero-Java#347)."""
    return ApiError(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def problem(status: int, title: str, detail: str) -> ApiError:
    return ApiError(status, {"Type": None, "Title": title, "Status": status, "Detail": detail,
                             "Instance": str(uuid.uuid4()), "Extensions": {}})


def not_found() -> ApiError:
    return problem(404, "Resource Not Found", "The resource you're looking for cannot be found")


class Rejected(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
