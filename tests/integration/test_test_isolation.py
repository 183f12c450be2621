"""Two test runs on one machine never share Redis state.

Runs used to share one fixed Redis database that every test flushed at setup and teardown, so a
second pytest process (a developer's beside CI's, or a benchmark beside the suite) wiped the
first one's queued jobs in the middle of a test: the walking-skeleton and policy tests then ran
a worker over a half-empty queue and planned a third of their reminders. This runs a second,
real pytest process while this test holds queued work, and checks the work is still there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis import Redis
from rq import Queue

ROOT = Path(__file__).resolve().parents[2]

INNER = '''
from redis import Redis


def test_a_run_beside_the_first(redis_url):
    client = Redis.from_url(redis_url)
    client.set("written-by-the-second-run", "1")
    assert client.dbsize() == 1  # its own Redis: flushed for it, holding nothing of the first run
'''


def test_a_second_test_run_leaves_this_runs_queue_alone(redis_url: str, tmp_path: Path) -> None:
    ours = Redis.from_url(redis_url)
    queue = Queue("dunwell-test", connection=ours)
    job = queue.enqueue("builtins.print", "kept")
    (tmp_path / "test_inner.py").write_text(INNER)
    # The second run takes the defaults a developer's run takes: no Redis named for it.
    env = {key: value for key, value in os.environ.items() if key != "TEST_REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert queue.job_ids == [job.id]
    assert ours.get("written-by-the-second-run") is None
    ours.close()
