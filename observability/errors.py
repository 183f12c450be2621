"""Error reports to Sentry, when SENTRY_DSN is set (the `sentry` extra installs sentry-sdk).

Nothing personal is sent: no default PII (sentry-sdk's default), no request bodies, no local
variables of the stack frames (they hold tokens and customer records); what is sent (headers,
the message, the exception's text, the source lines, breadcrumbs, extra data) is scrubbed by
the rules the logs use, and carries the same ids as tags.
"""

from __future__ import annotations

from typing import Any

from observability import context
from observability.scrub import scrub_text, scrub_value

try:
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration
except ImportError:  # the extra is not installed: error reports are off
    sentry_sdk = None  # type: ignore[assignment]


def scrub_event(event: Any, hint: Any = None) -> Any:
    """Sentry's `before_send`: the event as it may leave the process."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        if "query_string" in request:
            request["query_string"] = scrub_text(str(request["query_string"]))
        if isinstance(request.get("headers"), dict):
            request["headers"] = scrub_value("headers", request["headers"])
    for name in ("extra", "contexts", "tags"):
        if isinstance(event.get(name), dict):
            event[name] = scrub_value(name, event[name])
    if "message" in event:
        event["message"] = scrub_text(str(event["message"]))
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        logentry.pop("params", None)
        for key in ("message", "formatted"):
            if key in logentry:
                logentry[key] = scrub_text(str(logentry[key]))
    for exception in (event.get("exception") or {}).get("values") or []:
        if "value" in exception:
            exception["value"] = scrub_text(str(exception["value"]))
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
            for key in ("pre_context", "post_context"):
                if isinstance(frame.get(key), list):
                    frame[key] = [scrub_text(str(line)) for line in frame[key]]
            if "context_line" in frame:
                frame["context_line"] = scrub_text(str(frame["context_line"]))
    breadcrumbs = event.get("breadcrumbs")
    crumbs = breadcrumbs.get("values") if isinstance(breadcrumbs, dict) else breadcrumbs
    for crumb in crumbs or []:
        if "message" in crumb:
            crumb["message"] = scrub_text(str(crumb["message"]))
        if isinstance(crumb.get("data"), dict):
            crumb["data"] = scrub_value("data", crumb["data"])
    event.setdefault("tags", {}).update(
        {name: str(value) for name, value in context.current().items()})
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    return event


def init_error_reports(dsn: str, environment: str, release: str | None = None) -> bool:
    """Start reporting to `dsn` (empty: nothing is reported); whether reports are on."""
    if not dsn or sentry_sdk is None:
        return False
    sentry_sdk.init(dsn=dsn, environment=environment, release=release,
                    integrations=[FlaskIntegration(), RqIntegration()],
                    include_local_variables=False,
                    max_request_body_size="never", before_send=scrub_event,
                    before_send_transaction=scrub_event, traces_sample_rate=0.0)
    return True
