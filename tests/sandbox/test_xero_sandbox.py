"""The Xero sandbox over real HTTP: OAuth, paging, writes, limits, and its answers checked
against Xero's own OpenAPI descriptions."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
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
from connectors.sandbox.xero import SandboxConfig, XeroSandbox, create_app
from connectors.xero import XeroConnector, XeroSettings
from tests.conftest import FakeClock, LiveServer
from tests.integration.flows import answer_consent

# The official descriptions live beside the repository, in shared/specs/.
SPECS = Path(os.environ.get("DUNWELL_SPECS_DIR",
                            Path(__file__).resolve().parents[3] / "shared" / "specs")) / "xero"
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))


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


# --- OAuth ----------------------------------------------------------------------------


def test_code_flow_with_pkce_gives_tokens_and_connections(served, clock) -> None:  # type: ignore[no-untyped-def]
    box, server, _ = served
    tokens = tokens_for(server.url, tenants=2, clock=clock)
    assert tokens.expires_at == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    connections = requests.get(f"{server.url}/connections", timeout=10,
                               headers={"Authorization": f"Bearer {tokens.access_token}"}).json()
    assert len(connections) == 2
    assert {c["tenantId"] for c in connections} == {t["tenantId"] for t in box.tenants()}
    assert len({c["authEventId"] for c in connections}) == 1
    assert all(c["tenantType"] == "ORGANISATION" for c in connections)


def test_deny_bad_redirect_and_wrong_verifier(served) -> None:  # type: ignore[no-untyped-def]
    _, server, _ = served
    query, _ = consent(server.url, decision="deny")
    assert query == {"error": ["access_denied"], "state": ["state-1"]}
    bad = requests.get(oauth(server.url).authorization_url("https://evil.example/cb", "s", "c"),
                       timeout=10)
    assert bad.status_code == 400 and "redirect_uri" in bad.text
    query, _ = consent(server.url)
    with pytest.raises(Exception, match="invalid_grant"):
        oauth(server.url).exchange_code(query["code"][0], REDIRECT, "not-the-verifier-" * 3)


def test_refresh_rotates_with_a_grace_window_then_refuses(served, clock) -> None:  # type: ignore[no-untyped-def]
    _, server, _ = served
    client = oauth(server.url)
    first = tokens_for(server.url)
    second = client.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    # The answer was "lost": the old token may be used again within 30 minutes, same answer.
    clock.advance(minutes=29)
    again = client.refresh(first.refresh_token)
    assert (again.access_token, again.refresh_token) == (second.access_token,
                                                         second.refresh_token)
    clock.advance(minutes=2)
    with pytest.raises(Exception, match="invalid_grant"):
        client.refresh(first.refresh_token)
    assert client.refresh(second.refresh_token).refresh_token != second.refresh_token


def test_revocation_and_expiry(served) -> None:  # type: ignore[no-untyped-def]
    box, server, _ = served
    tokens = tokens_for(server.url)
    tenant = box.tenants()[0]["tenantId"]
    assert api(server.url, tokens, tenant, "/Organisation").status_code == 200
    box.expire_access_tokens()
    expired = api(server.url, tokens, tenant, "/Organisation")
    assert expired.status_code == 401 and expired.json()["Detail"] == "AuthenticationUnsuccessful"
    fresh = oauth(server.url).refresh(tokens.refresh_token)
    other = box.tenants()[1]["tenantId"]
    forbidden = api(server.url, fresh, other, "/Organisation")
    assert forbidden.status_code == 403 and forbidden.json()["Title"] == "Forbidden"
    oauth(server.url).revoke(fresh.refresh_token)
    assert api(server.url, fresh, tenant, "/Organisation").status_code == 401
    with pytest.raises(Exception, match="invalid_grant"):
        oauth(server.url).refresh(fresh.refresh_token)


# --- Reading --------------------------------------------------------------------------


def test_paging_filters_and_if_modified_since(served, clock) -> None:  # type: ignore[no-untyped-def]
    box, server, _ = served
    tokens = tokens_for(server.url)
    tenant = box.tenants()[0]["tenantId"]
    everything = box.invoices(tenant)
    sales = [i for i in everything if i["Type"] == "ACCREC"]
    page = api(server.url, tokens, tenant, "/Invoices",
               params={"page": 1, "pageSize": 1000, "where": 'Type=="ACCREC"'}).json()
    assert page["pagination"] == {"page": 1, "pageSize": 1000, "pageCount": 1,
                                  "itemCount": len(sales)}
    small = api(server.url, tokens, tenant, "/Invoices",
                params={"page": 3, "pageSize": 100, "order": "UpdatedDateUTC ASC"}).json()
    assert small["pagination"]["pageCount"] == 3 and len(small["Invoices"]) == len(everything) - 200
    clamp = api(server.url, tokens, tenant, "/Invoices", params={"page": 1, "pageSize": 5000})
    assert clamp.json()["pagination"]["pageSize"] == 1000
    drafts = api(server.url, tokens, tenant, "/Invoices", params={"Statuses": "DRAFT"}).json()
    assert drafts["Invoices"] and {i["Status"] for i in drafts["Invoices"]} == {"DRAFT"}
    bad = api(server.url, tokens, tenant, "/Invoices", params={"where": "Total > 5"})
    assert bad.status_code == 400 and bad.json()["Type"] == "ValidationException"

    target = next(i for i in sales if i["Status"] == "AUTHORISED")
    box.pay_invoice(tenant, target["InvoiceID"], Decimal("1.00"))
    since = (clock() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    changed = api(server.url, tokens, tenant, "/Invoices",
                  headers={"If-Modified-Since": since}).json()["Invoices"]
    assert [i["InvoiceID"] for i in changed] == [target["InvoiceID"]]
    assert Decimal(str(changed[0]["AmountPaid"])) == Decimal(str(target["AmountPaid"])) + 1


# --- Writing --------------------------------------------------------------------------


def test_history_email_rules_and_idempotent_replays(served) -> None:  # type: ignore[no-untyped-def]
    box, server, _ = served
    tokens = tokens_for(server.url)
    tenant = box.tenants()[0]["tenantId"]
    invoices = box.invoices(tenant)
    contacts = {c["ContactID"]: c for c in box.contacts(tenant)}
    open_one = next(i for i in invoices if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"
                    and contacts[i["Contact"]["ContactID"]].get("EmailAddress"))
    draft = next(i for i in invoices if i["Status"] == "DRAFT")
    no_email = next((i for i in invoices if i["Status"] == "AUTHORISED"
                     and not contacts[i["Contact"]["ContactID"]].get("EmailAddress")), None)

    for _ in range(3):
        sent = api(server.url, tokens, tenant, f"/Invoices/{open_one['InvoiceID']}/Email",
                   "POST", json={}, headers={"Idempotency-Key": "k-email-1"})
        assert sent.status_code == 204
        noted = api(server.url, tokens, tenant, f"/Invoices/{open_one['InvoiceID']}/History",
                    "PUT", json={"HistoryRecords": [{"Details": "Reminder 1"}]},
                    headers={"Idempotency-Key": "k-note-1"})
        assert noted.status_code == 200
    assert len(box.emails(tenant)) == 1
    assert [h["Details"] for h in box.history(tenant, open_one["InvoiceID"])] == ["Reminder 1"]
    reused = api(server.url, tokens, tenant, f"/Invoices/{draft['InvoiceID']}/Email", "POST",
                 json={}, headers={"Idempotency-Key": "k-email-1"})
    assert reused.status_code == 400
    refused = api(server.url, tokens, tenant, f"/Invoices/{draft['InvoiceID']}/Email", "POST",
                  json={})
    assert refused.status_code == 400
    assert "approved" in refused.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    if no_email is not None:
        assert api(server.url, tokens, tenant, f"/Invoices/{no_email['InvoiceID']}/Email",
                   "POST", json={}).status_code == 400
    too_long = api(server.url, tokens, tenant, f"/Invoices/{open_one['InvoiceID']}/History",
                   "PUT", json={"HistoryRecords": [{"Details": "x" * 2501}]})
    assert too_long.status_code == 400
    assert len(box.emails(tenant)) == 1


def test_editing_a_paid_invoice_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    box, server, _ = served
    tokens = tokens_for(server.url)
    tenant = box.tenants()[0]["tenantId"]
    part = next(i for i in box.invoices(tenant) if i["Status"] == "AUTHORISED")
    box.pay_invoice(tenant, part["InvoiceID"], Decimal("1.00"))
    answer = api(server.url, tokens, tenant, f"/Invoices/{part['InvoiceID']}", "POST",
                 json={"Invoices": [{"LineItems": [{"Description": "Late fee",
                                                    "UnitAmount": 10}]}]})
    assert answer.status_code == 400
    assert "payment or credit note allocated" in answer.text


# --- Limits ---------------------------------------------------------------------------


def test_minute_and_day_limits_answer_429_with_retry_after(clock) -> None:
    box = make_box(clock, per_minute_limit=5, per_day_limit=8)
    server = LiveServer(create_app(box))
    try:
        tokens = tokens_for(server.url)
        tenant = box.tenants()[0]["tenantId"]
        answers = [api(server.url, tokens, tenant, "/Organisation") for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert answers[0].headers["X-MinLimit-Remaining"] == "4"
        assert answers[-1].headers["X-Rate-Limit-Problem"] == "Minute"
        assert int(answers[-1].headers["Retry-After"]) == 60
        clock.advance(seconds=61)
        more = [api(server.url, tokens, tenant, "/Organisation") for _ in range(4)]
        assert [a.status_code for a in more] == [200, 200, 200, 429]
        assert more[-1].headers["X-Rate-Limit-Problem"] == "Daily"
        assert more[-1].headers["X-DayLimit-Remaining"] == "0"
        assert box.calls(tenant) == 10
    finally:
        server.stop()


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
        assert caught.value.retry_after == 60 and caught.value.problem == "Minute"
        assert box.calls(tenant) == 3  # no silent retries underneath
    finally:
        server.stop()


# --- Faithfulness to Xero's published descriptions ------------------------------------


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


def test_connections_match_the_identity_description(served) -> None:  # type: ignore[no-untyped-def]
    _, server, recorder = served
    tokens = tokens_for(server.url, tenants=2)
    requests.get(f"{server.url}/Connections", timeout=10,
                 headers={"Authorization": f"Bearer {tokens.access_token}"})
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (SPECS / "xero-identity.yaml").open() as handle:
        identity = yaml.load(handle, Loader=loader)
    # Xero writes these stamps without an offset ("2019-12-07T18:46:19.5165400", the spec's own
    # example), which RFC 3339 `date-time` rejects: the sandbox keeps Xero's real format and
    # the check relaxes only that format, nothing else.
    for name in ("createdDateUtc", "updatedDateUtc"):
        identity["components"]["schemas"]["Connection"]["properties"][name].pop("format")
    openapi = openapi_for(identity, server.url)
    request, response = next((q, r) for q, r in recorder.exchanges if q.path == "/Connections")
    openapi.validate_response(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
    assert len(json.loads(response.get_data())) == 2


def test_the_official_sdk_reads_and_writes_against_the_sandbox(served) -> None:  # type: ignore[no-untyped-def]
    from xero_python.accounting import AccountingApi
    from xero_python.accounting.models import HistoryRecord, HistoryRecords
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token

    box, server, _ = served
    tokens = tokens_for(server.url)
    tenant = box.tenants()[0]["tenantId"]
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT,
                                                              client_secret=SECRET)),
                       pool_threads=1,
                       oauth2_token_getter=lambda: {"access_token": tokens.access_token,
                                                    "token_type": "Bearer", "expires_in": None,
                                                    "scope": None})
    accounting = AccountingApi(client, base_url=f"{server.url}/api.xro/2.0")
    answer = accounting.get_invoices(tenant, page=1, page_size=1000, where='Type=="ACCREC"')
    assert len(answer.invoices) == len([i for i in box.invoices(tenant)
                                        if i["Type"] == "ACCREC"])
    first = answer.invoices[0]
    assert first.invoice_number.startswith("INV-") and first.due_date is not None
    assert answer.pagination.item_count == len(answer.invoices)
    saved = accounting.create_invoice_history(
        tenant, str(first.invoice_id),
        HistoryRecords(history_records=[HistoryRecord(details="Noted by the SDK")]))
    assert saved.history_records[0].details == "Noted by the SDK"
    assert box.history(tenant, str(first.invoice_id))[-1]["Details"] == "Noted by the SDK"
