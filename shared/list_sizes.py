"""How many items a GraphQL list field is expected to hold, declared on the field that returns it
(`strawberry.field(metadata=list_size(...))`) and read by the gateway's query cost limit
(services/gateway/limits.py), which costs a list at that size.

A list bounded by something known declares it: a settlement run has at most one statement per
partner plus the coalition's, so `ListSize(fixed=1, per_partner=1)`. Partners are counted as the
coalition plans for (`QUERY_COST_PARTNERS`, 50): a cost limit must decide before anything runs, the
same query must cost the same whatever the data, and an operator whose coalition outgrows the plan
raises it. A list a partner sees only its own share of (its own statement of a run) says so with
`for_partner`; one an argument narrows to a single item (a run's statements for one partner) names
it in `one_with`. Lists that declare nothing cost the default page size; connections cost their
`first`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LIST_SIZE = "coalition.list_size"


@dataclass(frozen=True)
class ListSize:
    fixed: int = 0
    per_partner: int = 0
    for_partner: int | None = None  # what a partner (not an admin) can see of it, if less
    one_with: str | None = None  # an argument that, given, narrows the list to one item

    def expected(self, partners: int, *, partner_view: bool, narrowed: bool = False) -> int:
        if narrowed:
            return 1
        if partner_view and self.for_partner is not None:
            return self.for_partner
        return self.fixed + self.per_partner * partners


def list_size(
    fixed: int = 0, per_partner: int = 0, for_partner: int | None = None, one_with: str | None = None
) -> dict[str, Any]:
    """Field metadata declaring a list's expected size (see the module's docstring)."""
    return {LIST_SIZE: ListSize(fixed, per_partner, for_partner, one_with)}
