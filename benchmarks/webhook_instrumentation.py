"""What the operations layer costs a webhook request, in-process, in prometheus-client's
multiprocess mode as under gunicorn.

The same unsigned Xero delivery (answered 401, so no database or Redis write: what is left is
the request's own path) goes `--requests` times through the app's whole WSGI stack (request id,
probes, webhook dispatcher with its metrics), then as often through the dispatcher alone with
its metrics call left out; alternately, `--rounds` times. CPU seconds of this process per
request (time.process_time, so another process's load on the machine counts little) are
printed for both, their medians, and the difference. Compare the difference with the server
CPU per request of benchmarks/webhooks.py.

    .venv/bin/python -m benchmarks.webhook_instrumentation [--requests 5000] [--rounds 7]

prints one JSON object.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

# Multiprocess mode, as gunicorn.conf.py sets it: before prometheus_client is first imported.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dunwell-bench-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], True)

from cryptography.fernet import Fernet

from app import create_app

# `app` binds the name `webhooks` to its blueprint, so `import app.webhooks.views as ...`
# would look the module up as an attribute of that blueprint.
webhook_views = importlib.import_module("app.webhooks.views")

BODY = b'{"events": [], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "X"}'


def environ() -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/xero", "SERVER_NAME": "bench",
            "SERVER_PORT": "80", "wsgi.url_scheme": "http", "CONTENT_LENGTH": str(len(BODY)),
            "CONTENT_TYPE": "application/json", "HTTP_X_XERO_SIGNATURE": "not-the-signature",
            "wsgi.input": _Body()}


class _Body:
    def __init__(self) -> None:
        self.left = BODY

    def read(self, size: int = -1) -> bytes:
        chunk, self.left = self.left[:size], self.left[size:]
        return chunk


def cpu_per_request(wsgi: Callable[..., Iterable[bytes]], requests: int) -> float:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> None:
        statuses.append(status)

    started = time.process_time()
    for _ in range(requests):
        for _chunk in wsgi(environ(), start_response):
            pass
    spent = time.process_time() - started
    assert set(statuses) == {"401 UNAUTHORIZED"}, set(statuses)
    return spent / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    application = create_app({"SECRET_KEY": "bench", "TOKEN_ENCRYPTION_KEYS":
                              Fernet.generate_key().decode(), "XERO_WEBHOOK_KEY": "bench-key",
                              "LOG_LEVEL": "ERROR"})
    whole = application.wsgi_app
    dispatcher = whole
    while not isinstance(dispatcher, webhook_views.WebhookDispatcher):
        dispatcher = dispatcher.wsgi_app
    counted = webhook_views.webhook_answered

    def uncounted(environ: Any, provider: str, status: int) -> None:
        pass

    cpu_per_request(whole, 500)  # warm: the answer's headers, each series created once
    with_ops: list[float] = []
    without_ops: list[float] = []
    for _ in range(args.rounds):
        webhook_views.webhook_answered = counted  # type: ignore[assignment]
        with_ops.append(cpu_per_request(whole, args.requests))
        webhook_views.webhook_answered = uncounted  # type: ignore[assignment]
        without_ops.append(cpu_per_request(dispatcher, args.requests))
    webhook_views.webhook_answered = counted  # type: ignore[assignment]
    us = 1_000_000
    median_with, median_without = statistics.median(with_ops), statistics.median(without_ops)
    print(json.dumps({
        "benchmark": "webhook_instrumentation", "requests_per_round": args.requests,
        "rounds": args.rounds, "load_average": round(os.getloadavg()[0], 2),
        "cpu_us_per_request_with": [round(v * us, 2) for v in with_ops],
        "cpu_us_per_request_without": [round(v * us, 2) for v in without_ops],
        "median_us_with": round(median_with * us, 2),
        "median_us_without": round(median_without * us, 2),
        "instrumentation_us_per_request": round((median_with - median_without) * us, 2)}))


if __name__ == "__main__":
    main()
