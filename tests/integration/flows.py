"""Steps a person takes in the browser, over real HTTP, shared by the end-to-end tests."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


class FormParser(HTMLParser):
    """Collects the forms of a page: action, method and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method":
                               (a.get("method") or "get").lower(), "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append(a)


def forms_of(html: str) -> list[dict]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def sign_in(http: requests.Session, base: str, email: str, password: str) -> requests.Response:
    page = http.get(f"{base}/signin")
    return http.post(f"{base}/signin", data={"csrf_token": csrf_token(page.text),
                                             "email": email, "password": password})


def start_connect(http: requests.Session, base: str,
                  provider: str = "xero") -> requests.Response:
    """Press "Connect Xero" (or "Connect QuickBooks") on the organisations page; returns the
    provider's consent page."""
    page = http.get(f"{base}/orgs")
    assert {"xero": "Connect Xero", "quickbooks": "Connect QuickBooks"}[provider] in page.text
    return http.post(f"{base}/connect/{provider}", data={"csrf_token": csrf_token(page.text)})


def answer_consent(http: requests.Session, consent: requests.Response, decision: str,
                   tenants: int = 1) -> requests.Response:
    """Tick the first `tenants` organisations and press Allow (or Cancel)."""
    form = next(f for f in forms_of(consent.text) if f["method"] == "post")
    data: list[tuple[str, str]] = []
    ticked, chosen = 0, set()
    for field in form["inputs"]:
        name, kind = field.get("name"), (field.get("type") or "text").lower()
        if not name or name == "decision":
            continue
        if kind == "checkbox":
            if ticked < tenants:
                data.append((name, field.get("value") or "on"))
                ticked += 1
        elif kind == "radio":  # one company per consent (QuickBooks): the first offered
            if name not in chosen:
                data.append((name, field.get("value") or ""))
                chosen.add(name)
        elif kind not in ("submit", "button"):
            data.append((name, field.get("value") or ""))
    data.append(("decision", decision))
    return http.post(urljoin(consent.url, form["action"] or consent.url), data=data)


def go_live(http: requests.Session, base: str, org_id: int,
            charge_earlier: bool = True) -> requests.Response:
    """Press Go live on the setup page of a newly connected organisation (which starts in
    review): fees seen and, unless told otherwise, charged on lateness from before today as
    well (what the organisation did before review existed)."""
    page = http.get(f"{base}/orgs/{org_id}/setup")
    assert page.status_code == 200, page.text[:300]
    data = {"csrf_token": csrf_token(page.text), "fees_seen": "on"}
    if charge_earlier:
        data["charge_earlier"] = "on"
    live = http.post(f"{base}/orgs/{org_id}/setup/go-live", data=data)
    assert live.status_code == 200 and "Live" in live.text, live.text[:300]
    return live


def books_state(provider: str, box: object, tenant: str) -> str:
    """Everything a customer or the books could have received from Dunwell, read from the
    sandbox's own state, as one comparable text: invoices (lines, totals, notes), emails,
    history notes and credit notes; for QuickBooks every write request as well."""
    if provider == "xero":
        state = {"invoices": box.invoices(tenant), "emails": box.emails(tenant),  # type: ignore[attr-defined]
                 "history": box.history(tenant), "credits": box.credit_notes(tenant)}  # type: ignore[attr-defined]
    else:
        state = {"invoices": box.invoices(tenant), "emails": box.emails(tenant),  # type: ignore[attr-defined]
                 "credits": box.credit_memos(tenant),  # type: ignore[attr-defined]
                 "writes": [r for r in box.requests(tenant)  # type: ignore[attr-defined]
                            if r.get("method") != "GET"
                            and not r.get("path", "").endswith("/query")]}  # a query reads
    return json.dumps(state, sort_keys=True, default=str)


def policy_form(page: str) -> dict[str, str]:
    """The policy form as a browser would send it: disabled fields left out."""
    form = next(f for f in forms_of(page)
                if any((i.get("name") or "").startswith("reminder_steps.")
                       for i in f["inputs"]))
    values: dict[str, str] = {}
    for field in form["inputs"]:
        name, kind = field.get("name"), (field.get("type") or "text").lower()
        if not name or kind in ("submit", "button") or "disabled" in field:
            continue
        if kind == "checkbox" and "checked" not in field:
            continue
        values.setdefault(name, field.get("value") or ("on" if kind == "checkbox" else ""))
    for attrs, options in re.findall(r'<select([^>]*)>(.*?)</select>', page, re.S):
        name = re.search(r'name="([^"]+)"', attrs)
        if not name or " disabled" in attrs:
            continue
        chosen = re.search(r'<option value="([^"]*)"\s+selected', options) \
            or re.search(r'<option value="([^"]*)"', options)
        if chosen:
            values.setdefault(name.group(1), chosen.group(1))
    return values
