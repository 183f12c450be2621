"""The Xero sandbox over real HTTP: OAuth, paging, filters, writes, limits, and its answers
checked against Xero's own OpenAPI descriptions and read by the official SDK."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from werkzeug.serving import make_server

from sandboxes.xero import ClientApp, SandboxConfig, XeroSandbox, create_app
from tests.conftest import SPECS_DIR

SPECS = SPECS_DIR / "xero"
CLIENT, SECRET = "dunwell-demo", "dunwell-demo-secret"
REDIRECT = "http://127.0.0.1:9/callback"
SCOPES = "openid profile email offline_access accounting.transactions accounting.contacts"
TODAY = date(2026, 11, 24)
ZERO = "00000000-0000-4000-8000-000000000000"


class Clock:
    """A settable clock: the sandbox takes all its time from it."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class Served:
    box: XeroSandbox
    url: str
    clock: Clock

    @property
    def first(self) -> str:
        return self.box.tenants()[0]["tenantId"]

    @property
    def second(self) -> str:
        return self.box.tenants()[1]["tenantId"]


@pytest.fixture
def start() -> Iterator[Any]:
    """Starts seeded sandboxes on free ports (config overrides allowed); stops them after."""
    servers = []

    def run(**config: Any) -> Served:
        clock = Clock()
        box = XeroSandbox(SandboxConfig(clock=clock, **config))
        box.seed_demo(TODAY)
        server = make_server("127.0.0.1", 0, create_app(box), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Served(box, f"http://127.0.0.1:{server.server_port}", clock)

    yield run
    for server in servers:
        server.shutdown()


@pytest.fixture
def served(start: Any) -> Served:
    return start()


# --- OAuth as a browser and an app would do it -----------------------------------------


class Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.forms.append({"action": found.get("action"), "method": found.get("method"),
                               "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append(found)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_url(base: str, challenge: str | None = None, redirect: str = REDIRECT,
                  client: str = CLIENT) -> str:
    query = {"response_type": "code", "client_id": client, "redirect_uri": redirect,
             "scope": SCOPES, "state": "state-1"}
    if challenge:
        query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return f"{base}/identity/connect/authorize?{urlencode(query)}"


def consent(base: str, tenants: int = 1, decision: str = "allow",
            challenge: str | None = None) -> requests.Response:
    """Open the consent page, tick the first `tenants` organisations, press a button."""
    page = requests.get(authorize_url(base, challenge), timeout=10)
    assert page.status_code == 200, page.text
    parser = Forms()
    parser.feed(page.text)
    form = parser.forms[0]
    assert form["method"] == "post"
    data: list[tuple[str, str]] = []
    ticked = 0
    for field in form["inputs"]:
        if field.get("type") == "hidden":
            data.append((field["name"], field.get("value") or ""))
        elif field.get("type") == "checkbox" and field["name"] == "tenant" and ticked < tenants:
            data.append(("tenant", field["value"]))
            ticked += 1
    data.append(("decision", decision))
    return requests.post(base + form["action"], data=data, allow_redirects=False, timeout=10)


def token_call(base: str, form: dict[str, str], secret: str = SECRET) -> requests.Response:
    return requests.post(f"{base}/connect/token", data=form, auth=(CLIENT, secret), timeout=10)


def connect(base: str, tenants: int = 1) -> dict[str, Any]:
    verifier, challenge = pkce()
    answer = consent(base, tenants, challenge=challenge)
    code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
    tokens = token_call(base, {"grant_type": "authorization_code", "code": code,
                               "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def refresh(base: str, refresh_token: str) -> requests.Response:
    return token_call(base, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def api(served: Served, tokens: dict[str, Any], path: str, method: str = "GET",
        tenant: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {tokens['access_token']}",
               "xero-tenant-id": served.first if tenant is None else tenant or None,
               "Accept": "application/json", **kwargs.pop("headers", {})}
    return requests.request(method, f"{served.url}/api.xro/2.0{path}", headers=headers,
                            timeout=10, **kwargs)


def exact(response: requests.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def test_consent_page_shows_the_app_the_scopes_and_every_organisation(served: Served) -> None:
    page = requests.get(authorize_url(served.url, pkce()[1]), timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Dunwell (demo)" in page.text and "accounting.transactions" in page.text
    for tenant in served.box.tenants():
        assert f'name="tenant" value="{tenant["tenantId"]}"' in page.text
        assert tenant["tenantName"] in page.text
    assert 'name="decision" value="allow">Allow access' in page.text
    assert 'name="decision" value="deny">Cancel' in page.text


def test_code_flow_with_pkce_gives_tokens_an_id_token_and_connections(served: Served) -> None:
    verifier, challenge = pkce()
    answer = consent(served.url, tenants=2, challenge=challenge)
    assert answer.status_code == 302
    location = urlparse(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["state-1"] and query["scope"] == [SCOPES]
    form = {"grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": REDIRECT, "code_verifier": verifier}
    tokens = token_call(served.url, form)
    assert tokens.status_code == 200 and tokens.headers["Cache-Control"] == "no-store"
    body = tokens.json()
    assert set(body) == {"id_token", "access_token", "expires_in", "token_type",
                         "refresh_token", "scope"}
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer"
    assert body["scope"] == SCOPES

    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"
    key = jwt.PyJWKClient(f"{served.url}/.well-known/openid-configuration/jwks") \
        .get_signing_key_from_jwt(body["id_token"]).key
    claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=CLIENT,
                        issuer="https://identity.xero.com", options={"verify_exp": False})
    assert {"sub", "email", "given_name", "family_name", "xero_userid",
            "authentication_event_id"} <= set(claims)

    connections = requests.get(f"{served.url}/connections", timeout=10, headers={
        "Authorization": f"Bearer {body['access_token']}"}).json()
    assert {c["tenantId"] for c in connections} == {t["tenantId"] for t in served.box.tenants()}
    assert {c["authEventId"] for c in connections} == {claims["authentication_event_id"]}
    # A code is good once.
    again = token_call(served.url, form)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}


def test_code_exchange_checks_verifier_redirect_expiry_and_allows_form_credentials(
        served: Served) -> None:
    def code_for(challenge: str | None) -> str:
        location = consent(served.url, challenge=challenge).headers["Location"]
        return parse_qs(urlparse(location).query)["code"][0]

    verifier, challenge = pkce()
    wrong = token_call(served.url, {"grant_type": "authorization_code", "code":
                                    code_for(challenge), "redirect_uri": REDIRECT,
                                    "code_verifier": pkce()[0]})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    elsewhere = token_call(served.url, {"grant_type": "authorization_code", "code":
                                        code_for(challenge), "redirect_uri":
                                        "http://127.0.0.1:9/other", "code_verifier": verifier})
    assert elsewhere.json() == {"error": "invalid_grant"}
    late = code_for(challenge)
    served.clock.advance(minutes=6)
    expired = token_call(served.url, {"grant_type": "authorization_code", "code": late,
                                      "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert expired.json() == {"error": "invalid_grant"}
    # PKCE is optional; client credentials may come as form fields instead of Basic.
    plain = requests.post(f"{served.url}/connect/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code_for(None), "redirect_uri": REDIRECT,
        "client_id": CLIENT, "client_secret": SECRET})
    assert plain.status_code == 200 and plain.json()["access_token"]


def test_deny_bad_redirect_unknown_client_and_no_organisation(served: Served) -> None:
    denied = consent(served.url, decision="deny")
    assert denied.status_code == 302
    assert parse_qs(urlparse(denied.headers["Location"]).query) == {
        "error": ["access_denied"], "state": ["state-1"]}
    bad = requests.get(authorize_url(served.url, redirect="https://evil.example/cb"),
                       timeout=10, allow_redirects=False)
    assert bad.status_code == 400 and "Location" not in bad.headers
    assert "redirect_uri" in bad.text and bad.headers["Content-Type"].startswith("text/html")
    unknown = requests.get(authorize_url(served.url, client="nobody"), timeout=10,
                           allow_redirects=False)
    assert unknown.status_code == 400 and "Location" not in unknown.headers
    none_chosen = consent(served.url, tenants=0)
    assert none_chosen.status_code == 400 and "Choose at least one organisation" in \
        none_chosen.text


def test_registered_redirect_uris_must_match_exactly(start: Any) -> None:
    served = start(clients={CLIENT: ClientApp(SECRET, ["https://app.example/cb"])})
    assert requests.get(authorize_url(served.url, redirect="https://app.example/cb"),
                        timeout=10).status_code == 200
    assert requests.get(authorize_url(served.url), timeout=10).status_code == 400


def test_wrong_secret_is_invalid_client_and_unknown_grant_is_refused(served: Served) -> None:
    tokens = connect(served.url)
    wrong = token_call(served.url, {"grant_type": "refresh_token",
                                    "refresh_token": tokens["refresh_token"]}, secret="nope")
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid_client"}
    odd = token_call(served.url, {"grant_type": "password"})
    assert odd.status_code == 400 and odd.json() == {"error": "unsupported_grant_type"}
    assert refresh(served.url, "never-issued").json() == {"error": "invalid_grant"}


def test_refresh_rotates_with_a_grace_window_then_refuses(served: Served) -> None:
    first = connect(served.url)
    second = refresh(served.url, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert api(served, second, "/Organisation").status_code == 200
    # The answer was "lost": the old token may be used again within 30 minutes, same answer.
    served.clock.advance(minutes=29)
    assert refresh(served.url, first["refresh_token"]).json() == second
    served.clock.advance(minutes=2)
    late = refresh(served.url, first["refresh_token"])
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}
    third = refresh(served.url, second["refresh_token"]).json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


def test_an_unused_refresh_token_dies_after_60_days(served: Served) -> None:
    tokens = connect(served.url)
    served.clock.advance(days=59)
    kept = refresh(served.url, tokens["refresh_token"]).json()
    served.clock.advance(days=61)
    dead = refresh(served.url, kept["refresh_token"])
    assert dead.status_code == 400 and dead.json() == {"error": "invalid_grant"}


def test_revocation_ends_tokens_and_connections(served: Served) -> None:
    tokens = connect(served.url)
    refused = requests.post(f"{served.url}/connect/revocation", timeout=10,
                            data={"token": tokens["refresh_token"]}, auth=(CLIENT, "nope"))
    assert refused.status_code == 401
    revoked = requests.post(f"{served.url}/connect/revocation", timeout=10,
                            data={"token": tokens["refresh_token"]}, auth=(CLIENT, SECRET))
    assert revoked.status_code == 200
    assert api(served, tokens, "/Organisation").status_code == 401
    assert refresh(served.url, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert requests.get(f"{served.url}/connections", timeout=10, headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401
    assert served.box.auth_events == {}


def test_expired_access_tokens_get_xeros_401(served: Served) -> None:
    tokens = connect(served.url)
    served.clock.advance(minutes=29)
    assert api(served, tokens, "/Organisation").status_code == 200
    served.clock.advance(minutes=1)
    timed_out = api(served, tokens, "/Organisation")
    assert timed_out.status_code == 401
    fresh = refresh(served.url, tokens["refresh_token"]).json()
    assert api(served, fresh, "/Organisation").status_code == 200
    assert requests.post(f"{served.url}/_sandbox/expire-tokens", timeout=10).status_code == 204
    expired = api(served, fresh, "/Organisation")
    assert expired.status_code == 401 and "WWW-Authenticate" in expired.headers
    body = expired.json()
    assert set(body) == {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}
    assert (body["Type"], body["Title"], body["Status"], body["Detail"], body["Extensions"]) \
        == (None, "Unauthorized", 401, "AuthenticationUnsuccessful", {})
    served.box.expire_access_tokens()  # the Python twin
    assert api(served, refresh(served.url, fresh["refresh_token"]).json(),
               "/Organisation").status_code == 200


def test_connections_filter_and_delete(served: Served) -> None:
    tokens = connect(served.url, tenants=2)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    listed = requests.get(f"{served.url}/Connections", headers=bearer, timeout=10)
    assert listed.status_code == 200 and "X-AppMinLimit-Remaining" in listed.headers
    connections = listed.json()
    event = connections[0]["authEventId"]
    for c in connections:
        assert set(c) == {"id", "tenantId", "tenantType", "tenantName", "authEventId",
                          "createdDateUtc", "updatedDateUtc"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", c["createdDateUtc"])
    assert len(requests.get(f"{served.url}/connections", headers=bearer, timeout=10,
                            params={"authEventId": event}).json()) == 2
    assert requests.get(f"{served.url}/connections", headers=bearer, timeout=10,
                        params={"authEventId": "00000000-0000-4000-8000-000000000000"}
                        ).json() == []
    gone = next(c for c in connections if c["tenantId"] == served.second)
    assert requests.delete(f"{served.url}/connections/{gone['id']}", headers=bearer,
                           timeout=10).status_code == 204
    assert requests.delete(f"{served.url}/connections/{gone['id']}", headers=bearer,
                           timeout=10).status_code == 404
    assert api(served, tokens, "/Organisation", tenant=served.second).status_code == 403
    assert api(served, tokens, "/Organisation").status_code == 200


def test_tenant_header_missing_or_not_connected(served: Served) -> None:
    tokens = connect(served.url)
    missing = api(served, tokens, "/Invoices", tenant="")
    assert missing.status_code == 400
    forbidden = api(served, tokens, "/Invoices", tenant=served.second)
    assert forbidden.status_code == 403
    body = forbidden.json()
    assert (body["Title"], body["Status"], body["Detail"]) == (
        "Forbidden", 403, "AuthorizationUnsuccessful")
    for name in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert name in forbidden.headers
    assert served.box.calls() == 0  # refused before they count


# --- Reading --------------------------------------------------------------------------


def test_invoice_paging_at_1000_and_100(served: Served) -> None:
    tokens = connect(served.url)
    everything = served.box.invoices(served.first)
    big = api(served, tokens, "/Invoices", params={"page": 1, "pageSize": 1000}).json()
    assert big["pagination"] == {"page": 1, "pageSize": 1000, "pageCount": 1,
                                 "itemCount": len(everything)}
    assert big["Status"] == "OK" and re.fullmatch(r"/Date\(\d+\)/", big["DateTimeUTC"])
    assert all(i["LineItems"] for i in big["Invoices"])
    seen: list[str] = []
    pages = -(-len(everything) // 100)
    for number in range(1, pages + 2):
        page = api(served, tokens, "/Invoices", params={"page": number}).json()
        assert page["pagination"] == {"page": number, "pageSize": 100, "pageCount": pages,
                                      "itemCount": len(everything)}
        seen += [i["InvoiceID"] for i in page["Invoices"]]
    assert seen == [i["InvoiceID"] for i in big["Invoices"]]  # one stable order
    assert sorted(seen) == sorted(i["InvoiceID"] for i in everything)
    stamps = [int(re.search(r"\d+", i["UpdatedDateUTC"]).group()) for i in big["Invoices"]]
    assert stamps == sorted(stamps)
    clamped = api(served, tokens, "/Invoices", params={"page": 1, "pageSize": 5000}).json()
    assert clamped["pagination"]["pageSize"] == 1000
    unpaged = api(served, tokens, "/Invoices").json()
    assert "pagination" not in unpaged and len(unpaged["Invoices"]) == len(everything)
    assert all("LineItems" not in i for i in unpaged["Invoices"])
    summary = api(served, tokens, "/Invoices", params={"page": 1, "summaryOnly": "true"})
    assert all("LineItems" not in i for i in summary.json()["Invoices"])


def test_where_statuses_ids_and_contact_filters(served: Served) -> None:
    tokens = connect(served.url)
    everything = served.box.invoices(served.first)

    def ids(**params: str) -> set[str]:
        answer = api(served, tokens, "/Invoices", params={"page": 1, "pageSize": 1000,
                                                           **params})
        assert answer.status_code == 200, answer.text
        return {i["InvoiceID"] for i in answer.json()["Invoices"]}

    def expect(keep: Any) -> set[str]:
        return {i["InvoiceID"] for i in everything if keep(i)}

    sales = expect(lambda i: i["Type"] == "ACCREC")
    assert ids(where='Type=="ACCREC"') == sales and sales != expect(lambda i: True)
    open_sales = expect(lambda i: i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED")
    assert ids(where='Type=="ACCREC" AND Status=="AUTHORISED"') == open_sales
    assert ids(where='Type=="ACCREC" && Status=="AUTHORISED"') == open_sales
    assert ids(where='Type=="ACCREC"', Statuses="AUTHORISED") == open_sales
    assert ids(Statuses="DRAFT,SUBMITTED") == expect(lambda i: i["Status"] in ("DRAFT",
                                                                               "SUBMITTED"))
    assert ids(where='Status=="PAID" OR Status=="VOIDED"') == expect(
        lambda i: i["Status"] in ("PAID", "VOIDED"))
    assert ids(where="AmountDue > 0 AND AmountPaid > 0") == expect(
        lambda i: i["AmountDue"] > 0 < i["AmountPaid"])
    assert ids(where=f"DueDate >= DateTime({TODAY.year}, {TODAY.month}, {TODAY.day})") == \
        expect(lambda i: i["DueDateString"][:10] >= TODAY.isoformat())
    contact = everything[0]["Contact"]["ContactID"]
    by_contact = expect(lambda i: i["Contact"]["ContactID"] == contact)
    assert ids(where=f'Contact.ContactID==Guid("{contact.upper()}")') == by_contact
    assert ids(ContactIDs=contact) == by_contact
    two = [everything[3]["InvoiceID"], everything[7]["InvoiceID"]]
    assert ids(IDs=",".join(two)) == set(two)
    assert ids(InvoiceNumbers="INV-0001,INV-0002") == expect(
        lambda i: i["InvoiceNumber"] in ("INV-0001", "INV-0002"))
    day = TODAY.isoformat()
    assert ids(where=f'DueDate >= DateTime.Parse("{day}T00:00:00")') == ids(
        where=f"DueDate >= DateTime({TODAY.year}, {TODAY.month}, {TODAY.day})")
    assert ids(where=f'DueDate>=DateTime.Parse("{day}")&&Type=="ACCREC"') == expect(
        lambda i: i["DueDateString"][:10] >= day and i["Type"] == "ACCREC")
    # Xero's answer to a where it cannot parse: QueryParseException, ErrorNumber 16.
    for bad, message in (('Type = = "ACCREC"', "Expression expected"),
                         ('Type=="ACCREC" AND', "Expression expected"),
                         ("Total > ", "Expression expected"),
                         ('Type=="ACCREC" AND ()', "Expression expected"),
                         ('Type=="ACCREC" "x"', "Syntax error"),
                         ('Colour=="red"', "No property or field 'Colour' exists in type "
                                           "'Invoice'"),
                         ('DueDate >= DateTime.Parse("soon")',
                          "String was not recognized as a valid DateTime.")):
        refused = api(served, tokens, "/Invoices", params={"where": bad})
        assert refused.status_code == 400, bad
        assert refused.json() == {"ErrorNumber": 16, "Type": "QueryParseException",
                                  "Message": message}, bad


def test_order_and_its_errors(served: Served) -> None:
    tokens = connect(served.url)
    numbers = [i["InvoiceNumber"] for i in api(served, tokens, "/Invoices", params={
        "page": 1, "pageSize": 1000, "where": 'Type=="ACCREC"',
        "order": "InvoiceNumber DESC"}).json()["Invoices"]]
    assert numbers == sorted(numbers, reverse=True)
    due = [i["DueDateString"] for i in api(served, tokens, "/Invoices", params={
        "page": 1, "pageSize": 1000, "order": "DueDate ASC, InvoiceNumber"}).json()["Invoices"]]
    assert due == sorted(due)
    assert api(served, tokens, "/Invoices", params={"order": "Colour"}).status_code == 400
    assert api(served, tokens, "/Invoices", params={"order": "Total UP"}).status_code == 400


def test_if_modified_since_in_every_format(served: Served) -> None:
    tokens = connect(served.url)
    target = next(i for i in served.box.invoices(served.first)
                  if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC")
    served.clock.advance(minutes=1)
    since = served.clock() - timedelta(seconds=1)
    served.box.pay_invoice(served.first, target["InvoiceID"], Decimal("1.00"))
    for header in (since.strftime("%Y-%m-%dT%H:%M:%S"),  # xero-python's naive isoformat
                   since.isoformat(), since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   format_datetime(since, usegmt=True)):
        changed = api(served, tokens, "/Invoices", headers={"If-Modified-Since": header},
                      params={"page": 1}).json()["Invoices"]
        assert [i["InvoiceID"] for i in changed] == [target["InvoiceID"]], header
        assert exact_decimal(changed[0]["AmountPaid"]) == target["AmountPaid"] + 1
    payments = api(served, tokens, "/Payments", headers={"If-Modified-Since": since.isoformat()},
                   params={"page": 1}).json()["Payments"]
    assert [p["Invoice"]["InvoiceID"] for p in payments] == [target["InvoiceID"]]
    contacts = api(served, tokens, "/Contacts", headers={"If-Modified-Since": since.isoformat()})
    assert contacts.json()["Contacts"] == []
    nonsense = api(served, tokens, "/Invoices", headers={"If-Modified-Since": "yesterday"})
    assert nonsense.status_code == 400


def exact_decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def test_contacts_and_payments_page_and_filter(served: Served) -> None:
    tokens = connect(served.url)
    contacts = served.box.contacts(served.first)
    first = api(served, tokens, "/Contacts", params={"page": 1, "pageSize": 10}).json()
    assert first["pagination"] == {"page": 1, "pageSize": 10, "pageCount": 5,
                                   "itemCount": len(contacts)}
    customers = api(served, tokens, "/Contacts", params={"where": "IsCustomer==true"}).json()
    assert len(customers["Contacts"]) == 40
    no_email = api(served, tokens, "/Contacts", params={
        "where": "IsCustomer==true AND EmailAddress==null"}).json()["Contacts"]
    assert 3 <= len(no_email) <= 5 and all("EmailAddress" not in c for c in no_email)
    name = contacts[0]["Name"].split()[0].lower()
    found = api(served, tokens, "/Contacts", params={
        "where": f'Name.Contains("{name}")'}).json()["Contacts"]
    assert found and all(name in c["Name"].lower() for c in found)
    payments = api(served, tokens, "/Payments", params={"page": 1, "pageSize": 1000}).json()
    count = payments["pagination"]["itemCount"]
    assert count == len(payments["Payments"]) > 10
    small = api(served, tokens, "/Payments", params={"page": 2, "pageSize": 10}).json()
    assert small["pagination"]["pageCount"] == -(-count // 10)
    assert len(small["Payments"]) == 10
    assert {p["PaymentType"] for p in payments["Payments"]} == {"ACCRECPAYMENT"}


def test_one_invoice_by_id_or_number_and_xeros_404(served: Served) -> None:
    tokens = connect(served.url)
    some = served.box.invoices(served.first)[5]
    by_id = api(served, tokens, f"/Invoices/{some['InvoiceID']}").json()["Invoices"]
    by_number = api(served, tokens, f"/Invoices/{some['InvoiceNumber']}").json()["Invoices"]
    assert by_id == by_number and by_id[0]["LineItems"]
    missing = api(served, tokens, "/Invoices/9f0b5b0a-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["Title"] == "Resource Not Found"
    assert missing.headers["X-MinLimit-Remaining"]


def test_amounts_are_exact_decimal_json_numbers(served: Served) -> None:
    tokens = connect(served.url)
    answer = api(served, tokens, "/Invoices", params={"page": 1, "pageSize": 1000})
    assert re.search(r'"Total":\d+\.\d\d[,}]', answer.text)
    assert not re.search(r'"(Total|SubTotal|AmountDue)":\d+\.\d{3,}', answer.text)
    for invoice in exact(answer)["Invoices"]:
        assert isinstance(invoice["Total"], Decimal)
        assert invoice["Total"] == invoice["SubTotal"] + invoice["TotalTax"]
        assert invoice["AmountDue"] == invoice["Total"] - invoice["AmountPaid"]
        for line in invoice["LineItems"]:
            assert line["LineAmount"] == (line["Quantity"] * line["UnitAmount"]).quantize(
                Decimal("0.01"), ROUND_HALF_UP)
            assert line["TaxAmount"] == (line["LineAmount"] * Decimal("0.20")).quantize(
                Decimal("0.01"), ROUND_HALF_UP)


# --- Writing --------------------------------------------------------------------------


def customer(served: Served, with_email: bool = True) -> dict[str, Any]:
    return next(c for c in served.box.contacts(served.first)
                if c["IsCustomer"] and bool(c.get("EmailAddress")) == with_email)


def test_creating_invoices_computes_totals_numbers_and_contacts(served: Served) -> None:
    tokens = connect(served.url)
    who = customer(served)
    created = api(served, tokens, "/Invoices", "PUT", json={"Invoices": [
        {"Type": "ACCREC", "Contact": {"ContactID": who["ContactID"]}, "Status": "AUTHORISED",
         "Date": "2026-11-24", "DueDate": "2026-12-24", "Reference": "Late fee INV-0001",
         "LineItems": [{"Description": "Late fee", "Quantity": 1, "UnitAmount": 25.5,
                        "AccountCode": "200"},
                       {"Description": "Admin", "Quantity": 3, "UnitAmount": 0.333,
                        "AccountCode": "200"}]},
        {"Type": "ACCREC", "Contact": {"Name": "Brand New Customer Ltd"},
         "LineAmountTypes": "Inclusive", "CurrencyCode": "EUR",
         "LineItems": [{"Description": "Gift card", "Quantity": 1, "UnitAmount": "120.00",
                        "AccountCode": "200"}]},
        {"Type": "ACCREC", "Contact": {"ContactID": who["ContactID"]},
         "LineAmountTypes": "NoTax", "LineItems": [{"Description": "Postage",
                                                    "UnitAmount": 4, "AccountCode": "200"}]},
    ]})
    assert created.status_code == 200, created.text
    late, inclusive, untaxed = exact(created)["Invoices"]
    assert (late["SubTotal"], late["TotalTax"], late["Total"]) == (
        Decimal("26.50"), Decimal("5.30"), Decimal("31.80"))
    assert late["Status"] == "AUTHORISED" and late["AmountDue"] == Decimal("31.80")
    assert late["DueDateString"] == "2026-12-24T00:00:00"
    assert [late["InvoiceNumber"], inclusive["InvoiceNumber"], untaxed["InvoiceNumber"]] == [
        "INV-0221", "INV-0222", "INV-0223"]
    assert (inclusive["Total"], inclusive["TotalTax"], inclusive["SubTotal"]) == (
        Decimal("120.00"), Decimal("20.00"), Decimal("100.00"))
    assert inclusive["Status"] == "DRAFT" and inclusive["CurrencyRate"] == Decimal("1.170000")
    assert (untaxed["TotalTax"], untaxed["Total"]) == (Decimal("0.00"), Decimal("4.00"))
    assert any(c["Name"] == "Brand New Customer Ltd" for c in served.box.contacts(served.first))
    listed = api(served, tokens, "/Invoices", params={"createdByMyApp": "true"}).json()
    assert {i["InvoiceID"] for i in listed["Invoices"]} == {
        late["InvoiceID"], inclusive["InvoiceID"], untaxed["InvoiceID"]}


def test_a_refused_element_saves_nothing_unless_errors_are_not_summarised(
        served: Served) -> None:
    tokens = connect(served.url)
    who = customer(served)
    before = len(served.box.invoices(served.first))
    good = {"Type": "ACCREC", "Contact": {"ContactID": who["ContactID"]},
            "LineItems": [{"Description": "Fee", "UnitAmount": 10, "AccountCode": "200"}]}
    bad = {"Type": "ACCREC", "Status": "AUTHORISED", "LineItems": []}
    refused = api(served, tokens, "/Invoices", "PUT", json={"Invoices": [good, bad]})
    assert refused.status_code == 400
    body = refused.json()
    assert body["Message"] == "A validation exception occurred"
    messages = [e["Message"] for e in body["Elements"][0]["ValidationErrors"]]
    assert "A Contact must be specified for this type of transaction" in messages
    assert "Invoices must have at least one line item" in messages
    assert len(served.box.invoices(served.first)) == before
    mixed = api(served, tokens, "/Invoices?summarizeErrors=false", "PUT",
                json={"Invoices": [good, bad]})
    assert mixed.status_code == 200
    saved, failed = mixed.json()["Invoices"]
    assert saved["StatusAttributeString"] == "OK" and not saved["HasErrors"]
    assert failed["StatusAttributeString"] == "ERROR" and failed["HasErrors"]
    assert failed["ValidationErrors"]
    assert len(served.box.invoices(served.first)) == before + 1
    duplicate = api(served, tokens, "/Invoices", "PUT", json={**good,
                                                              "InvoiceNumber": "INV-0001"})
    assert "Invoice # must be unique." in duplicate.text


def test_updates_follow_xeros_editing_rules(start: Any) -> None:
    served = start()
    tokens = connect(served.url)
    invoices = served.box.invoices(served.first)
    draft = next(i for i in invoices if i["Status"] == "DRAFT" and i["Type"] == "ACCREC")
    approved = api(served, tokens, f"/Invoices/{draft['InvoiceID']}", "POST", json={
        "Invoices": [{"Status": "AUTHORISED", "DueDate": "2026-12-31"}]})
    assert approved.status_code == 200, approved.text
    after = approved.json()["Invoices"][0]
    assert after["Status"] == "AUTHORISED" and after["DueDateString"].startswith("2026-12-31")
    assert after["UpdatedDateUTC"] != draft["UpdatedDateUTC"]

    part = next(i for i in invoices if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"
                and i["AmountPaid"] == 0)
    served.box.pay_invoice(served.first, part["InvoiceID"], Decimal("1.00"))
    lines = api(served, tokens, f"/Invoices/{part['InvoiceID']}", "POST", json={"LineItems": [
        {"Description": "Late fee", "UnitAmount": 10, "AccountCode": "200"}]})
    assert lines.status_code == 400
    assert lines.json()["Elements"][0]["ValidationErrors"][0]["Message"] == (
        "This document cannot be edited as it has a payment or credit note allocated to it.")
    assert lines.json()["Elements"][0]["InvoiceID"] == part["InvoiceID"]
    voided = api(served, tokens, f"/Invoices/{part['InvoiceID']}", "POST",
                 json={"Status": "VOIDED"})
    assert voided.status_code == 400
    reference = api(served, tokens, f"/Invoices/{part['InvoiceID']}", "POST",
                    json={"Reference": "Agreed plan"})
    assert reference.status_code == 200 and reference.json()["Invoices"][0]["Reference"] == \
        "Agreed plan"
    by_number = api(served, tokens, "/Invoices", "POST", json={
        "InvoiceNumber": part["InvoiceNumber"], "Reference": "By number"})
    assert by_number.json()["Invoices"][0]["InvoiceID"] == part["InvoiceID"]
    paid = next(i for i in invoices if i["Status"] == "PAID")
    assert api(served, tokens, f"/Invoices/{paid['InvoiceID']}", "POST",
               json={"Reference": "x"}).status_code == 400

    strict = start(lock_paid_invoices=True)
    strict_tokens = connect(strict.url)
    part = next(i for i in strict.box.invoices(strict.first)
                if i["Status"] == "AUTHORISED" and i["AmountPaid"] > 0)
    assert api(strict, strict_tokens, f"/Invoices/{part['InvoiceID']}", "POST",
               json={"Reference": "x"}).status_code == 400


def test_history_notes(served: Served) -> None:
    tokens = connect(served.url)
    target = served.box.invoices(served.first)[0]
    noted = api(served, tokens, f"/Invoices/{target['InvoiceID']}/History", "PUT",
                json={"HistoryRecords": [{"Details": "Reminder 1 sent"}]})
    assert noted.status_code == 200
    record = noted.json()["HistoryRecords"][0]
    assert record["Details"] == "Reminder 1 sent"
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", record["DateUTC"])
    assert record["DateUTCString"] == "2026-11-24T10:00:00"
    listed = api(served, tokens, f"/Invoices/{target['InvoiceID']}/History").json()
    assert [h["Details"] for h in listed["HistoryRecords"]] == ["Reminder 1 sent"]
    assert served.box.history(served.first, target["InvoiceID"]) == [{
        "InvoiceID": target["InvoiceID"], "Details": "Reminder 1 sent",
        "DateUTC": "2026-11-24T10:00:00+00:00", "User": "System Generated"}]
    too_long = api(served, tokens, f"/Invoices/{target['InvoiceID']}/History", "PUT",
                   json={"HistoryRecords": [{"Details": "x" * 2501}]})
    assert too_long.status_code == 400 and "2500" in too_long.text
    assert api(served, tokens, f"/Invoices/{target['InvoiceID']}/History", "PUT",
               json={"HistoryRecords": [{"Details": "x" * 2500}]}).status_code == 200
    # A note does not change the invoice.
    assert served.box.invoices(served.first)[0]["UpdatedDateUTC"] == target["UpdatedDateUTC"]


def test_history_lists_each_email_as_sent_next_to_the_notes(served: Served) -> None:
    """What a lookup past the Idempotency-Key's window reads: every email of the invoice as a
    "Sent" record with its time, oldest first among the notes; notes alone in box.history."""
    tokens = connect(served.url)
    contacts = {c["ContactID"]: c.get("EmailAddress")
                for c in served.box.contacts(served.first)}
    target = next(i for i in served.box.invoices(served.first)
                  if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"
                  and contacts[i["Contact"]["ContactID"]])
    path = f"/Invoices/{target['InvoiceID']}"
    assert api(served, tokens, f"{path}/History", "PUT",
               json={"HistoryRecords": [{"Details": "Before"}]}).status_code == 200
    served.clock.advance(minutes=5)
    assert api(served, tokens, f"{path}/Email", "POST", json={}).status_code == 204
    served.clock.advance(minutes=5)
    assert api(served, tokens, f"{path}/History", "PUT",
               json={"HistoryRecords": [{"Details": "After"}]}).status_code == 200
    listed = api(served, tokens, f"{path}/History").json()["HistoryRecords"]
    assert [(h["Changes"], h["DateUTCString"]) for h in listed] == [
        ("Note", "2026-11-24T10:00:00"), ("Sent", "2026-11-24T10:05:00"),
        ("Note", "2026-11-24T10:10:00")]
    assert contacts[target["Contact"]["ContactID"]] in listed[1]["Details"]
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", listed[1]["DateUTC"])
    assert [h["Details"] for h in served.box.history(served.first, target["InvoiceID"])] == [
        "Before", "After"]


def test_email_rules(served: Served) -> None:
    tokens = connect(served.url)
    invoices = served.box.invoices(served.first)
    emails = {c["ContactID"]: c.get("EmailAddress") for c in served.box.contacts(served.first)}
    unsent = next(i for i in invoices if i["Status"] == "SUBMITTED" and i["Type"] == "ACCREC"
                  and emails[i["Contact"]["ContactID"]])
    sent = api(served, tokens, f"/Invoices/{unsent['InvoiceID']}/Email", "POST", json={})
    assert sent.status_code == 204 and sent.text == ""
    [email] = served.box.emails(served.first)
    # Worded from the organisation's Sales Invoice template (Xero's standard one here).
    name, number = unsent["Contact"]["Name"], unsent["InvoiceNumber"]
    assert email == {"InvoiceID": unsent["InvoiceID"], "SentAt": "2026-11-24T10:00:00+00:00",
                     "To": emails[unsent["Contact"]["ContactID"]],
                     "Subject": f"Invoice {number} from {served.box.tenant(served.first).name}"
                                f" for {name}", "Body": email["Body"]}
    assert email["Body"].startswith(f"Hi {name},\n\nHere's invoice {number} for"
                                    f" {unsent['CurrencyCode']} {unsent['Total']:,.2f}.")
    now = next(i for i in served.box.invoices(served.first)
               if i["InvoiceID"] == unsent["InvoiceID"])
    assert now["SentToContact"] and now["UpdatedDateUTC"] != unsent["UpdatedDateUTC"]

    def refused(invoice: dict[str, Any]) -> str:
        answer = api(served, tokens, f"/Invoices/{invoice['InvoiceID']}/Email", "POST", json={})
        assert answer.status_code == 400
        return answer.json()["Elements"][0]["ValidationErrors"][0]["Message"]

    draft = next(i for i in invoices if i["Status"] == "DRAFT")
    assert "approved sales invoice" in refused(draft)
    bill = next(i for i in invoices if i["Type"] == "ACCPAY" and i["Status"] == "AUTHORISED")
    assert "approved sales invoice" in refused(bill)
    no_email = next(i for i in invoices if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"
                    and not emails[i["Contact"]["ContactID"]])
    assert "email address" in refused(no_email)
    paid = next(i for i in invoices if i["Status"] == "PAID"
                and emails[i["Contact"]["ContactID"]])
    assert api(served, tokens, f"/Invoices/{paid['InvoiceID']}/Email", "POST",
               json={}).status_code == 204
    assert len(served.box.emails(served.first)) == 2


def test_idempotency_keys_replay_without_repeating_the_effect(served: Served) -> None:
    tokens = connect(served.url)
    target = next(i for i in served.box.invoices(served.first)
                  if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"
                  and i["Contact"].get("EmailAddress"))
    path = f"/Invoices/{target['InvoiceID']}"
    notes = [api(served, tokens, f"{path}/History", "PUT", headers={"Idempotency-Key": "n-1"},
                 json={"HistoryRecords": [{"Details": "Reminder 1"}]}) for _ in range(3)]
    assert {n.status_code for n in notes} == {200}
    assert len({n.text for n in notes}) == 1  # the very same answer
    for _ in range(3):
        assert api(served, tokens, f"{path}/Email", "POST", json={},
                   headers={"Idempotency-Key": "e-1"}).status_code == 204
    assert [h["Details"] for h in served.box.history(served.first, target["InvoiceID"])] == [
        "Reminder 1"]
    assert len(served.box.emails(served.first)) == 1
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": target["Contact"]["ContactID"]},
               "LineItems": [{"Description": "Fee", "UnitAmount": 5, "AccountCode": "200"}]}
    seeded = len(served.box.invoices(served.first))
    made = [api(served, tokens, "/Invoices", "PUT", json=invoice,
                headers={"Idempotency-Key": "i-1"}) for _ in range(2)]
    assert made[0].json()["Invoices"][0]["InvoiceID"] == made[1].json()["Invoices"][0][
        "InvoiceID"]
    assert len(served.box.invoices(served.first)) == seeded + 1
    other = api(served, tokens, f"{path}/History", "PUT", headers={"Idempotency-Key": "n-1"},
                json={"HistoryRecords": [{"Details": "Something else"}]})
    assert other.status_code == 400 and "different request" in other.text
    assert api(served, tokens, f"{path}/History", "PUT", headers={"Idempotency-Key": "k" * 129},
               json={"HistoryRecords": [{"Details": "x"}]}).status_code == 400


def test_an_idempotency_key_is_kept_for_the_configured_window_only(start: Any) -> None:
    served = start(idempotency_window_seconds=600)
    tokens = connect(served.url)
    target = next(i for i in served.box.invoices(served.first)
                  if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC")
    path = f"/Invoices/{target['InvoiceID']}/History"

    def note(details: str = "Reminder 1") -> requests.Response:
        return api(served, tokens, path, "PUT", headers={"Idempotency-Key": "n-1"},
                   json={"HistoryRecords": [{"Details": details}]})

    first = note()
    served.clock.advance(seconds=599)
    assert note().text == first.text  # replayed: the same answer, no second note
    assert len(served.box.history(served.first, target["InvoiceID"])) == 1
    served.clock.advance(seconds=1)
    assert note().status_code == 200  # forgotten: carried out again
    assert len(served.box.history(served.first, target["InvoiceID"])) == 2
    # Forgotten means free: the key may now name a different request.
    served.clock.advance(seconds=600)
    assert note("Something else").status_code == 200


def test_credit_notes_are_created_listed_and_allocated_as_in_xero(
        served: Served, accounting_spec: dict[str, Any]) -> None:
    openapi = openapi_for(accounting_spec, f"{served.url}/api.xro/2.0")
    tokens = connect(served.url)
    base = served.box.tenants()[0]["baseCurrency"]
    invoices = served.box.invoices(served.first)
    target = next(i for i in invoices if i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED"
                  and i["AmountPaid"] > 0 and i["AmountDue"] > 20
                  and i["CurrencyCode"] == base)
    invoice_path = f"/Invoices/{target['InvoiceID']}"
    contact = target["Contact"]["ContactID"]
    answers: list[requests.Response] = []

    def call(path: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        answer = api(served, tokens, path, method, **kwargs)
        answers.append(answer)
        return answer

    def errors(answer: requests.Response) -> list[str]:
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
        return [e["Message"] for element in body["Elements"]
                for e in element["ValidationErrors"]]

    def invoice() -> dict[str, Any]:
        return exact(call(invoice_path))["Invoices"][0]

    note = {"Type": "ACCRECCREDIT", "Status": "AUTHORISED", "Contact": {"ContactID": contact},
            "Date": "2026-11-24", "LineAmountTypes": "NoTax", "CurrencyCode": base,
            "Reference": "Early-payment discount (ref DW-TEST00001)",
            "LineItems": [{"Description": "Early-payment discount (ref DW-TEST00001)",
                           "Quantity": 1, "UnitAmount": "10.00", "AccountCode": "200",
                           "TaxType": "NONE"}]}
    made = [call("/CreditNotes", "PUT", json={"CreditNotes": [note]},
                 headers={"Idempotency-Key": "cn-1"}) for _ in range(2)]
    assert made[0].status_code == 200, made[0].text
    assert made[0].text == made[1].text and len(served.box.credit_notes(served.first)) == 1
    created = exact(made[0])["CreditNotes"][0]
    note_id = created["CreditNoteID"]
    assert (created["CreditNoteNumber"], created["Status"], created["Type"]) == (
        "CN-0001", "AUTHORISED", "ACCRECCREDIT")
    assert (created["Total"], created["RemainingCredit"], created["Allocations"]) == (
        Decimal("10.00"), Decimal("10.00"), [])

    where = f'Contact.ContactID==Guid("{contact}") AND Reference.Contains("DW-TEST00001")'
    listed = exact(call("/CreditNotes", params={"where": where, "page": 1}))
    assert [n["CreditNoteID"] for n in listed["CreditNotes"]] == [note_id]
    assert listed["pagination"]["itemCount"] == 1
    assert exact(call("/CreditNotes", params={"where": 'Reference=="nothing"'}))[
        "CreditNotes"] == []
    assert exact(call("/CreditNotes/CN-0001"))["CreditNotes"][0]["CreditNoteID"] == note_id
    assert api(served, tokens, f"/CreditNotes/{ZERO}").status_code == 404  # spec has no 404

    allocations = f"/CreditNotes/{note_id}/Allocations"
    due = target["AmountDue"]

    def allocation(amount: str, invoice_id: str = target["InvoiceID"]) -> dict[str, Any]:
        return {"Allocations": [{"Amount": amount, "Invoice": {"InvoiceID": invoice_id},
                                 "Date": "2026-11-24"}]}

    applied = [call(allocations, "PUT", json=allocation("4.00"),
                    headers={"Idempotency-Key": "al-1"}) for _ in range(2)]
    assert applied[0].status_code == 200, applied[0].text
    assert applied[0].text == applied[1].text
    [made_allocation] = exact(applied[0])["Allocations"]
    assert made_allocation["Amount"] == Decimal("4.00")
    assert made_allocation["Invoice"]["InvoiceID"] == target["InvoiceID"]
    after = invoice()
    assert (after["AmountDue"], after["AmountCredited"], after["Status"]) == (
        due - Decimal("4.00"), Decimal("4.00"), "AUTHORISED")
    assert [(c["CreditNoteID"], c["AppliedAmount"]) for c in after["CreditNotes"]] == [
        (note_id, Decimal("4.00"))]
    credited = exact(call(f"/CreditNotes/{note_id}"))["CreditNotes"][0]
    assert credited["RemainingCredit"] == Decimal("6.00") and len(credited["Allocations"]) == 1

    # More than the credit left, or than the invoice owes: refused, and nothing changes.
    assert any("remaining credit" in m for m in errors(call(allocations, "PUT",
                                                            json=allocation("7.00"))))
    served.box.pay_invoice(served.first, target["InvoiceID"], due - Decimal("9.00"))
    assert "Credit Note cannot be allocated as amount is greater than amount outstanding" in \
        errors(call(allocations, "PUT", json=allocation("5.50")))
    assert invoice()["AmountDue"] == Decimal("5.00")
    assert exact(call(f"/CreditNotes/{note_id}"))["CreditNotes"][0]["RemainingCredit"] == \
        Decimal("6.00")
    # The rest of what is due: the invoice is paid off.
    assert call(allocations, "PUT", json=allocation("5.00")).status_code == 200
    paid = invoice()
    assert (paid["Status"], paid["AmountDue"], paid["AmountCredited"]) == (
        "PAID", Decimal("0.00"), Decimal("9.00"))
    assert "FullyPaidOnDate" in paid and len(paid["CreditNotes"]) == 2
    assert "The invoice you are trying to allocate to has already been paid off" in errors(
        call(allocations, "PUT", json=allocation("1.00")))
    # Another contact's invoice, a bill, a draft credit note, a missing date.
    other = next(i for i in invoices if i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED"
                 and i["Contact"]["ContactID"] != contact and i["CurrencyCode"] == base)
    assert "The credit note and the invoice must be for the same contact" in errors(
        call(allocations, "PUT", json=allocation("1.00", other["InvoiceID"])))
    bill = next(i for i in invoices if i["Type"] == "ACCPAY" and i["Status"] == "AUTHORISED")
    assert "Credit Note cannot be allocated to an incorrect invoice type" in errors(
        call(allocations, "PUT", json=allocation("1.00", bill["InvoiceID"])))
    draft = exact(call("/CreditNotes", "PUT", json={**note, "Status": "DRAFT"}))[
        "CreditNotes"][0]
    assert draft["Status"] == "DRAFT" and draft["CreditNoteNumber"] == "CN-0002"
    assert any("approved" in m for m in errors(call(
        f"/CreditNotes/{draft['CreditNoteID']}/Allocations", "PUT",
        json=allocation("1.00", other["InvoiceID"]))))
    assert "Date is required" in errors(call(allocations, "PUT", json={"Allocations": [
        {"Amount": "1.00", "Invoice": {"InvoiceID": other["InvoiceID"]}}]}))
    # An allocated credit note keeps its lines; its reference can change.
    assert "This document cannot be edited as it has a payment or credit note allocated to " \
        "it." in errors(call(f"/CreditNotes/{note_id}", "POST", json={"LineItems": [
            {"Description": "x", "UnitAmount": 1, "AccountCode": "200"}]}))
    renamed = call("/CreditNotes", "POST", json={"CreditNoteID": note_id, "Reference": "Kept"})
    assert renamed.status_code == 200 and renamed.json()["CreditNotes"][0]["Reference"] == "Kept"
    assert errors(call("/CreditNotes", "PUT", json={"CreditNotes": [
        {"Type": "ACCRECCREDIT", "Contact": {"ContactID": contact}, "Status": "AUTHORISED",
         "LineItems": []}]})) == ["Credit notes must have at least one line item"]
    for answer in answers:
        conforms(openapi, answer)


def test_online_invoice_link_and_page(served: Served) -> None:
    tokens = connect(served.url)
    invoices = served.box.invoices(served.first)
    target = next(i for i in invoices if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC")
    answer = api(served, tokens, f"/Invoices/{target['InvoiceID']}/OnlineInvoice")
    url = answer.json()["OnlineInvoices"][0]["OnlineInvoiceUrl"]
    assert url.startswith("https://in.xero.com/online/")  # https, as Xero sends it
    page = requests.get(url.replace("https://in.xero.com", served.url), timeout=10)
    assert page.status_code == 200 and target["InvoiceNumber"] in page.text
    draft = next(i for i in invoices if i["Status"] == "DRAFT")
    assert api(served, tokens, f"/Invoices/{draft['InvoiceID']}/OnlineInvoice"
               ).status_code == 400


def test_online_invoice_links_can_point_at_the_sandbox_itself(start: Any) -> None:
    served = start(invoice_link_base=None)  # the demo's choice: links that open locally
    tokens = connect(served.url)
    target = next(i for i in served.box.invoices(served.first)
                  if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC")
    url = api(served, tokens, f"/Invoices/{target['InvoiceID']}/OnlineInvoice").json()[
        "OnlineInvoices"][0]["OnlineInvoiceUrl"]
    assert url.startswith(served.url + "/online/")
    assert requests.get(url, timeout=10).status_code == 200


# --- Limits ---------------------------------------------------------------------------


LIMIT_HEADERS = ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")


def test_the_minute_limit_answers_429_until_a_slot_frees(start: Any) -> None:
    served = start(per_minute_limit=5)
    tokens = connect(served.url)
    answers = []
    for call in range(6):
        served.clock.advance(seconds=2 if call else 0)
        answers.append(api(served, tokens, "/Organisation"))
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-MinLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0",
                                                                     "0"]
    assert answers[0].headers["X-DayLimit-Remaining"] == "4999"
    assert answers[0].headers["X-AppMinLimit-Remaining"] == "9999"
    limited = answers[-1]
    assert limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert limited.headers["Retry-After"] == "50"  # the first call leaves the window then
    assert all(name in limited.headers for name in LIMIT_HEADERS)
    served.clock.advance(seconds=49)
    assert api(served, tokens, "/Organisation").status_code == 429
    served.clock.advance(seconds=1)
    assert api(served, tokens, "/Organisation").status_code == 200
    assert served.box.calls(served.first) == 8 and served.box.calls() == 8


def test_the_daily_limit_is_a_rolling_24_hours(start: Any) -> None:
    served = start(per_day_limit=3)
    tokens = connect(served.url)
    assert api(served, tokens, "/Organisation").status_code == 200  # 10:00
    served.clock.advance(hours=13)
    tokens = refresh(served.url, tokens["refresh_token"]).json()
    assert [api(served, tokens, "/Organisation").status_code for _ in range(3)] == [
        200, 200, 429]  # 23:00: the day holds three calls
    refused = api(served, tokens, "/Organisation")
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert refused.headers["Retry-After"] == str(11 * 3600)  # 24 h after the 10:00 call
    served.clock.advance(hours=2)  # past 00:00 UTC: no new day yet
    tokens = refresh(served.url, tokens["refresh_token"]).json()
    assert api(served, tokens, "/Organisation").status_code == 429
    served.clock.advance(hours=9)  # 10:00 the next day: the first call has left the window
    tokens = refresh(served.url, tokens["refresh_token"]).json()
    answer = api(served, tokens, "/Organisation")
    assert answer.status_code == 200 and answer.headers["X-DayLimit-Remaining"] == "0"


def test_the_daily_limit_can_count_calendar_days(start: Any) -> None:
    served = start(per_day_limit=3, rolling_day=False)
    tokens = connect(served.url)
    answers = [api(served, tokens, "/Organisation") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["X-Rate-Limit-Problem"] == "day"
    assert answers[-1].headers["X-DayLimit-Remaining"] == "0"
    assert answers[-1].headers["Retry-After"] == str(14 * 3600)
    served.clock.advance(hours=14)
    tokens = refresh(served.url, tokens["refresh_token"]).json()
    assert api(served, tokens, "/Organisation").status_code == 200


def test_the_app_minute_limit_spans_tenants_and_problem_names_are_configurable(
        start: Any) -> None:
    served = start(app_minute_limit=3, rate_limit_problems={"appminute": "AppMinute"})
    tokens = connect(served.url, tenants=2)
    codes = [api(served, tokens, "/Organisation", tenant=t).status_code
             for t in (served.first, served.second, served.first, served.second)]
    assert codes == [200, 200, 200, 429]
    last = api(served, tokens, "/Organisation", tenant=served.second)
    assert last.headers["X-Rate-Limit-Problem"] == "AppMinute"


def test_more_than_the_concurrent_limit_in_flight_is_refused(start: Any) -> None:
    served = start(concurrent_limit=2, latency_seconds=0.4)
    tokens = connect(served.url)
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: api(served, tokens, "/Organisation"), range(5)))
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 3 and sum(a.status_code == 200 for a in answers) == 2
    assert {a.headers["X-Rate-Limit-Problem"] for a in refused} == {"concurrent"}
    assert {a.headers["Retry-After"] for a in refused} == {"1"}
    assert api(served, tokens, "/Organisation").status_code == 200


# --- The control API for tests and the demo -------------------------------------------


def test_control_api_and_index_page(served: Served) -> None:
    tokens = connect(served.url)
    assert requests.get(f"{served.url}/_sandbox/tenants", timeout=10).json() == \
        served.box.tenants()
    target = next(i for i in served.box.invoices(served.first)
                  if i["Status"] == "AUTHORISED" and i["AmountPaid"] == 0
                  and i["Type"] == "ACCREC" and i["Contact"].get("EmailAddress"))
    base = f"{served.url}/_sandbox/tenants/{served.first}"
    paid = requests.post(f"{base}/invoices/{target['InvoiceID']}/payments", timeout=10,
                         json={"amount": str(target["AmountDue"])})
    assert paid.status_code == 200 and paid.json()["Invoice"]["InvoiceID"] == target["InvoiceID"]
    after = api(served, tokens, f"/Invoices/{target['InvoiceID']}").json()["Invoices"][0]
    assert after["Status"] == "PAID" and exact_decimal(after["AmountDue"]) == 0
    assert after["FullyPaidOnDate"] and after["Payments"][-1]["PaymentID"] == \
        paid.json()["PaymentID"]
    too_much = requests.post(f"{base}/invoices/{target['InvoiceID']}/payments", timeout=10,
                             json={"amount": "1.00"})
    assert too_much.status_code == 400
    assert requests.post(f"{base}/invoices/nope/payments", json={"amount": "1"},
                         timeout=10).status_code == 404
    api(served, tokens, f"/Invoices/{target['InvoiceID']}/Email", "POST", json={})
    api(served, tokens, f"/Invoices/{target['InvoiceID']}/History", "PUT",
        json={"HistoryRecords": [{"Details": "Paid, thanks"}]})
    assert [e["InvoiceID"] for e in requests.get(f"{base}/emails", timeout=10).json()] == [
        target["InvoiceID"]]
    history = requests.get(f"{base}/history", params={"invoice_id": target["InvoiceID"]},
                           timeout=10).json()
    assert [h["Details"] for h in history] == ["Paid, thanks"]
    assert requests.get(f"{served.url}/_sandbox/calls", timeout=10).json() == {"calls": 3}
    assert requests.get(f"{served.url}/_sandbox/calls", params={"tenant_id": served.second},
                        timeout=10).json() == {"calls": 0}
    assert requests.get(f"{served.url}/_sandbox/tenants/nope/emails",
                        timeout=10).status_code == 404
    index = requests.get(served.url + "/", timeout=10)
    assert index.status_code == 200 and "Harbour Coffee Roasters Ltd" in index.text


# --- Seed data ------------------------------------------------------------------------


def test_seed_is_deterministic_and_shaped_for_the_demo() -> None:
    def seeded(seed: int = 7) -> XeroSandbox:
        box = XeroSandbox(SandboxConfig(seed=seed, clock=Clock()))
        box.seed_demo(TODAY)
        return box

    one, two = seeded(), seeded()
    assert one.tenants() == two.tenants()
    assert [(t["tenantName"], t["countryCode"], t["baseCurrency"]) for t in one.tenants()] == [
        ("Harbour Coffee Roasters Ltd", "GB", "GBP"), ("Fjellbekk Design AS", "NO", "NOK")]
    for tenant in one.tenants():
        tid = tenant["tenantId"]
        assert one.invoices(tid) == two.invoices(tid)
        assert one.contacts(tid) == two.contacts(tid)
        invoices, contacts = one.invoices(tid), one.contacts(tid)
        customers = [c for c in contacts if c["IsCustomer"]]
        assert len(customers) == 40
        assert sum(1 for c in customers if not c.get("EmailAddress")) == 4
        assert all(c["EmailAddress"].rsplit("@", 1)[1].split(".", 1)[1] in
                   ("example.com", "example.org", "example.no")
                   for c in contacts if c.get("EmailAddress"))
        # The paid history before the demo's invoices (sandboxes/habits.py): each customer's
        # invoices of the year and more before, all paid, by the customer's habit.
        history = [i for i in invoices if i["InvoiceNumber"].startswith("INV-H")]
        assert len(history) > 200 and all(i["Status"] == "PAID" and i["Payments"]
                                          for i in history)
        assert len({i["Contact"]["ContactID"] for i in history}) >= 30
        due = [(date.fromisoformat(i["DueDateString"][:10]) - TODAY).days for i in history]
        assert min(due) >= -420 and max(due) <= -95
        sales = [i for i in invoices if i["Type"] == "ACCREC" and i not in history]
        assert len(sales) >= 200 and any(i["Type"] == "ACCPAY" for i in invoices)
        assert sales[0]["InvoiceNumber"] == "INV-0001"
        assert {i["CurrencyCode"] for i in sales} >= {tenant["baseCurrency"], "EUR", "USD"}
        assert {i["Status"] for i in sales} >= {"AUTHORISED", "PAID", "DRAFT", "SUBMITTED",
                                                "VOIDED"}
        assert any(i["Status"] == "AUTHORISED" and i["AmountPaid"] > 0 for i in sales)
        assert all(i["Payments"] for i in sales if i["Status"] == "PAID")
        offsets = {(date.fromisoformat(i["DueDateString"][:10]) - TODAY).days for i in sales}
        assert {0, -3, -7, 7} <= offsets and min(offsets) >= -120 and max(offsets) <= 60
        assert min(offsets) <= -100 and max(offsets) >= 50
        due_today = [i for i in sales if i["DueDateString"].startswith(TODAY.isoformat())
                     and i["Status"] == "AUTHORISED"]
        assert len(due_today) >= 3
        midnight = int(datetime(2026, 11, 24, tzinfo=UTC).timestamp() * 1000)
        assert all(int(re.search(r"\d+", i["UpdatedDateUTC"]).group()) < midnight
                   for i in invoices)
        rate = Decimal("0.20") if tenant["countryCode"] == "GB" else Decimal("0.25")
        for invoice in invoices:
            for line in invoice["LineItems"]:
                assert line["TaxAmount"] == (line["LineAmount"] * rate).quantize(
                    Decimal("0.01"), ROUND_HALF_UP)
    assert seeded(8).tenants() != one.tenants()


# --- Faithfulness to Xero's published descriptions ------------------------------------


def load_spec(name: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (SPECS / name).open() as handle:
        return yaml.load(handle, Loader=loader)


@pytest.fixture(scope="session")
def accounting_spec() -> dict[str, Any]:
    return load_spec("xero_accounting.yaml")


def openapi_for(spec: dict[str, Any], base: str) -> OpenAPI:
    # The published file itself fails strict OpenAPI validation (e.g. string defaults on
    # booleans), so the document is taken as it is; every response is still fully checked.
    return OpenAPI.from_dict({**spec, "servers": [{"url": base}]},
                             config=Config(spec_validator_cls=None))


def conforms(openapi: OpenAPI, response: requests.Response) -> None:
    try:
        openapi.validate_response(RequestsOpenAPIRequest(response.request),
                                  RequestsOpenAPIResponse(response))
    except Exception as exc:
        raise AssertionError(f"{response.request.method} {response.request.url} "
                             f"{response.status_code}: {exc!r}") from exc


def test_answers_match_xeros_accounting_openapi(served: Served,
                                                accounting_spec: dict[str, Any]) -> None:
    openapi = openapi_for(accounting_spec, f"{served.url}/api.xro/2.0")
    tokens = connect(served.url)
    invoices = served.box.invoices(served.first)
    target = next(i for i in invoices if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"
                  and i["AmountPaid"] > 0)
    who = customer(served)
    new_invoice = {"Type": "ACCREC", "Contact": {"ContactID": who["ContactID"]},
                   "Status": "AUTHORISED", "DueDate": "2026-12-24",
                   "LineItems": [{"Description": "Late fee", "Quantity": 1,
                                  "UnitAmount": 25.5, "AccountCode": "200"}]}
    answers = [
        api(served, tokens, "/Organisation"),
        api(served, tokens, "/Invoices", params={"page": 1, "pageSize": 1000}),
        api(served, tokens, "/Invoices", params={"page": 2, "pageSize": 100,
                                                 "where": 'Type=="ACCREC"'}),
        api(served, tokens, "/Invoices"),
        api(served, tokens, f"/Invoices/{target['InvoiceID']}"),
        api(served, tokens, "/Contacts", params={"page": 1, "pageSize": 1000}),
        api(served, tokens, "/Contacts"),
        api(served, tokens, "/Payments", params={"page": 1, "pageSize": 1000}),
        api(served, tokens, f"/Invoices/{target['InvoiceID']}/OnlineInvoice"),
        api(served, tokens, f"/Invoices/{target['InvoiceID']}/History", "PUT",
            json={"HistoryRecords": [{"Details": "Reminder 1 of 4 sent"}]}),
        api(served, tokens, f"/Invoices/{target['InvoiceID']}/History"),
        api(served, tokens, "/Invoices", "PUT", json={"Invoices": [new_invoice]}),
        api(served, tokens, "/Invoices", "POST", json={"Invoices": [new_invoice]}),
        api(served, tokens, f"/Invoices/{target['InvoiceID']}", "POST",
            json={"Invoices": [{"Reference": "Plan agreed"}]}),
        api(served, tokens, "/Invoices?summarizeErrors=false", "PUT",
            json={"Invoices": [new_invoice, {"Type": "ACCREC"}]}),
        api(served, tokens, "/Invoices", "PUT", json={"Invoices": [{"Type": "ACCREC"}]}),
        api(served, tokens, f"/Invoices/{target['InvoiceID']}", "POST", json={
            "LineItems": [{"Description": "x", "UnitAmount": 1, "AccountCode": "200"}]}),
    ]
    assert [a.status_code for a in answers] == [200] * 15 + [400, 400]
    for answer in answers:
        conforms(openapi, answer)


def test_connections_match_the_identity_description(served: Served) -> None:
    identity = load_spec("xero-identity.yaml")
    # Xero writes these stamps without an offset ("2019-12-07T18:46:19.5165400", the spec's
    # own example), which RFC 3339 `date-time` rejects: the sandbox keeps Xero's real format
    # and the check relaxes only that format, nothing else.
    for name in ("createdDateUtc", "updatedDateUtc"):
        identity["components"]["schemas"]["Connection"]["properties"][name].pop("format")
    openapi = openapi_for(identity, served.url)
    tokens = connect(served.url, tenants=2)
    answer = requests.get(f"{served.url}/Connections", timeout=10,
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    conforms(openapi, answer)
    assert len(answer.json()) == 2


# --- The official SDK -----------------------------------------------------------------


def test_the_official_sdk_reads_and_writes_against_the_sandbox(served: Served) -> None:
    from xero_python.accounting import AccountingApi
    from xero_python.accounting.models import (
        Contact,
        HistoryRecord,
        HistoryRecords,
        Invoice,
        Invoices,
        LineItem,
        RequestEmpty,
    )
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token
    from xero_python.exceptions import HTTPStatusException

    tokens = connect(served.url)
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT,
                                                              client_secret=SECRET)),
                       pool_threads=1,
                       oauth2_token_getter=lambda: {"access_token": tokens["access_token"],
                                                    "token_type": "Bearer", "expires_in": None,
                                                    "scope": None})
    accounting = AccountingApi(client, base_url=f"{served.url}/api.xro/2.0")
    tenant = served.first
    answer = accounting.get_invoices(tenant, page=1, page_size=1000, where='Type=="ACCREC"',
                                     order="UpdatedDateUTC ASC")
    sales = [i for i in served.box.invoices(tenant) if i["Type"] == "ACCREC"]
    assert len(answer.invoices) == len(sales) == answer.pagination.item_count
    first = answer.invoices[0]
    assert first.invoice_number.startswith("INV-") and isinstance(first.due_date, date)
    assert first.line_items and first.updated_date_utc.tzinfo is not None
    organisation = accounting.get_organisations(tenant).organisations[0]
    assert organisation.timezone.value == "GMTSTANDARDTIME"
    assert organisation.base_currency.value == "GBP"

    target = next(i for i in sales if i["Status"] == "AUTHORISED"
                  and i["Contact"].get("EmailAddress"))
    saved = accounting.create_invoice_history(
        tenant, target["InvoiceID"],
        HistoryRecords(history_records=[HistoryRecord(details="Noted by the SDK")]))
    assert saved.history_records[0].details == "Noted by the SDK"
    assert served.box.history(tenant, target["InvoiceID"])[-1]["Details"] == "Noted by the SDK"
    accounting.email_invoice(tenant, target["InvoiceID"], RequestEmpty())
    assert served.box.emails(tenant)[-1]["InvoiceID"] == target["InvoiceID"]
    link = accounting.get_online_invoice(tenant, target["InvoiceID"])
    assert link.online_invoices[0].online_invoice_url.startswith("https://in.xero.com/online/")

    since = served.clock() - timedelta(minutes=1)
    served.box.pay_invoice(tenant, target["InvoiceID"], Decimal("1.00"))
    changed = accounting.get_invoices(tenant, if_modified_since=since, page=1)
    assert [str(i.invoice_id) for i in changed.invoices] == [target["InvoiceID"]]
    created = accounting.create_invoices(tenant, Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=target["Contact"]["ContactID"]),
        status="AUTHORISED", due_date=date(2026, 12, 24),
        line_items=[LineItem(description="Late fee", quantity=Decimal(1),
                             unit_amount=Decimal("12.50"), account_code="200")])]))
    made = created.invoices[0]
    assert made.total == 15.0 and made.due_date == date(2026, 12, 24)
    assert accounting.get_contacts(tenant, page=1).contacts
    assert accounting.get_payments(tenant, page=1).payments
    with pytest.raises(HTTPStatusException):
        accounting.get_invoice(tenant, "9f0b5b0a-0000-4000-8000-000000000000")


def test_the_official_sdk_creates_lists_and_allocates_credit_notes(served: Served) -> None:
    from xero_python.accounting import AccountingApi
    from xero_python.accounting.models import (
        Allocation,
        Allocations,
        Contact,
        CreditNote,
        CreditNotes,
        Invoice,
        LineItem,
    )
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token

    tokens = connect(served.url)
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT,
                                                              client_secret=SECRET)),
                       pool_threads=1,
                       oauth2_token_getter=lambda: {"access_token": tokens["access_token"],
                                                    "token_type": "Bearer", "expires_in": None,
                                                    "scope": None})
    accounting = AccountingApi(client, base_url=f"{served.url}/api.xro/2.0")
    tenant = served.first
    target = next(i for i in served.box.invoices(tenant) if i["Type"] == "ACCREC"
                  and i["Status"] == "AUTHORISED" and i["AmountDue"] > 5
                  and i["CurrencyCode"] == served.box.tenants()[0]["baseCurrency"])
    created = accounting.create_credit_notes(tenant, CreditNotes(credit_notes=[CreditNote(
        type="ACCRECCREDIT", status="AUTHORISED", reference="Discount (ref DW-SDK0000001)",
        contact=Contact(contact_id=target["Contact"]["ContactID"]), date=TODAY,
        line_items=[LineItem(description="Discount (ref DW-SDK0000001)",
                             quantity=Decimal(1), unit_amount=Decimal("3.10"),
                             account_code="200", tax_type="NONE")])]),
        idempotency_key="sdk-cn-1")
    note = created.credit_notes[0]
    assert note.credit_note_number == "CN-0001" and note.total == Decimal("3.10")
    allocated = accounting.create_credit_note_allocation(
        tenant, note.credit_note_id, Allocations(allocations=[Allocation(
            amount=Decimal("3.10"), invoice=Invoice(invoice_id=target["InvoiceID"]),
            date=TODAY)]), idempotency_key="sdk-al-1")
    assert allocated.allocations[0].amount == Decimal("3.10")
    listed = accounting.get_credit_notes(
        tenant, where='Reference.Contains("DW-SDK0000001")', page=1)
    assert [n.credit_note_id for n in listed.credit_notes] == [note.credit_note_id]
    assert listed.credit_notes[0].remaining_credit == 0
    assert listed.credit_notes[0].status == "PAID"
    invoice = accounting.get_invoice(tenant, target["InvoiceID"]).invoices[0]
    assert invoice.amount_credited == Decimal("3.10")
    assert [c.credit_note_id for c in invoice.credit_notes] == [note.credit_note_id]


def test_routes_ignore_case_and_writes_may_be_xml(served: Served) -> None:
    tokens = connect(served.url)
    upper = api(served, tokens, "/Invoices", params={"page": 1}).json()["Invoices"]
    lower = requests.get(f"{served.url}/API.XRO/2.0/invoices", params={"page": 1}, timeout=10,
                         headers={"Authorization": f"Bearer {tokens['access_token']}",
                                  "xero-tenant-id": served.first}).json()["Invoices"]
    assert [i["InvoiceID"] for i in lower] == [i["InvoiceID"] for i in upper]
    target = upper[0]["InvoiceID"]
    noted = requests.put(
        f"{served.url}/api.xro/2.0/invoices/{target}/history", timeout=10,
        data="<HistoryRecords><HistoryRecord><Details>By XML</Details></HistoryRecord>"
             "</HistoryRecords>",
        headers={"Authorization": f"Bearer {tokens['access_token']}",
                 "xero-tenant-id": served.first, "Content-Type": "application/xml"})
    assert noted.status_code == 200, noted.text
    assert served.box.history(served.first, target)[-1]["Details"] == "By XML"
    entity = '<!DOCTYPE x [<!ENTITY a "aaaa">]><HistoryRecord><Details>&a;</Details>' \
             '</HistoryRecord>'
    refused = api(served, tokens, f"/Invoices/{target}/History", "PUT", data=entity,
                  headers={"Content-Type": "application/xml"})
    assert refused.status_code == 400 and refused.json()["Type"] == "ValidationException"
    # Every contact carries what every contact in Xero's examples carries.
    contact = api(served, tokens, "/Contacts").json()["Contacts"][0]
    assert (contact["ContactGroups"], contact["ContactPersons"], contact["HasValidationErrors"],
            contact["BankAccountDetails"]) == ([], [], False, "")
    payment = api(served, tokens, "/Payments").json()["Payments"][0]
    assert payment["HasAccount"] is True and payment["BankAmount"] > 0
    assert (upper[0]["Prepayments"], upper[0]["Overpayments"]) == ([], [])
    currencies = api(served, tokens, "/Currencies").json()["Currencies"]
    assert {"Code": "GBP", "Description": "British Pound"} in currencies


def test_records_carry_every_field_the_descriptions_examples_show(served: Served) -> None:
    """Each record Dunwell reads, against the union of the keys of the examples in Xero's
    description, one level down too; what the sandbox leaves out on purpose is named."""
    spec = yaml.safe_load((SPECS / "xero_accounting.yaml").read_text())
    tokens = connect(served.url)
    made = api(served, tokens, "/CreditNotes", "PUT", json={"CreditNotes": [{
        "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "Date": TODAY.isoformat(),
        "Contact": {"ContactID": served.box.contacts(served.first)[0]["ContactID"]},
        "LineItems": [{"Description": "x", "UnitAmount": 5, "Quantity": 1,
                       "AccountCode": "200"}]}]})
    assert made.status_code == 200, made.text
    # Sent only when set, or (UpdatedDateUTCString) in no Xero answer quoted in public.
    optional = {"RepeatingInvoiceID", "UpdatedDateUTCString", "FullyPaidOnDate", "Balances",
                "CompanyNumber", "PurchasesDefaultLineAmountType", "SalesDefaultLineAmountType",
                "TaxNumbeType", "BatchPayment", "BatchPaymentID", "EndOfYearLockDate",
                "PeriodLockDate", "TaxNumber", "EmailAddress"}
    for path, key, nested in (("/Invoices", "Invoices", ("LineItems", "Payments", "Contact")),
                              ("/Contacts", "Contacts", ("Addresses", "Phones")),
                              ("/Payments", "Payments", ("Invoice", "Account")),
                              ("/CreditNotes", "CreditNotes", ("LineItems", "Contact")),
                              ("/Organisation", "Organisations", ())):
        examples = spec["paths"][path]["get"]["responses"]["200"]["content"][
            "application/json"]["example"][key]
        ours = api(served, tokens, path, params={"page": 1}).json()[key]
        assert ours, path
        wanted = set().union(*(set(e) for e in examples)) - optional
        for record in ours:
            assert wanted <= set(record), (path, sorted(wanted - set(record)))
        for field in nested:
            def keys(records: list[dict[str, Any]], name: str = field) -> set[str]:
                found: set[str] = set()
                for record in records:
                    value = record.get(name)
                    for item in value if isinstance(value, list) else [value]:
                        if isinstance(item, dict):
                            found |= set(item)
                return found
            assert keys(examples) - optional <= keys(ours), (path, field,
                                                             keys(examples) - keys(ours))
