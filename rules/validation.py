"""What every part of the policy schema shares: strict types and one error the owner can read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Strict, ValidationError
from pydantic_core import PydanticCustomError

# Strict: a JSON `true` is not the number 1, and a settings typo should not become a policy.
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the field, so the owner can fix it."""


# Problems a page words in the reader's language: each has an error type of its own and the
# facts in its context (pydantic's `errors()`), not only an English sentence.
NO_RATE_TABLE = "no_rate_table"


def no_rate_table(jurisdiction: str, known: Sequence[str]) -> PydanticCustomError:
    """A statutory rule for a country Dunwell holds no rates for."""
    return PydanticCustomError(
        NO_RATE_TABLE, "no statutory rate table for {jurisdiction}; known: {known}",
        {"jurisdiction": jurisdiction, "known": ", ".join(known)})


def describe(error: ValidationError, whole: str = "policy") -> str:
    """Every problem at once, each as `field.path: message`."""
    items = error.errors()
    problems = []
    for item in items:
        loc = item["loc"]
        # pydantic also calls a list "too short" when one of its items failed: noise, drop it.
        if item["type"] == "too_short" and any(
                other["loc"][:len(loc)] == loc and len(other["loc"]) > len(loc)
                for other in items):
            continue
        where = ".".join(str(part) for part in loc) or whole
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)
