"""Our Xero connector against the sandbox over HTTP: every answer it receives is checked
against Xero's published OpenAPI description, and a 429 reaches it as RateLimited."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from connectors.base import RateLimited, TokenSet
from connectors.oauth import OAuthClient, new_pkce_pair
from connectors.xero import XeroConnector, XeroSettings
from sandboxes.xero import SandboxConfig, XeroSandbox, create_app
from tests.conftest import SPECS_DIR, FakeClock, LiveServer
from tests.integration.flows import answer_consent

SPECS = SPECS_DIR / "xero"
CLIENT, SECRET = "dunwell-demo", "dunwell-demo-secret"
REDIRECT = "http://127.0.0.1:9/callback"


class Recorder:
    """WSGI middleware keeping every request and response, to validate them afterwards."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.exchanges: list[tuple[WRequest, WResponse]] = []

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        kept = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        response = WResponse.from_app(self.app, environ, buffered=True)
        response.get_data()  # keep the body for validation after it is sent
        self.exchanges.append((WRequest(kept), response))
        return response(environ, start_response)


def make_box(clock: FakeClock, **config: object) -> XeroSandbox:
    box = XeroSandbox(SandboxConfig(clock=clock, **config))  # type: ignore[arg-type]
    box.seed_demo(date(2026, 11, 24))
    return box


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[XeroSandbox, LiveServer, Recorder]]:
    box = make_box(clock)
    recorder = Recorder(create_app(box))
    server = LiveServer(recorder)
    yield box, server, recorder
    server.stop()


def oauth(base: str, clock: FakeClock | None = None) -> OAuthClient:
    return OAuthClient(CLIENT, SECRET, f"{base}/identity/connect/authorize",
                       f"{base}/connect/token", f"{base}/connect/revocation", "openid email",
                       **({"clock": clock} if clock else {}))


def consent(base: str, tenants: int = 1, decision: str = "allow",
            verifier_override: str | None = None) -> tuple[dict[str, list[str]], str]:
    verifier, challenge = new_pkce_pair()
    http = requests.Session()
    page = http.get(oauth(base).authorization_url(REDIRECT, "state-1", challenge))
    assert page.status_code == 200 and "Allow access" in page.text
    http.hooks["response"] = []
    answer = answer_consent_no_follow(http, page, decision, tenants)
    assert answer.status_code == 302
    return parse_qs(urlparse(answer.headers["Location"]).query), verifier_override or verifier


def answer_consent_no_follow(http: requests.Session, page: requests.Response, decision: str,
                             tenants: int) -> requests.Response:
    original = http.post

    def post(url: str, **kwargs: object) -> requests.Response:
        return original(url, allow_redirects=False, **kwargs)  # type: ignore[arg-type]

    http.post = post  # type: ignore[method-assign]
    return answer_consent(http, page, decision, tenants)


def tokens_for(base: str, tenants: int = 1, clock: FakeClock | None = None) -> TokenSet:
    query, verifier = consent(base, tenants)
    return oauth(base, clock).exchange_code(query["code"][0], REDIRECT, verifier)


def api(base: str, tokens: TokenSet, tenant: str, path: str, method: str = "GET",
        **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {tokens.access_token}", "xero-tenant-id": tenant,
               "Accept": "application/json", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, f"{base}/api.xro/2.0{path}", headers=headers,
                            timeout=10, **kwargs)  # type: ignore[arg-type]


class MemoryTokens:
    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens

    def load(self) -> TokenSet:
        return self.tokens

    def refresh(self, needs_refresh, do_refresh) -> TokenSet:  # type: ignore[no-untyped-def]
        if needs_refresh(self.tokens):
            self.tokens = do_refresh(self.tokens)
        return self.tokens


def connector_for(server: LiveServer, tenant: str, clock: FakeClock) -> XeroConnector:
    """Our connector, connected through the consent flow, on the test clock."""
    tokens = tokens_for(server.url, clock=clock)
    settings = XeroSettings(oauth(server.url, clock), f"{server.url}/api.xro/2.0",
                            f"{server.url}/connections")
    return XeroConnector(settings, tenant, MemoryTokens(tokens), clock=clock)


def test_the_connector_turns_a_429_into_rate_limited(clock) -> None:
    box = make_box(clock, per_minute_limit=2)
    server = LiveServer(create_app(box))
    try:
        tenant = box.tenants()[0]["tenantId"]
        connector = connector_for(server, tenant, clock)
        connector.organisation()
        connector.organisation()
        with pytest.raises(RateLimited) as caught:
            connector.organisation()
        assert caught.value.retry_after == 60 and caught.value.problem.lower() == "minute"
        assert box.calls(tenant) == 3  # no silent retries underneath
    finally:
        server.stop()


@pytest.fixture(scope="module")
def accounting_spec() -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (SPECS / "xero_accounting.yaml").open() as handle:
        return yaml.load(handle, Loader=loader)


def openapi_for(spec: dict, base: str) -> OpenAPI:
    # Xero's own file fails strict spec validation (e.g. string defaults on booleans), so the
    # document is used as published and only the responses are checked.
    return OpenAPI.from_dict({**spec, "servers": [{"url": base}]},
                             config=Config(spec_validator_cls=None))


def test_every_answer_the_connector_receives_matches_xeros_openapi(served, accounting_spec,
                                                                    clock) -> None:  # type: ignore[no-untyped-def]
    box, server, recorder = served
    tenant = box.tenants()[0]["tenantId"]
    connector = connector_for(server, tenant, clock)
    tokens = connector.tokens.load()
    connector.organisation()
    invoices = [i for page in connector.invoices(None) for i in page]
    assert [c for page in connector.contacts(None) for c in page]
    assert [p for page in connector.payments(None) for p in page]
    target = next(i for i in invoices if i.status == "open")
    connector.invoice(target.provider_id)
    assert connector.online_invoice_url(target.provider_id)
    contact = next(c for c in box.contacts(tenant) if c.get("EmailAddress") and c["IsCustomer"])
    created = api(server.url, tokens, tenant, "/Invoices", "PUT", json={"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]},
        "Status": "AUTHORISED", "DueDate": "2026-12-24",
        "LineItems": [{"Description": "Late fee on INV-0001", "Quantity": 1,
                       "UnitAmount": 25.5, "AccountCode": "200"}]}]})
    assert created.status_code == 200
    new_id = created.json()["Invoices"][0]["InvoiceID"]
    connector.email_invoice(new_id, idempotency_key="spec-email")
    connector.add_invoice_note(new_id, "Dunwell: reminder 1 of 4 sent", "spec-note")
    connector.invoices(clock() - timedelta(minutes=5)).__next__()

    checked = 0
    openapi = openapi_for(accounting_spec, f"{server.url}/api.xro/2.0")
    for request, response in recorder.exchanges:
        if not request.path.startswith("/api.xro/2.0/"):
            continue
        try:
            openapi.validate_response(WerkzeugOpenAPIRequest(request),
                                      WerkzeugOpenAPIResponse(response))
        except Exception as exc:
            raise AssertionError(f"{request.method} {request.full_path} "
                                 f"{response.status_code}: {exc!r}") from exc
        checked += 1
    assert checked >= 10
