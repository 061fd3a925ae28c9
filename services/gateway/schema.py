"""The gateway's one schema, assembled from the services' schemas; no business rules here."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from services.earning.schema import EarningMutation, EarningQuery
from services.earning.schema_promo_codes import PromoCodeMutation, PromoCodeQuery
from services.engagement.activity_schema import ActivitiesMutation, ActivitiesQuery
from services.engagement.enrolment_schema import EnrolmentMutation
from services.engagement.referral_schema import ReferralMeQuery
from services.engagement.schema import TiersMutation, TiersQuery
from services.engagement.transfer_schema import TransfersMutation
from services.gateway.graphql_errors import TOO_COMPLEX, coded_rule, log_errors
from services.gateway.member_export import MemberDataQuery
from services.gateway.operation import OperationPolicy
from services.identity.schema import IdentityMutation
from services.ledger.schema import (
    ErasureMutation,
    LedgerMutation,
    LedgerQuery,
    LedgerSubscription,
    Member,
    MembersQuery,
    MeMutation,
)
from services.members import service as members
from services.notifications.schema import NotificationsQuery
from services.notifications.webhook_schema import WebhooksMutation, WebhooksQuery
from services.partners.catalog_schema import CatalogMutation, CatalogQuery
from services.partners.schema import Partner, PartnersMutation, PartnersQuery, partner_loader
from services.settlement import queries as settlement
from services.settlement import reconciliation
from services.settlement.reconciliation_schema import (
    Reconciliation,
    ReconciliationMutation,
    ReconciliationQuery,
)
from services.settlement.schema import SettlementMutation, SettlementQuery, SettlementRun
from shared.errors import AccessError, DomainError
from shared.graphql_inputs import compile_inputs
from shared.graphql_types import SCALAR_MAP, GraphQLInfo, Node
from shared.ids import from_global_id
from shared.operations import ANY_TOKEN, field
from shared.settings import Settings, get_settings


@strawberry.type(description="Who the access token belongs to.")
class Viewer:
    client_id: str = strawberry.field(description="The OAuth client the token was issued to.")
    scopes: list[str] = strawberry.field(description="The scopes the token carries, sorted.")
    partner: Partner | None = strawberry.field(
        description="The partner whose credentials these are; null for admins."
    )


@strawberry.type
class GatewayQuery:
    @field("Who the access token belongs to.", access=ANY_TOKEN)
    async def viewer(self, info: GraphQLInfo) -> Viewer:
        principal = info.context.principal
        partner = None
        if principal.partner_id is not None:
            partner = await partner_loader(info).load(principal.partner_id)
        return Viewer(client_id=principal.client_id, scopes=sorted(principal.scopes), partner=partner)

    @field(
        "Any object by its global ID, if the caller may see it; null otherwise (a partner sees of"
        " another partner only its id and name).",
        access=ANY_TOKEN,
    )
    async def node(
        self, info: GraphQLInfo, id: Annotated[strawberry.ID, strawberry.argument(description="A global ID.")]
    ) -> Node | None:
        decoded = from_global_id(str(id))
        if decoded is None:
            return None
        type_name, local_id = decoded
        principal = info.context.principal
        if type_name == "Partner":  # of another partner, only the id and name show
            return await partner_loader(info).load(local_id)
        try:
            if type_name == "SettlementRun":
                run = await settlement.get_run(info.context.db, principal, local_id)
                return SettlementRun.of(run) if run else None
            if type_name == "Reconciliation":
                found = await reconciliation.get_reconciliation(info.context.db, principal, local_id)
                return Reconciliation.of(found) if found else None
        except AccessError:  # not the caller's to see: as if it did not exist
            return None
        if type_name == "Member":
            member = await members.find_member_by_id(info.context.db, principal, local_id)
            return Member.of(member) if member else None
        return None


# The roots are each service's fields together (what strawberry.tools.merge_types does, with a
# description), in the same order.
@strawberry.type(
    description="What a caller may read. Every field needs a bearer token; what each shows depends"
    " on its scopes (each field says which)."
)
class Query(
    GatewayQuery,
    PartnersQuery,
    MembersQuery,
    ReferralMeQuery,
    LedgerQuery,
    EarningQuery,
    TiersQuery,
    ActivitiesQuery,
    PromoCodeQuery,
    MemberDataQuery,
    CatalogQuery,
    SettlementQuery,
    ReconciliationQuery,
    NotificationsQuery,
    WebhooksQuery,
):
    pass


@strawberry.type(
    description="Every change: one input, a payload with the result or userErrors (code, field,"
    " message) for what the caller can fix. Each mutation names the scope it needs and every code it"
    " can answer (docs/errors.md says what each means and what to do)."
)
class Mutation(
    IdentityMutation,
    PartnersMutation,
    CatalogMutation,
    EnrolmentMutation,
    MeMutation,
    EarningMutation,
    TiersMutation,
    ActivitiesMutation,
    TransfersMutation,
    PromoCodeMutation,
    LedgerMutation,
    ErasureMutation,
    SettlementMutation,
    ReconciliationMutation,
    WebhooksMutation,
):
    pass


@strawberry.type(
    description="Live updates, over graphql-transport-ws on /graphql: the access token goes in the"
    ' connection_init payload (`{"Authorization": "Bearer …"}`) or on the upgrade request\'s'
    " Authorization header. A token that is revoked or expires closes the socket (4401)."
)
class Subscription(LedgerSubscription):
    pass


def _should_mask(error: GraphQLError) -> bool:
    """Only a resolver's unexpected exception is hidden: it may carry internals. Errors about the
    request itself (syntax, validation, a variable a scalar refused) say what to fix."""
    original = error.original_error
    if original is None or isinstance(original, AccessError | DomainError | GraphQLError):
        return False
    return error.path is not None


def _limit_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """The depth and alias rules, built once per schema: the limiter extensions create their
    rule classes in __init__, and new classes every request would defeat the validation cache."""
    limiters = (
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    )
    return tuple(coded_rule(rule, TOO_COMPLEX) for rule in limiters)


class CoalitionSchema(strawberry.Schema):
    """Strawberry's schema, logging errors our way (`graphql_errors.log_errors`): its own logs
    every error with a traceback, a refused token as loudly as a bug."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


def build_schema() -> strawberry.Schema:
    settings = get_settings()
    rules = _limit_rules(settings)
    schema = CoalitionSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Partner, Member],
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        # Caches, limits, masking (a database outage is answered UNAVAILABLE, see availability.py)
        # and error completion in one extension: each extension costs every request.
        extensions=[
            OperationPolicy(
                max_tokens=settings.max_tokens,
                rules=rules,
                max_cost=settings.max_query_cost,
                cost_partners=settings.query_cost_partners,
                should_mask_error=_should_mask,
            )
        ],
    )
    compile_inputs(schema)  # the bulk path's input conversion, see shared/graphql_inputs.py
    return schema
