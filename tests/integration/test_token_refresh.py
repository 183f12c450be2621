"""Token refreshes across many workers, against the Xero sandbox over HTTP.

Every refresh is counted where it lands: a WSGI wrapper around the sandbox's token endpoint
counts refresh requests and `invalid_grant` answers, and can hold an answer back past the
client's timeout (the refresh happens, the client never hears of it).
"""

from __future__ import annotations

import io
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from redis import Redis
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from collect.tokens import GrantTokenStore, TokenVault
from connectors.base import AuthorizationRevoked, TokenSet, TransientError
from connectors.oauth import FreshTokens, OAuthClient
from tests.integration.test_escalation_e2e import smtp  # noqa: F401  (the SMTP sink fixture)

pytestmark = pytest.mark.db

WORKERS = 50
ROUNDS = 20
MARGIN = timedelta(seconds=120)


class TokenEndpointWatch:
    """Wraps the sandbox app: counts refreshes and invalid_grant answers at the server."""

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.app = wsgi_app
        self.refreshes = 0
        self.invalid_grants = 0
        self.lose_next = 0  # refresh answers to hold back past the client's timeout
        self.hold_seconds = 1.0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != "/connect/token" or environ["REQUEST_METHOD"] != "POST":
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        refresh = parse_qs(body.decode()).get("grant_type") == ["refresh_token"]
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            answer.update(status=status, headers=headers)
            return lambda data: None

        content = b"".join(self.app(environ, capture))
        with self._lock:
            self.refreshes += refresh
            self.invalid_grants += b"invalid_grant" in content
            lose = refresh and self.lose_next > 0
            self.lose_next -= lose
        if lose:
            time.sleep(self.hold_seconds)  # done at the sandbox; the client has given up
        start_response(answer["status"], answer["headers"])
        return [content]


@pytest.fixture
def watch(sandbox) -> Iterator[TokenEndpointWatch]:  # type: ignore[no-untyped-def]
    server = sandbox[1].server
    wrapper = TokenEndpointWatch(server.app)
    server.app = wrapper
    yield wrapper
    server.app = wrapper.app


def oauth_client(sandbox_url: str, clock: Callable[[], datetime],
                 timeout: float = 30) -> OAuthClient:
    return OAuthClient("dunwell-demo", "dunwell-demo-secret",
                       f"{sandbox_url}/identity/connect/authorize", f"{sandbox_url}/connect/token",
                       f"{sandbox_url}/connect/revocation", "offline_access", clock=clock,
                       timeout_seconds=timeout)


def works(sandbox_url: str, access_token: str) -> bool:
    answer = requests.get(f"{sandbox_url}/connections", timeout=10,
                          headers={"Authorization": f"Bearer {access_token}"})
    return answer.status_code == 200


def grant_of(app, org_id: int) -> int:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection

    with app.app_context():
        connection = db.session.scalars(
            select(Connection).where(Connection.org_id == org_id)).one()
        assert connection.grant_id is not None
        return connection.grant_id


@dataclass
class GrantStores:
    """What a worker needs to hold the connection's grant: its own store on request."""

    grant_id: int
    sessions: sessionmaker[Session]
    vault: TokenVault
    redis: Redis

    def store(self, **options: Any) -> GrantTokenStore:
        return GrantTokenStore(self.grant_id, self.sessions, self.vault, self.redis, **options)


@pytest.fixture
def grants(app, connected, database_url, redis_url,  # type: ignore[no-untyped-def]
           encryption_keys) -> Iterator[GrantStores]:
    engine = create_engine(database_url)
    yield GrantStores(grant_of(app, connected.org_id), sessionmaker(bind=engine),
                      TokenVault(encryption_keys), Redis.from_url(redis_url))
    engine.dispose()


def race(workers: int, attempt: Callable[[], str]) -> list[str]:
    """`workers` threads released at once; each answers a token or an error's name."""
    gate, got, lock = threading.Barrier(workers), [], threading.Lock()

    def one() -> None:
        gate.wait()
        try:
            answer = attempt()
        except Exception as exc:  # every outcome is reported to the test
            answer = f"error {type(exc).__name__}: {exc}"
        with lock:
            got.append(answer)

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return got


def test_fifty_threads_finding_an_expired_token_refresh_it_once_per_round(
        app, connected, sandbox, clock, database_url, redis_url, encryption_keys,
        watch) -> None:  # type: ignore[no-untyped-def]
    state, server = sandbox
    grant_id = grant_of(app, connected.org_id)
    engine = create_engine(database_url, pool_size=10, max_overflow=WORKERS)
    sessions = sessionmaker(bind=engine)
    vault, redis = TokenVault(encryption_keys), Redis.from_url(redis_url)
    oauth = oauth_client(server.url, clock)

    def worker() -> str:  # a fresh store and connector-side view, as in a separate worker
        store = GrantTokenStore(grant_id, sessions, vault, redis)
        return FreshTokens(store, oauth.refresh, clock, MARGIN).access_token()

    try:
        for round_number in range(1, ROUNDS + 1):
            state.expire_access_tokens()
            clock.advance(minutes=31)  # stale, and past the grace of the last refresh token
            got = race(WORKERS, worker)
            assert len(got) == WORKERS and len(set(got)) == 1, set(got)
            assert watch.refreshes == round_number
            assert watch.invalid_grants == 0
            assert works(server.url, got[0])
    finally:
        engine.dispose()
    assert (watch.refreshes, watch.invalid_grants) == (ROUNDS, 0)


def _process_worker(settings: dict[str, Any], threads: int, start: Any, done: Any,
                    results: Any) -> None:
    """One worker process with `threads` threads, on the wall clock, for every round."""
    engine = create_engine(settings["database_url"], pool_size=threads + 2)
    sessions = sessionmaker(bind=engine)
    vault, redis = TokenVault(settings["keys"]), Redis.from_url(settings["redis_url"])

    def wall() -> datetime:
        return datetime.now(UTC)

    oauth = oauth_client(settings["sandbox_url"], wall)

    def worker() -> str:
        store = GrantTokenStore(settings["grant_id"], sessions, vault, redis)
        return FreshTokens(store, oauth.refresh, wall, MARGIN).access_token()

    for _ in range(settings["rounds"]):
        start.wait(timeout=120)
        results.put(race(threads, worker))
        done.wait(timeout=120)
    engine.dispose()


def test_fifty_workers_in_four_processes_refresh_once_per_round(
        app, connected, sandbox, clock, database_url, redis_url, encryption_keys,
        watch) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Grant

    state, server = sandbox
    state.config.refresh_grace_seconds = 0  # no grace to hide a second refresh behind
    grant_id = grant_of(app, connected.org_id)
    rounds, processes = 8, 4
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(processes + 1), context.Barrier(processes + 1)
    results = context.Queue()
    settings = {"database_url": database_url, "redis_url": redis_url, "keys": encryption_keys,
                "sandbox_url": server.url, "grant_id": grant_id, "rounds": rounds}
    shares = [WORKERS // processes + (i < WORKERS % processes) for i in range(processes)]
    children = [context.Process(target=_process_worker, args=(settings, share, start, done,
                                                              results))
                for share in shares]
    for child in children:
        child.start()
    try:
        for round_number in range(1, rounds + 1):
            with app.app_context():  # the stored token has expired, for every process
                db.session.execute(update(Grant).where(Grant.id == grant_id).values(
                    expires_at=datetime.now(UTC) - timedelta(minutes=1)))
                db.session.commit()
            state.expire_access_tokens()
            start.wait(timeout=120)
            got = [token for _ in children for token in results.get(timeout=120)]
            done.wait(timeout=120)
            assert len(got) == WORKERS and len(set(got)) == 1, set(got)
            assert (watch.refreshes, watch.invalid_grants) == (round_number, 0)
            assert works(server.url, got[0])
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    assert [child.exitcode for child in children] == [0] * processes


def test_a_lost_refresh_answer_is_asked_again_within_the_grace_and_the_connection_lives(
        app, connected, sandbox, clock, grants, watch) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection, Grant

    state, server = sandbox
    grant_id = grants.grant_id
    store = grants.store(retry_pause=0.1)
    fresh = FreshTokens(store, oauth_client(server.url, clock, timeout=0.5).refresh, clock,
                        MARGIN)
    before = store.read()
    state.expire_access_tokens()
    clock.advance(minutes=31)
    watch.lose_next, watch.hold_seconds = 1, 1.5
    token = fresh.access_token()

    assert (watch.refreshes, watch.invalid_grants) == (2, 0)  # lost, then replayed by Xero
    assert works(server.url, token)
    after = store.read()
    assert after.version == before.version + 1 and after.tokens.access_token == token
    latest = state.refresh_tokens[after.tokens.refresh_token]
    assert latest.rotated_at is None  # the pair kept is Xero's newest: the next refresh works
    assert state.refresh_tokens[before.tokens.refresh_token].rotated_at is not None
    with app.app_context():
        connection = db.session.scalars(
            select(Connection).where(Connection.org_id == connected.org_id)).one()
        assert connection.status == "active"
        assert db.session.get(Grant, grant_id).status == "active"
    clock.advance(minutes=31)
    state.expire_access_tokens()
    assert works(server.url, fresh.access_token())
    assert (watch.refreshes, watch.invalid_grants) == (3, 0)


def test_a_stale_lock_holder_cannot_overwrite_a_newer_token(
        sandbox, clock, grants, watch) -> None:  # type: ignore[no-untyped-def]
    state, server = sandbox
    redis = grants.redis
    oauth = oauth_client(server.url, clock)
    state.expire_access_tokens()
    clock.advance(minutes=31)
    before = grants.store().read()
    stale_pair = TokenSet("stale-access", "stale-refresh", clock() + timedelta(hours=1))

    # The order is held by events, not by sleeps a loaded machine can stretch: the slow holder
    # has taken the lock before the other starts, and answers only after the other is done.
    refreshing, other_done = threading.Event(), threading.Event()

    def slow_refresh(old: TokenSet) -> TokenSet:
        refreshing.set()
        other_done.wait(timeout=10)  # a long pause: its lock expires, another worker refreshes
        return stale_pair

    slow = grants.store(lock_timeout=0.3)
    outcome: dict[str, TokenSet] = {}
    first = threading.Thread(target=lambda: outcome.update(
        slow=slow.refresh(lambda t: True, slow_refresh)))
    first.start()
    assert refreshing.wait(timeout=10)
    time.sleep(0.45)  # the slow holder's 0.3 s lock runs out
    other = grants.store()
    newer = FreshTokens(other, oauth.refresh, clock, MARGIN).access_token()
    other_done.set()
    first.join(timeout=10)
    after = other.read()

    assert after.tokens.access_token == newer != "stale-access"
    assert after.version == before.version + 1
    assert outcome["slow"].access_token == newer  # the stale holder is handed the newer pair
    assert int(redis.get(other.fence_name) or 0) == 2
    # Fencing on its own: a write under an older fence is refused even at the current version.
    assert other.save_if_current(after.version, 1, stale_pair) is False
    assert other.read().tokens.access_token == newer
    assert other.save_if_current(after.version, 3, stale_pair) is True
    assert other.read().version == after.version + 1


def test_a_holder_that_lost_the_lock_before_refreshing_never_spends_the_token(
        grants) -> None:  # type: ignore[no-untyped-def]
    redis = grants.redis
    store = grants.store(lock_timeout=0.2)
    spent: list[str] = []

    def slow_check(tokens: TokenSet) -> bool:
        time.sleep(0.4)  # the lock expires; another worker takes it (and a new fence)
        assert redis.set(store.lock_name, "other-worker", nx=True, px=5000)
        redis.incr(store.fence_name)
        return True

    with pytest.raises(TransientError, match="lock lost"):
        store.refresh(slow_check, lambda old: spent.append(old.refresh_token) or old)
    assert spent == []
    assert redis.get(store.lock_name) == b"other-worker"  # its lock is left alone


def test_invalid_grant_uses_a_newer_stored_pair_when_another_worker_saved_one(
        sandbox, clock, grants, watch) -> None:  # type: ignore[no-untyped-def]
    state, server = sandbox
    store = grants.store()
    oauth = oauth_client(server.url, clock)
    state.expire_access_tokens()
    clock.advance(minutes=31)
    before = store.read()

    def spent_elsewhere(old: TokenSet) -> TokenSet:
        # Another path refreshed and saved meanwhile (as a worker on an older release would);
        # our own request then finds the token spent.
        assert store.save_if_current(before.version, 10**6, oauth.refresh(old.refresh_token))
        raise AuthorizationRevoked("refresh_token refused: invalid_grant (reconnect needed)")

    got = store.refresh(lambda t: t.expires_at - MARGIN <= clock(), spent_elsewhere)
    assert got.access_token == store.read().tokens.access_token
    assert store.read().version == before.version + 1
    assert works(server.url, got.access_token)


def test_a_dead_refresh_token_pauses_the_connection_and_tells_the_owner(
        app, connected, sandbox, clock, smtp, watch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from collect.providers import connector_for
    from store.db import db
    from store.models import AuditEvent, Connection, Grant

    state, _ = sandbox
    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    for record in state.refresh_tokens.values():
        record.revoked = True  # the owner removed the app in Xero
    state.expire_access_tokens()
    clock.advance(minutes=31)
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        with pytest.raises(AuthorizationRevoked):
            connector_for(connection).invoice("anything")
        db.session.expire_all()
        connection = db.session.scalars(select(Connection)).one()
        assert connection.status == "needs_reconnect"
        assert "invalid_grant" in (connection.last_error or "")
        assert db.session.get(Grant, connection.grant_id).status == "revoked"
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "needs_reconnect")).all()
        assert [(e.org_id, e.message) for e in events] == [(
            connected.org_id, "Xero no longer accepts Dunwell's access to "
            f"{connection.tenant_name}; reminders and fees are paused until an owner "
            "reconnects it.")]
    assert (watch.refreshes, watch.invalid_grants) == (1, 1)
    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert message["To"] == "owner@example.com"
    assert message["Subject"] == "Reconnect Xero to keep Dunwell working"
    assert f"/organisations/{connected.org_id}" in message.get_payload(decode=True).decode()


def test_a_flushed_redis_does_not_stop_tokens_being_saved(
        sandbox, clock, grants, watch) -> None:  # type: ignore[no-untyped-def]
    state, server = sandbox
    redis = grants.redis
    store = grants.store()
    fresh = FreshTokens(store, oauth_client(server.url, clock).refresh, clock, MARGIN)
    for _ in range(3):
        state.expire_access_tokens()
        clock.advance(minutes=31)
        fresh.access_token()
    assert store.read().fence == 3
    redis.flushdb()  # the fence counter is gone; the row remembers the last fence
    state.expire_access_tokens()
    clock.advance(minutes=31)
    token = fresh.access_token()
    assert store.read().tokens.access_token == token and store.read().fence == 4
    assert (watch.refreshes, watch.invalid_grants) == (4, 0)
