"""The database: the declarative base every model derives from, and the session the rest of
Dunwell uses. Nothing here knows about Flask: the web application (app/extensions.py) tells
the database where its engine is and what a session's scope is (one per app context), and a
worker or a script can do the same with an engine of its own."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import MetaData, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import UserDefinedType

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def among(session: Session, column: Any, values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`column IN values` as the database takes it fastest: on PostgreSQL one array parameter
    (`column = ANY(:values)`), sent as text for ids and strings (`array_literal`), in a
    statement psycopg converts once (an IN list of 1,000 ids is 1,000 placeholders, dumped one
    by one, in a statement psycopg converts afresh each time: too long for its cache);
    elsewhere IN."""
    if session.get_bind().dialect.name == "postgresql":
        literal = array_literal(values)
        if literal is not None:
            # The parameter goes untyped, so the server takes it as the array itself. Typed
            # as text it would be cast by array_in, a STABLE function the planner does not
            # fold: evaluated again on every row a sequential scan reads (measured: 24.8 s for
            # three reads of 100,000 unindexed rows, against 0.06 s).
            return column == sa.any_(sa.cast(sa.bindparam(None, literal, type_=_Untyped()),
                                             postgresql.ARRAY(column.type)))
        return column == sa.any_(sa.bindparam(None, list(values),
                                              type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


class _Untyped(UserDefinedType[str]):
    """A parameter SQLAlchemy sends without a cast of its own (psycopg sends a str as
    'unknown'): the CAST around it gives it its type."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TEXT"


def array_literal(values: Sequence[Any]) -> str | None:
    """PostgreSQL's text form of an array of ints or of strings (`{1,2}`, `{"a","b"}`), or
    None for other values. psycopg dumps a list element by element, looking up each one's
    dumper: 3-4 ms for 1,000 ids, against 0.1 ms to join them here and let the server cast
    the text (a planning pass sends a few hundred such arrays)."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(value) is str for value in values):
        return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                              for value in values) + "}"
    return None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class NotBound(RuntimeError):
    """The database was used before anything said which engine to use."""


def _thread_scope() -> Hashable:
    return threading.get_ident()


class _BoundLater(Session):
    """A session on the engine its database names at the moment it is created."""

    def __init__(self, database: Database, **options: Any) -> None:
        options.pop("bind", None)  # sessionmaker's own default (None)
        super().__init__(bind=database.engine, **options)


class Database:
    """`db.session` is a scoped session: one per scope (by default a thread; the web
    application makes it one per app context), created on first use on the engine the
    current scope names, and closed by `db.session.remove()` at the scope's end."""

    Model = Base
    metadata = Base.metadata
    func = sa.func

    def __init__(self) -> None:
        self._engine_lookup: Callable[[], Engine] | None = None
        self._scope: Callable[[], Hashable] = _thread_scope
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(class_=_BoundLater, database=self), scopefunc=lambda: self._scope())

    def bind(self, engine_lookup: Callable[[], Engine],
             scope: Callable[[], Hashable] | None = None) -> None:
        """Where the engine of the moment is, and what one session's scope is."""
        self._engine_lookup = engine_lookup
        if scope is not None:
            self._scope = scope

    @property
    def engine(self) -> Engine:
        if self._engine_lookup is None:
            raise NotBound("the database is not bound to an engine (create_app binds it)")
        return self._engine_lookup()


# How long a pooled connection may sit unused before it is checked on its way out.
IDLE_BEFORE_PING = float(os.environ.get("DUNWELL_DB_PING_AFTER_SECONDS", "1"))
_CHECKED_IN = "dunwell_checked_in"


def ping_when_idle(engine: Engine, idle_seconds: float = IDLE_BEFORE_PING) -> None:
    """Check a pooled connection before it is handed out, when it has been idle for a while: one
    the server closed meanwhile (a restart, a terminated backend, a proxy's idle timeout) is
    found here and replaced, and the job's first statement runs on a live one. SQLAlchemy's
    `pool_pre_ping` checks on every checkout, a round trip per transaction: an action commits
    several times in a few milliseconds, and those pings were a fifth of its statements. A
    connection the same job checked in moments ago is handed out unchecked; if the server
    dropped it in those moments, the statement fails as one would mid-transaction, and the
    pool is emptied of every connection of that time (SQLAlchemy's disconnect handling).
    SQLite has no server to lose a connection: nothing is checked there."""
    if engine.dialect.name == "sqlite":
        return

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN)  # None: a new connection, just opened
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool closes this one and hands out a new connection.
            raise sa.exc.DisconnectionError(f"pooled connection lost while idle: {exc}") from exc


def engine_options(url: str, instance_path: str, options: dict[str, Any]) -> dict[str, Any]:
    """create_engine's arguments for a URL: an in-memory SQLite database is one connection
    shared by every thread (each new connection would be a new, empty database), and a
    relative SQLite path is under the instance folder."""
    chosen = {**options, "url": sa.engine.make_url(url)}
    parsed = chosen["url"]
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        if parsed.database in (None, "", ":memory:"):
            chosen["poolclass"] = sa.pool.StaticPool
            chosen["connect_args"] = {**chosen.get("connect_args", {}),
                                      "check_same_thread": False}
        elif not parsed.query.get("uri") and not os.path.isabs(parsed.database):
            os.makedirs(instance_path, exist_ok=True)
            chosen["url"] = parsed.set(database=os.path.join(instance_path, parsed.database))
    return chosen


db = Database()
