"""What every part of the policy schema shares: strict types and one error the owner can read."""

from __future__ import annotations

from typing import Annotated

from pydantic import Strict, ValidationError

# Strict: a JSON `true` is not the number 1, and a settings typo should not become a policy.
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the field, so the owner can fix it."""


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
