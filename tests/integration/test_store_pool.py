"""Pooled connections are checked before use only after sitting idle (store.db.ping_when_idle):
one the server closed while it sat in the pool is replaced before the caller's statement, and a
connection checked in moments ago goes out unchecked (no round trip per transaction)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.conftest import backend

ON_POSTGRESQL = pytest.mark.skipif(backend() != "postgresql",
                                   reason="SQLite has no server to lose a connection")


def _engine(database_url: str, idle_seconds: float) -> tuple[Any, list[int]]:
    from store.db import ping_when_idle

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=idle_seconds)
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return engine, pings


def _backend(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


@ON_POSTGRESQL
def test_an_idle_connection_the_server_closed_is_replaced_before_use(database_url: str) -> None:
    engine, pings = _engine(database_url, idle_seconds=0)  # every reuse counts as idle
    first = _backend(engine)
    assert pings == []  # a connection just opened is not checked
    _terminate(database_url, first)
    second = _backend(engine)  # the caller's statement ran, on a new connection
    assert second != first
    assert len(pings) == 1
    engine.dispose()


@ON_POSTGRESQL
def test_a_connection_checked_in_moments_ago_goes_out_unchecked(database_url: str) -> None:
    engine, pings = _engine(database_url, idle_seconds=3600)
    first = _backend(engine)
    for _ in range(5):
        assert _backend(engine) == first
    assert pings == []
    # The price: a server that drops it in those moments fails the next statement, as it
    # would mid-transaction; the pool then opens a new connection for the one after.
    _terminate(database_url, first)
    with pytest.raises(OperationalError):
        _backend(engine)
    assert _backend(engine) != first
    engine.dispose()


def test_on_sqlite_nothing_is_pinged(tmp_path: Any) -> None:
    from store.db import ping_when_idle

    engine = create_engine(f"sqlite:///{tmp_path / 'pool.sqlite3'}")
    ping_when_idle(engine, idle_seconds=0)
    engine.dialect.do_ping = lambda _: pytest.fail("SQLite connection pinged")  # type: ignore[method-assign]
    for _ in range(3):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()
