"""Issue 21, point 5: a viewer tied up a web worker for about 25 s with one template-preview
request (costly filters in a loop, within the step budget, rendered once per language). The
preview is for those who may edit, it is rate-limited, and a render has a wall-time budget as
well as a step budget (rules/template_safety.py, used by the web and the worker alike); a text
over it is refused at save with a clear message."""

from __future__ import annotations

import time

import pytest
import requests

from tests.integration import flows
from tests.security.conftest import fingerprint
from tests.security.people import add_member, signed_in

pytestmark = pytest.mark.db

# Within the step budget (fewer than 50,000 loop turns and calls), but each call is costly.
SLOW_BODY = ("{% for i in range(1000) %}{% for j in range(12) %}"
             "{{ (contact_name * 900)|title|wordcount }}{% endfor %}{% endfor %}")


def _post(http: requests.Session, base: str, path: str, data: dict[str, str]
          ) -> requests.Response:
    page = http.get(f"{base}/settings")
    return http.post(f"{base}{path}", data={**data, "csrf_token": flows.csrf_token(page.text)})


def test_a_slow_text_is_stopped_by_the_time_budget_and_refused_at_save(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from rules.template_safety import MAX_RENDER_SECONDS

    base = f"{connected.web.url}/orgs/{connected.org_id}"
    form = {"language": "en", "tone": "friendly", "subject": "Invoice {{ invoice_number }}",
            "body": SLOW_BODY}
    # CPU of this process (the app's server threads run in it), as the budget counts it: a
    # loaded machine stretches the wall time, not the work.
    started = time.process_time()
    preview = _post(connected.http, base, "/settings/template-preview", form)
    took = time.process_time() - started
    assert preview.status_code == 200 and "takes too long" in preview.json()["error"]
    assert took < 4 * MAX_RENDER_SECONDS + 2  # one render over budget stops the rest
    before = fingerprint(app)
    saved = _post(connected.http, base, "/settings/templates", form)
    assert saved.status_code == 422 and "takes too long to write" in saved.text
    assert fingerprint(app) == before


def test_the_budget_holds_wherever_a_text_is_rendered() -> None:
    """rules/messages.render is what the worker calls to send: the same budget stops it."""
    from rules.messages import SAMPLE, MessageTemplateError, render

    started = time.thread_time()
    with pytest.raises(MessageTemplateError, match="takes too long"):
        render("Subject: x\n\n" + SLOW_BODY, SAMPLE)
    assert time.thread_time() - started < 2


def test_the_budget_counts_the_render_not_what_comes_before_it() -> None:
    """The clock starts at the render's first step: the environment made and its template
    compiled, then a cold process's first-use work (a final demand's first render in a fresh
    worker went over the budget before its first line), and an ordinary text still renders."""
    from rules.template_safety import MAX_RENDER_SECONDS, TemplateSandbox

    env = TemplateSandbox()
    template = env.from_string("{% for i in range(3) %}{{ i }}{% endfor %}")
    spun = time.thread_time() + MAX_RENDER_SECONDS + 0.1
    while time.thread_time() < spun:
        pass
    assert template.render() == "012"


def test_a_viewer_may_not_preview_and_an_editor_is_rate_limited(app, connected) -> None:  # type: ignore[no-untyped-def]
    from app.settings.views import PREVIEWS_PER_MINUTE

    base = f"{connected.web.url}/orgs/{connected.org_id}"
    add_member(app, connected.org_id, "viewer@example.com", "viewer")
    viewer = signed_in(connected.web.url, "viewer@example.com")
    form = {"source": "Subject: Hello\n\nDear {{ contact_name }}", "language": "en"}
    assert _post(viewer, base, "/settings/template-preview", form).status_code == 403
    for _ in range(PREVIEWS_PER_MINUTE):
        assert _post(connected.http, base, "/settings/template-preview", form).json()["subject"]
    refused = _post(connected.http, base, "/settings/template-preview", form)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "Too many previews" in refused.json()["error"]
