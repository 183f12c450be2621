"""The Xero sandbox as an OpenID provider (discovery, JWKS, RS256 with `kid`, key rotation) and
its connections as Xero keeps them (every tenant the user connected, `authEventId` narrowing to
one consent, re-consent, DELETE), driven by requests-oauthlib and xero-python as clients."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from requests_oauthlib import OAuth2Session
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.identity import IdentityApi

from tests.sandbox.test_xero_sandbox import CLIENT, REDIRECT, SCOPES, SECRET, Served

ISSUER = "https://identity.xero.com"


def oauth_session() -> OAuth2Session:
    return OAuth2Session(CLIENT, redirect_uri=REDIRECT, scope=SCOPES.split(), pkce="S256")


def sign_in(served: Served, tenant_ids: list[str], nonce: str = "n-1",
            monkeypatch: pytest.MonkeyPatch | None = None) -> dict[str, Any]:
    """The whole code flow with requests-oauthlib as the app: consent to these tenants."""
    if monkeypatch is not None:
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the sandbox is http on loopback
    session = oauth_session()
    url, state = session.authorization_url(f"{served.url}/identity/connect/authorize",
                                           nonce=nonce)
    args = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert args["code_challenge_method"] == "S256" and args["nonce"] == nonce
    answer = requests.post(f"{served.url}/identity/connect/authorize", allow_redirects=False,
                           timeout=10, data=[*args.items(), *(("tenant", t) for t in tenant_ids),
                                             ("decision", "allow")])
    assert answer.status_code == 302, answer.text
    token = session.fetch_token(f"{served.url}/connect/token", client_secret=SECRET,
                                authorization_response=answer.headers["Location"])
    assert parse_qs(urlparse(answer.headers["Location"]).query)["state"] == [state]
    return dict(token)


def verified(served: Served, id_token: str, **options: Any) -> dict[str, Any]:
    key = jwt.PyJWKClient(f"{served.url}/.well-known/openid-configuration/jwks") \
        .get_signing_key_from_jwt(id_token).key
    return dict(jwt.decode(id_token, key, algorithms=["RS256"], audience=CLIENT, issuer=ISSUER,
                           options={"verify_exp": False, **options}))


def event_of(token: dict[str, Any]) -> str:
    return str(jwt.decode(token["access_token"], options={"verify_signature": False})
               ["authentication_event_id"])


def listed(served: Served, token: dict[str, Any], event: str | None = None
           ) -> list[dict[str, Any]]:
    answer = requests.get(f"{served.url}/connections", timeout=10,
                          params={"authEventId": event} if event else None,
                          headers={"Authorization": f"Bearer {token['access_token']}"})
    assert answer.status_code == 200, answer.text
    return list(answer.json())


# --- OpenID ------------------------------------------------------------------------------


def test_discovery_document_and_jwks(served: Served) -> None:
    found = requests.get(f"{served.url}/.well-known/openid-configuration", timeout=10).json()
    assert found["issuer"] == ISSUER
    assert found["id_token_signing_alg_values_supported"] == ["RS256"]
    assert found["jwks_uri"] == f"{served.url}/.well-known/openid-configuration/jwks"
    assert found["token_endpoint"] == f"{served.url}/connect/token"
    keys = requests.get(found["jwks_uri"], timeout=10).json()["keys"]
    assert len(keys) == 1
    assert {k: keys[0][k] for k in ("kty", "use", "alg", "e")} == {
        "kty": "RSA", "use": "sig", "alg": "RS256", "e": "AQAB"}
    assert keys[0]["kid"] == served.box.signing_keys.current_kid
    assert "d" not in keys[0] and "p" not in keys[0]  # the public half only


def test_id_token_is_rs256_with_kid_and_carries_the_nonce(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign_in(served, [served.first], nonce="nonce-42", monkeypatch=monkeypatch)
    header = jwt.get_unverified_header(token["id_token"])
    assert header["alg"] == "RS256" and header["kid"] == served.box.signing_keys.current_kid
    claims = verified(served, token["id_token"])
    assert claims["nonce"] == "nonce-42" and claims["aud"] == CLIENT
    assert claims["authentication_event_id"] == event_of(token)
    assert claims["exp"] - claims["iat"] == 300
    # The access token is a JWT too, signed with the same keys, for Xero's resources.
    access = jwt.decode(token["access_token"],
                        jwt.PyJWKClient(f"{served.url}/.well-known/openid-configuration/jwks")
                        .get_signing_key_from_jwt(token["access_token"]).key,
                        algorithms=["RS256"], audience=f"{ISSUER}/resources", issuer=ISSUER,
                        options={"verify_exp": False, "verify_nbf": False})
    assert access["client_id"] == CLIENT and "accounting.transactions" in access["scope"]


def test_key_rotation_keeps_the_old_kid_verifying_until_it_is_retired(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    before = sign_in(served, [served.first], monkeypatch=monkeypatch)
    old_kid = jwt.get_unverified_header(before["id_token"])["kid"]
    new_kid = served.box.signing_keys.rotate()
    jwks = f"{served.url}/.well-known/openid-configuration/jwks"
    assert {k["kid"] for k in requests.get(jwks, timeout=10).json()["keys"]} == {old_kid, new_kid}
    after = sign_in(served, [served.first], monkeypatch=monkeypatch)
    assert jwt.get_unverified_header(after["id_token"])["kid"] == new_kid
    assert verified(served, before["id_token"])["sub"] == verified(served, after["id_token"])["sub"]
    # The old access token still works at the API during the overlap.
    assert listed(served, before)
    served.box.signing_keys.retire(old_kid)
    with pytest.raises(jwt.PyJWKClientError):
        verified(served, before["id_token"])
    assert verified(served, after["id_token"])["aud"] == CLIENT
    with pytest.raises(ValueError):
        served.box.signing_keys.retire(new_kid)  # the key in use cannot be withdrawn


# --- connections -------------------------------------------------------------------------


def test_connections_list_every_consent_and_auth_event_narrows_to_one(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sign_in(served, [served.first], monkeypatch=monkeypatch)
    second = sign_in(served, [served.second], monkeypatch=monkeypatch)
    one, two = event_of(first), event_of(second)
    assert one != two
    everything = {(c["tenantId"], c["authEventId"]) for c in listed(served, first)}
    assert everything == {(served.first, one), (served.second, two)}
    assert {(c["tenantId"], c["authEventId"]) for c in listed(served, second)} == everything
    assert [c["tenantId"] for c in listed(served, second, two)] == [served.second]
    assert [c["tenantId"] for c in listed(served, second, one)] == [served.first]
    # Either consent's token reaches every tenant the user connected.
    for token in (first, second):
        for tenant in (served.first, served.second):
            answer = requests.get(f"{served.url}/api.xro/2.0/Organisation", timeout=10, headers={
                "Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": tenant})
            assert answer.status_code == 200


def test_re_consent_keeps_the_connection_and_moves_it_to_the_new_event(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sign_in(served, [served.first], monkeypatch=monkeypatch)
    [before] = listed(served, first)
    served.clock.advance(minutes=10)
    again = sign_in(served, [served.first, served.second], monkeypatch=monkeypatch)
    now = {c["tenantId"]: c for c in listed(served, again, event_of(again))}
    assert set(now) == {served.first, served.second}
    kept = now[served.first]
    assert (kept["id"], kept["createdDateUtc"]) == (before["id"], before["createdDateUtc"])
    assert kept["updatedDateUtc"] > before["updatedDateUtc"]
    assert listed(served, again, event_of(first)) == []
    assert len(listed(served, first)) == 2  # the first consent's token still lists them


def test_deleting_one_connection_leaves_the_others_and_revocation_ends_one_consent(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sign_in(served, [served.first], monkeypatch=monkeypatch)
    second = sign_in(served, [served.second], monkeypatch=monkeypatch)
    gone = next(c for c in listed(served, second) if c["tenantId"] == served.first)
    deleted = requests.delete(f"{served.url}/connections/{gone['id']}", timeout=10,
                              headers={"Authorization": f"Bearer {second['access_token']}"})
    assert deleted.status_code == 204
    assert [c["tenantId"] for c in listed(served, first)] == [served.second]
    revoked = requests.post(f"{served.url}/connect/revocation", auth=(CLIENT, SECRET),
                            data={"token": second["refresh_token"]}, timeout=10)
    assert revoked.status_code == 200
    assert listed(served, first) == []  # the second consent took its tenant with it


def test_xero_python_reads_connections_by_auth_event(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sign_in(served, [served.first], monkeypatch=monkeypatch)
    second = sign_in(served, [served.second], monkeypatch=monkeypatch)
    config = Configuration(oauth2_token=OAuth2Token(client_id=CLIENT, client_secret=SECRET))
    client = ApiClient(config, pool_threads=1,
                       oauth2_token_getter=lambda: {**second, "expires_in": None})
    identity = IdentityApi(client, base_url=served.url)
    every = identity.get_connections()
    assert {str(c.tenant_id) for c in every} == {served.first, served.second}
    narrowed = identity.get_connections(auth_event_id=event_of(first))
    assert [str(c.tenant_id) for c in narrowed] == [served.first]
    assert str(narrowed[0].auth_event_id) == event_of(first)
