"""GraphQL for activities: createActivity, archiveActivity, recordActivity, activities and
npsScore. Rules live in services/engagement/activities.py (definitions), activity_records.py
(earning one, NPS) and birthdays.py (the worker's birthday bonus)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from services.engagement import activities as service
from services.engagement import activity_records as records
from services.engagement.activity_models import ActivityKind as DomainActivityKind
from services.ledger.schema.types import Transaction, TransactionKind, TransactionStatus
from services.partners.schema import Partner, partner_loader
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, Node, Points, UserError, graphql_enum, user_errors
from shared.ids import require_global_id, to_global_id
from shared.operations import INPUT, KEY_CODES, MEMBER_CODES, field, mutation, partner_or_admin

ActivityKind = graphql_enum(
    DomainActivityKind,
    name="ActivityKind",
    description="What kind of thing a member does to earn an activity's points.",
    values={
        DomainActivityKind.REVIEW: "Wrote a review.",
        DomainActivityKind.NEWSLETTER_SIGNUP: "Signed up to a newsletter.",
        DomainActivityKind.SURVEY: "Answered a survey: recordActivity's data carries npsScore (0 to 10)"
        " and an optional comment; npsScore sums them up.",
        DomainActivityKind.BIRTHDAY: "A birthday bonus: granted by `coalition worker` once a year on the"
        " member's birthDate (in the owner's timeZone), never by recordActivity.",
        DomainActivityKind.PROFILE_COMPLETED: "Completed their profile.",
        DomainActivityKind.CUSTOM: "Anything else the partner rewards.",
    },
)
MANAGE = partner_or_admin(
    service.SCOPE,
    service.ADMIN_SCOPE,
    "its own activities",
    "the coalition's own (no partnerId) or any partner's",
)
TERM_CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.INVALID,
    UserErrorCode.INVALID_AMOUNT,
    UserErrorCode.INVALID_DURATION,
    UserErrorCode.CODE_TAKEN,
    UserErrorCode.INVALID_ID,
    UserErrorCode.PARTNER_NOT_FOUND,
)


@strawberry.type(description="Something a member does, beyond buying, that earns points.")
class Activity(Node):
    code: str = strawberry.field(
        description="The owner's code for it, upper case (recordActivity's activityCode)."
    )
    name: str = strawberry.field(description="What members and staff read.")
    kind: ActivityKind = strawberry.field(description="What kind of activity it is.")
    points: Points = strawberry.field(description="Points each time it is earned.")
    per_member_limit: int | None = strawberry.field(
        description="How many times one member may earn it, ever; null: no limit."
    )
    cooldown: timedelta | None = strawberry.field(
        description="The least time between two of one member's records of it; null: none."
    )
    by_coalition: bool = strawberry.field(
        description="The coalition's own activity: its points are issued (and paid for) by the coalition."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    archived_at: datetime | None = strawberry.field(
        description="When it was archived (it earns nothing since); null while live."
    )
    partner_id: strawberry.Private[int]

    @strawberry.field(description="Who issues its points: the partner, or the coalition's own row.")
    async def partner(self, info: GraphQLInfo) -> Partner | None:
        return await partner_loader(info).load(self.partner_id)

    @classmethod
    def of(cls, found: service.Activity) -> Activity:
        return cls(
            id=strawberry.ID(to_global_id("Activity", found.id)),
            code=found.code,
            name=found.name,
            kind=ActivityKind(found.kind),
            points=found.points,
            per_member_limit=found.per_member_limit,
            cooldown=found.cooldown,
            by_coalition=found.by_coalition,
            created_at=found.created_at,
            archived_at=found.archived_at,
            partner_id=found.partner_id,
        )


@strawberry.input(description="A new activity.")
class CreateActivityInput:
    code: str = strawberry.field(
        description="1 to 50 letters, digits, '_', '.' or '-' (REVIEW, NPS-2026): unique among your live"
        " activities, case-insensitive (stored upper case)."
    )
    name: str = strawberry.field(description="1 to 100 characters.")
    kind: ActivityKind = strawberry.field(description="What kind of activity it is.")
    points: Points = strawberry.field(description="Points each time it is earned: 1 to 1,000,000.")
    per_member_limit: int | None = strawberry.field(
        default=None,
        description="How many times one member may earn it, ever (1 for a sign-up); null: no limit."
        " Past it, recordActivity answers ACTIVITY_LIMIT_REACHED. Not for BIRTHDAY (once a year).",
    )
    cooldown: timedelta | None = strawberry.field(
        default=None,
        description='The least time between two records of it by one member ("P1D": one review a day);'
        " a record closer to another is ACTIVITY_COOLDOWN. Not for BIRTHDAY.",
    )
    partner_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Admins: the Partner it is for; omitted, a coalition activity (points the coalition"
        " issues). Partners: omit it (or give your own).",
    )


@strawberry.type(description="The answer to createActivity.")
class CreateActivityPayload:
    activity: Activity | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.input(description="The activity to archive.")
class ArchiveActivityInput:
    activity_id: strawberry.ID = strawberry.field(description="The Activity (global ID).")


@strawberry.type(description="The answer to archiveActivity.")
class ArchiveActivityPayload:
    activity: Activity | None = strawberry.field(default=None, description="Null on userErrors.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why nothing changed.")


@strawberry.input(description="A member did one of your activities.")
class RecordActivityInput:
    idempotency_key: str = strawberry.field(
        description="Your unique key for this record, 1 to 200 characters: a retry with it returns the"
        " first answer and earns nothing twice."
    )
    member_number: str = strawberry.field(
        description="The member (12 digits), linked to you; any member for a coalition activity."
    )
    activity_code: str = strawberry.field(description="The code of one of your live activities.")
    occurred_at: datetime | None = strawberry.field(
        default=None,
        description="When the member did it (default: now); not in the future. Limits and cooldown are"
        " counted by it, and the points expire by the expiry policy from it.",
    )
    data: JSON | None = strawberry.field(
        default=None,
        description='A JSON object of at most 4 KB kept with the record. A SURVEY needs {"npsScore": 0 to'
        ' 10} and may carry "comment" (up to 2,000 characters); other kinds may carry anything (a review'
        " id, a newsletter list). Erasing the member clears it.",
    )


@strawberry.type(description="The answer to recordActivity.")
class RecordActivityPayload:
    points_earned: Points | None = strawberry.field(
        default=None, description="The activity's points, now the member's (available at once)."
    )
    transaction: Transaction | None = strawberry.field(
        default=None, description="The ACTIVITY transaction; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why nothing was earned. Refusals that depend on state (limit, cooldown, unknown"
        " member or activity) are stored under the idempotencyKey like any points-moving answer.",
    )


@strawberry.type(description="The Net Promoter Score of SURVEY answers in a time range.")
class NpsScore:
    score: int | None = strawberry.field(
        description="Promoters minus detractors, as a whole percentage of the answers (-100 to 100,"
        " rounded half away from zero); null with no answers."
    )
    responses: int = strawberry.field(description="Answers in the range.")
    promoters: int = strawberry.field(description="Answers of 9 or 10.")
    passives: int = strawberry.field(description="Answers of 7 or 8.")
    detractors: int = strawberry.field(description="Answers of 0 to 6.")


def _partner_id(value: strawberry.ID | None) -> int | None:
    return require_global_id(value, "Partner", "partnerId") if value is not None else None


def _recorded(result: dict[str, Any], code: str) -> RecordActivityPayload:
    return RecordActivityPayload(
        points_earned=result["points"],
        transaction=Transaction(
            id=strawberry.ID(to_global_id("Transaction", result["transaction_id"])),
            kind=TransactionKind.ACTIVITY,
            points=result["points"],
            status=TransactionStatus.AVAILABLE,
            order_id=f"activity:{code}",
            occurred_at=datetime.fromisoformat(result["occurred_at"]),
            partner_id=result["partner_id"],
        ),
    )


@strawberry.type
class ActivitiesQuery:
    @field(
        "The activities of a partner (yours; an admin's: the coalition's own without partnerId, or any"
        " partner's), archived ones too, oldest first.",
        access=MANAGE,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.PARTNER_NOT_FOUND),
    )
    async def activities(
        self,
        info: GraphQLInfo,
        partner_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The Partner (global ID); see the field's description."),
        ] = None,
    ) -> list[Activity]:
        found = await service.activities(info.context.db, info.context.principal, _partner_id(partner_id))
        return [Activity.of(a) for a in found]

    @field(
        "The Net Promoter Score of SURVEY answers that occurred in [from, to): a partner's own; an"
        " admin's of one partner (partnerId) or of every survey in the coalition (none).",
        access=MANAGE,
        codes=(UserErrorCode.INVALID, UserErrorCode.INVALID_ID, UserErrorCode.PARTNER_NOT_FOUND),
    )
    async def nps_score(
        self,
        info: GraphQLInfo,
        from_: Annotated[datetime, strawberry.argument(name="from", description="Start, included.")],
        to: Annotated[datetime, strawberry.argument(description="End, excluded; after from.")],
        partner_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The Partner (global ID); see the field's description."),
        ] = None,
    ) -> NpsScore:
        found = await records.nps_score(
            info.context.db, info.context.principal, _partner_id(partner_id), from_, to
        )
        return NpsScore(
            score=found.score,
            responses=found.responses,
            promoters=found.promoters,
            passives=found.passives,
            detractors=found.detractors,
        )


@strawberry.type
class ActivitiesMutation:
    @mutation(
        "A new activity members earn points for (recordActivity), issued by you (or, an admin's without"
        " partnerId, by the coalition).",
        access=MANAGE,
        codes=TERM_CODES,
    )
    async def create_activity(
        self, info: GraphQLInfo, input: Annotated[CreateActivityInput, INPUT]
    ) -> CreateActivityPayload:
        try:
            created = await service.create_activity(
                info.context.db,
                info.context.principal,
                service.ActivityTerms(
                    code=input.code,
                    name=input.name,
                    kind=DomainActivityKind(input.kind),
                    points=int(input.points),
                    per_member_limit=input.per_member_limit,
                    cooldown=input.cooldown,
                ),
                _partner_id(input.partner_id),
            )
        except DomainError as exc:
            return CreateActivityPayload(user_errors=user_errors(exc.errors))
        return CreateActivityPayload(activity=Activity.of(created))

    @mutation(
        "Archive an activity: it earns nothing from now on (its records and points stay) and its code"
        " may be used again. Archiving it again changes nothing.",
        access=MANAGE,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.ACTIVITY_NOT_FOUND),
    )
    async def archive_activity(
        self, info: GraphQLInfo, input: Annotated[ArchiveActivityInput, INPUT]
    ) -> ArchiveActivityPayload:
        service.require_manager(info.context.principal)  # who may ask, before what is wrong
        try:
            activity_id = require_global_id(input.activity_id, "Activity", "activityId")
            archived = await service.archive_activity(info.context.db, info.context.principal, activity_id)
        except DomainError as exc:
            return ArchiveActivityPayload(user_errors=user_errors(exc.errors))
        return ArchiveActivityPayload(activity=Activity.of(archived))

    @mutation(
        "A member did one of your activities: they earn its points, issued by you (by the coalition for"
        " its own, recorded by an admin), available at once, within its perMemberLimit and cooldown."
        " Exactly once per idempotencyKey.",
        access=MANAGE,
        codes=(
            *KEY_CODES,
            *MEMBER_CODES,
            UserErrorCode.ACTIVITY_NOT_FOUND,
            UserErrorCode.ACTIVITY_LIMIT_REACHED,
            UserErrorCode.ACTIVITY_COOLDOWN,
            UserErrorCode.TOO_OLD,
        ),
    )
    async def record_activity(
        self, info: GraphQLInfo, input: Annotated[RecordActivityInput, INPUT]
    ) -> RecordActivityPayload:
        try:
            outcome = await records.record_activity(
                info.context.db,
                info.context.principal,
                idempotency_key=input.idempotency_key,
                member_number=input.member_number,
                activity_code=input.activity_code,
                occurred_at=input.occurred_at,
                data=input.data,
            )
        except DomainError as exc:
            return RecordActivityPayload(user_errors=user_errors(exc.errors))
        if outcome.result is None:
            return RecordActivityPayload(user_errors=user_errors(outcome.errors))
        return _recorded(outcome.result, service.normal_code(input.activity_code))
