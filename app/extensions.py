"""Extensions created unbound; create_app() binds them, and tells the database (store/) which
engine and session scope are the current app's, and where the clock is set."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, has_app_context
from flask.globals import app_ctx
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from store import clock
from store.db import db, engine_options, ping_when_idle

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()

ENGINE = "dunwell.engine"  # app.extensions key


def _current_engine() -> Engine:
    return current_app.extensions[ENGINE]  # type: ignore[no-any-return]


def _app_context_scope() -> int:
    """One session per app context, as a request or a job has one (nested contexts, as tests
    push them, get sessions of their own)."""
    return id(app_ctx._get_current_object())  # type: ignore[attr-defined]


def _app_clock() -> Any:
    if has_app_context():
        source = current_app.config.get("CLOCK")
        if source is not None:
            return source
    return None


def init_database(app: Flask) -> None:
    options = engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path,
                             dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}))
    engine = app.extensions[ENGINE] = create_engine(**options)
    ping_when_idle(engine)
    db.bind(_current_engine, _app_context_scope)
    clock.use(_app_clock)

    @app.teardown_appcontext
    def close_session(_: BaseException | None) -> None:
        db.session.remove()

