"""The member's own graph (a member token, scope `member`): `me`, unlinking a partner, spending
consent and spend codes.

`Me` lives with the ledger for the reason `Member` does (`members.py`): most of what it shows is
points, and the ledger may import members, not the other way. `me` itself reads nothing: each
field reads what it needs, so `me { balance }` is the one balance statement (the principal is the
member, so there is no visibility query).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

import strawberry

from services.ledger import service as ledger
from services.ledger.schema.tiers import MemberTier, member_tier
from services.ledger.schema.types import Balance, ExpiringPoints, Transaction
from services.members import account, spend_codes
from services.members.mail_preferences import MailTopic
from services.partners.schema import Partner, partner_loader
from shared.access import MEMBER_SCOPE
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import After, Connection, First, GraphQLInfo, UserError, graphql_enum, user_errors
from shared.ids import from_global_id
from shared.operations import INPUT, PAGE_CODES, Access, field, mutation

MEMBER_ONLY = Access("the member's own token (scope `member`)", (MEMBER_SCOPE,))

LinkHow = graphql_enum(
    account.LinkHow,
    name="LinkHow",
    description="How the member came to be linked to a partner.",
    values={
        account.LinkHow.ENROLLED: "The partner enrolled them, under its own customer ref.",
        account.LinkHow.CARD_PRESENTED: "They earned there by presenting their card at the till.",
    },
)


@strawberry.type(description="Which kinds of mail the member gets (each true unless they opted out).")
class NotificationSettings:
    tier_changes: bool = strawberry.field(description="A mail when the member reaches a higher tier.")
    expiring_points: bool = strawberry.field(
        description="A mail when points expire within 30 days (once per expiry date)."
    )
    reward_vouchers: bool = strawberry.field(description="A mail with the voucher code of a reward bought.")
    transfers_received: bool = strawberry.field(description="A mail when another member sends them points.")

    @classmethod
    def of(cls, topics: frozenset[MailTopic]) -> NotificationSettings:
        return cls(
            tier_changes=MailTopic.TIER_CHANGES in topics,
            expiring_points=MailTopic.EXPIRING_POINTS in topics,
            reward_vouchers=MailTopic.REWARD_VOUCHERS in topics,
            transfers_received=MailTopic.TRANSFERS_RECEIVED in topics,
        )


@strawberry.type(description="The member's settings.")
class MemberSettings:
    require_code_to_spend: bool = strawberry.field(
        description="Partners may spend the member's points only with a one-time code from the app"
        " (createSpendCode); a redemption without one is MEMBER_CODE_REQUIRED."
    )
    language: str | None = strawberry.field(
        default=None,
        description="The member's language for mail (a BCP 47 tag, e.g. fr); null: not known, mail"
        " in English. Mail goes in English, French or Dutch, English for any other.",
    )
    notifications: NotificationSettings = strawberry.field(
        default_factory=lambda: NotificationSettings.of(frozenset(MailTopic)),
        description="Which kinds of mail the member gets.",
    )
    birth_date: date | None = strawberry.field(
        default=None,
        description="The member's birth date, if given: BIRTHDAY activities pay their bonus on it.",
    )

    @classmethod
    def of(cls, found: account.Settings) -> MemberSettings:
        return cls(
            require_code_to_spend=found.require_code_to_spend,
            language=found.language,
            notifications=NotificationSettings.of(found.mail),
            birth_date=found.birth_date,
        )


@strawberry.type(description="A partner the member is linked to: it sees them and may spend their points.")
class PartnerLink:
    partner_id: strawberry.Private[int]
    linked_at: datetime = strawberry.field(description="When the link was made.")
    how: LinkHow = strawberry.field(description="Enrolled by the partner, or by presenting the card.")

    @strawberry.field(description="The partner (its id and name).")
    async def partner(self, info: GraphQLInfo) -> Partner | None:
        return await partner_loader(info).load(self.partner_id)


def _links(found: list[account.Link]) -> list[PartnerLink]:
    return [PartnerLink(partner_id=k.partner_id, linked_at=k.linked_at, how=LinkHow(k.how)) for k in found]


@strawberry.type(
    description="The calling member: their profile, points across every partner, links, settings."
)
class Me:
    member_id: strawberry.Private[int]

    @strawberry.field(description="The member's 12-digit coalition number, as on their card.")
    async def member_number(self, info: GraphQLInfo) -> str:
        return (await _profile(info)).member_number

    @strawberry.field(description="The email the member gave (null if none).")
    async def email(self, info: GraphQLInfo) -> str | None:
        return (await _profile(info)).email

    @strawberry.field(description="The coalition-wide balance, across all partners.")
    async def balance(self, info: GraphQLInfo) -> Balance:
        b = await ledger.balance(info.context.db, info.context.principal, self.member_id)
        return Balance(available=b.available, pending=b.pending, held=b.held)

    @strawberry.field(description="The member's status tier; null while they hold none.")
    async def tier(self, info: GraphQLInfo) -> MemberTier | None:
        return await member_tier(info, self.member_id)

    @strawberry.field(
        description="Points that expire within the given duration, soonest first (at most 100)."
    )
    async def expiring_points(
        self,
        info: GraphQLInfo,
        within: Annotated[
            timedelta, strawberry.argument(description="How far ahead to look, from now (P30D).")
        ],
    ) -> list[ExpiringPoints]:
        found = await ledger.expiring_points(info.context.db, info.context.principal, self.member_id, within)
        return [ExpiringPoints(points=e.points, expires_at=e.expires_at) for e in found]

    @field("The member's transactions at every partner, newest first.", access=MEMBER_ONLY, codes=PAGE_CODES)
    async def transactions(
        self, info: GraphQLInfo, first: First = None, after: After = None
    ) -> Connection[Transaction]:
        page = await ledger.transactions(
            info.context.db, info.context.principal, self.member_id, first=first, after=after
        )
        return Connection.of(page, Transaction.of)

    @strawberry.field(description="The partners the member is linked to, oldest link first.")
    async def links(self, info: GraphQLInfo) -> list[PartnerLink]:
        return _links(await account.links(info.context.db, info.context.principal))

    @strawberry.field(description="The member's settings.")
    async def settings(self, info: GraphQLInfo) -> MemberSettings:
        return MemberSettings.of(await account.settings(info.context.db, info.context.principal))


async def _profile(info: GraphQLInfo) -> account.Profile:
    """Read once per request, however many of its fields are asked."""
    loaders = info.context.loaders
    if "me.profile" not in loaders:
        loaders["me.profile"] = await account.profile(info.context.db, info.context.principal)
    return loaders["me.profile"]  # type: ignore[no-any-return]


@strawberry.type
class MeQuery:
    @field("The calling member.", access=MEMBER_ONLY)
    def me(self, info: GraphQLInfo) -> Me:
        return Me(member_id=info.context.principal.require_member())


@strawberry.input(description="A partner the calling member no longer wants to be linked to.")
class UnlinkPartnerInput:
    partner_id: strawberry.ID = strawberry.field(description="The Partner's global ID.")


@strawberry.type(description="The answer to unlinkPartner.")
class UnlinkPartnerPayload:
    unlinked: Partner | None = strawberry.field(
        default=None, description="The partner unlinked; null on userErrors."
    )
    links: list[PartnerLink] | None = strawberry.field(
        default=None, description="The member's links now; null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing was unlinked; empty on success."
    )


@strawberry.input(description="Which kinds of mail to get (true) or not (false); those left out stay.")
class NotificationSettingsInput:
    tier_changes: bool | None = strawberry.field(default=None, description="Mail on reaching a higher tier.")
    expiring_points: bool | None = strawberry.field(default=None, description="Mail on points expiring soon.")
    reward_vouchers: bool | None = strawberry.field(default=None, description="Mail with a reward's voucher.")
    transfers_received: bool | None = strawberry.field(
        default=None, description="Mail on points received from another member."
    )

    def topics(self) -> dict[MailTopic, bool | None]:
        return {
            MailTopic.TIER_CHANGES: self.tier_changes,
            MailTopic.EXPIRING_POINTS: self.expiring_points,
            MailTopic.REWARD_VOUCHERS: self.reward_vouchers,
            MailTopic.TRANSFERS_RECEIVED: self.transfers_received,
        }


@strawberry.input(description="The member's settings to change; a field left out stays as it is.")
class UpdateMemberSettingsInput:
    require_code_to_spend: bool | None = strawberry.field(
        default=None, description="Whether partners need a one-time code from the app to spend the points."
    )
    language: str | None = strawberry.field(
        default=None, description="The language for mail, a BCP 47 tag (en, fr, nl-BE…); INVALID otherwise."
    )
    notifications: NotificationSettingsInput | None = strawberry.field(
        default=None, description="Opt in or out of each kind of member mail."
    )
    birth_date: date | None = strawberry.field(
        default=None,
        description="The member's birth date (YYYY-MM-DD, 1900 to today), for birthday bonuses. Set once:"
        " another date once one is set is INVALID (the coalition's support corrects a wrong one).",
    )


@strawberry.type(description="The answer to updateMemberSettings.")
class UpdateMemberSettingsPayload:
    settings: MemberSettings | None = strawberry.field(default=None, description="The settings now.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing changed; empty on success."
    )


@strawberry.type(description="The answer to createSpendCode.")
class CreateSpendCodePayload:
    code: str | None = strawberry.field(
        default=None,
        description="8 digits to show at the till (or as a QR code): one spend of the member's points.",
    )
    expires_at: datetime | None = strawberry.field(default=None, description="When it stops being valid.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Empty on success.")


@strawberry.type
class MeMutation:
    @mutation(
        "Unlink the calling member from a partner: it no longer sees them or may spend their points"
        " (MEMBER_NOT_FOUND, as for a stranger). Points earned there stay the member's; earning there"
        " again by presenting the card links them again.",
        access=MEMBER_ONLY,
        codes=(UserErrorCode.INVALID_ID, UserErrorCode.PARTNER_NOT_FOUND, UserErrorCode.NOT_LINKED),
    )
    async def unlink_partner(
        self, info: GraphQLInfo, input: Annotated[UnlinkPartnerInput, INPUT]
    ) -> UnlinkPartnerPayload:
        principal = info.context.principal
        principal.require_member()
        decoded = from_global_id(str(input.partner_id), "Partner")
        if decoded is None:
            return UnlinkPartnerPayload(
                user_errors=[
                    UserError(code=UserErrorCode.INVALID_ID, field="partnerId", message="not a Partner id")
                ]
            )
        try:
            partner_id = await account.unlink_partner(info.context.db, principal, decoded[1])
        except DomainError as exc:
            return UnlinkPartnerPayload(user_errors=user_errors(exc.errors))
        return UnlinkPartnerPayload(
            unlinked=await partner_loader(info).load(partner_id),
            links=_links(await account.links(info.context.db, principal)),
        )

    @mutation(
        "Change the calling member's settings (those given; at least one).",
        access=MEMBER_ONLY,
        codes=(UserErrorCode.REQUIRED, UserErrorCode.INVALID),
    )
    async def update_member_settings(
        self, info: GraphQLInfo, input: Annotated[UpdateMemberSettingsInput, INPUT]
    ) -> UpdateMemberSettingsPayload:
        try:
            found = await account.update_settings(
                info.context.db,
                info.context.principal,
                require_code_to_spend=input.require_code_to_spend,
                language=input.language,
                mail=input.notifications.topics() if input.notifications else None,
                birth_date=input.birth_date,
            )
        except DomainError as exc:
            return UpdateMemberSettingsPayload(user_errors=user_errors(exc.errors))
        return UpdateMemberSettingsPayload(settings=MemberSettings.of(found))

    @mutation(
        "A one-time code (8 digits, valid 2 minutes) the calling member shows at the till to consent"
        " to one spend of their points (memberCode). It voids the member's previous code: one live"
        " code at a time. An erased member gets MEMBER_NOT_FOUND.",
        access=MEMBER_ONLY,
        codes=(UserErrorCode.MEMBER_NOT_FOUND,),
    )
    async def create_spend_code(self, info: GraphQLInfo) -> CreateSpendCodePayload:
        try:
            created = await spend_codes.create_spend_code(info.context.db, info.context.principal)
        except DomainError as exc:
            return CreateSpendCodePayload(user_errors=user_errors(exc.errors))
        return CreateSpendCodePayload(code=created.code, expires_at=created.expires_at)
