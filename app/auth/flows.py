"""OAuth flows in progress, kept on the server: the session cookie (signed, but readable by
whoever holds it) carries only a random handle; the `state` and the PKCE verifier stay in
Redis for ten minutes and are taken once."""

from __future__ import annotations

import json
import secrets

from flask import session

from collect.providers import redis_client

FLOW_SECONDS = 600


def _key(kind: str, handle: str) -> str:
    return f"oauth-flow:{kind}:{handle}"


def begin(kind: str, **values: str) -> None:
    """Remember a flow of `kind` for this browser (one at a time: a new one replaces it)."""
    handle = secrets.token_urlsafe(24)
    redis_client().set(_key(kind, handle), json.dumps(values), ex=FLOW_SECONDS)
    session[kind] = handle


def take(kind: str) -> dict[str, str] | None:
    """The flow this browser started, once; None if none, expired or already taken."""
    handle = session.pop(kind, None)
    if not isinstance(handle, str):
        return None
    raw = redis_client().getdel(_key(kind, handle))  # GETDEL: Redis 6.2 and later
    return dict(json.loads(raw)) if raw else None
