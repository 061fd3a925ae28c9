"""How every gateway process learns at once that tokens stopped being good.

Verification keeps no database work on the hot path (`verifier`), so each process holds in memory
what makes a valid token invalid: revoked token ids, disabled clients, rotated secrets. Process
memory is not shared, so a change crosses processes through PostgreSQL LISTEN/NOTIFY, as
DESIGN.md asks of live updates:

- the transaction that revokes a token (or every token of a member), disables a client or
  rotates a secret also runs `pg_notify(CHANNEL, payload)`; PostgreSQL delivers it only if and
  when that transaction commits, and in commit order;
- each gateway process's one LISTEN connection (`shared.listening.Listener`, started in the app's
  lifespan) carries CHANNEL; `subscribe` applies each payload to the process's verifier as it
  arrives;
- notifications sent while the listener is not connected are lost, so on every (re)connection the
  verifier re-reads everything before the next request; and the periodic re-read every
  REVOCATION_CACHE_SECONDS stays as the bound when the listener is down (a restarting database, a
  network cut it has not noticed yet: its health query finds those).

The payload names the client and its whole state after the change (not "something changed"), so a
listener applies it without a query, and a later notification of the same client supersedes it.

"At once" is made exact for the caller: having applied a change, each listener acknowledges it
(the shared listener's "applied everywhere" protocol), and the operation that made the change
answers only once every listening backend of the database has acknowledged (`applied_everywhere`,
at most `listening.PROPAGATION_TIMEOUT_SECONDS`). So when `disableClient` returns, every connected gateway
process already refuses the client's tokens; the next request, to whichever gateway, is refused.
Without that wait a request sent right after the answer to another gateway could still be served
(measured: 3 in 50). The cost is one small notification per listener and change, for changes an
admin or a revocation makes.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import OAuthClient
from shared import listening
from shared.database import Database
from shared.listening import Listener, Subscription

if TYPE_CHECKING:
    from services.identity.verifier import TokenVerifier

log = logging.getLogger("coalition.identity.propagation")

CHANNEL = "coalition_identity"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


async def _notify(session: AsyncSession, payload: dict[str, Any]) -> str:
    """Send `payload` when the session's transaction commits; returns its notice id."""
    notice = listening.new_notice()
    await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": json.dumps({**payload, "notice": notice})})
    return notice


async def notify_client(session: AsyncSession, client: OAuthClient) -> str:
    """In the transaction that changed `client`: its state, for every listener once committed.
    Returns the notice id for `applied_everywhere`."""
    return await _notify(
        session,
        {
            "client_id": client.client_id,
            "disabled": client.disabled_at is not None,
            "secret_version": client.secret_version,
        },
    )


async def notify_revoked(session: AsyncSession, jti: str, expires_at: float) -> str:
    """In the transaction that revoked token `jti` (its `exp` says how long to remember it).
    Returns the notice id for `applied_everywhere`."""
    return await _notify(session, {"revoked": jti, "exp": expires_at})


async def notify_member_revoked(session: AsyncSession, member_id: int, before: float) -> str:
    """In the transaction that revoked every token of a member issued at or before `before`."""
    return await _notify(session, {"member": member_id, "before": before})


async def applied_everywhere(db: Database, notice: str) -> None:
    """After the commit that sent `notice`: wait until every listening backend of the database has
    acknowledged applying it, or `listening.PROPAGATION_TIMEOUT_SECONDS` (a listener that has died without its
    backend noticing yet never answers; the periodic re-read bounds it). Needs a listener in this
    process to hear the acknowledgements: without one (the command line) it returns at once."""
    await listening.applied_everywhere(db, notice, bound="the periodic re-read covers the others")


async def subscribe(listener: Listener, verifier: TokenVerifier) -> Subscription:
    """Feed `verifier` from the process's listener: every change applied (and acknowledged) as it
    is heard, everything re-read whenever changes may have gone unheard (each new connection)."""
    return await listener.subscribe(
        CHANNEL, lambda payload: apply(verifier, payload), on_reconnect=verifier.refresh_soon
    )


def apply(verifier: TokenVerifier, payload: str) -> str | None:
    """One notification applied to a verifier; returns its notice id. A payload it cannot read
    makes the verifier re-read everything."""
    try:
        change = json.loads(payload)
        if "revoked" in change:
            verifier.revoked_locally(str(change["revoked"]), float(change["exp"]))
        elif "member" in change:
            verifier.member_revoked(int(change["member"]), float(change["before"]))
        else:
            verifier.client_changed(
                str(change["client_id"]),
                disabled=bool(change["disabled"]),
                secret_version=int(change["secret_version"]),
            )
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("unreadable identity notification %r: re-reading everything", payload)
        verifier.refresh_soon()
        return None
    notice = change.get("notice")
    return notice if isinstance(notice, str) else None
