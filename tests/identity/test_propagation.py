"""LISTEN/NOTIFY: a verifier whose periodic re-read is an hour away still hears at once of
disabled clients, rotated secrets and revocations committed anywhere, and keeps hearing after its
connection is cut (as when the database restarts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from services.identity import propagation
from services.identity import service as identity
from services.identity.verifier import TokenVerifier
from shared.database import Database
from shared.errors import Unauthenticated
from shared.listening import PROPAGATION_TIMEOUT_SECONDS, Listener
from tests.e2e.conftest import run_cli
from tests.factories import ADMIN, make_partner
from tests.identity.conftest import count_statements

HEARING_BOUND_SECONDS = 2.0  # far above what it takes (milliseconds), far below the hour


@pytest.fixture
async def listening(db: Database) -> AsyncIterator[tuple[TokenVerifier, Listener]]:
    verifier = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    listener = Listener(db, retry_seconds=2.0)
    await propagation.subscribe(listener, verifier)
    await listener.start()
    assert listener.listening.is_set()
    try:
        yield verifier, listener
    finally:
        await listener.stop()


async def _refused_within(verifier: TokenVerifier, token: str, seconds: float) -> tuple[str, float]:
    """The refusal and how long after the call it came (polling every millisecond)."""
    started = time.monotonic()
    while True:
        try:
            await verifier.authenticate(f"Bearer {token}")
        except Unauthenticated as exc:
            return str(exc), time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"still accepted after {seconds} s")
        await asyncio.sleep(0.001)


async def test_a_disable_by_another_process_is_heard_at_once(
    listening, identity_app, partner, db, database_url
):
    verifier, _ = listening
    token = await identity_app.token(partner.client_id, partner.client_secret)
    await verifier.authenticate(f"Bearer {token}")  # warm: the next re-read is an hour away
    disabled = run_cli(database_url, "clients", "disable", partner.client_id)  # another process
    assert disabled.returncode == 0, disabled.stderr
    message, _ = await _refused_within(verifier, token, HEARING_BOUND_SECONDS)
    assert "disabled" in message


async def test_an_operation_returns_once_every_listener_has_applied_it(listening, identity_app, db):
    """Two listeners (as two gateway processes would hold): the operation waits for both to
    acknowledge, so the very next request to either is refused, no polling."""
    verifier, _ = listening
    other = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    other_listener = Listener(db)
    await propagation.subscribe(other_listener, other)
    await other_listener.start()
    try:
        disabled, rotated, revoked = [await make_partner(db) for _ in range(3)]
        tokens = {}
        for partner in (disabled, rotated, revoked):
            tokens[partner.client_id] = await identity_app.token(partner.client_id, partner.client_secret)
            for each in (verifier, other):
                await each.authenticate(f"Bearer {tokens[partner.client_id]}")

        started = time.monotonic()
        await identity.disable_client(db, ADMIN, disabled.client_id)
        # Acknowledged, not timed out waiting: the wait ends when the last listener answers.
        assert time.monotonic() - started < PROPAGATION_TIMEOUT_SECONDS / 2
        for each in (verifier, other):
            with pytest.raises(Unauthenticated, match="disabled"):
                await each.authenticate(f"Bearer {tokens[disabled.client_id]}")

        new = await identity.rotate_client_secret(db, ADMIN, rotated.client_id)
        for each in (verifier, other):
            with pytest.raises(Unauthenticated, match="secret was rotated"):
                await each.authenticate(f"Bearer {tokens[rotated.client_id]}")
        fresh = await identity_app.token(rotated.client_id, new.client_secret)
        assert (await other.authenticate(f"Bearer {fresh}")).partner_id == rotated.id

        async with db.sessions() as session:
            revocation = await identity.revoke_token(session, tokens[revoked.client_id])
            await session.commit()
        await propagation.applied_everywhere(db, revocation.notice)
        for each in (verifier, other):
            with pytest.raises(Unauthenticated, match="revoked"):
                await each.authenticate(f"Bearer {tokens[revoked.client_id]}")
    finally:
        await other_listener.stop()


async def test_nothing_is_heard_of_a_change_that_rolled_back(listening, identity_app, partner, db):
    verifier, _ = listening
    token = await identity_app.token(partner.client_id, partner.client_secret)
    await verifier.authenticate(f"Bearer {token}")
    async with db.sessions() as session:
        await identity.revoke_token(session, token)
        await session.rollback()
    await asyncio.sleep(0.3)
    assert (await verifier.authenticate(f"Bearer {token}")).client_id == partner.client_id


async def test_the_listener_reconnects_and_catches_up_on_what_it_missed(listening, identity_app, db):
    """Its backend terminated (what a database restart does to it): a change committed while it
    was away is read on reconnection, and later ones are heard again."""
    verifier, listener = listening
    missed, later = await make_partner(db), await make_partner(db)
    missed_token = await identity_app.token(missed.client_id, missed.client_secret)
    later_token = await identity_app.token(later.client_id, later.client_secret)
    for token in (missed_token, later_token):
        await verifier.authenticate(f"Bearer {token}")

    async with db.sessions() as session:
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid})
    deadline = time.monotonic() + 5
    while listener.listening.is_set():
        assert time.monotonic() < deadline, "the listener did not notice its connection was cut"
        await asyncio.sleep(0.01)
    await identity.disable_client(db, ADMIN, missed.client_id)
    assert listener.connections == 1, "reconnected before the change: nothing was missed"

    await asyncio.wait_for(listener.listening.wait(), 10)
    assert listener.connections == 2
    with pytest.raises(Unauthenticated, match="disabled"):
        await verifier.authenticate(f"Bearer {missed_token}")  # read on reconnection

    await identity.disable_client(db, ADMIN, later.client_id)  # heard again: applied on return
    with pytest.raises(Unauthenticated, match="disabled"):
        await verifier.authenticate(f"Bearer {later_token}")


async def test_an_unreadable_notification_makes_the_verifier_re_read(db, identity_app, partner):
    verifier = TokenVerifier(db, revocation_cache_seconds=3600, key_reload_interval=0)
    token = await identity_app.token(partner.client_id, partner.client_secret)
    await verifier.authenticate(f"Bearer {token}")
    propagation.apply(verifier, '{"client_id": "cl_x"}')
    with count_statements(db) as statements:
        await verifier.authenticate(f"Bearer {token}")
    assert len(statements) == 2  # revocations and clients, read again
