"""GraphQL for the ledger: members and their points, moving points, the expiry policy.

Split as Saleor splits `graphql/<domain>/`: object types and enums (`types`), mutation inputs and
payloads (`inputs`), `mutations`, `queries`, and the `Member` type with enrolment (`members`).
"""

from services.ledger.schema.me import Me, MeMutation, MeQuery
from services.ledger.schema.member_data import ErasureMutation
from services.ledger.schema.members import Member, MembersQuery
from services.ledger.schema.mutations import LedgerMutation
from services.ledger.schema.queries import LedgerQuery
from services.ledger.schema.subscriptions import LedgerSubscription

__all__ = [
    "ErasureMutation",
    "LedgerMutation",
    "LedgerQuery",
    "LedgerSubscription",
    "Me",
    "MeMutation",
    "MeQuery",
    "Member",
    "MembersQuery",
]
