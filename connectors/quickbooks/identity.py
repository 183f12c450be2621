"""Who signed in with Intuit: its user-info endpoint, named in its discovery document."""

from __future__ import annotations

import requests

from connectors.base import ConfigurationError, TokenSet, TransientError
from connectors.identity import Identity, IdentityRefused
from connectors.quickbooks.oauth import QuickBooksSettings


def intuit_identity(settings: QuickBooksSettings, tokens: TokenSet, nonce: str | None = None
                    ) -> Identity:
    """Ask Intuit's user-info endpoint (named in its discovery document) who signed in. Intuit
    is asked with the sign-in's own access token; no nonce comes back this way."""
    try:
        discovery = requests.get(settings.discovery_url, timeout=15)
        discovery.raise_for_status()
        answer = requests.get(discovery.json()["userinfo_endpoint"], timeout=15, headers={
            "Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"})
    except (requests.RequestException, KeyError, ValueError) as exc:
        raise TransientError(f"Intuit user info unreachable: {type(exc).__name__}") from exc
    if answer.status_code in (401, 403):
        raise ConfigurationError(f"Intuit user info refused ({answer.status_code})")
    if answer.status_code != 200:
        raise TransientError(f"Intuit user info answered {answer.status_code}")
    body = answer.json()
    email = str(body.get("email") or "").strip().lower()
    if not body.get("sub") or not email or body.get("emailVerified") is False:
        raise IdentityRefused("Intuit did not give a verified email address")
    name = " ".join(str(body.get(k) or "") for k in ("givenName", "familyName")).strip()
    return Identity("intuit", str(body["sub"]), email, name)
