"""Each web request's id and its metrics.

`RequestIds` sits outermost in the WSGI stack, so the webhook endpoint (answered before Flask)
has an id too: it binds the id for the request's log lines and the jobs it enqueues
(jobs/queues.py puts it in `job.meta`), and answers it in `X-Request-ID`. Flask's hooks count
each request by its URL rule (never its path: ids in paths would make a series per id).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from observability import context
from observability.metrics import observe_request, observe_webhook

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ENVIRON_KEY = "HTTP_" + context.REQUEST_ID_HEADER.upper().replace("-", "_")
STARTED = "dunwell.started"  # in the WSGI environ: when the request arrived (perf_counter)


class RequestIds:
    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        environ[STARTED] = time.perf_counter()
        request_id = context.request_id_from(environ.get(ENVIRON_KEY))

        def start_with_id(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, [*headers, (context.REQUEST_ID_HEADER, request_id)],
                                  *args)

        with context.bound(request_id=request_id):
            return self.wsgi_app(environ, start_with_id)


def webhook_answered(environ: WSGIEnvironment, provider: str, status: int) -> None:
    """A webhook delivery answered in front of Flask: counted, and timed from its arrival."""
    started = environ.get(STARTED)
    observe_webhook(provider, status,
                    None if started is None else time.perf_counter() - started)


def _started() -> None:
    g.dunwell_started = time.perf_counter()
    org_id = (request.view_args or {}).get("org_id")
    if isinstance(org_id, int):
        context.add(org_id=org_id)


def _finished(response: Response) -> Response:
    started = g.get("dunwell_started")
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        observe_request(rule, request.method, response.status_code,
                        time.perf_counter() - started)
    return response


def init_request_metrics(app: Flask) -> None:
    # First of the before-request handlers: a request another one refuses is timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request(_finished)
