"""Who is calling, as every service sees it.

The gateway builds a `Principal` from a verified access token; services take it as an argument
and check scopes and tenancy themselves, so no resolver can forget to.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import Forbidden

ADMIN_SCOPES = frozenset({"admin:partners", "admin:settlement"})
PARTNER_SCOPES = frozenset(
    {
        "points:earn",
        "points:redeem",
        "points:reverse",
        "members:read",
        "members:write",
        "catalog:write",
        "rules:write",
        "settlement:read",
        "settlement:reconcile",
        "activities:write",
        "webhooks:write",
    }
)
MEMBER_SCOPE = "member"
ALL_SCOPES = ADMIN_SCOPES | PARTNER_SCOPES | {MEMBER_SCOPE}


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: frozenset[str]
    partner_id: int | None = None
    member_id: int | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.partner_id is None and self.member_id is None and bool(self.scopes & ADMIN_SCOPES)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this operation needs the scope '{scope}'")

    def require_partner(self, scope: str) -> int:
        """The calling partner's id; partners act only as themselves, never by argument."""
        self.require(scope)
        if self.partner_id is None:
            raise Forbidden("this operation is for partner credentials")
        return self.partner_id

    def require_member(self) -> int:
        """The calling member's id; a member acts only as themselves, never by argument."""
        self.require(MEMBER_SCOPE)
        if self.member_id is None:
            raise Forbidden("this operation is for a member's own token")
        return self.member_id

    def require_admin(self, scope: str) -> None:
        self.require(scope)
        if not self.is_admin:
            raise Forbidden("this operation is for coalition admins")
