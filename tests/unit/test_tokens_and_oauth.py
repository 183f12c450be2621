"""Token encryption with key rotation, PKCE, and what a TokenSet shows in logs."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.fernet import Fernet
from oauthlib.oauth2 import InsecureTransportError

from app.tokens import TokenVault
from connectors.base import ConfigurationError, TokenSet, TransientError
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
