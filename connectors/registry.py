"""Every provider Dunwell connects to, by name. A new provider is a folder beside xero/ and
quickbooks/ with a `PROVIDER` in its provider.py, and one line in PROVIDERS below."""

from __future__ import annotations

from typing import Any

from connectors.provider import Provider
from connectors.quickbooks.provider import PROVIDER as QUICKBOOKS
from connectors.xero.provider import PROVIDER as XERO

PROVIDERS: tuple[Provider[Any], ...] = (
    XERO,
    QUICKBOOKS,
)

_BY_NAME = {provider.name: provider for provider in PROVIDERS}


class UnknownProvider(KeyError):
    """No provider of that name is registered."""


def all() -> tuple[Provider[Any], ...]:  # registry.all(), as callers read it
    return PROVIDERS


def find(name: str) -> Provider[Any] | None:
    return _BY_NAME.get(name)


def get(name: str) -> Provider[Any]:
    provider = _BY_NAME.get(name)
    if provider is None:
        raise UnknownProvider(name)
    return provider


def display_name(name: str) -> str:
    """The provider's name as people read it; an unknown name as it is."""
    provider = _BY_NAME.get(name)
    return provider.display_name if provider is not None else name
