"""The Xero webhook endpoint under load: gunicorn (2 workers) on loopback, PostgreSQL, Redis.

Sends correctly signed Xero payloads, each with one new event, at a paced rate (default 500
requests/s for 10 s), then counts what was stored. Prints one JSON object. The client is open
loop: request n is due at start + n / rate; a few threads, each with one keep-alive connection
on a raw socket and the requests prepared in advance, take the next due request when free, so
the client's own CPU (printed per request, beside the gunicorn workers') stays small on the
cores it shares with the server. Latency is measured from the moment a request is sent to its
answer; `p99_late_ms` from the moment it was due (a server or client that fell behind shows
there).

The figures are the steady state: first, for `--warm-up` seconds (default 1), the same client
at the same rate sends the events of one more organisation, kept out of the counts. A new
worker's first second is slower (its first enqueues; without gunicorn.conf.py, which opens its
pools' connections as it starts, also a PostgreSQL and a Redis connection opened per thread,
10-30 ms each); its latencies are printed apart, under `warm_up`.

    .venv/bin/python benchmarks/webhooks.py [--rate 500] [--seconds 10] [--threads 16]
        [--worker-class gthread|sync] [--worker-threads 4] [--warm-up 1]
        [--app-root OTHER_CHECKOUT]

Settings from the environment: TEST_POSTGRES_URL (an admin URL; a database is created and
dropped), BENCH_REDIS_URL or REDIS_URL (default redis://127.0.0.1:6379/0; only this run's
queue keys and the benchmark organisations' webhook keys are removed).
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
    """ORGS + 1 connected Xero organisations (the last one for the warm-up); returns their
    tenant ids."""
    sys.path.insert(0, str(ROOT))
    from migrations import upgrade

    upgrade(url=url)
    tenants = [str(uuid.uuid4()) for _ in range(ORGS + 1)]
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


class EmptyAnswer(ConnectionError):
    """The server closed the connection before answering (an idle keep-alive one)."""


class KeepAliveConnection:
    """One HTTP/1.1 connection on a raw socket, kept open while the server allows it (a sync
    gunicorn worker answers `Connection: close`; it is then opened again for the next request).
    Requests are prepared bytes, so the client spends its CPU on nothing but the socket."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def send(self, request: bytes) -> int:
        """The answer's status. A connection the server closed while idle is opened again and
        the request sent once more (it never reached the application)."""
        for attempt in (1, 2):
            reused = self.sock is not None
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.sock.sendall(request)
                return self._answer()
            except EmptyAnswer:
                self.close()
                if not reused or attempt == 2:
                    raise
            except OSError:
                self.close()
                raise
        raise AssertionError("unreachable")

    def _answer(self) -> int:
        assert self.sock is not None
        data = self.buffer
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EmptyAnswer() if not data else ConnectionError("answer cut short")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status, length, close = int(lines[0].split()[1]), 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("answer cut short")
            rest += chunk
        self.buffer = rest[length:]
        if close:
            self.close()
        return status


def http_request(port: int, body: bytes, signature: str | None) -> bytes:
    head = (f"POST /webhooks/xero HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
    if signature is not None:
        head += f"x-xero-signature: {signature}\r\n"
    return (head + "\r\n").encode() + body


def drive(port: int, tenants: list[str], rate: float, seconds: float, threads: int
          ) -> dict[str, object]:
    """Open loop: request n is due at start + n / rate whatever happened to the others; a
    client thread (one keep-alive connection each) takes the next due request when free."""
    total = int(rate * seconds)
    requests = [http_request(port, body, sign(body))
                for body in (payload(tenants[n % len(tenants)], n) for n in range(total))]
    latencies: list[float] = []
    late: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.5

    def work() -> None:
        connection = KeepAliveConnection(port)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                connection.close()
                return
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            try:
                status = connection.send(requests[n])
            except OSError:
                status = 0
            done = time.perf_counter()
            with lock:
                latencies.append((done - sent) * 1000)
                late.append((done - due) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    cpu = time.process_time()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return {"sent": total, "elapsed_s": round(elapsed, 2),
            "requests_per_s": round(total / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p90_ms": round(percentile(latencies, 0.90), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies), 2),
            "p99_late_ms": round(percentile(late, 0.99), 2),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "client_cpu_ms_per_request": round(cpu * 1000 / total, 3)}


def server_cpu_seconds(master: int) -> float:
    """User + system CPU of the gunicorn workers so far (Linux /proc)."""
    ticks = 0
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return 0.0
    for child in children:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def forget_generations(redis: Redis) -> None:
    """The organisations' job generations, queued markers and jobs (ids 1..ORGS + 1 in every run):
    a job left by an earlier run would hold its id, and this run's would not be queued."""
    for n in range(1, ORGS + 2):
        for pattern in (f"dunwell:webhook-sync:{n}:*", f"rq:job:webhook-sync-{n}-*"):
            for key in redis.scan_iter(pattern):
                redis.delete(key)


def wait_until_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the server answers (an unsigned request: 401)."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            KeepAliveConnection(port).send(http_request(port, b"{}", None))  # unsigned: 401
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=16,
                        help="client threads, one keep-alive connection each")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--worker-threads", type=int, default=4,
                        help="gunicorn --threads per worker (gthread)")
    parser.add_argument("--keep-alive", type=int, default=5,
                        help="gunicorn --keep-alive seconds (gthread)")
    parser.add_argument("--warm-up", type=float, default=1.0,
                        help="seconds of the same load, for one more organisation, before the "
                        "measured run (0: measure from a cold start)")
    parser.add_argument("--app-root", type=Path, default=ROOT,
                        help="the checkout gunicorn serves (another tree: before/after runs)")
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
        *tenants, warm_tenant = seed(database)
        forget_generations(Redis.from_url(redis_url))
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url,
               "SECRET_KEY": uuid.uuid4().hex, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key()
               .decode(), "XERO_WEBHOOK_KEY": KEY, "RQ_QUEUE": queue}
        command = [str(Path(sys.executable).parent / "gunicorn"), "--workers",
                   str(args.workers), "--worker-class", args.worker_class, "--bind",
                   f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048"]
        if args.worker_class == "gthread":
            command += ["--threads", str(args.worker_threads), "--keep-alive",
                        str(args.keep_alive)]
        # The app logs each request's outcome at INFO: to a file, never an unread pipe.
        log_file = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"{queue}.log", "wb")
        proc = subprocess.Popen([*command, "app:create_app()"], cwd=args.app_root, env=env,
                                stdout=subprocess.DEVNULL, stderr=log_file)
        wait_until_up(port, proc)
        warm_up: dict[str, object] = {"seconds": args.warm_up}
        if args.warm_up > 0:
            cold = drive(port, [warm_tenant], args.rate, args.warm_up, args.threads)
            warm_up.update({key: cold[key] for key in (
                "requests_per_s", "p50_ms", "p99_ms", "max_ms", "statuses")})
        server_cpu = server_cpu_seconds(proc.pid)
        figures = drive(port, tenants, args.rate, args.seconds, args.threads)
        figures["server_cpu_ms_per_request"] = round(
            (server_cpu_seconds(proc.pid) - server_cpu) * 1000 / int(args.rate * args.seconds),
            3)
        engine = create_engine(database)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM webhook_events WHERE tenant_id "
                                       "<> :warm"), {"warm": warm_tenant}).scalar_one()
            if args.warm_up > 0:
                warm_up["lost_events"] = int(cold["sent"]) - conn.execute(text(  # type: ignore[call-overload]
                    "SELECT count(*) FROM webhook_events WHERE tenant_id = :warm"),
                    {"warm": warm_tenant}).scalar_one()
        engine.dispose()
        redis = Redis.from_url(redis_url)
        warm_jobs = f"webhook-sync-{ORGS + 1}-".encode()  # the warm-up organisation's
        queued: list[bytes] = redis.lrange(f"rq:queue:{queue}", 0, -1)  # type: ignore[assignment]
        jobs = len([job for job in queued if not job.startswith(warm_jobs)])
        for key in redis.scan_iter(f"rq:*{queue}*"):
            redis.delete(key)
        redis.srem("rq:queues", f"rq:queue:{queue}")
        forget_generations(redis)
        print(json.dumps({
            "benchmark": "webhooks", "endpoint": "/webhooks/xero", "server":
            f"gunicorn {args.workers} {args.worker_class} workers"
            + (f" x {args.worker_threads} threads" if args.worker_class == "gthread" else ""),
            "client_threads": args.threads, "load_average": round(os.getloadavg()[0], 2),
            "database": "postgresql", "target_rate": args.rate, **figures,
            "stored_events": stored, "lost_events": int(figures["sent"]) - stored,  # type: ignore[call-overload]
            "sync_jobs_queued": jobs, "organisations": ORGS, "warm_up": warm_up}))
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
