"""Who may use which route: the role matrix, and the one check that enforces it.

Every (endpoint, method) of the app has a rule here; a route without one is refused (403) and
`tests/security/test_role_matrix.py` fails naming it. The check runs before every view, so a
view only scopes its queries to the organisation; it does not decide who may call it.
docs/security.md shows this table (`matrix_rows`), and a test keeps the two the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, abort, request
from flask_login import current_user
from sqlalchemy import select

from app.extensions import login_manager
from store.db import db
from store.models import Membership

log = logging.getLogger(__name__)

ROLES = ("owner", "admin", "accountant", "viewer")


@dataclass(frozen=True)
class Rule:
    """Who may call a route: `audience` says how the caller is known, `roles` which members of
    the organisation in the URL may (only for audience "member")."""

    audience: str  # anyone | signed_in | member | api_token | provider_signature
    roles: frozenset[str] = frozenset()

    def allows(self, role: str) -> bool:
        return role in self.roles

    def describe(self) -> str:
        if self.audience == "member":
            return ", ".join(r for r in ROLES if r in self.roles)
        return {"anyone": "anyone (no sign-in)", "signed_in": "anyone signed in (their own)",
                "api_token": "a bearer token of the organisation",
                "provider_signature": "the provider (signed body)"}[self.audience]


ANYONE = Rule("anyone")
SIGNED_IN = Rule("signed_in")
API_TOKEN = Rule("api_token")
PROVIDER = Rule("provider_signature")
MEMBERS = Rule("member", frozenset(ROLES))
EDITORS = Rule("member", frozenset({"owner", "admin", "accountant"}))
MANAGERS = Rule("member", frozenset({"owner", "admin"}))
OWNERS = Rule("member", frozenset({"owner"}))

# endpoint -> method -> rule. HEAD follows GET; OPTIONS is answered by Flask itself.
RULES: dict[str, dict[str, Rule]] = {
    "static": {"GET": ANYONE},
    "organisations.home": {"GET": ANYONE},
    "auth.sign_in": {"GET": ANYONE, "POST": ANYONE},
    "auth.sign_out": {"POST": SIGNED_IN},
    "auth.set_language": {"POST": ANYONE},
    "auth.signup_xero": {"GET": ANYONE},
    "auth.signup_xero_callback": {"GET": ANYONE},
    "auth.signin_intuit": {"GET": ANYONE},
    "auth.signin_intuit_callback": {"GET": ANYONE},
    "auth.marketplace_launch": {"GET": ANYONE},
    "auth.invitation": {"GET": ANYONE, "POST": ANYONE},  # the link's secret authorises
    "auth.reset_request": {"GET": ANYONE, "POST": ANYONE},
    "auth.reset_password": {"GET": ANYONE, "POST": ANYONE},  # the link's secret authorises
    "organisations.index": {"GET": SIGNED_IN},
    "practice.index": {"GET": SIGNED_IN},
    "connections.connect_xero_start": {"POST": SIGNED_IN},
    "connections.xero_callback": {"GET": SIGNED_IN},
    "connections.connect_quickbooks_start": {"POST": SIGNED_IN},
    "connections.quickbooks_callback": {"GET": SIGNED_IN},
    "organisations.show": {"GET": MEMBERS},
    "organisations.sync_status": {"GET": MEMBERS},
    "organisations.sync_now": {"POST": EDITORS},
    "organisations.document": {"GET": MEMBERS},
    "organisations.fee_quote": {"GET": MEMBERS},
    "dashboard.show": {"GET": MEMBERS},
    "dashboard.invoice": {"GET": MEMBERS},
    "dashboard.task_done": {"POST": EDITORS},
    "dashboard.invoice_promise": {"POST": EDITORS},
    "dashboard.invoice_dispute": {"POST": EDITORS},
    "dashboard.invoice_note": {"POST": EDITORS},
    "dashboard.invoice_pause": {"POST": EDITORS},
    "dashboard.invoice_resume": {"POST": EDITORS},
    "dashboard.invoice_remind": {"POST": EDITORS},
    "dashboard.invoice_one_off": {"POST": EDITORS},
    "dashboard.invoice_plan": {"POST": EDITORS},
    "customers.index": {"GET": MEMBERS},
    "customers.show": {"GET": MEMBERS},
    "customers.hold": {"POST": EDITORS},
    "customers.pause": {"POST": EDITORS},
    "customers.resume": {"POST": EDITORS},
    "customers.note": {"POST": EDITORS},
    "customers.promise": {"POST": EDITORS},
    "customers.remind": {"POST": EDITORS},
    "customers.limit": {"POST": EDITORS},
    "customers.retainer": {"POST": EDITORS},
    "customers.top_up": {"POST": EDITORS},
    # The customer's portal: the signed link in the URL authorises (app/portal/views.py).
    "portal.show": {"GET": ANYONE},
    "portal.promise": {"POST": ANYONE},
    "portal.dispute": {"POST": ANYONE},
    "portal.plan": {"POST": ANYONE},
    "portal.pay": {"GET": ANYONE},
    "portal.pdf": {"GET": ANYONE},
    "portal.card": {"POST": ANYONE},
    "portal.logo": {"GET": ANYONE},
    "portal_admin.resolve": {"POST": EDITORS},
    "portal_admin.attachment": {"GET": MEMBERS},
    "portal_admin.approve_plan": {"POST": EDITORS},
    "portal_admin.decline_plan": {"POST": EDITORS},
    "portal_admin.rotate": {"POST": MANAGERS},
    "portal_admin.limits": {"POST": MANAGERS},
    "portal_admin.logo": {"GET": MEMBERS},
    "portal_admin.save_logo": {"POST": MANAGERS},  # what every customer sees
    "settings.policy": {"GET": MEMBERS, "POST": EDITORS},
    "settings.credit": {"POST": EDITORS},
    "settings.template_preview": {"POST": EDITORS},
    "settings.save_template": {"POST": EDITORS},
    "settings.reset_template": {"POST": EDITORS},
    "settings.test_send": {"POST": EDITORS},
    "settings.safe_mode": {"POST": EDITORS},
    "settings.approvals_page": {"GET": MEMBERS},
    "settings.approval": {"POST": EDITORS},
    "settings.approve_all": {"POST": EDITORS},
    "settings.contacts": {"GET": MEMBERS},
    "settings.contact": {"GET": MEMBERS, "POST": EDITORS},
    "settings.preview": {"GET": MEMBERS},
    "setup.show": {"GET": MEMBERS},
    "setup.preset": {"POST": EDITORS},
    "setup.test_send": {"POST": EDITORS},
    "setup.go_live": {"POST": MANAGERS},
    "setup.save_sender": {"POST": MANAGERS},
    "setup.decide_rate": {"POST": MANAGERS},
    "setup.mailbox": {"GET": SIGNED_IN},  # the demo's only; 404 unless DEMO_MAILBOX is set
    "members.index": {"GET": MEMBERS},
    "members.invite": {"POST": MANAGERS},
    "members.revoke_invitation": {"POST": MANAGERS},
    "members.role": {"POST": MANAGERS},  # and only an owner grants or takes away "owner"
    "members.remove": {"GET": MANAGERS, "POST": MANAGERS},  # only an owner removes an owner
    "members.new_token": {"POST": MANAGERS},
    "members.revoke_token": {"POST": MANAGERS},
    "connections.show": {"GET": MEMBERS},
    "connections.disconnect_org": {"POST": MANAGERS},
    "connections.export": {"GET": OWNERS},
    "connections.delete_data_now": {"POST": OWNERS},
    "api.openapi": {"GET": ANYONE},
    "api.organisation": {"GET": API_TOKEN},
    "api.aging_report": {"GET": API_TOKEN},
    "api.invoices": {"GET": API_TOKEN},
    "api.actions": {"GET": API_TOKEN},
    "webhooks.xero": {"POST": PROVIDER},
    "webhooks.quickbooks": {"POST": PROVIDER},
    "sms.status": {"POST": PROVIDER},  # X-Twilio-Signature, checked in app/sms/views.py
    "sms.inbound": {"POST": PROVIDER},
    "sms_settings.show": {"GET": MEMBERS},
    "sms_settings.save": {"POST": MANAGERS},  # an account and its auth token
    "stripe_webhooks.receive": {"POST": PROVIDER},  # Stripe-Signature, app/payments/views.py
    "card_payments.show": {"GET": MEMBERS},
    "card_payments.save": {"POST": MANAGERS},  # a Stripe secret key and webhook secret
}


def rule_for(endpoint: str | None, method: str) -> Rule | None:
    return RULES.get(endpoint or "", {}).get("GET" if method == "HEAD" else method)


def role_in(user_id: int, org_id: int) -> str | None:
    return db.session.scalar(select(Membership.role).where(
        Membership.user_id == user_id, Membership.org_id == org_id))


def may(role: str | None, endpoint: str, method: str) -> bool:
    """Whether a member with `role` may call the route (for pages that show or hide a button)."""
    rule = rule_for(endpoint, method)
    return rule is not None and role is not None and rule.allows(role)


def enforce_role_matrix() -> Any:
    """Before every view: no rule, 403; a member route answers 404 to a non-member (the
    organisation is not revealed) and 403 to a member whose role is not in the rule."""
    if request.endpoint is None or request.method == "OPTIONS":
        return None  # 404 / 405 / automatic OPTIONS: Flask answers, no view runs
    rule = rule_for(request.endpoint, request.method)
    if rule is None:
        log.error("route %s %s has no role rule: refused", request.method, request.endpoint)
        abort(403)
    if rule.audience in ("anyone", "api_token", "provider_signature"):
        return None  # the API and the webhooks authenticate in their own blueprints
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if rule.audience == "signed_in":
        return None
    org_id = (request.view_args or {}).get("org_id")
    if not isinstance(org_id, int):
        log.error("member route %s has no org_id: refused", request.endpoint)
        abort(403)
    role = role_in(current_user.id, org_id)
    if role is None:
        abort(404)
    if not rule.allows(role):
        abort(403)
    return None


def matrix_rows(app: Flask) -> list[tuple[str, str, str, str]]:
    """(method, path, endpoint, who may) for every route of the app: the table in
    docs/security.md."""
    rows = []
    for url_rule in app.url_map.iter_rules():
        for method in sorted((url_rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rule = rule_for(url_rule.endpoint, method)
            rows.append((method, url_rule.rule, url_rule.endpoint,
                         rule.describe() if rule else "NO RULE"))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def init_access(app: Flask) -> None:
    app.before_request(enforce_role_matrix)
    app.jinja_env.globals["may"] = may
