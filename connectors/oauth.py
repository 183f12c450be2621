"""OAuth 2.0 authorization-code flow with PKCE, token refresh and revocation, via requests-oauthlib.

The library builds the requests and parses the answers; what is ours is around it: one failure
classification for the layers above, the injected clock for expiry, the timeout, and refreshes
kept out of the library's auto-refresh so the caller can hold its per-connection lock around
them and save a rotated refresh token at once (Xero refresh tokens are single-use).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error, WebApplicationClient
from requests_oauthlib import OAuth2Session

from connectors.base import (
    AuthorizationRevoked,
    ConfigurationError,
    ConnectorError,
    TokenSet,
    TokenStore,
    TransientError,
)

TIMEOUT_SECONDS = 30
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})



def _no_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


# Both libraries log request and answer bodies, tokens included, at DEBUG. A filter on each of
# their loggers drops those records whatever level a deployment sets (a filter on a parent
# logger would not see its children's records).
for _name in [n for n in list(logging.root.manager.loggerDict)
              if n.split(".")[0] in ("requests_oauthlib", "oauthlib")]:
    logging.getLogger(_name).addFilter(_no_debug)

_insecure_lock = threading.Lock()
_insecure_users = 0
_insecure_was_set = False  # set by someone else before: left as it was


@contextmanager
def _transport_for(url: str) -> Iterator[None]:
    """oauthlib refuses http://; the sandboxes serve http on loopback only, so the refusal is
    lifted (OAUTHLIB_INSECURE_TRANSPORT, counted across threads) while a call to loopback runs
    and never for any other host: production URLs are https and keep the library's check."""
    global _insecure_users, _insecure_was_set
    if urlsplit(url).hostname not in LOOPBACK_HOSTS:
        yield
        return
    with _insecure_lock:
        if _insecure_users == 0:
            _insecure_was_set = "OAUTHLIB_INSECURE_TRANSPORT" in os.environ
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        _insecure_users += 1
    try:
        yield
    finally:
        with _insecure_lock:
            _insecure_users -= 1
            if _insecure_users == 0 and not _insecure_was_set:
                os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)


def new_pkce_pair() -> tuple[str, str]:
    """A (code_verifier, S256 code_challenge) pair (RFC 7636), made by oauthlib.

    The verifier must outlive the request that sends the user to consent (it waits in the
    signed session for the callback), so it is made here rather than held by one OAuth2Session.
    """
    client = WebApplicationClient(None)
    verifier = client.create_code_verifier(64)
    return verifier, client.create_code_challenge(verifier, "S256")


def _classify(response: requests.Response) -> requests.Response:
    """Before the library parses a token answer: what no OAuth error body can explain."""
    status = response.status_code
    if status >= 500 or status == 429:
        raise TransientError(f"token endpoint answered {status}")
    try:
        body = response.json()
    except ValueError as exc:
        raise TransientError(f"token endpoint answered non-JSON ({status})") from exc
    if status in (400, 401) and not (isinstance(body, dict) and body.get("error")):
        raise ConfigurationError(f"token endpoint refused the request ({status})")
    if status not in (200, 400, 401):
        raise ConnectorError(f"token endpoint answered {status}")
    return response


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

    def _session(self, redirect_uri: str | None = None, scope: str | None = None
                 ) -> OAuth2Session:
        session = OAuth2Session(self.client_id, redirect_uri=redirect_uri,
                                scope=scope.split() if scope else None)
        session.register_compliance_hook("access_token_response", _classify)
        session.register_compliance_hook("refresh_token_response", _classify)
        return session

    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str,
                          nonce: str | None = None) -> str:
        """Where to send the person to consent; `nonce` (OpenID) comes back in the id_token."""
        extra = {"nonce": nonce} if nonce else {}
        with _transport_for(self.authorize_url):
            url, _ = self._session(redirect_uri, self.scopes).authorization_url(
                self.authorize_url, state, code_challenge=code_challenge,
                code_challenge_method="S256", **extra)
        return str(url)

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        session = self._session(redirect_uri)
        return self._token_request("authorization_code", lambda: session.fetch_token(
            self.token_url, code=code, code_verifier=code_verifier,
            client_secret=self.client_secret, timeout=self.timeout_seconds))

    def refresh(self, refresh_token: str) -> TokenSet:
        session = self._session()
        return self._token_request("refresh_token", lambda: session.refresh_token(
            self.token_url, refresh_token, auth=(self.client_id, self.client_secret),
            timeout=self.timeout_seconds))

    def revoke(self, refresh_token: str) -> None:
        with _transport_for(self.revoke_url):
            url, headers, body = WebApplicationClient(self.client_id) \
                .prepare_token_revocation_request(self.revoke_url, refresh_token,
                                                  token_type_hint="refresh_token")
            try:
                response = requests.post(url, data=body, headers=headers,
                                         auth=(self.client_id, self.client_secret),
                                         timeout=self.timeout_seconds)
            except requests.RequestException as exc:
                raise TransientError(f"token revocation failed: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise TransientError(f"token revocation answered {response.status_code}")
        # 400 for an already-dead token is fine: the goal (no live token) holds.

    def _token_request(self, grant: str, call: Callable[[], dict[str, Any]]) -> TokenSet:
        try:
            with _transport_for(self.token_url):
                body = call()
        except requests.RequestException as exc:
            raise TransientError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        except TransientError as exc:
            raise TransientError(f"{exc} to {grant}") from exc
        except InvalidGrantError as exc:
            raise AuthorizationRevoked(f"{grant} refused: invalid_grant (reconnect needed)") \
                from exc
        except OAuth2Error as exc:
            if exc.error == "missing_token":  # a 200 without an access token
                raise ConnectorError(f"token answer to {grant} lacks a field: access_token") \
                    from exc
            raise ConfigurationError(f"{grant} refused: {exc.error}") from exc
        try:
            return TokenSet(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_at=self.clock() + timedelta(seconds=int(body["expires_in"])),
                scope=" ".join(body.get("scope") or ()),
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
