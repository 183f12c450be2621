"""Dunwell's check of Xero's id_token against the sandbox as an OpenID provider: only RS256
from the JWKS, by `kid`, with our audience, Xero's issuer, unexpired by the app's clock and
carrying the nonce the sign-in sent; HS256 keyed by the client secret and `alg: none` are
refused, and an old key keeps verifying while Xero rotates."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from werkzeug.serving import make_server

from app.auth.identity import IdentityRefused, xero_identity
from connectors.base import TokenSet
from sandboxes.xero import SandboxConfig, XeroSandbox, create_app
from store import clock
from tests.sandbox.test_xero_openid_and_connections import sign_in
from tests.sandbox.test_xero_sandbox import CLIENT, SECRET, TODAY, Clock, Served


@pytest.fixture
def xero() -> Iterator[Served]:
    clock = Clock()
    box = XeroSandbox(SandboxConfig(clock=clock))
    box.seed_demo(TODAY)
    server = make_server("127.0.0.1", 0, create_app(box), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Served(box, f"http://127.0.0.1:{server.server_port}", clock)
    server.shutdown()


@pytest.fixture
def dunwell(xero: Served) -> Iterator[Flask]:
    """Just the settings xero_identity reads; the sandbox's clock is the app's."""
    app = Flask(__name__)
    app.config.update(XERO_CLIENT_ID=CLIENT, XERO_CLIENT_SECRET=SECRET,
                      XERO_TOKEN_URL=f"{xero.url}/connect/token", CLOCK=xero.clock)
    # A bare app registers no clock lookup (create_app does): without this the code read the
    # machine's time, and the test passed only after another test in its process made an app.
    previous = clock.use(lambda: xero.clock)
    with app.app_context():
        yield app
    clock.use(previous)


def tokens_with(id_token: str) -> TokenSet:
    return TokenSet("access", "refresh", datetime(2030, 1, 1, tzinfo=UTC), "openid", id_token)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_a_real_sign_in_is_accepted_with_its_nonce(
        xero: Served, dunwell: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign_in(xero, [xero.first], nonce="n-ours", monkeypatch=monkeypatch)
    identity = xero_identity(tokens_with(token["id_token"]), "n-ours")
    assert (identity.provider, identity.email, identity.name) == (
        "xero", "owner@example.com", "Sandbox Owner")
    with pytest.raises(IdentityRefused, match="nonce"):
        xero_identity(tokens_with(token["id_token"]), "n-someone-elses")


def test_hs256_with_the_client_secret_and_alg_none_are_refused(
        xero: Served, dunwell: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    genuine = claims_of(sign_in(xero, [xero.first], monkeypatch=monkeypatch)["id_token"])
    forged = jwt.encode(genuine, SECRET, algorithm="HS256")
    with pytest.raises(IdentityRefused, match="RS256"):
        xero_identity(tokens_with(forged))
    unsigned = jwt.encode(genuine, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(IdentityRefused, match="RS256"):
        xero_identity(tokens_with(unsigned))
    # RS256 by a key Xero never published: the kid is unknown to the JWKS.
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(IdentityRefused, match="did not verify"):
        xero_identity(tokens_with(jwt.encode(genuine, stranger, algorithm="RS256",
                                             headers={"kid": "not-xeros"})))
    # RS256 under Xero's kid but signed by another key.
    kid = xero.box.signing_keys.current_kid
    with pytest.raises(IdentityRefused, match="did not verify"):
        xero_identity(tokens_with(jwt.encode(genuine, stranger, algorithm="RS256",
                                             headers={"kid": kid})))


@pytest.mark.parametrize("change, why", [
    ({"aud": "another-app"}, "did not verify"),
    ({"iss": "https://login.example"}, "did not verify"),
])
def test_audience_and_issuer_are_checked(xero: Served, dunwell: Flask,
                                         monkeypatch: pytest.MonkeyPatch,
                                         change: dict[str, str], why: str) -> None:
    genuine = claims_of(sign_in(xero, [xero.first], monkeypatch=monkeypatch)["id_token"])
    resigned = xero.box.signing_keys.sign({**genuine, **change})
    with pytest.raises(IdentityRefused, match=why):
        xero_identity(tokens_with(resigned))


def test_expiry_follows_the_apps_clock(xero: Served, dunwell: Flask,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign_in(xero, [xero.first], monkeypatch=monkeypatch)["id_token"]
    xero.clock.advance(seconds=300 + 59)  # within the minute of leeway
    assert xero_identity(tokens_with(token)).subject
    xero.clock.advance(seconds=2)
    with pytest.raises(IdentityRefused, match="expired"):
        xero_identity(tokens_with(token))
    claims = claims_of(token)
    del claims["exp"]
    with pytest.raises(IdentityRefused, match="did not verify"):
        xero_identity(tokens_with(xero.box.signing_keys.sign(claims)))


def test_a_token_signed_before_a_key_rotation_still_verifies(
        xero: Served, dunwell: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    before = sign_in(xero, [xero.first], monkeypatch=monkeypatch)["id_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]
    xero.box.signing_keys.rotate()
    after = sign_in(xero, [xero.first], monkeypatch=monkeypatch)["id_token"]
    assert jwt.get_unverified_header(after)["kid"] != old_kid
    assert xero_identity(tokens_with(before)).subject == xero_identity(tokens_with(after)).subject
    xero.box.signing_keys.retire(old_kid)
    with pytest.raises(IdentityRefused, match="did not verify"):
        xero_identity(tokens_with(before))


def test_an_id_token_is_required(dunwell: Flask) -> None:
    with pytest.raises(IdentityRefused, match="no id_token"):
        xero_identity(TokenSet("a", "r", datetime.now(UTC) + timedelta(hours=1)))
