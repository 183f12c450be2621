"""The Xero webhook endpoint under load: gunicorn (2 workers) on loopback, PostgreSQL, Redis.

Sends correctly signed Xero payloads, each with one new event, at a paced rate (default 500
requests/s for 10 s) from a pool of client threads, then counts what was stored. Prints one JSON
object. Latency is measured from the moment a request is sent to its answer; `p99_late_ms` is
measured from the moment it was due (a client that fell behind shows there).

    .venv/bin/python benchmarks/webhooks.py [--rate 500] [--seconds 10] [--threads 48]

Settings from the environment: TEST_POSTGRES_URL (an admin URL; a database is created and
dropped), BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/0; only this run's
queue keys are removed).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
KEY = "benchmark-webhook-key"
ORGS = 5


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(KEY.encode(), body, hashlib.sha256).digest()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_database(admin_url: str) -> str:
    name = f"dunwell_bench_webhooks_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def seed(url: str) -> list[str]:
    """ORGS connected Xero organisations; returns their tenant ids."""
    sys.path.insert(0, str(ROOT))
    from migrations import upgrade

    upgrade(url=url)
    tenants = [str(uuid.uuid4()) for _ in range(ORGS)]
    engine = create_engine(url)
    with engine.begin() as conn:
        for n, tenant in enumerate(tenants, start=1):
            conn.execute(text(
                "INSERT INTO organisations (id, name, country, timezone, base_currency, "
                "created_at) VALUES (:id, :name, 'GB', 'Europe/London', 'GBP', now())"),
                {"id": n, "name": f"Benchmark {n}"})
            conn.execute(text(
                "INSERT INTO connections (org_id, provider, tenant_id, tenant_name, status, "
                "created_at, updated_at) VALUES (:id, 'xero', :tenant, '', 'active', now(), "
                "now())"), {"id": n, "tenant": tenant})
    engine.dispose()
    return tenants


def payload(tenant: str, n: int) -> bytes:
    resource = str(uuid.UUID(int=n))
    return json.dumps({"events": [{
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}",
        "resourceId": resource, "eventDateUtc": "2026-11-24T10:00:00.000",
        "eventType": "UPDATE", "eventCategory": "INVOICE", "tenantId": tenant,
        "tenantType": "ORGANISATION"}], "firstEventSequence": n, "lastEventSequence": n,
        "entropy": uuid.uuid4().hex[:20].upper()}).encode()


def drive(url: str, tenants: list[str], rate: float, seconds: float, threads: int
          ) -> dict[str, object]:
    total = int(rate * seconds)
    bodies = [payload(tenants[n % len(tenants)], n) for n in range(total)]
    latencies: list[float] = []
    late: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.5

    def work() -> None:
        http = requests.Session()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            try:
                answer = http.post(url, data=bodies[n], timeout=10, headers={
                    "Content-Type": "application/json", "x-xero-signature": sign(bodies[n])})
                status = answer.status_code
            except requests.RequestException:
                status = 0
            done = time.perf_counter()
            with lock:
                latencies.append((done - sent) * 1000)
                late.append((done - due) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return {"sent": total, "elapsed_s": round(elapsed, 2),
            "requests_per_s": round(total / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p90_ms": round(percentile(latencies, 0.90), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies), 2),
            "p99_late_ms": round(percentile(late, 0.99), 2),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def forget_generations(redis: Redis) -> None:
    """The organisations' job generations and queued markers (ids 1..ORGS in every run)."""
    for n in range(1, ORGS + 1):
        for key in redis.scan_iter(f"dunwell:webhook-sync:{n}:*"):
            redis.delete(key)


def wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            requests.post(url, data=b"{}", timeout=1)  # unsigned: 401, and warms the workers
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=1,
                        help="gunicorn --threads per worker (1: the sync worker)")
    args = parser.parse_args()

    admin_url = os.environ.get("TEST_POSTGRES_URL",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get(
        "REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    database = make_database(admin_url)
    port = free_port()
    proc = None
    try:
        tenants = seed(database)
        forget_generations(Redis.from_url(redis_url))
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url,
               "SECRET_KEY": uuid.uuid4().hex, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key()
               .decode(), "XERO_WEBHOOK_KEY": KEY, "RQ_QUEUE": queue}
        command = [str(Path(sys.executable).parent / "gunicorn"), "--workers",
                   str(args.workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                   "--backlog", "2048"]
        if args.worker_threads > 1:
            command += ["--threads", str(args.worker_threads)]
        # The app logs each request's outcome at INFO: to a file, never an unread pipe.
        log_file = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"{queue}.log", "wb")
        proc = subprocess.Popen([*command, "app:create_app()"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=log_file)
        url = f"http://127.0.0.1:{port}/webhooks/xero"
        wait_until_up(url, proc)
        figures = drive(url, tenants, args.rate, args.seconds, args.threads)
        engine = create_engine(database)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM webhook_events")).scalar_one()
        engine.dispose()
        redis = Redis.from_url(redis_url)
        jobs = redis.llen(f"rq:queue:{queue}")
        for key in redis.scan_iter(f"rq:*{queue}*"):
            redis.delete(key)
        forget_generations(redis)
        print(json.dumps({
            "benchmark": "webhooks", "endpoint": "/webhooks/xero", "server":
            f"gunicorn {args.workers} workers x {args.worker_threads} thread(s)",
            "database": "postgresql", "target_rate": args.rate, **figures,
            "stored_events": stored, "lost_events": int(figures["sent"]) - stored,  # type: ignore[call-overload]
            "sync_jobs_queued": jobs, "organisations": ORGS}))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop_database(admin_url, database)


if __name__ == "__main__":
    main()
