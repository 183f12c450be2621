"""Token encryption with key rotation, PKCE, and what a TokenSet shows in logs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.fernet import Fernet
from oauthlib.oauth2 import InsecureTransportError
from werkzeug.serving import make_server

from collect.tokens import TokenVault
from connectors.base import (
    AuthorizationRevoked,
    ConfigurationError,
    ConnectorError,
    TokenSet,
    TransientError,
)
from connectors.oauth import OAuthClient, new_pkce_pair


def test_vault_rotation_old_rows_still_decrypt_and_new_writes_use_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_with_old = TokenVault(old).encrypt("refresh-abc")
    rotated = TokenVault(f"{new},{old}")
    assert rotated.decrypt(sealed_with_old) == "refresh-abc"
    sealed_now = rotated.encrypt("refresh-abc")
    assert TokenVault(new).decrypt(sealed_now) == "refresh-abc"
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        TokenVault(old).decrypt(sealed_now)


def test_vault_refuses_to_start_without_a_key() -> None:
    with pytest.raises(RuntimeError, match="TOKEN_ENCRYPTION_KEYS"):
        TokenVault(" , ")


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = new_pkce_pair()
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(verifier) <= 128


def test_authorization_url_carries_state_and_challenge() -> None:
    client = OAuthClient("cid", "secret", "https://login.example/authorize",
                         "https://id.example/token", "https://id.example/revoke", "openid email")
    url = urlparse(client.authorization_url("http://127.0.0.1/cb", "st4te", "ch4llenge"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {"response_type": "code", "client_id": "cid",
                     "redirect_uri": "http://127.0.0.1/cb", "scope": "openid email",
                     "state": "st4te", "code_challenge": "ch4llenge",
                     "code_challenge_method": "S256"}
    assert "secret" not in repr(client)


def test_token_repr_hides_the_tokens() -> None:
    tokens = TokenSet("access-xyz", "refresh-xyz", datetime(2026, 1, 1, tzinfo=UTC), "openid")
    assert "xyz" not in repr(tokens) and "xyz" not in str(tokens)


def test_plain_http_is_refused_except_on_loopback() -> None:
    """oauthlib's https check is lifted for the local sandboxes only, and only during the call."""
    remote = OAuthClient("cid", "secret", "http://login.example/authorize",
                         "http://id.example/token", "http://id.example/revoke", "openid")
    with pytest.raises(ConfigurationError, match="insecure_transport"):
        remote.refresh("refresh-abc")
    with pytest.raises(InsecureTransportError):
        remote.authorization_url("http://127.0.0.1/cb", "st4te", "ch4llenge")
    local = OAuthClient("cid", "secret", "http://127.0.0.1:9/authorize",
                        "http://127.0.0.1:9/token", "http://127.0.0.1:9/revoke", "openid")
    assert local.authorization_url("http://127.0.0.1/cb", "s", "c").startswith("http://127.0.0.1")
    with pytest.raises(TransientError):  # nothing listens on port 9: refused, not insecure
        local.refresh("refresh-abc")
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ


class TokenEndpoint:
    """A token endpoint on loopback that answers what the test sets, and records the forms."""

    def __init__(self) -> None:
        self.status, self.body, self.content_type = 200, "{}", "application/json"
        self.forms: list[dict[str, str]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = {k: v[0] for k, v in parse_qs(environ["wsgi.input"].read(size).decode()).items()}
        self.forms.append({**form, "authorization": environ.get("HTTP_AUTHORIZATION", "")})
        start_response(f"{self.status} X", [("Content-Type", self.content_type)])
        return [self.body.encode()]

    def answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
        self.status, self.content_type = status, content_type
        self.body = body if isinstance(body, str) else json.dumps(body)


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    found = TokenEndpoint()
    yield found
    found.server.shutdown()


def client_of(endpoint: TokenEndpoint) -> OAuthClient:
    moment = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    return OAuthClient("cid", "s3cret", f"{endpoint.url}/authorize", f"{endpoint.url}/token",
                       f"{endpoint.url}/revoke", "openid offline_access",
                       clock=lambda: moment, timeout_seconds=5)


@pytest.mark.parametrize("status, body, error", [
    (500, {"error": "server_error"}, TransientError),
    (503, "<html>down</html>", TransientError),
    (429, {"error": "slow_down"}, TransientError),
    (200, "<html>a login page</html>", TransientError),
    (400, {"error": "invalid_grant"}, AuthorizationRevoked),
    (401, {"error": "invalid_client"}, ConfigurationError),
    (400, {"error": "unsupported_grant_type"}, ConfigurationError),
    (400, {}, ConfigurationError),
    (403, {"error": "forbidden"}, ConnectorError),
    (200, {"token_type": "Bearer", "expires_in": 1800}, ConnectorError),
    (200, {"access_token": "a", "token_type": "Bearer"}, ConnectorError),
])
def test_token_answers_are_classified_once(endpoint: TokenEndpoint, status: int, body: Any,
                                           error: type[Exception]) -> None:
    endpoint.answer(status, body, "text/html" if isinstance(body, str) else "application/json")
    with pytest.raises(error) as raised:
        client_of(endpoint).refresh("refresh-abc")
    assert type(raised.value) is error  # not a subclass standing in for it
    assert "refresh-abc" not in str(raised.value)


def test_a_refresh_sends_the_grant_with_basic_auth_and_reads_the_answer(
        endpoint: TokenEndpoint) -> None:
    endpoint.answer(200, {"access_token": "new-access", "refresh_token": "new-refresh",
                          "expires_in": 1800, "token_type": "Bearer", "scope": "openid email",
                          "id_token": "id.token.here"})
    tokens = client_of(endpoint).refresh("old-refresh")
    assert (tokens.access_token, tokens.refresh_token, tokens.scope, tokens.id_token) == (
        "new-access", "new-refresh", "openid email", "id.token.here")
    assert tokens.expires_at == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # the given clock
    form = endpoint.forms[-1]
    assert (form["grant_type"], form["refresh_token"]) == ("refresh_token", "old-refresh")
    assert form["authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    assert "client_secret" not in form


def test_a_code_is_exchanged_with_its_verifier_and_revocation_tolerates_a_dead_token(
        endpoint: TokenEndpoint) -> None:
    endpoint.answer(200, {"access_token": "a", "refresh_token": "r", "expires_in": 60,
                          "token_type": "Bearer"})
    client_of(endpoint).exchange_code("the-code", "http://127.0.0.1/cb", "the-verifier")
    form = endpoint.forms[-1]
    assert {k: form[k] for k in ("grant_type", "code", "redirect_uri", "code_verifier")} == {
        "grant_type": "authorization_code", "code": "the-code",
        "redirect_uri": "http://127.0.0.1/cb", "code_verifier": "the-verifier"}
    endpoint.answer(400, {"error": "invalid_token"})
    client_of(endpoint).revoke("dead-refresh")  # the goal, no live token, holds
    assert (endpoint.forms[-1]["token"], endpoint.forms[-1]["token_type_hint"]) == (
        "dead-refresh", "refresh_token")
    endpoint.answer(503, "busy", "text/plain")
    with pytest.raises(TransientError):
        client_of(endpoint).revoke("live-refresh")


def test_the_librarys_debug_logs_never_carry_the_tokens(
        endpoint: TokenEndpoint, caplog: pytest.LogCaptureFixture) -> None:
    """requests-oauthlib logs request and answer bodies at DEBUG; whatever level is set."""
    import logging

    for name in ("requests_oauthlib", "requests_oauthlib.oauth2_session", "oauthlib"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG)
    endpoint.answer(200, {"access_token": "access-SECRET-1", "refresh_token": "refresh-SECRET-2",
                          "expires_in": 1800, "token_type": "Bearer"})
    client_of(endpoint).refresh("refresh-SECRET-0")
    client_of(endpoint).exchange_code("code-SECRET-3", "http://127.0.0.1/cb", "verifier-SECRET")
    assert "SECRET" not in caplog.text and "s3cret" not in caplog.text
