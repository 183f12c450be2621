"""QuickBooks Online's entry in the provider registry. One consent covers the one company
(realm) its callback names, so there is no tenant discovery and no removal of one tenant."""

from __future__ import annotations

from connectors.provider import Provider
from connectors.quickbooks import QuickBooksConnector
from connectors.quickbooks.identity import intuit_identity
from connectors.quickbooks.oauth import QuickBooksSettings, settings_from, sign_in_settings
from connectors.quickbooks.webhooks import WEBHOOKS


def _revoke(settings: QuickBooksSettings, refresh_token: str) -> None:
    settings.revoke(refresh_token)


PROVIDER: Provider[QuickBooksSettings] = Provider(
    name="quickbooks",
    display_name="QuickBooks",
    identity_name="intuit",
    settings=settings_from,
    sign_in_settings=sign_in_settings,
    connector=QuickBooksConnector,
    revoke=_revoke,
    identity=intuit_identity,
    webhooks=WEBHOOKS,
)
