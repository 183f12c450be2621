"""OAuth 2.0 authorization-code flow with PKCE, token refresh and revocation.

Plain HTTP with `requests`: the SDKs have no code exchange, and keeping refreshes here lets the
caller hold its per-connection lock around them (Xero refresh tokens are single-use).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import requests

from connectors.base import (
    AuthorizationRevoked,
    ConfigurationError,
    ConnectorError,
    TokenSet,
    TokenStore,
    TransientError,
)

TIMEOUT_SECONDS = 30


def new_pkce_pair() -> tuple[str, str]:
    """A (code_verifier, S256 code_challenge) pair (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    revoke_url: str
    scopes: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # How long to wait for the token endpoint; a refresh that times out is asked again with the
    # same refresh token (Xero answers the same pair for 30 minutes).
    timeout_seconds: float = TIMEOUT_SECONDS

    def __repr__(self) -> str:
        return f"OAuthClient(client_id={self.client_id!r}, token_url={self.token_url!r})"

    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.authorize_url}?{urlencode(query)}"

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return self._token_request({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        })

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, refresh_token: str) -> None:
        try:
            response = requests.post(
                self.revoke_url,
                data={"token": refresh_token},
                auth=(self.client_id, self.client_secret),
                timeout=self.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise TransientError(f"token revocation failed: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise TransientError(f"token revocation answered {response.status_code}")
        # 400 for an already-dead token is fine: the goal (no live token) holds.

    def _token_request(self, form: dict[str, str]) -> TokenSet:
        try:
            response = requests.post(
                self.token_url,
                data=form,
                auth=(self.client_id, self.client_secret),
                headers={"Accept": "application/json"},
                timeout=self.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise TransientError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        grant = form["grant_type"]
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"token endpoint answered {response.status_code} to {grant}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(
                f"token endpoint answered non-JSON ({response.status_code})"
            ) from exc
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise AuthorizationRevoked(f"{grant} refused: invalid_grant (reconnect needed)")
        if response.status_code in (400, 401):
            raise ConfigurationError(f"{grant} refused: {body.get('error', response.status_code)}")
        if response.status_code != 200:
            raise ConnectorError(f"token endpoint answered {response.status_code} to {grant}")
        try:
            return TokenSet(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_at=self.clock() + timedelta(seconds=int(body["expires_in"])),
                scope=str(body.get("scope", "")),
                id_token=body.get("id_token"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnectorError(f"token answer to {grant} lacks a field: {exc}") from exc


class FreshTokens:
    """A connector's access to its TokenStore: refresh only when the token is stale, or once
    when the provider refused it, and then only if no other worker has refreshed meanwhile."""

    def __init__(self, store: TokenStore, refresh: Callable[[str], TokenSet],
                 clock: Callable[[], datetime], margin: timedelta) -> None:
        self.store = store
        self._refresh = refresh
        self._clock = clock
        self._margin = margin

    def _stale(self, tokens: TokenSet) -> bool:
        return tokens.expires_at - self._margin <= self._clock()

    def access_token(self, refused: bool = False) -> str:
        current = self.store.load()
        if refused or self._stale(current):
            rejected = current.access_token
            current = self.store.refresh(
                lambda fresh: self._stale(fresh) or (refused and fresh.access_token == rejected),
                lambda old: self._refresh(old.refresh_token),
            )
        return current.access_token
