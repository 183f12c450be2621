"""Connection tokens: encrypted at rest, refreshed under a per-connection lock with fencing.

Xero refresh tokens are single-use. Two workers refreshing the same grant at once would each
spend the token and one of them would kill the connection, so a refresh takes a Redis lock
(shared by every worker on every machine) and a fencing token (a counter per grant, raised by
every holder), re-reads the row, and refreshes only if the token is still stale. The new pair
is saved by compare-and-swap: only if the row is still at the version that was read and no
later lock holder has written. A worker whose lock expired mid-refresh (a long pause, a slow
network) therefore cannot overwrite a newer token, and it checks that it still holds the lock
before it spends the refresh token at all.

A refresh whose answer was lost (timeout, reset) is asked again with the same refresh token:
Xero answers the same pair again for 30 minutes, so the connection survives. `invalid_grant`
is believed only after the row has been read once more (another worker may have saved a newer
pair); then the grant is revoked, its organisations need reconnecting (their jobs stop, as
they check the connection's status) and their owners are told, by email and in the activity
log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import LockError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from collect.mail import send_email
from collect.vault import TokenVault
from connectors import registry
from connectors.base import (
    AuthorizationRevoked,
    ConfigurationError,
    TokenSet,
    TransientError,
)
from store import clock
from store.models import AuditEvent, Connection, Grant, Membership, User

log = logging.getLogger(__name__)

# Longer than one token request may take (connectors/oauth.py: 30 s); renewed before each try.
LOCK_TIMEOUT_SECONDS = 60
LOCK_WAIT_SECONDS = 90
# A lost answer is asked again (Xero replays it for 30 minutes); more would only hold the lock.
TRANSIENT_RETRIES = 2
RETRY_PAUSE_SECONDS = 0.5


# KEYS: the grant's fence counter. ARGV: the fence the row was last saved under.
_NEXT_FENCE = """
local fence = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if fence <= floor then
  fence = floor + 1
  redis.call('SET', KEYS[1], fence)
end
return fence
"""


def store_tokens(grant: Grant, tokens: TokenSet, vault: TokenVault) -> None:
    """A new consent's pair (code exchange, reconnect): a new version of the row."""
    grant.access_token_enc = vault.encrypt(tokens.access_token)
    grant.refresh_token_enc = vault.encrypt(tokens.refresh_token)
    grant.expires_at = tokens.expires_at
    grant.scope = tokens.scope
    grant.token_version = (grant.token_version or 0) + 1


@dataclass(frozen=True)
class StoredTokens:
    """The tokens as read, with the row version a compare-and-swap will expect."""

    tokens: TokenSet
    version: int
    fence: int = 0  # the fencing token the stored pair was saved under


# Who is told that a connection needs reconnecting: (session, grant id, connections, reason).
ReconnectNotice = Callable[[Session, int, list[Connection], str], None]


class GrantTokenStore:
    """The TokenStore of one grant row, in sessions of its own (never the caller's)."""

    def __init__(self, grant_id: int, session_factory: sessionmaker[Session],
                 vault: TokenVault, redis: Redis, *,
                 lock_timeout: float = LOCK_TIMEOUT_SECONDS,
                 lock_wait: float = LOCK_WAIT_SECONDS,
                 transient_retries: int = TRANSIENT_RETRIES,
                 retry_pause: float = RETRY_PAUSE_SECONDS,
                 notice: ReconnectNotice | None = None) -> None:
        self.grant_id = grant_id
        self._sessions = session_factory
        self._vault = vault
        self._redis = redis
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._retries = transient_retries
        self._retry_pause = retry_pause
        self._notice = notice or tell_owners_to_reconnect

    @property
    def lock_name(self) -> str:
        return f"dunwell:token-refresh:{self.grant_id}"

    @property
    def fence_name(self) -> str:
        return f"dunwell:token-refresh:{self.grant_id}:fence"

    def _read(self, session: Session) -> tuple[Grant, StoredTokens]:
        grant = session.get(Grant, self.grant_id, populate_existing=True)
        if grant is None or grant.status != "active" or not grant.refresh_token_enc:
            raise AuthorizationRevoked(f"grant {self.grant_id} has no live tokens")
        assert grant.expires_at is not None and grant.access_token_enc is not None
        return grant, StoredTokens(TokenSet(
            access_token=self._vault.decrypt(grant.access_token_enc),
            refresh_token=self._vault.decrypt(grant.refresh_token_enc),
            expires_at=grant.expires_at,
            scope=grant.scope,
        ), grant.token_version or 0, grant.token_fence or 0)

    def read(self) -> StoredTokens:
        """The stored pair, read before every provider call: one SELECT, so in autocommit
        (one round trip, where a transaction of its own adds a BEGIN and a ROLLBACK)."""
        with self._sessions() as session:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return self._read(session)[1]

    def load(self) -> TokenSet:
        return self.read().tokens

    def save_if_current(self, expected_version: int, fence: int, tokens: TokenSet) -> bool:
        """Compare-and-swap: write the pair only if the row is still at `expected_version` and
        no holder with a later fencing token has written. False: a newer pair is stored."""
        with self._sessions() as session:
            saved = session.execute(  # type: ignore[attr-defined]  # DML: a CursorResult
                update(Grant)
                .where(Grant.id == self.grant_id, Grant.status == "active",
                       Grant.token_version == expected_version, Grant.token_fence < fence)
                .values(access_token_enc=self._vault.encrypt(tokens.access_token),
                        refresh_token_enc=self._vault.encrypt(tokens.refresh_token),
                        expires_at=tokens.expires_at, scope=tokens.scope,
                        token_version=expected_version + 1, token_fence=fence,
                        last_error=None, updated_at=clock.now())
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            session.commit()
            return saved

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        """Under the grant's lock: reload, refresh only if still needed, save by CAS, return."""
        lock = self._redis.lock(self.lock_name, timeout=self._lock_timeout,
                                blocking_timeout=self._lock_wait, sleep=0.02)
        if not lock.acquire():
            raise TransientError(f"grant {self.grant_id}: token refresh lock busy")
        try:
            stored = self.read()
            fence = self._next_fence(stored.fence)
            if not needs_refresh(stored.tokens):
                return stored.tokens  # another worker refreshed while we waited
            try:
                fresh = self._ask(lock, fence, stored, do_refresh)
            except AuthorizationRevoked as exc:
                return self._refused(stored, needs_refresh, exc)
            if self.save_if_current(stored.version, fence, fresh):
                log.info("grant %s: tokens refreshed, valid until %s",
                         self.grant_id, _iso(fresh.expires_at))
                return fresh
            # Our lock ran out and a later holder saved first. Within Xero's grace it was
            # answered the same pair; either way the stored pair is the one to keep.
            log.warning("grant %s: a newer token was saved while this refresh ran; kept it",
                        self.grant_id)
            return self.load()
        finally:
            try:
                lock.release()
            except LockError:
                pass  # it expired: a later holder has it now, and fencing kept us apart

    def _next_fence(self, saved: int) -> int:
        """The next fencing token: above every one handed out, and above the one the row was
        last saved under, so that a flushed Redis cannot hand out a fence the row refuses."""
        return int(self._redis.register_script(_NEXT_FENCE)(keys=[self.fence_name],
                                                            args=[saved]))

    def _holds(self, lock: object, fence: int) -> bool:
        """Still the lock's owner and the latest fence: only then may the token be spent."""
        try:
            lock.extend(self._lock_timeout, replace_ttl=True)  # type: ignore[attr-defined]
        except LockError:
            return False
        return int(self._redis.get(self.fence_name) or 0) == fence

    def _ask(self, lock: object, fence: int, stored: StoredTokens,
             do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        """The provider's answer, asked again (same refresh token) after a lost answer."""
        attempt = 0
        while True:
            if not self._holds(lock, fence):
                raise TransientError(f"grant {self.grant_id}: refresh lock lost before the "
                                     "token was spent; another worker refreshes")
            try:
                return do_refresh(stored.tokens)
            except AuthorizationRevoked:
                raise
            except TransientError as exc:
                attempt += 1
                if attempt > self._retries:
                    raise
                log.info("grant %s: refresh answer lost (%s); asking again", self.grant_id, exc)
                time.sleep(self._retry_pause * attempt)

    def _refused(self, stored: StoredTokens, needs_refresh: Callable[[TokenSet], bool],
                 exc: AuthorizationRevoked) -> TokenSet:
        """`invalid_grant`: believed only if no newer pair was saved meanwhile."""
        try:
            again = self.read()
        except AuthorizationRevoked:
            raise exc from None  # revoked already, by another worker
        if again.version != stored.version:
            if not needs_refresh(again.tokens):
                log.info("grant %s: refresh refused but a newer pair is stored; using it",
                         self.grant_id)
                return again.tokens
            raise TransientError(f"grant {self.grant_id}: a newer pair was stored while the "
                                 "refresh was refused; try again") from exc
        reason = str(exc)[:500]
        with self._sessions() as session:
            revoked = session.execute(  # type: ignore[attr-defined]  # DML: a CursorResult
                update(Grant)
                .where(Grant.id == self.grant_id, Grant.token_version == stored.version,
                       Grant.status == "active")
                .values(status="revoked", last_error=reason)
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            connections = list(session.scalars(select(Connection).where(
                Connection.grant_id == self.grant_id, Connection.status == "active")))
            for connection in connections:
                connection.status, connection.last_error = "needs_reconnect", reason
            session.commit()
            if revoked:
                log.warning("grant %s: refresh refused, %d organisation(s) must reconnect",
                            self.grant_id, len(connections))
                self._notice(session, self.grant_id, connections, reason)
        raise exc


def tell_owners_to_reconnect(session: Session, grant_id: int, connections: list[Connection],
                             reason: str) -> None:
    """An activity-log entry per organisation and an email to its owners. Without SMTP (or
    outside the app) the email is not sent, and the log says so."""
    now = clock.now()
    for connection in connections:
        provider = registry.display_name(connection.provider)
        message = (f"{provider} no longer accepts Dunwell's access to "
                   f"{connection.tenant_name or 'this organisation'}; reminders and fees are "
                   f"paused until an owner reconnects it.")
        session.add(AuditEvent(org_id=connection.org_id, kind="needs_reconnect",
                               message=message, at=now,
                               data={"grant_id": grant_id, "provider": provider,
                                     "tenant": connection.tenant_name or ""}))
        owners = session.scalars(
            select(User.email).join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == connection.org_id, Membership.role == "owner")).all()
        for email in owners:
            if not has_app_context():
                log.warning("org %s: reconnect email not sent (no app configured)",
                            connection.org_id)
                continue
            base = str(current_app.config.get("BASE_URL", "")).rstrip("/")
            text = (f"{message}\n\nReconnect it here: {base}/organisations/"
                    f"{connection.org_id}\n")
            try:
                send_email(to=email, subject=f"Reconnect {provider} to keep Dunwell working",
                           text=text, html=None, sender_name="Dunwell",
                           action_key=f"reconnect:{connection.id}:{grant_id}:{now.date()}")
            except (ConfigurationError, TransientError) as failure:
                log.warning("org %s: reconnect email to an owner not sent: %s",
                            connection.org_id, failure)
    session.commit()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
