"""What a provider's folder tells the rest of Dunwell about itself: one `Provider` each.

The layers above never name a provider: they look its entry up in connectors.registry by the
name stored with a connection (or in a URL) and call what it holds. Everything an entry needs
from the app comes in as parameters: the app's settings as a mapping, its clock, a token store,
a rate budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from connectors.base import Connector, TenantRecord, TokenSet, TokenStore
from connectors.identity import Identity
from connectors.ratelimit import RateBudget
from connectors.webhooks import WebhookFormat

Clock = Callable[[], datetime]
Config = Mapping[str, Any]  # the app's settings, read by key (XERO_CLIENT_ID, ...)
S = TypeVar("S")  # a provider's own settings: OAuth client, API address, ...


@dataclass(frozen=True)
class Provider(Generic[S]):
    """One provider: its names, how it is configured, connected, disconnected, signed in with,
    and how its webhooks are verified and read."""

    name: str  # as stored with a connection, in URLs (/webhooks/<name>) and setting prefixes
    display_name: str  # as people read it: "Xero", "QuickBooks"
    identity_name: str  # the issuer of its sign-in identity, as stored with a user
    settings: Callable[[Config, Clock], S]  # this deployment's settings, from the app's
    sign_in_settings: Callable[[S], S]  # the settings a sign-in with its identity asks with
    # A live connector of one tenant: (settings, tenant id, tokens, clock, rate budget).
    connector: Callable[[S, str, TokenStore, Clock, RateBudget | None], Connector]
    revoke: Callable[[S, str], None]  # take a whole consent back, by its refresh token
    # Who signed in: (settings, the sign-in's tokens, the nonce it sent, if any).
    identity: Callable[[S, TokenSet, str | None], Identity]
    webhooks: WebhookFormat
    # Providers whose one consent may reach several tenants (Xero): the consent's own tenants,
    # (settings, access token) -> (its auth event, tenants); and the removal of one tenant
    # from a consent, (settings, access token, the provider's connection id). None where a
    # consent covers the one tenant its callback names (QuickBooks).
    consent_tenants: Callable[[S, str], tuple[str | None, list[TenantRecord]]] | None = None
    remove_tenant: Callable[[S, str, str], None] | None = None
