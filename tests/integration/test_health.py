"""/healthz, /readyz and `dunwell workers` against real services: a Redis server of the test's
own, stopped and started again; the test's own database made unreachable (renamed on
PostgreSQL, its file moved away on SQLite) and given back; a schema behind the code's; a real
`dunwell worker` process with its metrics port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import create_engine, text

from tests.conftest import _admin_url, _free_port, backend

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "dunwell-health-test"
METRICS_TOKEN = "metrics-token-for-tests"


class OwnRedis:
    """A redis-server process of this test alone, on a port that stays the same across a stop
    and a start (the app's client must find it again)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except RedisConnectionError:
                assert time.monotonic() < deadline, "the test's Redis did not start"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def make_app(database_url: str, redis_url: str, keys: str):  # type: ignore[no-untyped-def]
    from app import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "test-secret-key",
                       "SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url,
                       "TOKEN_ENCRYPTION_KEYS": keys, "RQ_QUEUE": QUEUE,
                       "METRICS_TOKEN": METRICS_TOKEN})


def probe(app, path: str) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    answer = app.test_client().get(path)
    return answer.status_code, answer.get_json()


READY = (200, {"status": "ready"})


def test_healthz_answers_without_a_session_and_says_nothing_else(  # type: ignore[no-untyped-def]
        database_url, redis_url, encryption_keys) -> None:
    app = make_app(database_url, redis_url, encryption_keys)
    client = app.test_client()
    answer = client.get("/healthz")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers
    assert client.head("/readyz").status_code == 200
    assert client.post("/healthz").status_code == 405
    # /metrics only with the token; without one configured, not at all.
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", headers={
        "Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
    app.config["METRICS_TOKEN"] = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_readyz_fails_while_redis_is_stopped_and_recovers(  # type: ignore[no-untyped-def]
        database_url, own_redis, encryption_keys) -> None:
    app = make_app(database_url, own_redis.url, encryption_keys)
    assert probe(app, "/readyz") == READY
    own_redis.stop()
    assert probe(app, "/readyz") == (503, {"status": "unavailable", "failed": ["redis"]})
    assert probe(app, "/healthz") == (200, {"status": "ok"})  # the process itself is fine
    own_redis.start()
    assert probe(app, "/readyz") == READY


@contextmanager
def database_away(app, url: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The test's own database unreachable for the block: renamed (PostgreSQL, its sessions
    ended first) or its file replaced by a directory (SQLite)."""
    from store.db import db

    with app.app_context():
        db.engine.dispose()
    if backend() == "sqlite":
        path = url.removeprefix("sqlite:///")
        os.rename(path, f"{path}.away")
        os.mkdir(path)  # SQLite cannot open a directory: "unable to open database file"
        try:
            yield
        finally:
            os.rmdir(path)
            os.rename(f"{path}.away", path)
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")

    def rename(old: str, new: str) -> None:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"),
                         {"name": old})
            conn.execute(text(f'ALTER DATABASE "{old}" RENAME TO "{new}"'))

    rename(name, f"{name}_away")
    try:
        yield
    finally:
        rename(f"{name}_away", name)
        admin.dispose()


def test_readyz_fails_while_the_database_is_unreachable_and_recovers(  # type: ignore[no-untyped-def]
        database_url, redis_url, encryption_keys) -> None:
    app = make_app(database_url, redis_url, encryption_keys)
    assert probe(app, "/readyz") == READY
    with database_away(app, database_url):
        assert probe(app, "/readyz") == (503, {"status": "unavailable", "failed": ["database"]})
        assert probe(app, "/healthz") == (200, {"status": "ok"})
    assert probe(app, "/readyz") == READY


def test_readyz_fails_while_the_schema_is_behind_the_code(  # type: ignore[no-untyped-def]
        database_url, redis_url, encryption_keys) -> None:
    from store.db import db

    app = make_app(database_url, redis_url, encryption_keys)
    with app.app_context():
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        db.session.execute(text("UPDATE alembic_version SET version_num = 'an_older_one'"))
        db.session.commit()
    assert probe(app, "/readyz") == (503, {"status": "unavailable", "failed": ["database"]})
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"),
                           {"head": head})
        db.session.commit()
    assert probe(app, "/readyz") == READY


def test_metrics_show_how_long_the_oldest_queued_job_has_waited(  # type: ignore[no-untyped-def]
        database_url, redis_url, encryption_keys) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from jobs.queues import enqueue_once
    from jobs.tasks import sweep_ledger

    app = make_app(database_url, redis_url, encryption_keys)

    def gauges() -> dict[tuple[str, str], float]:
        answer = app.test_client().get("/metrics", headers={
            "Authorization": f"Bearer {METRICS_TOKEN}"})
        return {(s.name, s.labels.get("state", "")): s.value
                for family in text_string_to_metric_families(answer.get_data(as_text=True))
                for s in family.samples if s.name.startswith(("dunwell_queue", "dunwell_rq"))}

    assert gauges()[("dunwell_queue_oldest_job_age_seconds", "")] == 0
    with app.app_context():
        for n in range(3):
            enqueue_once(sweep_ledger, job_id=f"waiting-{n}")
            time.sleep(0.6 if n == 0 else 0)
    seen = gauges()
    assert seen[("dunwell_queue_jobs", "queued")] == 3
    assert 0.6 <= seen[("dunwell_queue_oldest_job_age_seconds", "")] < 60
    assert ("dunwell_rq_scheduler_heartbeat_age_seconds", "") not in seen  # none runs
    assert seen[("dunwell_rq_workers", "idle")] == seen[("dunwell_rq_workers", "busy")] == 0


def workers(app) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["workers"])
    return result.exit_code, json.loads(result.output)


def test_dunwell_workers_sees_a_worker_and_its_scheduler_heartbeat(  # type: ignore[no-untyped-def]
        database_url, redis_url, encryption_keys, tmp_path) -> None:
    from jobs.queues import enqueue_once
    from jobs.tasks import sweep_ledger

    app = make_app(database_url, redis_url, encryption_keys)
    code, status = workers(app)
    assert (code, status["healthy"], status["workers"], status["scheduler"]) == (
        1, False, [], None)

    port = _free_port()
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "SECRET_KEY": "test-secret-key", "TOKEN_ENCRYPTION_KEYS": encryption_keys,
           "RQ_QUEUE": QUEUE, "WORKER_METRICS_PORT": str(port), "LOG_FORMAT": "json"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as output:
        worker = subprocess.Popen([str(Path(sys.executable).parent / "dunwell"), "worker"],
                                  env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (code := workers(app)[0]) != 0:
            assert worker.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the worker never heartbeat"
            time.sleep(0.2)
        code, status = workers(app)
        assert status["healthy"] and len(status["workers"]) == 1
        assert status["workers"][0]["age_seconds"] < 60
        assert status["scheduler"]["age_seconds"] < 60

        with app.app_context():
            job = enqueue_once(sweep_ledger, job_id="health-test-sweep")
        while job.get_status(refresh=True) != "finished":
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'dunwell_jobs_total{outcome="finished",task="sweep_ledger"} 1.0' in scraped
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(line.get("job_id") == "health-test-sweep" for line in lines)
    assert workers(app)[0] == 1  # a worker that stopped leaves the registry


def test_under_gunicorn_the_workers_metrics_add_up_and_every_line_is_json(  # type: ignore[no-untyped-def]
        database_url, redis_url, encryption_keys, tmp_path) -> None:
    """gunicorn.conf.py as the Procfile's web process reads it: multiprocess metrics, and
    gunicorn's own lines in the app's format."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "SECRET_KEY": "test-secret-key", "TOKEN_ENCRYPTION_KEYS": encryption_keys,
           "RQ_QUEUE": QUEUE, "METRICS_TOKEN": METRICS_TOKEN, "LOG_FORMAT": "json"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as output:
        web = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--workers", "2",
                                "--worker-class", "gthread", "--threads", "2",
                                "--bind", f"127.0.0.1:{port}", "app:create_app()"],
                               cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None, log.read_text()[-2000:]
            try:
                if requests.get(f"{base}/healthz", timeout=30).status_code == 200:
                    break
            except requests.ConnectionError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        for _ in range(20):  # a worker still starting answers once it has (a busy machine)
            assert requests.get(f"{base}/no-such-page", timeout=60).status_code == 404
        assert requests.get(f"{base}/readyz", timeout=60).status_code == 200
        scraped = requests.get(f"{base}/metrics", timeout=10, headers={
            "Authorization": f"Bearer {METRICS_TOKEN}"}).text
        assert ('dunwell_http_requests_total{method="GET",route="unmatched",status="404"} 20.0'
                in scraped)
    finally:
        web.terminate()
        web.wait(timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
