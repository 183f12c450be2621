"""gunicorn's settings for the `web` process, read from the working directory (the Procfile's
command line gives the rest).

Each worker opens the webhook endpoint's database and Redis connections before it takes a
request, one per thread: providers deliver in bursts, and a new worker's first requests would
otherwise each wait for a connection to be opened (docs/performance.md, "Webhooks").
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    app = worker.wsgi  # create_app()'s Flask app
    from app.webhooks.services import open_pools

    with app.app_context():
        open_pools(max(1, worker.cfg.threads))
