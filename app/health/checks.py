"""Readiness: the database answers and its schema is at the migrations' head, Redis answers.

Each check is cheap (one query, one PING) and bounded in time; what failed is named, never why
(the reason goes to the log, for the engineer, not to whoever can reach /readyz).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from alembic.script import ScriptDirectory
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from migrations import alembic_config
from store.db import db

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class Readiness:
    failed: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.failed


@lru_cache(maxsize=1)
def schema_heads() -> frozenset[str]:
    """The migrations' head revisions, as this code knows them (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def health_redis() -> Redis:
    """A client of its own with short timeouts: a Redis that does not answer must fail the
    check in seconds, not hang the probe."""
    client = current_app.extensions.get("dunwell_health_redis")
    if client is None:
        client = Redis.from_url(current_app.config["REDIS_URL"],
                                socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                socket_timeout=CHECK_TIMEOUT_SECONDS)
        current_app.extensions["dunwell_health_redis"] = client
    return client


def database_ready() -> str | None:
    """None when the database answers at the head revision; else what is wrong (for the log)."""
    try:
        with db.engine.connect() as conn:
            revisions = set(conn.execute(text("SELECT version_num FROM alembic_version"))
                            .scalars())
    except SQLAlchemyError as error:
        return f"database: {type(error).__name__}"
    if revisions != schema_heads():
        return f"database: schema at {sorted(revisions)}, code at {sorted(schema_heads())}"
    return None


def redis_ready() -> str | None:
    try:
        health_redis().ping()
    except (RedisError, OSError) as error:
        return f"redis: {type(error).__name__}"
    return None


def readiness() -> Readiness:
    failed = []
    for name, check in (("database", database_ready), ("redis", redis_ready)):
        problem = check()
        if problem is not None:
            log.warning("not ready: %s", problem)
            failed.append(name)
    return Readiness(tuple(failed))
