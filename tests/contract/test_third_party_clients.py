"""Clients nobody on this project wrote, unmodified, against the sandboxes, for the records
Dunwell reads: the Singer taps tap-xero and tap-quickbooks (each in a virtualenv of its own:
their exact pins of singer-python, jsonschema 2 and requests cannot share ours) and pyxero (in
ours, pinned in the dev extras). They call the providers' real host names over https; a
loopback TLS relay (tests/contract/tls_relay.py) answers for those names with the sandboxes.

A client's failure is the sandbox's fault until shown otherwise. What passes is asserted here
stream by stream; sandboxes/README.md keeps the table.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandboxes.quickbooks import QuickBooksSandbox
from sandboxes.quickbooks import SandboxConfig as QuickBooksConfig
from sandboxes.quickbooks import create_app as quickbooks_app
from sandboxes.xero import SandboxConfig as XeroConfig
from sandboxes.xero import XeroSandbox
from sandboxes.xero import create_app as xero_app
from tests.conftest import LiveServer
from tests.contract.harness import QBO_REDIRECT, quickbooks_consent
from tests.contract.tls_relay import TestAuthority, TlsRelay
from tests.sandbox.test_xero_sandbox import CLIENT, SCOPES, SECRET, connect

# The clients, pinned. Each tap gets a virtualenv of its own, made once and kept in the cache.
# tap-xero imports six without declaring it (python-dateutil used to bring it along).
TAP_XERO = ("tap-xero==2.6.0", "six==1.17.0")
TAP_QUICKBOOKS = ("tap-quickbooks==2.5.0",)
CACHE = Path(os.environ.get("DUNWELL_THIRD_PARTY_CACHE",
                            Path.home() / ".cache" / "dunwell" / "third-party"))
START = "2000-01-01T00:00:00Z"


@contextmanager
def cache_lock() -> Iterator[None]:
    """One process at a time makes the CA and the virtualenvs (pytest-xdist runs several)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def authority() -> TestAuthority:
    with cache_lock():
        return TestAuthority(CACHE / "test-ca")  # made once, then read


def _make_venv(folder: Path, requirements: tuple[str, ...], ca_bundle: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "pip"), "install", "--quiet",
                    "--disable-pip-version-check", *requirements], check=True, timeout=900)
    bundle = subprocess.run([str(folder / "bin" / "python"), "-c",
                             "import certifi; print(certifi.where())"], check=True,
                            capture_output=True, text=True).stdout.strip()
    with open(bundle, "a", encoding="ascii") as trusted:
        trusted.write("\n" + ca_bundle.read_text(encoding="ascii"))
    (folder / ".installed").write_text("\n".join(requirements))


def client_venv(requirements: tuple[str, ...]) -> Path:
    """The bin folder of a virtualenv holding `requirements` (made with pip on first use).

    Its certifi bundle also trusts the test CA: a client that sends prepared requests
    (tap-xero: Session.send) reads no REQUESTS_CA_BUNDLE. The client's code is untouched."""
    folder = CACHE / "+".join(r.replace("==", "-") for r in requirements)
    ca_bundle = authority().bundle
    with cache_lock():
        if not (folder / ".installed").exists():
            _make_venv(folder, requirements, ca_bundle)
    return folder / "bin"


@pytest.fixture
def relay() -> Iterator[TlsRelay]:
    found = TlsRelay(authority())
    yield found
    found.stop()


def run_tap(tap: Path, config: dict[str, Any], relay: TlsRelay, folder: Path,
            streams: set[str]) -> tuple[Counter[str], dict[str, list[dict[str, Any]]]]:
    """Discover, select `streams`, sync; returns RECORD counts and the records by stream."""
    env = {**os.environ, **relay.environment()}
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(config))
    discovered = subprocess.run([str(tap), "--config", str(config_path), "--discover"],
                                env=env, capture_output=True, text=True, timeout=300)
    assert discovered.returncode == 0, discovered.stderr[-3000:]
    catalog = json.loads(discovered.stdout)
    offered = {entry["tap_stream_id"] for entry in catalog["streams"]}
    assert streams <= offered, streams - offered
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in streams
        entry["schema"]["selected"] = chosen
        for item in entry.get("metadata", []):
            if not item["breadcrumb"]:
                item["metadata"]["selected"] = chosen
    catalog_path = folder / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    synced = subprocess.run([str(tap), "--config", str(config_path), "--catalog",
                             str(catalog_path)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert synced.returncode == 0, synced.stderr[-3000:]
    counts: Counter[str] = Counter()
    records: dict[str, list[dict[str, Any]]] = {}
    for line in synced.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            counts[message["stream"]] += 1
            records.setdefault(message["stream"], []).append(message["record"])
    return counts, records


# --- Xero -------------------------------------------------------------------------------


def served_as(relay: TlsRelay, box: Any, app: Any, hosts: tuple[str, ...]
              ) -> Iterator[tuple[Any, LiveServer]]:
    """A seeded sandbox on loopback, answering for the provider's `hosts` through the relay.
    Real time: the clients reason in it (start dates, If-Modified-Since, token expiry)."""
    box.seed_demo(datetime.now(UTC).date())
    server = LiveServer(app(box))
    for host in hosts:
        relay.route(host, server.url)
    yield box, server
    server.stop()


@pytest.fixture
def xero(relay: TlsRelay) -> Iterator[tuple[XeroSandbox, LiveServer]]:
    yield from served_as(relay, XeroSandbox(XeroConfig()), xero_app,
                         ("api.xero.com", "identity.xero.com"))


def test_tap_xero_reads_every_record_dunwell_uses(xero: tuple[XeroSandbox, LiveServer],
                                                  relay: TlsRelay, tmp_path: Path) -> None:
    box, server = xero
    tokens = connect(server.url)
    tenant = box.tenants()[0]["tenantId"]
    config = {"start_date": START, "client_id": CLIENT, "client_secret": SECRET,
              "tenant_id": tenant, "refresh_token": tokens["refresh_token"],
              "user_agent": "dunwell-contract-test"}
    counts, records = run_tap(client_venv(TAP_XERO) / "tap-xero", config, relay, tmp_path,
                              {"invoices", "contacts", "payments", "credit_notes", "quotes"})
    with box.lock:
        state = box.tenant(tenant)
        expected = {"invoices": len(state.invoices), "contacts": len(state.contacts),
                    "payments": len(state.payments), "credit_notes": len(state.credit_notes),
                    "quotes": len(state.quotes)}
    assert {k: counts.get(k, 0) for k in expected} == expected
    assert set(relay.seen) <= {"api.xero.com", "identity.xero.com"}
    invoice = records["invoices"][0]
    assert invoice["InvoiceID"] and invoice["LineItems"] and invoice["Contact"]["ContactID"]
    # The tap rotated the refresh token and wrote the new one back, as against Xero.
    assert json.loads((tmp_path / "config.json").read_text())["refresh_token"] \
        != tokens["refresh_token"]


def test_pyxero_reads_and_notes_against_the_xero_sandbox(
        xero: tuple[XeroSandbox, LiveServer], relay: TlsRelay,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from xero import Xero
    from xero.auth import OAuth2Credentials

    box, server = xero
    for name, value in relay.environment().items():
        monkeypatch.setenv(name, value)
    tokens = connect(server.url)
    token = {**tokens, "expires_at": (datetime.now() + timedelta(minutes=25)).timestamp()}
    credentials = OAuth2Credentials(CLIENT, SECRET, token=token, scope=SCOPES.split())
    tenants = credentials.get_tenants()
    assert [t["tenantId"] for t in tenants] == [box.tenants()[0]["tenantId"]]  # the one chosen
    credentials.tenant_id = tenants[0]["tenantId"]
    books = Xero(credentials)
    tenant = credentials.tenant_id
    assert books.organisations.all()[0]["OrganisationID"] == tenant
    with box.lock:
        state = box.tenant(tenant)
        expected = {"invoices": len(state.invoices), "contacts": len(state.contacts),
                    "payments": len(state.payments), "creditnotes": len(state.credit_notes)}
    found = {"invoices": len(books.invoices.all()), "contacts": len(books.contacts.all()),
             "payments": len(books.payments.all()),
             "creditnotes": len(books.creditnotes.all())}
    assert found == expected
    sales = books.invoices.filter(Type="ACCREC", Status="AUTHORISED")
    assert sales and all(i["Type"] == "ACCREC" for i in sales)
    target = sales[0]["InvoiceID"]
    # pyxero asks for .../Invoices/{id}/history: Xero's routes do not mind the case.
    books.invoices.put_history(target, "Noted by pyxero")
    assert [h["Details"] for h in box.history(tenant, target)][-1] == "Noted by pyxero"
    credentials.refresh()  # the refresh token rotates through identity.xero.com
    assert credentials.token["refresh_token"] != tokens["refresh_token"]


# --- QuickBooks ---------------------------------------------------------------------------


@pytest.fixture
def quickbooks(relay: TlsRelay) -> Iterator[tuple[QuickBooksSandbox, LiveServer]]:
    yield from served_as(relay, QuickBooksSandbox(QuickBooksConfig()), quickbooks_app,
                         ("quickbooks.api.intuit.com", "oauth.platform.intuit.com"))


def test_tap_quickbooks_reads_every_record_dunwell_uses(
        quickbooks: tuple[QuickBooksSandbox, LiveServer], relay: TlsRelay,
        tmp_path: Path) -> None:
    from connectors.quickbooks import QuickBooksSettings

    box, server = quickbooks
    code, realm = quickbooks_consent(server.url)
    settings = QuickBooksSettings("dunwell-demo", "dunwell-demo-secret",
                                  f"{server.url}/.well-known/openid_configuration",
                                  f"{server.url}/v3")
    tokens = settings.exchange_code(code, QBO_REDIRECT, realm)
    config = {"start_date": START, "client_id": "dunwell-demo",
              "client_secret": "dunwell-demo-secret", "refresh_token": tokens.refresh_token,
              "realm_id": realm, "user_agent": "dunwell-contract-test", "sandbox": False}
    streams = {"invoices", "customers", "payments", "credit_memos", "estimates", "accounts"}
    counts, records = run_tap(client_venv(TAP_QUICKBOOKS) / "tap-quickbooks", config, relay,
                              tmp_path, streams)
    expected = {"invoices": len(box.invoices(realm)), "customers": len(box.customers(realm)),
                "payments": len(box.payments(realm)),
                "credit_memos": len(box.credit_memos(realm)),
                "estimates": len(box._rendered(realm, "Estimate")),
                "accounts": len(box.accounts(realm))}
    assert {k: counts.get(k, 0) for k in expected} == expected
    assert set(relay.seen) <= {"quickbooks.api.intuit.com", "oauth.platform.intuit.com"}
    invoice = records["invoices"][0]
    assert invoice["Id"] and invoice["CustomerRef"]["value"] and invoice["Line"]

    # Its deleted_objects stream asks CDC for every entity Intuit lists, in one call, from its
    # start date (CDC looks back 30 days at most): a deleted invoice comes back as a stub.
    doomed = next(r["Id"] for r in records["invoices"]  # nothing applied: it may be deleted
                  if r["Balance"] == r["TotalAmt"])
    with box.lock:
        company = box.company(realm)
        record = company.find("Invoice", doomed)
        box.delete(company, "Invoice", {"Id": doomed, "SyncToken": record["SyncToken"]})
    recent = {**json.loads((tmp_path / "config.json").read_text()),
              "start_date": (datetime.now(UTC) - timedelta(days=29)).strftime(
                  "%Y-%m-%dT%H:%M:%SZ")}
    counts, records = run_tap(client_venv(TAP_QUICKBOOKS) / "tap-quickbooks", recent, relay,
                              tmp_path, {"deleted_objects"})
    assert [(r["Id"], r["Type"]) for r in records.get("deleted_objects", [])] == [
        (doomed, "Invoice")]
