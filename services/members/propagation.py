"""How every gateway process forgets at once a link that was undone.

`service.cached_member_at_partner` remembers, per process, that a member is linked to a partner:
the earn's hot path then skips a query. A link undone (`account.unlink_partner`) must leave every
process's memory before the unlinking call answers, or a till talking to another gateway could
still be served as if the member were linked. The pattern is identity's (`services/identity/
propagation.py`), on a channel of its own, over the process's one listener (`shared.listening`):

- the unlinking transaction runs `pg_notify(CHANNEL, …)`, delivered only if and when it commits;
- each gateway process's listener carries CHANNEL (`subscribe`, in the app's lifespan): it forgets
  the named link and acknowledges;
- the unlinking call waits until every listening backend has acknowledged (bounded by
  `listening.PROPAGATION_TIMEOUT_SECONDS`), so when it returns every process has forgotten it;
- a notice sent while a listener was disconnected is lost, so on every (re)connection the process
  forgets every remembered link (and with them every erased member's: same keys);
  MEMBER_CACHE_SECONDS bounds the rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable

from shared import listening
from shared.database import Database
from shared.listening import Listener, Subscription
from shared.sql import DbConnection

log = logging.getLogger("coalition.members.propagation")

CHANNEL = "coalition_members"


def link_key(member_number: str, partner_id: int) -> tuple[str, str, int]:
    """The key `service.cached_member_at_partner` remembers a link under."""
    return ("member", member_number, partner_id)


def forget_link(db: Database, member_number: str, partner_id: int) -> None:
    db.cache.forget(link_key(member_number, partner_id))


def _is_link(key: Hashable) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[0] == "member"


def forget_every_link(db: Database) -> int:
    """Drops every remembered link of this process (what it may have missed is among them)."""
    return db.cache.forget_where(_is_link)


async def notify_unlinked(conn: DbConnection, member_number: str, partner_id: int) -> str:
    """In the unlinking transaction; returns the notice id for `applied_everywhere`."""
    notice = listening.new_notice()
    payload = json.dumps({"member_number": member_number, "partner_id": partner_id, "notice": notice})
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    return notice


async def applied_everywhere(db: Database, notice: str) -> None:
    """After the commit that sent `notice`: wait until every listening process has applied it
    (or the timeout). Without a listener in this process (the command line) it returns at once."""
    await listening.applied_everywhere(db, notice, bound="MEMBER_CACHE_SECONDS bounds the others")


def apply(db: Database, payload: str) -> str | None:
    """One unlink notice applied to this process's cache; returns its notice id. A payload it
    cannot read makes it forget every link (and acknowledges nothing)."""
    try:
        change = json.loads(payload)
        forget_link(db, str(change["member_number"]), int(change["partner_id"]))
        return str(change["notice"])
    except (ValueError, TypeError, KeyError):
        log.warning("unreadable members notification %r: forgetting every link", payload)
        forget_every_link(db)
        return None


async def subscribe(listener: Listener, db: Database) -> Subscription:
    """Keep `db`'s link cache true from the process's listener: each unlink forgotten (and
    acknowledged) as it is heard, every link forgotten whenever notices may have gone unheard."""
    return await listener.subscribe(
        CHANNEL, lambda payload: apply(db, payload), on_reconnect=lambda: forget_every_link(db)
    )
