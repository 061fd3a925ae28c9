"""Why a purchase earned what it did, as stored with it: the earn breakdown's GraphQL face.

The earning service decides a purchase's points and writes the breakdown into the document the
ledger stores with the purchase (`purchases.earn_detail`); its `items` list is a published shape
the ledger only renders here, never interprets: each item names the rule (or promotion) by id and
by the name it had then, the lines it concerns and the points it gave (the items sum to the
purchase's points). A purchase stored without a document (plain, at the base rate) reads as one
base-rate item of all its points. These types live with Transaction, which shows them; the
earning service's payloads reuse them.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from services.ledger import service
from shared.graphql_types import GraphQLInfo, Points
from shared.ids import to_global_id


@strawberry.type(description="An earn rule as it was named when it applied.")
class EarnRuleRef:
    id: strawberry.ID = strawberry.field(description="The EarnRule's global ID.")
    name: str = strawberry.field(description="Its name in the version that applied.")


@strawberry.type(description="A promotion as it was named when it applied.")
class PromotionRef:
    id: strawberry.ID = strawberry.field(description="The Promotion's global ID.")
    name: str = strawberry.field(description="Its name when it applied.")
    coalition: bool = strawberry.field(
        default=False, description="A coalition promotion: these points are issued by the coalition."
    )


@strawberry.type(description="A member's tier as it was named when its multiplier applied.")
class TierRef:
    id: strawberry.ID = strawberry.field(description="The Tier's global ID.")
    name: str = strawberry.field(description="Its name when it applied.")


@strawberry.type(description="A line of a purchase, as the breakdown names it.")
class PurchaseLineRef:
    sku: str | None = strawberry.field(description="The line's sku; null for a purchase sent without lines.")


@strawberry.type(
    description="One reason a purchase earned what it did, in the order the engine applied them:"
    " the base rate or a rule (per line), then minimum spend, caps per purchase and per member."
    " A limit's item has negative points; the items sum to the purchase's points."
)
class EarnBreakdownItem:
    rule: EarnRuleRef | None = strawberry.field(description="The rule; null for the partner's base rate.")
    promotion: PromotionRef | None = strawberry.field(
        description="The promotion that gave these points; null for a rule or the base rate."
    )
    tier: TierRef | None = strawberry.field(
        default=None,
        description="The member's tier whose multiplier gave these points (on the base points, issued"
        " by this partner); null otherwise.",
    )
    lines: list[PurchaseLineRef] = strawberry.field(description="The lines it concerns.")
    points: Points = strawberry.field(description="Points it gave (negative: taken by a limit).")


def breakdown_items(points: int, detail: dict[str, Any] | None) -> list[EarnBreakdownItem]:
    if not detail or "items" not in detail:
        return [
            EarnBreakdownItem(rule=None, promotion=None, lines=[PurchaseLineRef(sku=None)], points=points)
        ]
    lines = detail.get("lines") or []
    out = []
    for item in detail["items"]:
        rule = item.get("rule")
        promotion = item.get("promotion")
        tier = item.get("tier")
        out.append(
            EarnBreakdownItem(
                rule=EarnRuleRef(id=strawberry.ID(to_global_id("EarnRule", rule["id"])), name=rule["name"])
                if rule
                else None,
                promotion=PromotionRef(
                    id=strawberry.ID(to_global_id("Promotion", promotion["id"])),
                    name=promotion["name"],
                    coalition=bool(promotion.get("coalition")),
                )
                if promotion
                else None,
                tier=TierRef(id=strawberry.ID(to_global_id("Tier", tier["id"])), name=tier["name"])
                if tier
                else None,
                lines=[
                    PurchaseLineRef(sku=lines[i].get("sku")) for i in item.get("lines", []) if i < len(lines)
                ],
                points=item["points"],
            )
        )
    return out


def breakdown_loader(info: GraphQLInfo) -> DataLoader[tuple[int, str], list[EarnBreakdownItem] | None]:
    """Breakdowns of a page of transactions in one statement, only when a client asks for them."""
    loader = info.context.loaders.get("earn-breakdown")
    if loader is None:

        async def load(keys: list[tuple[int, str]]) -> list[list[EarnBreakdownItem] | None]:
            found = await service.earn_details(info.context.db, keys)
            return [breakdown_items(*found[k]) if k in found else None for k in keys]

        loader = info.context.loaders["earn-breakdown"] = DataLoader(load_fn=load)
    return loader
