"""The ids a log line or an error report is about, carried in context variables.

A web request gets a request id (the caller's `X-Request-ID` when it is a plausible one, else a
new one); the jobs it enqueues carry it in `job.meta`, and the worker binds it again around the
job, with the job's id. Code that works on an organisation, an invoice or an action binds those
ids for the time it does. Ids only: never a name, an address or a token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType

FIELDS = ("request_id", "job_id", "org_id", "invoice_id", "action_id")
REQUEST_ID_HEADER = "X-Request-ID"
_PLAUSIBLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

_ids: ContextVar[Mapping[str, object]] = ContextVar("dunwell_ids", default=MappingProxyType({}))


def _with(ids: Mapping[str, object]) -> Mapping[str, object]:
    unknown = set(ids) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a context id: {', '.join(sorted(unknown))}")
    return MappingProxyType(
        {**_ids.get(), **{name: value for name, value in ids.items() if value is not None}})


class bound:  # lower case: used as a function, `with bound(org_id=...)`
    """The given ids (None ones left out) added to the current ones until the block ends.
    A class rather than a generator: every web request enters one, and this is cheaper."""

    def __init__(self, **ids: object) -> None:
        self.ids = _with(ids)
        self.token: Token[Mapping[str, object]] | None = None

    def __enter__(self) -> None:
        self.token = _ids.set(self.ids)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.token is not None:
            _ids.reset(self.token)


def add(**ids: object) -> None:
    """The given ids added until the enclosing `bound` block ends (a web request's: the
    organisation in its URL, known only once Flask has routed it)."""
    _ids.set(_with(ids))


def current() -> dict[str, object]:
    return dict(_ids.get())


def request_id() -> str | None:
    value = _ids.get().get("request_id")
    return None if value is None else str(value)


def request_id_from(given: str | None) -> str:
    """The caller's request id when it looks like one (a proxy's), else a new one: a header
    is input, and a log field must not carry whatever a stranger put there."""
    if given and _PLAUSIBLE_REQUEST_ID.match(given):
        return given
    return os.urandom(16).hex()
