"""Random ledgers, settled: whatever happened in a period (coalition-funded earns, gifts between
members and donations to a charity included), the nets sum to exactly zero, the matrix carries
exactly the points consumed, running the period again gives the same hash, and the ledger's audit
finds nothing."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.partners.models import PartnerKind
from services.settlement import audit as settlement_audit
from services.settlement import service as settlement
from shared import clock
from shared.ids import to_global_id
from tests.engagement.test_transfers import donate, give
from tests.factories import (
    cancel,
    earn,
    earn_with_coalition,
    enroll,
    link,
    make_partner,
    redeem,
    reverse,
    unique,
    violations,
)
from tests.settlement.test_settlement import SETTLER

prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.0500"), places=4)
contracts = st.tuples(prices, prices, st.decimals(min_value=0, max_value=Decimal("0.0050"), places=4))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(0, 2), st.integers(1, 5_000)),
        # points, and the coalition's share of them (clamped to the points): a coalition promotion
        st.tuples(
            st.just("coalition earn"),
            st.integers(0, 2),
            st.tuples(st.integers(1, 5_000), st.integers(1, 5_000)),
        ),
        st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(1, 900)),
        st.tuples(st.just("reverse"), st.integers(0, 20), st.integers(1, 100)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0)),
        # a gift: from member a % 2 to the other one
        st.tuples(st.just("transfer"), st.integers(0, 1), st.integers(1, 900)),
        st.tuples(st.just("donate"), st.integers(0, 1), st.integers(1, 400)),
        # the other member spends (points they were given, at any partner)
        st.tuples(st.just("redeem other"), st.integers(0, 2), st.integers(1, 900)),
    ),
    min_size=1,
    max_size=15,
)
periods = itertools.count()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(terms=st.lists(contracts, min_size=3, max_size=3), sequence=steps)
async def test_random_ledgers_settle_exactly(db, terms, sequence):
    t0 = clock.now().replace(microsecond=0) - timedelta(days=5000 + 2 * next(periods))
    partners = [
        await make_partner(
            db,
            issue_price=str(issue),
            redeem_price=str(redeem_price),
            issue_fee_per_point=fee,
            breakage_share=Decimal("0.25"),
        )
        for issue, redeem_price, fee in terms
    ]
    member, other = await enroll(db, partners[0]), await enroll(db, partners[0])
    for partner in partners[1:]:  # spending needs a link
        await link(db, partner, member)
        await link(db, partner, other)
    charity = await make_partner(db, kind=PartnerKind.CHARITY, redeem_price="0.0050")
    pair = (member, other)
    purchases: list[tuple[int, str]] = []
    redemptions: list[tuple[int, str]] = []
    try:
        for minute, (kind, a, b) in enumerate(sequence, start=1):
            clock.set_clock(lambda m=minute: t0 + timedelta(minutes=m))
            if kind == "earn":
                order = unique("o")
                if not (await earn(db, partners[a], member.member_number, str(b), order_id=order)).errors:
                    purchases.append((a, order))
            elif kind == "coalition earn":
                order, (points, share) = unique("o"), b
                coalition_earn = await earn_with_coalition(
                    db,
                    partners[a],
                    member.member_number,
                    points,
                    min(share, points),
                    amount=str(points),
                    order_id=order,
                )
                if not coalition_earn.errors:
                    purchases.append((a, order))
            elif kind == "redeem":
                spent = await redeem(db, partners[a], member.member_number, b)
                if not spent.errors:
                    redemptions.append((a, to_global_id("Redemption", spent.result["redemption_id"])))
            elif kind == "reverse" and purchases:
                p, order = purchases[a % len(purchases)]
                await reverse(db, partners[p], order, str(b))  # may be refused: more than is left
            elif kind == "cancel" and redemptions:
                p, redemption = redemptions[a % len(redemptions)]
                await cancel(db, partners[p], redemption)  # may be refused: already cancelled
            elif kind == "transfer":  # may be refused: not enough points, or a debt
                await give(db, pair[a], pair[1 - a].member_number, b)
            elif kind == "donate":
                await donate(db, pair[a], charity.id, b)
            elif kind == "redeem other":
                await redeem(db, partners[a], other.member_number, b)
        clock.set_clock(lambda: t0 + timedelta(days=1, hours=1))
        end = t0 + timedelta(days=1)
        run = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=end)
        again = await settlement.run_settlement(db, SETTLER, period_start=t0, period_end=end)
    finally:
        clock.set_clock(None)

    assert sum((s.net for s in run.statements), Decimal(0)) == 0
    assert all(x.amount == x.amount.quantize(Decimal("0.01")) for x in run.lines)
    assert again.content_hash == run.content_hash
    assert again.lines == run.lines
    await settlement.finalize_settlement(db, SETTLER, again.id)
    assert await settlement_audit.audit_runs(db) == []  # the matrix carries exactly the points consumed
    assert await violations(db, at=t0 + timedelta(days=1, hours=1)) == []
