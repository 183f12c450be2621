"""The one place Dunwell reads the time, so tests and the demo can set it."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def now() -> datetime:
    if has_app_context():
        override = current_app.config.get("CLOCK")
        if override is not None:
            return override()
    return datetime.now(UTC)
