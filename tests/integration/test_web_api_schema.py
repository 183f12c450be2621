"""schemathesis against the JSON API's OpenAPI file, over real HTTP with a real token: every
answer matches the description and none is a server error."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings

from tests.integration import flows
from tests.integration.conftest import run_jobs

pytestmark = pytest.mark.db


def test_the_api_keeps_its_openapi_description(app, connected) -> None:  # type: ignore[no-untyped-def]
    import schemathesis

    from app.api.views import spec

    run_jobs(app)  # invoices and actions to answer with
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/members")
    made = connected.http.post(f"{connected.web.url}/orgs/{connected.org_id}/api-tokens",
                               data={"csrf_token": flows.csrf_token(page.text),
                                     "name": "schemathesis"})
    token = re.search(r'id="api-token">([^<]+)<', made.text).group(1)
    schema = schemathesis.openapi.from_dict(spec())
    base_url = f"{connected.web.url}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(op.path for op in operations) == ["/actions", "/aging", "/invoices",
                                                    "/organisation"]
    calls = []
    for operation in operations:
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def conforms(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call_and_validate(base_url=base_url, headers=headers)
            calls.append(response.status_code)

        conforms()
    assert calls and all(status < 500 for status in calls)
    assert 200 in calls
