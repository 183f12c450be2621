"""Connection tokens: encrypted at rest, refreshed under a per-connection lock.

Xero refresh tokens are single-use. Two workers refreshing the same grant at once would
each spend the token and one of them would kill the connection, so a refresh takes a Redis lock
(shared by every worker on every machine), re-reads the row, and refreshes only if the token is
still stale; the new pair is committed at once in its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from redis import Redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.models import Connection, Grant
from connectors.base import AuthorizationRevoked, TokenSet

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 60


class TokenVault:
    """MultiFernet: the first key encrypts; every key decrypts, so keys can rotate."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise RuntimeError(
                "TOKEN_ENCRYPTION_KEYS is not set: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "a stored token cannot be decrypted with the configured keys"
            ) from exc


def store_tokens(grant: Grant, tokens: TokenSet, vault: TokenVault) -> None:
    grant.access_token_enc = vault.encrypt(tokens.access_token)
    grant.refresh_token_enc = vault.encrypt(tokens.refresh_token)
    grant.expires_at = tokens.expires_at
    grant.scope = tokens.scope


class GrantTokenStore:
    """The TokenStore of one grant row, in sessions of its own (never the caller's)."""

    def __init__(self, grant_id: int, session_factory: sessionmaker[Session],
                 vault: TokenVault, redis: Redis) -> None:
        self.grant_id = grant_id
        self._sessions = session_factory
        self._vault = vault
        self._redis = redis

    def _read(self, session: Session) -> tuple[Grant, TokenSet]:
        grant = session.get(Grant, self.grant_id)
        if grant is None or grant.status != "active" or not grant.refresh_token_enc:
            raise AuthorizationRevoked(f"grant {self.grant_id} has no live tokens")
        assert grant.expires_at is not None and grant.access_token_enc is not None
        return grant, TokenSet(
            access_token=self._vault.decrypt(grant.access_token_enc),
            refresh_token=self._vault.decrypt(grant.refresh_token_enc),
            expires_at=grant.expires_at,
            scope=grant.scope,
        )

    def load(self) -> TokenSet:
        with self._sessions() as session:
            return self._read(session)[1]

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        lock = self._redis.lock(f"dunwell:token-refresh:{self.grant_id}",
                                timeout=LOCK_TIMEOUT_SECONDS, blocking_timeout=LOCK_TIMEOUT_SECONDS)
        with lock:
            with self._sessions() as session:
                grant, current = self._read(session)
                if not needs_refresh(current):
                    return current  # another worker refreshed while we waited
                try:
                    fresh = do_refresh(current)
                except AuthorizationRevoked as exc:
                    grant.status, grant.last_error = "revoked", str(exc)[:500]
                    session.execute(
                        update(Connection)
                        .where(Connection.grant_id == grant.id, Connection.status == "active")
                        .values(status="needs_reconnect", last_error=str(exc)[:500])
                    )
                    session.commit()
                    log.warning("grant %s: refresh refused, its organisations must reconnect",
                                self.grant_id)
                    raise
                store_tokens(grant, fresh, self._vault)
                session.commit()
                log.info("grant %s: tokens refreshed, valid until %s",
                         self.grant_id, _iso(fresh.expires_at))
                return fresh


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
