"""Xero's entry in the provider registry."""

from __future__ import annotations

from connectors.provider import Provider
from connectors.xero import XeroConnector
from connectors.xero.identity import xero_identity
from connectors.xero.oauth import XeroSettings, settings_from
from connectors.xero.tenants import consent_tenants, delete_connection
from connectors.xero.webhooks import WEBHOOKS


def _revoke(settings: XeroSettings, refresh_token: str) -> None:
    settings.oauth.revoke(refresh_token)


def _same(settings: XeroSettings) -> XeroSettings:
    return settings  # the openid scopes are among XERO_SCOPES already


PROVIDER: Provider[XeroSettings] = Provider(
    name="xero",
    display_name="Xero",
    identity_name="xero",
    settings=settings_from,
    sign_in_settings=_same,
    connector=XeroConnector,
    revoke=_revoke,
    identity=xero_identity,
    webhooks=WEBHOOKS,
    consent_tenants=consent_tenants,
    remove_tenant=delete_connection,
)
