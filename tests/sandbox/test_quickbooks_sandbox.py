"""The QuickBooks Online sandbox over real HTTP: Intuit's OAuth through intuitlib, the API
through python-quickbooks and raw calls, the query language, faults, limits, replays, CDC, and
its objects checked against Intuit's own Finance.xsd."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks import exceptions as qbx
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment
from werkzeug.serving import make_server

from sandboxes.quickbooks import QuickBooksSandbox, SandboxConfig, create_app
from tests.conftest import SPECS_DIR

SPECS = SPECS_DIR / "quickbooks"
CLIENT, SECRET = "dunwell-demo", "dunwell-demo-secret"
REDIRECT = "http://127.0.0.1:9/callback"
TODAY = date(2026, 11, 24)
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 02:00 in Los Angeles, 10:00 in London


class Clock:
    """A settable clock: the sandbox takes all its time from it."""

    def __init__(self, moment: datetime = START) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class Served:
    box: QuickBooksSandbox
    url: str
    clock: Clock

    @property
    def first(self) -> str:
        return self.box.companies()[0]["realmId"]

    @property
    def second(self) -> str:
        return self.box.companies()[1]["realmId"]

    @property
    def discovery(self) -> str:
        return f"{self.url}/.well-known/openid_configuration"


@pytest.fixture
def start() -> Iterator[Any]:
    """Starts seeded sandboxes on free ports (config overrides allowed); stops them after."""
    servers = []

    def run(moment: datetime = START, **config: Any) -> Served:
        clock = Clock(moment)
        box = QuickBooksSandbox(SandboxConfig(clock=clock, **config))
        box.seed_demo(TODAY)
        server = make_server("127.0.0.1", 0, create_app(box), threaded=True)
        # A short poll: shutdown() waits for it, and the default 0.5 s adds up over the file.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return Served(box, f"http://127.0.0.1:{server.server_port}", clock)

    yield run
    for server in servers:
        server.shutdown()


@pytest.fixture
def served(start: Any) -> Served:
    return start()


# --- OAuth through intuitlib, as the app does it ------------------------------------------


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


def auth_client(served: Served, secret: str = SECRET) -> AuthClient:
    return AuthClient(CLIENT, secret, REDIRECT, environment=served.discovery)


def consent(served: Served, company: int = 0, decision: str = "allow",
            scopes: tuple[Scopes, ...] = (Scopes.ACCOUNTING,)) -> requests.Response:
    """Open intuitlib's authorization URL, choose a company on the form, press a button."""
    url = auth_client(served).get_authorization_url(list(scopes), state_token="state-1")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text
    parser = Forms()
    parser.feed(page.text)
    form = parser.forms[0]
    assert form["method"] == "post"
    realms = [f["value"] for f in form["inputs"] if f.get("type") == "radio"]
    data = [(f["name"], f.get("value") or "") for f in form["inputs"]
            if f.get("type") == "hidden"] + [("realmId", realms[company]),
                                             ("decision", decision)]
    return requests.post(served.url + form["action"], data=data, allow_redirects=False,
                         timeout=10)


def code_for(served: Served, company: int = 0,
             scopes: tuple[Scopes, ...] = (Scopes.ACCOUNTING,)) -> tuple[str, str]:
    query = parse_qs(urlparse(consent(served, company, scopes=scopes).headers["Location"]).query)
    return query["code"][0], query["realmId"][0]


def connect(served: Served, company: int = 0,
            scopes: tuple[Scopes, ...] = (Scopes.ACCOUNTING,)) -> AuthClient:
    code, realm = code_for(served, company, scopes)
    client = auth_client(served)
    client.get_bearer_token(code, realm_id=realm)
    return client


def api(served: Served, token: str | AuthClient, path: str, method: str = "GET",
        realm: str | None = None, **kwargs: Any) -> requests.Response:
    """A raw call to /v3/company/<realm>/<path>, asking for JSON as python-quickbooks does."""
    access = token if isinstance(token, str) else str(token.access_token)
    headers = {"Authorization": f"Bearer {access}", "Accept": "application/json",
               **kwargs.pop("headers", {})}
    params = {"minorversion": "75", **kwargs.pop("params", {})}
    return requests.request(method, f"{served.url}/v3/company/{realm or served.first}/{path}",
                            headers=headers, params=params, timeout=10, **kwargs)


def query(served: Served, token: str | AuthClient, statement: str,
          realm: str | None = None) -> requests.Response:
    return api(served, token, "query", realm=realm, params={"query": statement})


def exact(response: requests.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def test_discovery_document_points_intuitlib_at_the_sandbox(served: Served) -> None:
    answer = requests.get(served.discovery, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    doc = answer.json()
    assert doc["issuer"] == f"{served.url}/op/v1"
    assert doc["authorization_endpoint"] == f"{served.url}/connect/oauth2"
    assert doc["token_endpoint"] == f"{served.url}/oauth2/v1/tokens/bearer"
    assert doc["revocation_endpoint"] == f"{served.url}/v2/oauth2/tokens/revoke"
    assert doc["userinfo_endpoint"] == f"{served.url}/v1/openid_connect/userinfo"
    assert doc["jwks_uri"] == f"{served.url}/oauth2/v1/jwks"
    client = auth_client(served)
    assert (client.auth_endpoint, client.token_endpoint, client.revoke_endpoint,
            client.user_info_url, client.issuer_uri, client.jwks_uri) == (
        doc["authorization_endpoint"], doc["token_endpoint"], doc["revocation_endpoint"],
        doc["userinfo_endpoint"], doc["issuer"], doc["jwks_uri"])
    keys = requests.get(doc["jwks_uri"], timeout=10).json()["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("RSA", "RS256", "sig")]
    assert answer.headers["intuit_tid"].startswith("1-")


def test_consent_form_redirects_with_code_state_and_the_chosen_realm(served: Served) -> None:
    page = requests.get(auth_client(served).get_authorization_url(
        [Scopes.ACCOUNTING], state_token="state-1"), timeout=10)
    assert "Dunwell (demo) wants to connect to your QuickBooks company" in page.text
    assert "Craig&#x27;s Design and Landscaping Services" in page.text
    assert f'name="realmId" value="{served.second}"' in page.text
    answer = consent(served, company=1)
    assert answer.status_code == 302
    location = urlparse(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    found = parse_qs(location.query)
    assert sorted(found) == ["code", "realmId", "state"]
    assert found["state"] == ["state-1"] and found["realmId"] == [served.second]
    assert found["code"][0].startswith("AB11")
    denied = parse_qs(urlparse(consent(served, decision="deny").headers["Location"]).query)
    assert denied == {"error": ["access_denied"], "state": ["state-1"]}


def test_intuitlib_exchanges_the_code_once_for_tokens_and_a_signed_id_token(
        start: Any) -> None:
    # intuitlib checks the id_token's expiry against the wall clock, so this sandbox runs on it.
    served = start(moment=datetime.now(UTC).replace(microsecond=0))
    code, realm = code_for(served, scopes=(Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL))
    assert realm == served.first
    client = auth_client(served)
    client.get_bearer_token(code, realm_id=realm)
    assert client.realm_id == realm and client.expires_in == 3600
    assert client.x_refresh_token_expires_in == 100 * 86400
    assert client.access_token and client.refresh_token.startswith("AB11")
    assert client.id_token is not None  # only set when its RS256 signature checked out
    company = api(served, client, f"companyinfo/{realm}")
    assert company.status_code == 200
    assert company.json()["CompanyInfo"]["CompanyName"] == \
        "Craig's Design and Landscaping Services"
    with pytest.raises(AuthClientError) as again:
        auth_client(served).get_bearer_token(code, realm_id=realm)
    assert again.value.status_code == 400 and json.loads(again.value.content) == {
        "error": "invalid_grant"}


def test_an_access_token_dies_after_an_hour_with_the_lower_case_fault(served: Served) -> None:
    client = connect(served)
    served.clock.advance(seconds=3599)
    assert api(served, client, "preferences").status_code == 200
    served.clock.advance(seconds=1)
    expired = api(served, client, "preferences")
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
    body = expired.json()
    assert "Fault" not in body and body["time"] == int(served.clock().timestamp() * 1000)
    assert body["fault"]["type"] == "AUTHENTICATION"
    error = body["fault"]["error"][0]
    assert error["code"] == "3200"
    assert error["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    assert error["detail"].startswith("Token expired: ")
    assert served.box.calls(served.first) == 1  # a refused token is not the company's call


def test_refresh_rotates_the_refresh_token_and_the_old_one_dies_after_a_day(
        served: Served) -> None:
    client = connect(served)
    first_access, first_refresh = client.access_token, client.refresh_token
    served.clock.advance(minutes=61)
    client.refresh()
    assert client.refresh_token != first_refresh and client.access_token != first_access
    assert api(served, first_access, "preferences").status_code == 401
    assert api(served, client, "preferences").status_code == 200
    served.clock.advance(hours=24, seconds=1)
    with pytest.raises(AuthClientError) as dead:
        auth_client(served).refresh(refresh_token=first_refresh)
    assert dead.value.status_code == 400 and b"invalid_grant" in dead.value.content
    second_refresh = client.refresh_token
    client.refresh()  # the rotated token still works, and rotates again
    assert client.refresh_token not in (first_refresh, second_refresh)
    assert api(served, client, "preferences").status_code == 200


def test_revoking_ends_the_consent_and_the_owner_can_disconnect(served: Served) -> None:
    client = connect(served)
    assert client.revoke(token=client.refresh_token) is True
    revoked = api(served, client, "preferences")
    assert revoked.status_code == 401
    assert revoked.json()["fault"]["error"][0]["detail"] == "Token revoked"
    with pytest.raises(AuthClientError) as refused:
        client.refresh()
    assert refused.value.status_code == 400
    other = connect(served)
    assert api(served, other, "preferences").status_code == 200
    served.box.revoke_all(served.first)
    assert api(served, other, "preferences").status_code == 401
    assert auth_client(served).revoke(token="never-issued") is True  # RFC 7009: still 200


def test_userinfo_answers_for_openid_scopes_only(served: Served) -> None:
    client = connect(served, scopes=(Scopes.OPENID, Scopes.EMAIL, Scopes.PROFILE))
    info = client.get_user_info()
    assert info.status_code == 200
    body = info.json()
    assert set(body) == {"sub", "email", "emailVerified", "givenName", "familyName"}
    assert (body["email"], body["emailVerified"], body["givenName"], body["familyName"]) == (
        "owner@example.com", True, "Sandbox", "Owner")
    accounting_only = connect(served)
    with pytest.raises(AuthClientError) as forbidden:
        accounting_only.get_user_info()
    assert forbidden.value.status_code == 403
    served.clock.advance(hours=1)
    with pytest.raises(AuthClientError) as expired:
        client.get_user_info()
    assert expired.value.status_code == 401


def test_a_wrong_client_secret_is_refused_and_leaves_the_code_usable(served: Served) -> None:
    code, realm = code_for(served)
    impostor = auth_client(served, secret="not-the-secret")
    with pytest.raises(AuthClientError) as refused:
        impostor.get_bearer_token(code, realm_id=realm)
    assert refused.value.status_code == 401
    assert json.loads(refused.value.content) == {"error": "invalid_client"}
    assert impostor.access_token is None
    client = auth_client(served)
    client.get_bearer_token(code, realm_id=realm)
    assert api(served, client, "preferences", realm=realm).status_code == 200
    with pytest.raises(AuthClientError) as no_revoke:
        impostor.revoke(token=client.refresh_token)
    assert no_revoke.value.status_code == 401
    assert api(served, client, "preferences", realm=realm).status_code == 200


def test_a_token_reads_only_its_own_company(served: Served) -> None:
    client = connect(served, company=0)
    other = api(served, client, "preferences", realm=served.second)
    assert other.status_code == 403
    assert other.json()["fault"]["error"][0]["code"] == "3100"
    assert api(served, "", "preferences").json()["fault"]["error"][0]["detail"] == \
        "Token validation failed: no bearer token"


# --- python-quickbooks ------------------------------------------------------------------


@pytest.fixture
def qb(served: Served, monkeypatch: pytest.MonkeyPatch) -> QuickBooks:
    """A python-quickbooks client on its OAuth2Session, Decimal on, pointed at the sandbox."""
    # requests-oauthlib refuses plain http unless told this is a local test.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    client = connect(served)
    books = QuickBooks(auth_client=client, refresh_token=client.refresh_token,
                       company_id=client.realm_id, minorversion=75, use_decimal=True)
    books.api_url_v3 = f"{served.url}/v3"
    assert books.api_url == f"{served.url}/v3"
    return books


def test_python_quickbooks_reads_invoices_customers_payments_and_items(
        served: Served, qb: QuickBooks) -> None:
    invoices = Invoice.all(max_results=1000, qb=qb)
    assert len(invoices) == 40 == len(served.box.invoices(served.first))
    assert [i.DocNumber for i in invoices[:3]] == ["1001", "1002", "1003"]
    assert all(isinstance(i.TotalAmt, Decimal) and isinstance(i.Balance, Decimal)
               for i in invoices)
    assert Invoice.all(qb=qb)[0].Id == invoices[0].Id and len(Invoice.all(qb=qb)) == 40
    one = Invoice.filter(DocNumber="1007", qb=qb)
    assert [i.DocNumber for i in one] == ["1007"]
    assert one[0].Line[-1].DetailType == "SubTotalLineDetail"
    assert one[0].Line[-1].Amount == one[0].TotalAmt
    due_today = Invoice.query(f"SELECT * FROM Invoice WHERE DueDate = '{TODAY}' "
                              "ORDERBY DocNumber DESC", qb=qb)
    assert [i.DocNumber for i in due_today] == ["1013", "1012", "1011"]
    assert Invoice.count(qb=qb) == 40
    assert Invoice.get(one[0].Id, qb=qb).DocNumber == "1007"
    customers = Customer.all(qb=qb)
    assert len(customers) == 9  # the inactive one is hidden unless Active is asked for
    assert customers[0].DisplayName == "Bluebell Bakery"
    assert customers[0].PrimaryEmailAddr.Address == "accounts.bluebellbakery@example.com"
    retired = Customer.where("Active = false", qb=qb)
    assert [c.DisplayName for c in retired] == ["Kestrel Print Shop (deleted)"]
    payments = Payment.all(qb=qb)
    assert len(payments) == 10
    assert {line.LinkedTxn[0].TxnType for p in payments for line in p.Line} == {"Invoice"}
    items = Item.all(qb=qb)
    assert [i.Name for i in items] == ["Services", "Design", "Gardening", "Installation",
                                       "Lighting", "Maintenance & Repair", "Pest Control",
                                       "Trimming"]
    assert items[1].UnitPrice == Decimal("75")


def new_invoice(customer_id: str, item_id: str, amount: str = "150.00") -> Invoice:
    invoice = Invoice()
    line = SalesItemLine()
    line.Amount = Decimal(amount)
    line.Description = "Spring planting"
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = {"value": item_id}
    line.SalesItemLineDetail.Qty = Decimal(2)
    line.SalesItemLineDetail.UnitPrice = Decimal(amount) / 2
    invoice.Line = [line]
    invoice.CustomerRef = {"value": customer_id}
    return invoice


def test_python_quickbooks_creates_and_sparse_updates_an_invoice(
        served: Served, qb: QuickBooks) -> None:
    customer = Customer.filter(DisplayName="Bluebell Bakery", qb=qb)[0]
    item = Item.filter(Name="Design", qb=qb)[0]
    saved = new_invoice(customer.Id, item.Id).save(qb=qb)
    assert saved.SyncToken == "0" and saved.DocNumber == "1042"  # after 40 + a credit memo
    assert (saved.TotalAmt, saved.Balance) == (Decimal("150.00"), Decimal("150.00"))
    assert saved.TxnDate == "2026-11-24" and saved.DueDate == "2026-12-24"  # Net 30
    assert saved.BillEmail.Address == "accounts.bluebellbakery@example.com"
    assert saved.CustomerRef.name == "Bluebell Bakery"
    assert saved.Line[0].SalesItemLineDetail.ItemRef.name == "Design"
    assert [line.DetailType for line in saved.Line] == ["SalesItemLineDetail",
                                                        "SubTotalLineDetail"]
    sparse = {"Id": saved.Id, "SyncToken": saved.SyncToken, "sparse": True,
              "PrivateNote": "Reminder 1 sent"}
    answer = qb.update_object("Invoice", json.dumps(sparse))["Invoice"]
    assert answer["SyncToken"] == "1" and answer["PrivateNote"] == "Reminder 1 sent"
    assert answer["TotalAmt"] == Decimal("150.00") and len(answer["Line"]) == 2
    with pytest.raises(qbx.QuickbooksException) as stale:
        qb.update_object("Invoice", json.dumps(sparse))  # SyncToken 0 again
    assert stale.value.error_code == 5010 and stale.value.message == "Stale Object Error"
    fresh = Invoice.get(saved.Id, qb=qb)
    fresh.DueDate = "2027-01-15"
    full = fresh.save(qb=qb)  # a full update of what was read, python-quickbooks' way
    assert full.SyncToken == "2" and full.DueDate == "2027-01-15"
    assert full.PrivateNote == "Reminder 1 sent" and full.TotalAmt == Decimal("150.00")
    assert [i["Id"] for i in served.box.invoices(served.first)].count(saved.Id) == 1


def test_sending_an_invoice_sets_email_status_delivery_info_and_records_the_email(
        served: Served, qb: QuickBooks) -> None:
    unsent = Invoice.filter(EmailStatus="NeedToSend", qb=qb)
    assert len(unsent) == 4
    target = unsent[0]
    served.clock.advance(minutes=5)
    answer = target.send(qb=qb, send_to="ap+dunwell@example.com")["Invoice"]
    assert answer["EmailStatus"] == "EmailSent"
    assert answer["DeliveryInfo"] == {"DeliveryType": "Email",
                                      "DeliveryTime": "2026-11-24T02:05:00-08:00"}
    assert answer["BillEmail"] == {"Address": "ap+dunwell@example.com"}
    assert answer["SyncToken"] == str(int(target.SyncToken) + 1)
    sent = served.box.emails(served.first)
    assert [(e["InvoiceId"], e["DocNumber"], e["To"], e["SentAt"]) for e in sent] == [
        (target.Id, target.DocNumber, "ap+dunwell@example.com", "2026-11-24T02:05:00-08:00")]
    assert Invoice.get(target.Id, qb=qb).EmailStatus == "EmailSent"
    again = Invoice.get(target.Id, qb=qb).send(qb=qb)  # no sendTo: the BillEmail
    assert again["Invoice"]["BillEmail"] == {"Address": "ap+dunwell@example.com"}
    assert len(served.box.emails(served.first)) == 2
    no_email = next(i for i in served.box.invoices(served.first) if "BillEmail" not in i)
    with pytest.raises(qbx.QuickbooksException) as refused:
        Invoice.get(no_email["Id"], qb=qb).send(qb=qb)
    assert refused.value.error_code == 6000
    assert len(served.box.emails(served.first)) == 2


def test_change_data_capture_groups_changes_by_entity_with_deleted_stubs(
        served: Served, qb: QuickBooks) -> None:
    since = served.clock().isoformat()
    assert qb.change_data_capture("Invoice,Payment", since)["CDCResponse"] == [
        {"QueryResponse": [{}, {}]}]
    served.clock.advance(minutes=1)
    open_invoice = next(i for i in served.box.invoices(served.first)
                        if i["Balance"] == i["TotalAmt"] > 0)
    payment = served.box.pay_invoice(served.first, open_invoice["Id"], Decimal("10.00"))
    served.clock.advance(minutes=1)
    doomed = new_invoice("1", "2").save(qb=qb)
    qb.delete_object("Invoice", json.dumps({"Id": doomed.Id, "SyncToken": doomed.SyncToken}))
    answer = qb.change_data_capture("Invoice,Payment,Customer", since)
    groups = answer["CDCResponse"][0]["QueryResponse"]
    assert len(groups) == 3 and groups[2] == {}
    invoices, payments = groups[0]["Invoice"], groups[1]["Payment"]
    assert [i["Id"] for i in invoices] == [open_invoice["Id"], doomed.Id]
    assert invoices[0]["Balance"] == open_invoice["Balance"] - Decimal("10.00")
    assert invoices[1] == {"domain": "QBO", "status": "Deleted", "Id": doomed.Id,
                           "MetaData": {"LastUpdatedTime": "2026-11-24T02:02:00-08:00"}}
    assert (groups[0]["startPosition"], groups[0]["maxResults"]) == (1, 2)
    assert [p["Id"] for p in payments] == [payment["Id"]]
    assert "time" in answer
    objects = change_data_capture([Invoice, Payment], since, qb=qb)
    assert [i.Id for i in objects.Invoice] == [open_invoice["Id"], doomed.Id]
    assert objects.Invoice[1].status == "Deleted"
    assert [p.TotalAmt for p in objects.Payment] == [Decimal("10.00")]


def test_batches_of_up_to_thirty_items_each_succeed_or_fail_and_more_is_a_fault(
        served: Served, qb: QuickBooks) -> None:
    def customer(name: str) -> Customer:
        made = Customer()
        made.DisplayName = name
        made.PrimaryEmailAddr = {"Address": "ap@example.com"}
        return made

    before = len(served.box.customers(served.first))
    calls = served.box.calls(served.first)
    done = batch_create([customer(f"Batch Customer {n:02}") for n in range(30)], qb=qb)
    assert len(done.successes) == 30 and done.faults == []
    assert served.box.calls(served.first) == calls + 1  # one request for thirty
    assert sorted(c.DisplayName for c in done.successes)[:2] == ["Batch Customer 00",
                                                                  "Batch Customer 01"]
    assert len(served.box.customers(served.first)) == before + 30
    mixed = batch_create([customer("Batch Customer 30"), customer("Bluebell Bakery")], qb=qb)
    assert [c.DisplayName for c in mixed.successes] == ["Batch Customer 30"]
    assert [f.Error[0].code for f in mixed.faults] == ["6240"]
    assert mixed.faults[0].type == "ValidationFault"
    items = [{"bId": f"b{n}", "operation": "create", "Customer": {"DisplayName": f"Extra {n}"}}
             for n in range(31)]
    too_many = api(served, qb.auth_client, "batch", "POST",
                   json={"BatchItemRequest": items})
    assert too_many.status_code == 400
    assert too_many.json()["Fault"]["Error"][0]["code"] == "6000"
    assert "at most 30 BatchItemRequest items; this one has 31" in \
        too_many.json()["Fault"]["Error"][0]["Detail"]
    assert len(served.box.customers(served.first)) == before + 31
    read = api(served, qb.auth_client, "batch", "POST", json={"BatchItemRequest": [
        {"bId": "q", "Query": "SELECT COUNT(*) FROM Invoice"}]}).json()
    assert read["BatchItemResponse"] == [{"bId": "q", "QueryResponse": {"totalCount": 40}}]


# --- The query language over raw HTTP ---------------------------------------------------


def test_query_pages_changed_invoices_by_startposition_and_maxresults(served: Served) -> None:
    client = connect(served)
    since = "2026-11-10T00:00:00-08:00"
    statement = ("SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '{since}' "
                 "ORDERBY Id STARTPOSITION {start} MAXRESULTS 2")
    changed = sorted((i for i in served.box.invoices(served.first)
                      if datetime.fromisoformat(i["MetaData"]["LastUpdatedTime"])
                      > datetime.fromisoformat(since)), key=lambda i: int(i["Id"]))
    assert len(changed) > 4
    pages = []
    for start in range(1, len(changed) + 3, 2):
        answer = query(served, client, statement.format(since=since, start=start))
        assert answer.status_code == 200
        pages.append(exact(answer)["QueryResponse"])
    assert pages[0]["startPosition"] == 1 and pages[0]["maxResults"] == 2
    assert pages[1]["startPosition"] == 3 and len(pages[1]["Invoice"]) == 2
    assert pages[-1] == {}  # past the end: an empty QueryResponse
    read = [i for page in pages for i in page.get("Invoice", [])]
    assert [i["Id"] for i in read] == [i["Id"] for i in changed]
    assert read[0] == changed[0]
    assert all(int(a["Id"]) < int(b["Id"]) for a, b in pairwise(read))


def test_maxresults_above_a_thousand_is_served_as_a_thousand(served: Served) -> None:
    for n in range(1001):
        served.box.create(served.first, "Item", {"Name": f"Bulk item {n:04}", "Type": "Service",
                                                  "IncomeAccountRef": {"value": "1"}})
    client = connect(served)
    answer = query(served, client, "SELECT * FROM Item MAXRESULTS 1500").json()["QueryResponse"]
    assert answer["maxResults"] == 1000 and len(answer["Item"]) == 1000
    rest = query(served, client, "SELECT * FROM Item STARTPOSITION 1001 MAXRESULTS 1000").json()
    assert len(rest["QueryResponse"]["Item"]) == 1009 - 1000
    assert rest["QueryResponse"]["Item"][-1]["Name"] == "Bulk item 1000"


def test_count_star_counts_what_the_where_clause_selects(served: Served) -> None:
    client = connect(served)

    def count(statement: str) -> Any:
        answer = query(served, client, statement)
        assert answer.status_code == 200, answer.text
        return answer.json()["QueryResponse"]

    assert count("SELECT COUNT(*) FROM Invoice") == {"totalCount": 40}
    assert count("select count(*) from Customer") == {"totalCount": 9}
    assert count("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)") == {
        "totalCount": 10}
    assert count("SELECT COUNT(*) FROM Invoice WHERE EmailStatus = 'NeedToSend'") == {
        "totalCount": 4}
    assert count("SELECT COUNT(*) FROM Invoice WHERE DocNumber IN ('1001', '1002', 'x')") == {
        "totalCount": 2}
    assert count("SELECT COUNT(*) FROM Customer WHERE DisplayName LIKE 'b%'") == {
        "totalCount": 1}


def test_query_parse_errors_are_4000_and_unknown_properties_4001(served: Served) -> None:
    client = connect(served)
    parse = query(served, client, "SELECT * FROM Invoice WHERE Id = '101' OR Id = '102'")
    assert parse.status_code == 400
    error = parse.json()["Fault"]["Error"][0]
    assert (error["code"], error["Message"]) == ("4000", "Error parsing query")
    assert error["Detail"].startswith('QueryParserError: Encountered " <OR> "OR "" at line 1, '
                                      "column 40.")
    assert parse.json()["Fault"]["type"] == "ValidationFault"
    garbled = query(served, client, "SELECT * FROM Invoice WHERE Id = #")
    assert garbled.json()["Fault"]["Error"][0]["code"] == "4000"
    unknown = query(served, client, "SELECT * FROM Invoice WHERE Colour = 'red'")
    assert unknown.status_code == 400
    error = unknown.json()["Fault"]["Error"][0]
    assert (error["code"], error["Message"]) == ("4001", "Invalid query")
    assert error["Detail"] == "QueryValidationError: property 'Colour' is not queryable"
    entity = query(served, client, "SELECT * FROM Widget")
    assert entity.json()["Fault"]["Error"][0]["Detail"] == \
        "QueryValidationError: Invalid entity name: Widget"


# --- Faults -----------------------------------------------------------------------------


def fault_of(response: requests.Response) -> dict[str, Any]:
    """The one error of a Fault answer, after checking the envelope's shape."""
    body = response.json()
    assert set(body) == {"Fault", "time"}, body
    assert set(body["Fault"]) == {"Error", "type"}
    assert body["Fault"]["type"] == "ValidationFault" and len(body["Fault"]["Error"]) == 1
    error = body["Fault"]["Error"][0]
    assert {"Message", "Detail", "code"} <= set(error)
    return dict(error)


def test_a_stale_sync_token_is_5010_with_http_400(served: Served) -> None:
    client = connect(served)
    target = served.box.invoices(served.first)[4]
    token = target["SyncToken"]
    served.box.update_invoice(served.first, target["Id"], PrivateNote="Edited in QuickBooks")
    answer = api(served, client, "invoice", "POST", json={
        "Id": target["Id"], "SyncToken": token, "sparse": True, "PrivateNote": "From the app"})
    assert answer.status_code == 400
    error = fault_of(answer)
    assert (error["code"], error["Message"]) == ("5010", "Stale Object Error")
    assert error["Detail"] == ("Stale Object Error : You and Sandbox Owner were working on this "
                               "at the same time. Sandbox Owner finished before you did, so "
                               "your work was not saved.")
    assert answer.json()["time"] == "2026-11-24T02:00:00.000-08:00"
    current = api(served, client, f"invoice/{target['Id']}").json()["Invoice"]
    assert current["PrivateNote"] == "Edited in QuickBooks"
    assert current["SyncToken"] == str(int(token) + 1)


def test_an_unknown_id_is_610_and_an_unknown_field_2010(served: Served) -> None:
    client = connect(served)
    missing = api(served, client, "invoice/99999")
    assert missing.status_code == 400
    error = fault_of(missing)
    assert (error["code"], error["Message"]) == ("610", "Object Not Found")
    assert error["Detail"].startswith("Object Not Found : ")
    unknown = api(served, client, "invoice", "POST", json={
        "CustomerRef": {"value": "1"}, "Colour": "red",
        "Line": [{"Amount": 10, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "2"}}}]})
    assert unknown.status_code == 400
    error = fault_of(unknown)
    assert (error["code"], error["Message"], error["element"]) == (
        "2010", "Request has invalid or unsupported property", "Colour")
    assert 'Unrecognized field "Colour" (class com.intuit.schema.finance.v3.Invoice)' in \
        error["Detail"]
    assert len(served.box.invoices(served.first)) == 40


# --- Throttling -----------------------------------------------------------------------


def test_the_minute_limit_answers_429_in_xml_until_the_minute_has_passed(start: Any) -> None:
    served = start(per_minute_limit=3)
    client = connect(served)
    codes = [api(served, client, "preferences").status_code for _ in range(3)]
    limited = api(served, client, "preferences")
    assert codes == [200, 200, 200] and limited.status_code == 429
    assert limited.headers["Content-Type"].startswith("application/xml")  # JSON was asked for
    assert "Retry-After" not in limited.headers
    root = ET.fromstring(limited.content)
    space = "{http://schema.intuit.com/finance/v3}"
    assert root.tag == f"{space}IntuitResponse"
    assert root.get("time") == "2026-11-24T02:00:00.000-08:00"
    fault = root.find(f"{space}Fault")
    assert fault is not None and fault.get("type") == "SERVICE"
    error = fault.find(f"{space}Error")
    assert error is not None and error.get("code") == "3001"
    assert error.findtext(f"{space}Message") == \
        "message=ThrottleExceeded; errorCode=003001; statusCode=429"
    served.clock.advance(seconds=59)
    assert api(served, client, "preferences").status_code == 429
    served.clock.advance(seconds=1)
    assert api(served, client, "preferences").status_code == 200
    assert served.box.calls(served.first) == 6  # refused calls are counted too


def test_calls_over_the_concurrent_limit_are_throttled(start: Any) -> None:
    served = start(concurrent_limit=2, latency_seconds=0.4)
    client = connect(served)
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: api(served, client, "preferences"), range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 429, 429, 429]
    assert all(b"ThrottleExceeded" in a.content for a in answers if a.status_code == 429)
    assert api(served, client, "preferences").status_code == 200


def test_batch_calls_have_their_own_minute_limit(start: Any) -> None:
    served = start(batch_per_minute_limit=2)
    client = connect(served)
    body = {"BatchItemRequest": [{"bId": "1", "Query": "SELECT COUNT(*) FROM Item"}]}
    codes = [api(served, client, "batch", "POST", json=body).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert api(served, client, "preferences").status_code == 200


# --- requestid ------------------------------------------------------------------------


def test_a_repeated_requestid_replays_the_first_answer_without_a_second_invoice(
        served: Served) -> None:
    client = connect(served)
    body = {"CustomerRef": {"value": "1"},
            "Line": [{"Amount": 25, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": "2"}}}]}

    def create(requestid: str, payload: dict[str, Any] = body) -> requests.Response:
        return api(served, client, "invoice", "POST", json=payload,
                   params={"requestid": requestid})

    first = create("late-fee-0001")
    served.clock.advance(seconds=30)
    again = create("late-fee-0001", {**body, "PrivateNote": "different this time"})
    assert first.status_code == again.status_code == 200
    assert again.text == first.text  # the very same answer, its `time` included
    assert len(served.box.invoices(served.first)) == 41
    other = create("late-fee-0002")
    assert other.json()["Invoice"]["Id"] != first.json()["Invoice"]["Id"]
    assert len(served.box.invoices(served.first)) == 42
    refused = create("late-fee-0003", {**body, "Colour": "red"})
    fixed = create("late-fee-0003")  # a fault is remembered too
    assert refused.status_code == fixed.status_code == 400 and fixed.text == refused.text
    assert len(served.box.invoices(served.first)) == 42
    assert [r["requestid"] for r in served.box.requests(served.first)] == [
        "late-fee-0001", "late-fee-0001", "late-fee-0002", "late-fee-0003", "late-fee-0003"]


# --- CDC limits -----------------------------------------------------------------------


def cdc(served: Served, client: AuthClient, entities: str, since: datetime) -> Any:
    return api(served, client, "cdc", params={"entities": entities,
                                              "changedSince": since.isoformat()})


def test_cdc_looks_back_at_most_thirty_days(served: Served) -> None:
    client = connect(served)
    inside = cdc(served, client, "Invoice", served.clock() - timedelta(days=29, hours=23))
    assert inside.status_code == 200
    assert len(inside.json()["CDCResponse"][0]["QueryResponse"][0]["Invoice"]) > 0
    since = served.clock() - timedelta(days=30, seconds=1)
    older = cdc(served, client, "Invoice", since)
    assert older.status_code == 400
    error = fault_of(older)
    assert (error["code"], error["Message"]) == ("500", "Unsupported Operation")
    assert error["Detail"] == (f"Operation cdc with changedSince date {since.isoformat()} "
                               "which is older than fixed days is not supported.")


def test_cdc_stops_at_its_object_cap_with_the_earliest_changes(start: Any) -> None:
    served = start(cdc_max_objects=5)
    client = connect(served)
    since = served.clock() - timedelta(days=29)
    answer = cdc(served, client, "Invoice,Payment", since)
    groups = answer.json()["CDCResponse"][0]["QueryResponse"]
    returned = [(name, o) for g in groups for name, objects in g.items()
                if isinstance(objects, list) for o in objects]
    assert len(returned) == 5
    changed = [(entity, o) for entity, rows in (("Invoice", served.box.invoices(served.first)),
                                                 ("Payment", served.box.payments(served.first)))
               for o in rows
               if datetime.fromisoformat(o["MetaData"]["LastUpdatedTime"]) > since]
    assert len(changed) > 5

    def when(found: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(found["MetaData"]["LastUpdatedTime"])

    kept = {(name, o["Id"]) for name, o in returned}
    latest_kept = max(when(o) for _, o in returned)
    assert all(when(o) >= latest_kept for name, o in changed if (name, o["Id"]) not in kept)


# --- Field names from Intuit's Finance.xsd --------------------------------------------

XS = "{http://www.w3.org/2001/XMLSchema}"


@dataclass
class ComplexType:
    elements: dict[str, str]  # element name -> its type name
    attributes: set[str]
    base: str | None
    simple: bool  # simpleContent: JSON writes the text as "value"


def load_xsd(path: Path, types: dict[str, ComplexType] | None = None,
             seen: set[Path] | None = None) -> dict[str, ComplexType]:
    """Every named complexType of a schema and the schemas it includes."""
    types = {} if types is None else types
    seen = set() if seen is None else seen
    if path in seen:
        return types
    seen.add(path)
    root = ET.parse(path).getroot()
    for include in root.findall(f"{XS}include"):
        load_xsd(path.parent / str(include.get("schemaLocation")), types, seen)
    for node in root.findall(f"{XS}complexType"):
        extension = node.find(f".//{XS}extension")
        types[str(node.get("name"))] = ComplexType(
            {str(e.get("name")): str(e.get("type") or "").split(":")[-1]
             for e in node.iter(f"{XS}element") if e.get("name")},
            {str(a.get("name")) for a in node.iter(f"{XS}attribute") if a.get("name")},
            str(extension.get("base")).split(":")[-1] if extension is not None else None,
            node.find(f"{XS}simpleContent") is not None)
    return types


def members(types: dict[str, ComplexType], name: str) -> ComplexType:
    """A type's elements and attributes with those of its bases (xs:extension base=...)."""
    merged = ComplexType({}, set(), None, False)
    current: str | None = name
    while current in types:
        found = types[current]
        merged.elements = {**found.elements, **merged.elements}
        merged.attributes |= found.attributes
        merged.simple |= found.simple
        current = found.base
    return merged


ENVELOPE = {"domain", "sparse", "status"}


def strays(types: dict[str, ComplexType], value: dict[str, Any], type_name: str,
           path: str) -> list[str]:
    """Keys of `value` (and of what it nests) that its complexType does not declare."""
    known = members(types, type_name)
    found = []
    for key, inner in value.items():
        if key in known.attributes or key in ENVELOPE or (known.simple and key == "value"):
            continue
        if key not in known.elements:
            found.append(f"{path}.{key}")
            continue
        for part in inner if isinstance(inner, list) else [inner]:
            if isinstance(part, dict) and known.elements[key] in types:
                found += strays(types, part, known.elements[key], f"{path}.{key}")
    return found


@pytest.fixture(scope="module")
def finance_types() -> dict[str, ComplexType]:
    return load_xsd(SPECS / "Finance.xsd")


def test_objects_use_only_finance_xsd_element_names(
        served: Served, finance_types: dict[str, ComplexType]) -> None:
    assert set(members(finance_types, "Invoice").elements) >= {
        "Id", "SyncToken", "MetaData", "DocNumber", "Line", "CustomerRef", "Balance", "DueDate"}
    assert strays(finance_types, {"Id": "1", "Colour": "red", "MetaData": {"Shade": 1}},
                  "Invoice", "Invoice") == ["Invoice.Colour", "Invoice.MetaData.Shade"]
    client = connect(served)
    target = next(i for i in served.box.invoices(served.first)
                  if i["EmailStatus"] == "EmailSent" and 0 < i["Balance"] < i["TotalAmt"])
    read = {
        "Invoice": query(served, client, "SELECT * FROM Invoice MAXRESULTS 1000").json()
        ["QueryResponse"]["Invoice"]
        + [api(served, client, f"invoice/{target['Id']}",
               params={"include": "invoiceLink"}).json()["Invoice"]],
        "Customer": query(served, client, "SELECT * FROM Customer WHERE Active IN "
                          "(true, false)").json()["QueryResponse"]["Customer"],
        "Payment": query(served, client, "SELECT * FROM Payment").json()["QueryResponse"]
        ["Payment"],
        "Item": query(served, client, "SELECT * FROM Item").json()["QueryResponse"]["Item"],
    }
    assert [len(read[name]) for name in ("Invoice", "Customer", "Payment", "Item")] == [
        41, 10, 10, 8]
    assert read["Invoice"][-1]["InvoiceLink"].startswith("https://connect.intuit.com/online/")
    for name, objects in read.items():
        for found in objects:
            assert strays(finance_types, found, name, f"{name} {found['Id']}") == []


# --- The seeded demo company ----------------------------------------------------------


def test_the_seeded_company_is_a_realistic_mix_whose_balances_add_up(served: Served) -> None:
    again = QuickBooksSandbox(SandboxConfig(clock=Clock()))
    again.seed_demo(TODAY)
    assert again.companies() == served.box.companies()
    assert [(c["CompanyName"], c["Country"], c["HomeCurrency"], c["DefaultTimeZone"])
            for c in served.box.companies()] == [
        ("Craig's Design and Landscaping Services", "US", "USD", "America/Los_Angeles"),
        ("Thistle & Thorn Garden Studio Ltd", "GB", "GBP", "Europe/London")]
    for realm in (served.first, served.second):
        assert again.invoices(realm) == served.box.invoices(realm)
        customers = served.box.customers(realm)
        invoices = served.box.invoices(realm)
        payments = served.box.payments(realm)
        emails = [c["PrimaryEmailAddr"]["Address"] for c in customers
                  if c.get("PrimaryEmailAddr")]
        assert len(customers) == 10 and len(emails) == 9
        assert all(e.startswith("accounts.") and e.endswith("@example.com") for e in emails)
        assert [c["Active"] for c in customers].count(False) == 1
        assert len(invoices) == 40 and len(payments) == 10

        def due(invoice: dict[str, Any]) -> date:
            return date.fromisoformat(invoice["DueDate"])

        open_ = [i for i in invoices if i["Balance"] == i["TotalAmt"] > 0]
        paid = [i for i in invoices if i["Balance"] == 0 < i["TotalAmt"]]
        partly = [i for i in invoices if 0 < i["Balance"] < i["TotalAmt"]]
        voided = [i for i in invoices if i["TotalAmt"] == 0]
        assert (len(open_), len(paid), len(partly), len(voided)) == (28, 6, 4, 2)
        overdue = [i for i in open_ + partly if due(i) < TODAY]
        assert len(overdue) == 17 and min(due(i) for i in overdue) == TODAY - timedelta(90)
        assert sum(1 for i in open_ if due(i) == TODAY) == 3
        assert all(i["PrivateNote"] == "Voided" for i in voided)
        assert {i["EmailStatus"] for i in invoices} == {"NeedToSend", "EmailSent", "NotSet"}

        applied: dict[str, Decimal] = {}
        for payment in payments:
            assert payment["TotalAmt"] == sum(line["Amount"] for line in payment["Line"])
            for line in payment["Line"]:
                (link,) = line["LinkedTxn"]
                assert link["TxnType"] == "Invoice"
                applied[link["TxnId"]] = applied.get(link["TxnId"], Decimal(0)) + line["Amount"]
        assert set(applied) == {i["Id"] for i in paid + partly}
        by_id = {i["Id"]: i for i in invoices}
        for payment in payments:
            linked = by_id[payment["Line"][0]["LinkedTxn"][0]["TxnId"]]
            assert {"TxnId": payment["Id"], "TxnType": "Payment"} in linked["LinkedTxn"]
            assert linked["CustomerRef"]["value"] == payment["CustomerRef"]["value"]
        for invoice in invoices:
            assert invoice["Balance"] == invoice["TotalAmt"] - applied.get(invoice["Id"], 0)
            lines = [line["Amount"] for line in invoice["Line"]
                     if line["DetailType"] == "SalesItemLineDetail"]
            assert invoice["TotalAmt"] == sum(lines)
        memos = served.box.credit_memos(realm)
        for customer in customers:
            owed = sum((i["Balance"] for i in invoices
                        if i["CustomerRef"]["value"] == customer["Id"]), Decimal(0))
            credit = sum((m["Balance"] for m in memos
                          if m["CustomerRef"]["value"] == customer["Id"]), Decimal(0))
            assert customer["Balance"] == owed - credit


# The entities Intuit's change-data-capture page lists, as tap-quickbooks 2.5.0 copies it.
CDC_ENTITIES = ("Account", "BillPayment", "Bill", "Budget", "Class", "CreditMemo", "Customer",
                "Department", "Deposit", "Employee", "Estimate", "Invoice", "Item",
                "JournalEntry", "PaymentMethod", "Payment", "PurchaseOrder", "Purchase",
                "RefundReceipt", "SalesReceipt", "Term", "Transfer", "VendorCredit", "Vendor")


def test_cdc_takes_every_entity_intuit_lists_in_any_case_and_reports_deletions(
        served: Served) -> None:
    client = connect(served)
    since = served.clock() - timedelta(days=1)
    for spelled in (",".join(CDC_ENTITIES), ",".join(e.lower() for e in CDC_ENTITIES)):
        answer = cdc(served, client, spelled, since)
        assert answer.status_code == 200, answer.text
        groups = answer.json()["CDCResponse"][0]["QueryResponse"]
        assert len(groups) == len(CDC_ENTITIES)
        for entity, group in zip(CDC_ENTITIES, groups, strict=True):
            assert set(group) <= {entity, "startPosition", "maxResults"}, (entity, group)
    for unsupported in ("TimeActivity", "TaxAgency", "TaxCode", "TaxRate"):
        assert fault_of(cdc(served, client, unsupported, since))["Message"] == \
            "Unsupported Operation"
    customer = served.box.customers(served.first)[0]
    made = exact(api(served, client, "estimate", "POST", json={
        "CustomerRef": {"value": customer["Id"]},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 40,
                  "SalesItemLineDetail": {}}]}))["Estimate"]
    served.clock.advance(minutes=1)
    gone = api(served, client, "estimate", "POST", params={"operation": "delete"},
               json={"Id": made["Id"], "SyncToken": made["SyncToken"]})
    assert gone.status_code == 200, gone.text
    answer = cdc(served, client, "Estimate", served.clock() - timedelta(minutes=5)).json()
    [stub] = [e for e in answer["CDCResponse"][0]["QueryResponse"][0]["Estimate"]
              if e["Id"] == made["Id"]]
    assert stub["status"] == "Deleted"


def test_forms_keep_their_own_addresses_and_account_numbers_survive(served: Served) -> None:
    client = connect(served)
    customer = served.box.customers(served.first)[0]
    own = {"Line1": "1 Quote Street", "City": "Leeds", "PostalCode": "LS1 1AA"}
    site = {"Line1": "9 Site Road", "City": "York"}
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 40, "SalesItemLineDetail": {}}]
    estimate = exact(api(served, client, "estimate", "POST", json={
        "CustomerRef": {"value": customer["Id"]}, "BillAddr": own, "ShipAddr": site,
        "Line": line}))["Estimate"]
    assert (estimate["BillAddr"], estimate["ShipAddr"]) == (own, site)
    plain = exact(api(served, client, "estimate", "POST", json={
        "CustomerRef": {"value": customer["Id"]}, "Line": line}))["Estimate"]
    assert plain["BillAddr"] == customer["BillAddr"]  # none given: the customer's
    # The customer moves; the estimate keeps the address it was given.
    moved = exact(api(served, client, "customer", "POST", json={
        "Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True,
        "BillAddr": {"Line1": "2 New Street", "City": "Hull"}}))["Customer"]
    assert moved["BillAddr"]["City"] == "Hull"
    read = exact(api(served, client, f"estimate/{estimate['Id']}"))["Estimate"]
    assert (read["BillAddr"], read["ShipAddr"]) == (own, site)
    numbered = exact(api(served, client, "customer", "POST", json={
        "DisplayName": "Numbered Ltd", "AcctNum": "CUST-0042"}))["Customer"]
    assert exact(api(served, client, f"customer/{numbered['Id']}"))["Customer"][
        "AcctNum"] == "CUST-0042"
    account = exact(api(served, client, "account", "POST", json={
        "Name": "Late fees", "AccountType": "Income", "AcctNum": "4105"}))["Account"]
    assert exact(api(served, client, f"account/{account['Id']}"))["Account"][
        "AcctNum"] == "4105"
