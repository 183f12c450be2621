"""Operating Dunwell: health probes, metrics, structured logs, error reports.

`init_operations(app)` wires them into the app (create_app calls it last, so that its
middleware wraps all the others). Settings, from the environment (README, "Configuration"):
LOG_FORMAT (json | text), LOG_LEVEL, METRICS_TOKEN, SENTRY_DSN, SENTRY_ENVIRONMENT.
"""

from __future__ import annotations

import os

from flask import Flask
from flask.logging import default_handler

from app.health.probes import ProbeDispatcher
from app.health.requests import RequestIds, init_request_metrics
from observability.errors import init_error_reports
from observability.logs import configure_logging

SETTINGS = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "METRICS_TOKEN": "", "SENTRY_DSN": "",
            "SENTRY_ENVIRONMENT": "production"}


def init_operations(app: Flask) -> None:
    for name, default in SETTINGS.items():
        app.config.setdefault(name, os.environ.get(name, default))
    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    # Flask's own handler on the "app" logger would print our modules' lines a second time.
    app.logger.removeHandler(default_handler)
    init_error_reports(app.config["SENTRY_DSN"], app.config["SENTRY_ENVIRONMENT"])
    init_request_metrics(app)
    app.wsgi_app = RequestIds(ProbeDispatcher(app, app.wsgi_app))  # type: ignore[method-assign]
