"""QuickBooks' settings and OAuth, over `intuit-oauth` (intuitlib): the discovery document that
names every endpoint, the scopes, the code exchange, refresh and revocation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from connectors.base import AuthorizationRevoked, ConfigurationError, TokenSet, TransientError

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
# Sign-in with Intuit asks for the person's identity too.
SIGN_IN_SCOPES = (ACCOUNTING_SCOPE, "openid", "email", "profile")


@dataclass(frozen=True)
class QuickBooksSettings:
    client_id: str
    client_secret: str
    discovery_url: str  # Intuit's .well-known/openid_configuration (or the sandbox's)
    api_url: str  # ".../v3"
    minor_version: int = 75
    scopes: tuple[str, ...] = (ACCOUNTING_SCOPE,)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def auth_client(self, redirect_uri: str = "") -> AuthClient:
        """intuitlib reads the discovery document as it is made: endpoints are never guessed."""
        try:
            return AuthClient(self.client_id, self.client_secret, redirect_uri,
                              environment=self.discovery_url)
        except AuthClientError as exc:
            raise TransientError(f"QuickBooks discovery answered {exc.status_code}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"QuickBooks discovery unreachable: {type(exc).__name__}") \
                from exc

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        scopes = [Scopes(scope) for scope in self.scopes]  # intuitlib takes its own enum
        return str(self.auth_client(redirect_uri).get_authorization_url(scopes,
                                                                        state_token=state))

    def _tokens(self, client: AuthClient, what: str,
                call: Callable[[], object]) -> TokenSet:
        try:
            call()
        except AuthClientError as exc:
            body = str(getattr(exc, "content", "") or "")
            if exc.status_code == 400 and "invalid_grant" in body:
                raise AuthorizationRevoked(f"QuickBooks {what}: invalid_grant") from exc
            if exc.status_code in (400, 401):
                raise ConfigurationError(f"QuickBooks {what}: refused ({exc.status_code})") \
                    from exc
            raise TransientError(f"QuickBooks {what}: answered {exc.status_code}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"QuickBooks {what}: {type(exc).__name__}") from exc
        return TokenSet(access_token=str(client.access_token),
                        refresh_token=str(client.refresh_token),
                        expires_at=self.clock() + timedelta(seconds=int(client.expires_in)),
                        scope=" ".join(self.scopes))

    def exchange_code(self, code: str, redirect_uri: str, realm_id: str) -> TokenSet:
        client = self.auth_client(redirect_uri)
        return self._tokens(client, "code exchange",
                            lambda: client.get_bearer_token(code, realm_id=realm_id))

    def refresh(self, refresh_token: str) -> TokenSet:
        client = self.auth_client()
        return self._tokens(client, "token refresh",
                            lambda: client.refresh(refresh_token=refresh_token))

    def revoke(self, token: str) -> None:
        client = self.auth_client()
        try:
            client.revoke(token=token)
        except AuthClientError as exc:
            if exc.status_code != 400:  # 400: already dead, which is what we wanted
                raise TransientError(f"QuickBooks revoke answered {exc.status_code}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"QuickBooks revoke: {type(exc).__name__}") from exc


def settings_from(config: Mapping[str, Any], clock: Callable[[], datetime]
                  ) -> QuickBooksSettings:
    """This deployment's QuickBooks settings, from the app's (QUICKBOOKS_CLIENT_ID, ...)."""
    return QuickBooksSettings(
        client_id=config["QUICKBOOKS_CLIENT_ID"],
        client_secret=config["QUICKBOOKS_CLIENT_SECRET"],
        discovery_url=config["QUICKBOOKS_DISCOVERY_URL"],
        api_url=config["QUICKBOOKS_API_URL"],
        minor_version=config["QUICKBOOKS_MINOR_VERSION"],
        clock=clock,
    )


def sign_in_settings(settings: QuickBooksSettings) -> QuickBooksSettings:
    """The same app, asking for the person's identity with the books (Sign in with Intuit)."""
    return replace(settings, scopes=SIGN_IN_SCOPES)
