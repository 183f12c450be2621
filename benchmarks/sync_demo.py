"""First sync of the seeded demo organisation: wall time and API calls against the floor.

Prints one JSON object. Runs the Xero sandbox in-process over real HTTP, a fresh SQLite
database (or DATABASE_URL) per run, and the Redis at REDIS_URL.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

RUNS = int(os.environ.get("RUNS", "5"))


def one_run(workdir: Path) -> dict[str, float]:
    from app import create_app
    from app.connections.services import connect_xero
    from connectors.oauth import new_pkce_pair
    from connectors.xero import page_floor
    from jobs.tasks import sync_org
    from migrations import upgrade
    from sandboxes.xero import XeroSandbox
    from sandboxes.xero import create_app as sandbox_app
    from store.db import db
    from store.models import User

    box = XeroSandbox()
    box.seed_demo(datetime.now(UTC).date())
    server = make_server("127.0.0.1", 0, sandbox_app(box), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    upgrade(url=url)
    app = create_app({
        "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        "RQ_QUEUE": "bench", "XERO_CLIENT_ID": "dunwell-demo",
        "XERO_CLIENT_SECRET": "dunwell-demo-secret",
        "XERO_AUTHORIZE_URL": f"{base}/identity/connect/authorize",
        "XERO_TOKEN_URL": f"{base}/connect/token", "XERO_REVOKE_URL": f"{base}/connect/revocation",
        "XERO_API_URL": f"{base}/api.xro/2.0", "XERO_CONNECTIONS_URL": f"{base}/connections",
    })
    try:
        with app.app_context():
            from collect.providers import xero_settings

            redirect = "http://127.0.0.1:9/cb"
            verifier, challenge = new_pkce_pair()
            consent = requests.get(xero_settings().oauth.authorization_url(
                redirect, "s", challenge), timeout=10).text
            fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', consent))
            tenant = re.search(r'name="tenant" value="([^"]+)"', consent).group(1)  # type: ignore[union-attr]
            answer = requests.post(f"{base}/identity/connect/authorize", allow_redirects=False,
                                   data={**fields, "tenant": tenant, "decision": "allow"},
                                   timeout=10)
            code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
            tokens = xero_settings().oauth.exchange_code(code, redirect, verifier)
            user = User(email="bench@example.com", password_hash="-")
            db.session.add(user)
            db.session.commit()
            org = connect_xero(user, tokens)[0]
            calls_before = box.calls(tenant)
            started = time.perf_counter()
            result = sync_org(org.id, plan_after=False)
            elapsed = time.perf_counter() - started
            counts = result["counts"]
            return {"seconds": elapsed, "api_calls": box.calls(tenant) - calls_before,
                    "floor": 1 + sum(page_floor(n) for n in counts.values()),
                    "invoices": counts["invoices"], "contacts": counts["contacts"],
                    "payments": counts["payments"]}
    finally:
        with app.app_context():
            db.engine.dispose()
        server.shutdown()


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    runs = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as workdir:
            runs.append(one_run(Path(workdir)))
    seconds = [r["seconds"] for r in runs]
    print(json.dumps({
        "benchmark": "sync_demo", "database": "sqlite", "runs": RUNS,
        "median_seconds": round(statistics.median(seconds), 3),
        "min_seconds": round(min(seconds), 3), "max_seconds": round(max(seconds), 3),
        "api_calls": runs[0]["api_calls"], "api_call_floor": runs[0]["floor"],
        "invoices": runs[0]["invoices"], "contacts": runs[0]["contacts"],
        "payments": runs[0]["payments"],
        "invoices_per_second": round(runs[0]["invoices"] / statistics.median(seconds)),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }))


if __name__ == "__main__":
    main()
