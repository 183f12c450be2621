"""Xero's settings: the OAuth client (authorize, token and revocation URLs, scopes), the API's
addresses, and where Xero publishes the keys its id_tokens are signed with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.oauth import OAuthClient

REQUEST_TIMEOUT = 60  # seconds a call to Xero's API may take


@dataclass(frozen=True)
class XeroSettings:
    oauth: OAuthClient
    api_url: str
    connections_url: str
    fee_account_code: str = "260"  # "Other Revenue" in Xero's default chart of accounts
    # "Sales" in Xero's default chart: an early-payment discount lowers the revenue it was
    # earned on (an ACCRECCREDIT line needs a revenue account).
    discount_account_code: str = "200"
    # Where a processor's payments are deposited: "Business Bank Account" in the demo company.
    payment_account_code: str = "090"
    bank_fee_account_code: str = "404"  # "Bank Fees" in Xero's default chart of accounts
    jwks_url: str = ""  # XERO_JWKS_URL; empty: beside the token endpoint (`keys_url`)

    def keys_url(self) -> str:
        """XERO_JWKS_URL, or the JWKS beside the token endpoint, where Xero publishes it
        (https://identity.xero.com/.well-known/openid-configuration/jwks); the sandbox serves
        both from one origin, so a demo or test needs no extra setting."""
        if self.jwks_url:
            return self.jwks_url
        token_url = urlsplit(self.oauth.token_url)
        return f"{token_url.scheme}://{token_url.netloc}/.well-known/openid-configuration/jwks"


def settings_from(config: Mapping[str, Any], clock: Callable[[], datetime]) -> XeroSettings:
    """This deployment's Xero settings, from the app's (XERO_CLIENT_ID, XERO_TOKEN_URL, ...).
    The client and the token endpoint must be set; an address left unset is empty (checking an
    id_token needs none of them)."""
    return XeroSettings(
        oauth=OAuthClient(
            client_id=config["XERO_CLIENT_ID"],
            client_secret=config["XERO_CLIENT_SECRET"],
            authorize_url=config.get("XERO_AUTHORIZE_URL", ""),
            token_url=config["XERO_TOKEN_URL"],
            revoke_url=config.get("XERO_REVOKE_URL", ""),
            scopes=config.get("XERO_SCOPES", ""),
            clock=clock,
        ),
        api_url=config.get("XERO_API_URL", ""),
        connections_url=config.get("XERO_CONNECTIONS_URL", ""),
        jwks_url=str(config.get("XERO_JWKS_URL") or ""),
    )
