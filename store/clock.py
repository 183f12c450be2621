"""The one place Dunwell reads the time, so tests and the demo can set it: whoever runs the
code (the web application, a worker) may name a source of the time of the moment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Source = Callable[[], datetime]

_lookup: Callable[[], Source | None] = lambda: None  # noqa: E731


def use(lookup: Callable[[], Source | None]) -> Callable[[], Source | None]:
    """`lookup` returns the clock in force where it is called (None: the real time). Returns
    the lookup it replaces."""
    global _lookup
    previous, _lookup = _lookup, lookup
    return previous


def now() -> datetime:
    source = _lookup()
    return source() if source is not None else datetime.now(UTC)
