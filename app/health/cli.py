"""`dunwell workers`: the worker registry as the process manager or the engineer sees it; and
the worker process's own metrics port (WORKER_METRICS_PORT)."""

from __future__ import annotations

import json
import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from app.health.checks import health_redis
from app.health.workers import worker_status
from observability.metrics import registry_for_scrape


@click.command("workers", help="Which RQ workers heartbeat and when the scheduler last did; "
                               "exit status 1 when none heartbeats or no scheduler runs.")
@with_appcontext
def workers_command() -> None:
    queue = current_app.config["RQ_QUEUE"]
    try:
        status = worker_status(health_redis(), queue)
    except (RedisError, OSError) as error:
        click.echo(json.dumps({"queue": queue, "healthy": False,
                               "error": f"redis: {type(error).__name__}"}))
        sys.exit(1)
    click.echo(json.dumps(status.as_dict(), indent=2))
    sys.exit(0 if status.healthy else 1)


def serve_worker_metrics() -> int | None:
    """With WORKER_METRICS_PORT set, this process's metrics (or, in multiprocess mode, those of
    every process sharing PROMETHEUS_MULTIPROC_DIR) on that port, on WORKER_METRICS_ADDR
    (127.0.0.1 unless set: the port is for the machine's Prometheus agent, not the public)."""
    port = os.environ.get("WORKER_METRICS_PORT", "")
    if not port:
        return None
    start_http_server(int(port), addr=os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1"),
                      registry=registry_for_scrape())
    return int(port)
