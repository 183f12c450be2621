"""Who signed in with a provider's identity (OpenID Connect), as every provider tells it."""

from __future__ import annotations

from dataclasses import dataclass


class IdentityRefused(ValueError):
    """The provider's answer does not prove who the person is, or they may not sign in so."""


@dataclass(frozen=True)
class Identity:
    provider: str  # the identity's issuer as stored with the user: "xero", "intuit"
    subject: str
    email: str
    name: str
