"""gunicorn's settings for the `web` process, read from the working directory (the Procfile's
command line gives the rest).

Each worker opens the webhook endpoint's database and Redis connections before it takes a
request, one per thread: providers deliver in bursts, and a new worker's first requests would
otherwise each wait for a connection to be opened (docs/performance.md, "Webhooks").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from gunicorn.glogging import Logger

from observability.logs import JsonFormatter, TextFormatter

# Metrics in multiprocess mode (docs/operations.md): each worker writes its values to files in
# this directory and /metrics adds them up. Set before any worker imports prometheus_client: a
# fresh directory per start unless the environment names one (emptied at each deploy; shared
# with `dunwell worker` on the same machine, the scrape shows the jobs' metrics too).
OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dunwell-metrics-")


class DunwellLogger(Logger):
    """gunicorn's own lines (workers booting, timeouts) in LOG_FORMAT, as the app's are: the
    web process's stream stays one JSON object per line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        json_lines = os.environ.get("LOG_FORMAT", "json") == "json"
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())


logger_class = DunwellLogger


def child_exit(server: Any, worker: Any) -> None:
    # Imported here, in the master, only once PROMETHEUS_MULTIPROC_DIR is set above.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    app = worker.wsgi  # create_app()'s Flask app
    from app.webhooks.services import open_pools

    with app.app_context():
        open_pools(max(1, worker.cfg.threads))
