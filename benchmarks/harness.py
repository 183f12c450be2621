"""What every benchmark script shares: fresh databases, child processes, the machine, medians."""

from __future__ import annotations

import io
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MIB = 1024 * 1024


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A new, migrated, empty database (SQLite file or PostgreSQL database), dropped after."""
    from migrations import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
        upgrade(url=url)
        yield url
        return
    import psycopg

    name = f"dunwell_bench_{uuid.uuid4().hex[:12]}"
    admin = _psycopg_url(POSTGRES_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url=url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_rows(conn: Any, table: str, columns: list[str], rows: Any) -> None:
    """Rows into `table` by PostgreSQL's COPY (a psycopg connection), sent 50,000 at a time."""
    with conn.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n, row in enumerate(rows, 1):
            buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
            if n % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def run_child(module: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run `python -m module args` and read the one JSON object it prints last."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0.0 where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every PostgreSQL server process of this machine (the server
    runs beside the benchmark here): its share of a measured pass is the difference."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("postgres"):
            total += process_cpu_seconds(int(entry.name))
    return total


def load_average() -> list[float]:
    """`uptime`'s three load averages (1, 5, 15 minutes)."""
    return [round(value, 2) for value in os.getloadavg()]


def peak_rss_mib() -> float:
    """This process's peak resident set (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def median(values: Sequence[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def _command(*args: str) -> str | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine() -> dict[str, Any]:
    """Where the figures were measured: they mean little without it."""
    postgres = None
    try:
        import psycopg

        with psycopg.connect(_psycopg_url(POSTGRES_ADMIN_URL)) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = row[0] if row else None
    except Exception as exc:
        postgres = f"unavailable ({type(exc).__name__})"
    redis_version = None
    try:
        from redis import Redis

        redis_version = Redis.from_url(os.environ.get(
            "REDIS_URL", "redis://127.0.0.1:6379/6")).info("server").get("redis_version")
    except Exception as exc:
        redis_version = f"unavailable ({type(exc).__name__})"
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "postgresql": postgres, "redis": redis_version,
            "platform": platform.platform(),
            "load_average_1min": round(os.getloadavg()[0], 2)}
