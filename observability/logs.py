"""Log lines: one JSON object per line in production, a readable line in the demo.

Each line carries the ids bound in `observability.context` (request, job, organisation,
invoice, action) and whatever a call passed in `extra=`, scrubbed by `observability.scrub`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from observability import context
from observability.scrub import scrub_text, scrub_value

FORMATS = ("json", "text")

# A LogRecord's own attributes; any other one came from `extra=` and is a field of the line.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = context.current()
    for name, value in vars(record).items():
        if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
            fields[name] = scrub_value(name, value)
    return fields


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", ids..., extra..., "exception"?} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "message": scrub_text(record.getMessage()), **_fields(record)}
        if record.exc_info:
            line["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [org_id=1 job_id=...]` for a person watching the demo."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = scrub_text(record.message)
        text = super().formatMessage(record)
        fields = _fields(record)
        if fields:
            text += " [" + " ".join(f"{name}={value}" for name, value in fields.items()) + "]"
        return text

    def formatException(self, ei: Any) -> str:
        return scrub_text(super().formatException(ei))


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it."""


def configure_logging(log_format: str = "json", level: str = "INFO",
                      stream: TextIO | None = None) -> None:
    """One handler on the root logger, writing `log_format` lines to `stream` (stderr).
    Called again (each create_app), it replaces its own handler and leaves others alone."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT is one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(handler)
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
