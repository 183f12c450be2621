"""Every route of the app, with its URL parameters filled from a table of values, so a route
added later is probed without anyone listing it; a parameter nobody knows fails loudly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Parameters that do not name an organisation's object (what they reach is not a tenant's).
NOT_TENANT_PARAMETERS = {
    "filename": "static files",
    "provider": "which provider's sign-in to start",
    "token": "an invitation's or a password reset's secret, itself the authorisation "
             "(test_sessions_and_password_reset.py, test_web.py)",
}
# Signed by the provider, or authenticated by an API token in the Authorization header:
# exempt from CSRF because no browser cookie authorises them.
CSRF_EXEMPT_PREFIXES = ("/webhooks/", "/api/v1/")


@dataclass(frozen=True)
class Probe:
    rule: str
    endpoint: str
    method: str
    url: str


class UnfilledRoutes(AssertionError):
    pass


def probes(app, values: Mapping[str, object],  # type: ignore[no-untyped-def]
           methods: Iterable[str], skip_without_tenant_parameters: bool = False
           ) -> list[Probe]:
    """One probe per (route, method). A route with a parameter missing from `values` and from
    NOT_TENANT_PARAMETERS raises UnfilledRoutes naming every such route."""
    wanted = set(methods)
    found: list[Probe] = []
    unfilled: list[str] = []
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if not (rule.methods or set()) & wanted:
                continue
            params = set(rule.arguments)
            unknown = sorted(p for p in params
                             if p not in values and p not in NOT_TENANT_PARAMETERS)
            if unknown:
                unfilled.append(f"{rule.rule} ({rule.endpoint}): {', '.join(unknown)}")
                continue
            if skip_without_tenant_parameters and not (params - set(NOT_TENANT_PARAMETERS)):
                continue
            args = {p: values.get(p, {"filename": "dunwell.css", "provider": "xero",
                                      "token": "not-a-real-invitation"}.get(p))
                    for p in params}
            url = rule.build(args, append_unknown=False)[1]  # type: ignore[union-attr]
            for method in sorted((rule.methods or set()) & wanted):
                found.append(Probe(rule.rule, rule.endpoint, method, url))
    if unfilled:
        raise UnfilledRoutes(
            "routes with parameters the security tests cannot fill (add the parameter to the "
            "values in tests/security, or to NOT_TENANT_PARAMETERS with the reason):\n  "
            + "\n  ".join(unfilled))
    return found
