"""Every error code a client can meet, with what it means and what to do about it.

Two families, as `shared.errors` raises them. `UserErrorCode` is what a mutation's `userErrors`
(and a query's `extensions.userErrors`) carry: something the caller can fix. `GraphQLErrorCode` is
what a GraphQL error's `extensions.code` says (`shared.graphql_error_codes`): the request, or one
field of it, was refused as a whole. Clients switch
on these names, so a code is never renamed or removed: an answer stored under an idempotency key
keeps its code for good, and is replayed with it.

Each member carries its own documentation; `docs/errors.md` is generated from it
(`coalition schema export`), and the GraphQL enum `UserErrorCode` describes each value with it.
A code that no GraphQL operation returns says where it is returned instead (`outside_graphql`).
"""

from __future__ import annotations

import enum
from enum import auto
from typing import Any


class Documented(enum.StrEnum):
    """A str-valued enum whose members are their own names and carry a meaning and an action."""

    meaning: str
    action: str
    outside_graphql: str | None

    def __new__(cls, value: str, meaning: str, action: str, outside_graphql: str | None = None) -> Any:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.action = action
        member.outside_graphql = outside_graphql
        return member

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
        return name  # the value on the wire is the member's name, exactly


UPLOAD_ROUTE = "POST /settlement/runs/{id}/reconciliation"


class UserErrorCode(Documented):
    """The `code` of a UserError: what the caller can fix. The JSON value is the member's name."""

    ACTIVATION_CODE_EXPIRED = (
        auto(),
        "The activation code was right but is older than 15 minutes.",
        "Ask for a new code (POST /account/activate with the member number and email).",
        "only from the member account pages (POST /account/activate/confirm)",
    )
    ACTIVATION_CODE_INVALID = (
        auto(),
        "The activation code is not the one mailed last, or no code is pending: none was asked"
        " for, it was used, a newer one replaced it, or five wrong tries voided it.",
        "Check the latest mail and type its 6 digits, or ask for a new code.",
        "only from the member account pages (POST /account/activate/confirm)",
    )
    ACTIVITY_COOLDOWN = (
        auto(),
        "The member did this activity less than its cooldown before (or after) this occurredAt.",
        "Nothing to do for this one: the activity earns again once the cooldown has passed.",
    )
    ACTIVITY_LIMIT_REACHED = (
        auto(),
        "The member has earned this activity perMemberLimit times already.",
        "Nothing: the activity earns this member no more points.",
    )
    ACTIVITY_NOT_FOUND = (
        auto(),
        "You have no activity with this code (or activityId), or it is archived.",
        "Check the code against `activities`; create it with createActivity.",
    )
    ALREADY_CANCELLED = (
        auto(),
        "The redemption was cancelled before; its points are back with the member.",
        "Nothing: the first cancellation stands. Do not cancel again with a new key.",
    )
    ALREADY_ENROLLED = (
        auto(),
        "The member is already enrolled with you under another partnerCustomerRef.",
        "Keep using the ref you enrolled them with (one ref per member per partner).",
    )
    ALREADY_RESOLVED = (
        auto(),
        "The dispute was resolved before.",
        "Nothing: read the item's resolutionNote for what was agreed.",
    )
    ALREADY_REVERSED = (
        auto(),
        "The purchase is fully refunded: nothing is left to reverse.",
        "Nothing: every point it earned was taken back already.",
    )
    AMOUNT_MISMATCH = (
        auto(),
        "The purchase's amount is not the sum of its lines' amounts; the message gives both.",
        "Send as amount exactly the sum of lines[].amount (or leave lines out).",
    )
    AUTHORIZATION_NOT_ACTIVE = (
        auto(),
        "The authorization was captured, voided or has expired (the message says which).",
        "Authorize again if the member is still paying; a hold cannot be reopened.",
    )
    AUTHORIZATION_NOT_FOUND = (
        auto(),
        "No authorization of yours has this id (another partner's looks the same).",
        "Send the id authorizeRedemption returned.",
    )
    BATCH_TOO_LARGE = (
        auto(),
        "recordPurchases takes at most 1,000 purchases in one request; nothing was recorded.",
        "Split the batch into requests of 1,000 purchases or fewer.",
    )
    CHARITY_NOT_FOUND = (
        auto(),
        "No charity has this id (a partner that is not a charity does not take donations).",
        "Pick one from `charities`.",
    )
    CLIENT_NOT_FOUND = (
        auto(),
        "No OAuth client has this client id.",
        "Check the id (cl_…); it is the client id, not a global ID.",
    )
    CODE_TAKEN = (
        auto(),
        "You already have an activity with this code.",
        "Choose another code (codes are unique per partner, case-insensitive), or archive the old one.",
    )
    CONFLICT = (
        auto(),
        "Concurrent enrolments of the same customer kept colliding.",
        "Send the same request again.",
    )
    CONTRACT_CURRENCY_MISMATCH = (
        auto(),
        "A partner's contract in force during the period is priced in another currency than the"
        " coalition settles in; one error per partner, naming it.",
        "Give that partner a contract in the settlement currency, or settle a period it is not in.",
    )
    CONTRACT_EXISTS = (
        auto(),
        "The partner has a contract version starting at exactly this instant.",
        "Choose another effectiveFrom.",
    )
    CURRENCY_MISMATCH = (
        auto(),
        "The amount is not in the currency it must be in: the partner's own (an earn) or the"
        " purchase's (a refund). The message names it.",
        "Send the amount in that currency; the same idempotencyKey may be used again.",
    )
    DUPLICATE_ORDER = (
        auto(),
        "You recorded a purchase, redemption or authorization with this orderId before (an open"
        " authorization holds its orderId until it is captured or voided).",
        "A retry must send the same idempotencyKey (it returns the first answer); a new order needs"
        " a new orderId.",
    )
    ENDPOINT_LIMIT_REACHED = (
        auto(),
        "The partner already has the most webhook endpoints one may have (10, deleted ones not counted).",
        "Delete an endpoint you no longer use, or subscribe an existing one to more event types.",
    )
    HASH_MISMATCH = (
        auto(),
        "The run's stored lines no longer match its content hash: they were altered.",
        "Do not pay on this run; report it to the coalition's operators.",
    )
    IDEMPOTENCY_KEY_REUSED = (
        auto(),
        "This client used the idempotencyKey before for a different request.",
        "A retry must repeat the first request exactly; a new request needs a new key.",
    )
    INSUFFICIENT_POINTS = (
        auto(),
        "The member has fewer available points than asked (held points and debt do not count);"
        " the message says how many they have.",
        "Ask for fewer points, or take the rest in another payment.",
    )
    INVALID = (
        auto(),
        "The value breaks a rule of its field: text with control or bidirectional characters, an"
        " instant without an offset, an end before its start, a value outside the allowed set.",
        "Fix the field `field` names, as the message says.",
    )
    INVALID_AMOUNT = (
        auto(),
        "A number is out of range: not positive, too large, more decimals than allowed, a negative"
        " price, a share outside 0..1, or more points than a hold holds.",
        "Send a number within the range the message gives.",
    )
    INVALID_CURSOR = (
        auto(),
        "`after` is not a cursor of this list.",
        "Send the pageInfo.endCursor of the previous page of the same list, unchanged.",
    )
    INVALID_DURATION = (
        auto(),
        "The hold's duration (expiresIn) is outside 10 seconds to 30 days.",
        "Send a duration within those bounds.",
    )
    INVALID_EMAIL = (
        auto(),
        "The email is not an address.",
        "Send a valid address, or none.",
    )
    INVALID_ENCODING = (
        auto(),
        "The uploaded file is not UTF-8.",
        "Export the file as UTF-8 and upload it again.",
        f"only from {UPLOAD_ROUTE} (the raw CSV body)",
    )
    INVALID_HEADER = (
        auto(),
        "The CSV's header line cannot be read or lacks a column (orderId, kind, points, occurredAt).",
        "Put the header orderId,kind,points,occurredAt on line 1.",
    )
    INVALID_ID = (
        auto(),
        "The value is not a global ID of the type the field takes.",
        "Send the `id` the API returned for an object of that type.",
    )
    INVALID_MEMBER_NUMBER = (
        auto(),
        "The member number is not 12 digits with a valid check digit.",
        "Check for a typing or scanning error; nothing was looked up.",
    )
    INVALID_PAGE_SIZE = (
        auto(),
        "`first` is outside 1 to the page size limit (MAX_PAGE_SIZE, 100 by default).",
        "Ask for a page within the limit and follow the cursors for more.",
    )
    INVALID_ROW = (
        auto(),
        "A row of the reconciliation file is bad; the message reads `line N: column: problem`.",
        "Fix every reported row and upload the whole file again: nothing was kept.",
    )
    INVALID_SCOPE = (
        auto(),
        "A token request asked for scopes the client does not have.",
        "Ask for a subset of the client's scopes, or none for all of them.",
        "only at POST /oauth/token, which answers RFC 6749's invalid_scope",
    )
    INVALID_STATUS = (
        auto(),
        "The run is not in the status this step needs: finalizing needs DRAFT, paying FINALIZED.",
        "Read the run's status; take the steps in order (run, finalize, mark paid).",
    )
    INVALID_URL = (
        auto(),
        "The webhook URL is not one deliveries can go to: not an absolute http(s) URL, credentials or"
        " a fragment in it, longer than 2,000 characters, or http (or a private address) in production.",
        "Send an https:// URL of your receiver; http://127.0.0.1 or localhost only in development"
        " (COALITION_ENV=development).",
    )
    IN_FUTURE = (
        auto(),
        "The instant lies in the future: a purchase's occurredAt (5 minutes of clock skew allowed),"
        " or the end of a period to settle that has not ended.",
        "Send the instant it happened; settle a period once it is over.",
    )
    IN_PAST = (
        auto(),
        "A contract change would start in the past and reprice what already happened.",
        "Send an effectiveFrom from now on.",
    )
    ITEM_NOT_FOUND = (
        auto(),
        "No reconciliation item has this id.",
        "Send the id of an item of a reconciliation's items.",
    )
    LIMIT_REACHED = (
        auto(),
        "The member would own more of this reward than its maxPerMember allows (cancelled"
        " redemptions do not count).",
        "Ask for a smaller quantity, or nothing more of this reward.",
    )
    LINE_NOT_FOUND = (
        auto(),
        "The purchase has no line with this sku (or was recorded without lines).",
        "Name lines by the sku recordPurchase received, or refund a purchase without lines by amount.",
    )
    LOOKUP_LIMIT_REACHED = (
        auto(),
        "A batch (recordPurchases) named more unknown member numbers than a client may get"
        " MEMBER_NOT_FOUND answers for in the window (MEMBER_MISS_LIMIT); this purchase and every"
        " later one in the batch were not looked at and nothing was recorded for them.",
        "Fix the unknown numbers and send the refused purchases again with the same idempotencyKey.",
    )
    MEMBER_CODE_INVALID = (
        auto(),
        "The member code is wrong, already used or expired (codes live 2 minutes and serve one spend)."
        " A code is checked whenever one is sent, even for a member who does not require codes. Each"
        " one counts against the client's limit of such answers (RATE_LIMITED), as MEMBER_NOT_FOUND does.",
        "Ask the member to show a new code from their app and retry with the same idempotencyKey.",
    )
    MEMBER_CODE_REQUIRED = (
        auto(),
        "The member asked that their points be spent only with a one-time code from their app, and"
        " none was sent.",
        "Ask the member for the code their app shows (createSpendCode) and send it as memberCode,"
        " with the same idempotencyKey.",
    )
    MEMBER_HAS_DEBT = (
        auto(),
        "The member owes points from a refund, which their next points repay first.",
        "Earn (or wait for pending points) until the debt is repaid, then give points again.",
    )
    MEMBER_NOT_FOUND = (
        auto(),
        "No member has this number, or the member is not linked to you: both answers are the same."
        " Each one counts against the client's limit (RATE_LIMITED).",
        "Check the number; enrol the member (enrollMember with memberNumber) before spending.",
    )
    NAME_TAKEN = (
        auto(),
        "A partner (or, for createTier, a tier) with this name exists.",
        "Choose another name.",
    )
    NOT_A_DISPUTE = (
        auto(),
        "The item is MATCHED: there is nothing to resolve.",
        "Resolve only items whose isDispute is true.",
    )
    OPEN_DISPUTES = (
        auto(),
        "Reconciliation disputes of the run are still open.",
        "Resolve them (resolveDispute), or finalize with overrideOpenDisputes: true.",
    )
    OUT_OF_STOCK = (
        auto(),
        "Not enough of the reward is left.",
        "Ask for a smaller quantity, or another reward.",
    )
    PASSWORD_TOO_WEAK = (
        auto(),
        "The new password is too short (under 10 characters) or contains the member number.",
        "Choose a longer password that does not contain the member number.",
        "only from the member account pages (POST /account/activate/confirm) and"
        " `coalition members set-password`",
    )
    NOT_LINKED = (
        auto(),
        "You (the member) are not linked to this partner: there is nothing to unlink.",
        "Nothing to do; me.links lists the partners you are linked to.",
    )
    PARTNER_NOT_FOUND = (
        auto(),
        "No partner has this id (or the calling partner no longer exists).",
        "Send the id of an existing Partner.",
    )
    PERIOD_FINALIZED = (
        auto(),
        "A finalized run already covers part of the period.",
        "Settle a period that starts where the last finalized one ended; late events of a"
        " finalized period are settled by the next run.",
    )
    PROMO_CODE_EXPIRED = (
        auto(),
        "This promo code (or its promotion) had expired at the purchase's occurredAt. The purchase was"
        " still recorded and earned its points without it.",
        "Tell the customer the code has expired; a new code comes from the partner's current campaign.",
    )
    PROMO_CODE_INVALID = (
        auto(),
        "No promotion has this promo code. The purchase was still recorded and earned its points without it.",
        "Check the code with the customer; the points the code would have given cannot be added to"
        " this purchase afterwards.",
    )
    PROMO_CODE_USED = (
        auto(),
        "This promo code has been used as many times as it may be (usesPerCode), or by this member as"
        " many times as one member may (usesPerMember), or it was named twice on the purchase. The"
        " purchase was still recorded and earned its points without it.",
        "Nothing to retry: a use comes back only when the purchase it was used on is fully refunded.",
    )
    PROMOTION_NOT_FOUND = (
        auto(),
        "No promotion of yours has this id (another partner's looks the same).",
        "Send the id of a Promotion from promotions.",
    )
    PURCHASE_NOT_FOUND = (
        auto(),
        "You recorded no purchase with this orderId.",
        "Send the orderId of the purchase as recordPurchase received it.",
    )
    REDEMPTION_NOT_FOUND = (
        auto(),
        "No redemption of yours has this id (another partner's looks the same).",
        "Send the redemption id a redemption returned.",
    )
    REFUND_EXCEEDS_PURCHASE = (
        auto(),
        "The refund is larger than what is left of the purchase; the message says how much is left.",
        "Refund at most what is left, or omit the amount to refund all of it.",
    )
    REFERRAL_CHAIN = (
        auto(),
        "The referrer was themselves referred, directly or through others, by this customer.",
        "Enrol the customer without referralCode: referrals never go back up their own chain.",
    )
    REFERRAL_CODE_INVALID = (
        auto(),
        "No member has this referral code.",
        "Check the code with the customer (8 letters and digits; I, L and O read as 1, 1 and 0).",
    )
    REFERRAL_SELF = (
        auto(),
        "The referral code is the customer's own (the same member, or the same email).",
        "Enrol the customer without referralCode: a member cannot refer themselves.",
    )
    REF_ALREADY_ENROLLED = (
        auto(),
        "This partnerCustomerRef is enrolled with another member number.",
        "Check which member the customer is; omit memberNumber to get the one already enrolled.",
    )
    REQUIRED = (
        auto(),
        "A value that must be given is missing or blank.",
        "Fill in the field `field` names.",
    )
    REWARD_NOT_AVAILABLE = (
        auto(),
        "The reward is not on sale now: archived, not yet valid, or no longer valid.",
        "Offer a reward that is on sale (Query.rewards lists them).",
    )
    REWARD_NOT_FOUND = (
        auto(),
        "No reward of yours has this id (another partner's looks the same).",
        "Send the id of one of your rewards.",
    )
    RULE_NOT_FOUND = (
        auto(),
        "No earn rule of yours has this id (another partner's rule looks exactly like none).",
        "Send the id of one of your EarnRules, as earnRules lists them.",
    )
    RUN_FINAL = (
        auto(),
        "The run is finalized or paid: its reconciliation record is closed.",
        "Differences found now are corrected in the ledger and settled by the next run.",
    )
    RUN_NOT_FOUND = (
        auto(),
        "No settlement run has this id.",
        "Send the id of an existing SettlementRun.",
    )
    SETTLEMENT_RUNNING = (
        auto(),
        "Another settlement run or finalization is in progress.",
        "Try again once it has finished (seconds to minutes).",
    )
    STALE_DRAFT = (
        auto(),
        "Another run was finalized after this draft was computed; their late-arrival windows may overlap.",
        "Run the period again (runSettlement) and finalize the new draft.",
    )
    TOO_LONG = (
        auto(),
        "The text is longer than its field allows; the message gives the limit.",
        "Shorten it.",
    )
    TOO_MANY_ERRORS = (
        auto(),
        "The reconciliation file has more bad rows than are reported (50); reading stopped at the"
        " line the message names.",
        "Fix the reported rows and upload again to see the rest.",
    )
    TOO_OLD = (
        auto(),
        "The purchase is so old that its points would already have expired.",
        "Nothing to earn: do not record it.",
    )
    TRANSFER_LIMIT_REACHED = (
        auto(),
        "The points would take the member past what they may give in a day or a month.",
        "Give at most what the message says is left, or wait for the day or month to pass.",
    )
    UNKNOWN_CURRENCY = (
        auto(),
        "The currency is not an ISO 4217 code this coalition knows.",
        "Send a three-letter ISO 4217 code (EUR, USD, …).",
    )
    UNKNOWN_EVENT_TYPE = (
        auto(),
        "An event type the coalition does not send, or none at all, was asked for.",
        "Subscribe to one or more of the documented types (docs/events.md: points.earned, member.linked, …).",
    )
    UNKNOWN_SCOPE = (
        auto(),
        "A client was to be created with a scope that does not exist.",
        "Use only the scopes the coalition defines (shared/access.py: points:earn, members:read, …).",
        "only from the command line (`coalition clients create-admin --scopes …`)",
    )
    WEBHOOK_DELIVERY_NOT_FOUND = (
        auto(),
        "No delivery to one of your endpoints has this id (another partner's looks the same).",
        "Send the id of a delivery from webhookDeliveries.",
    )
    WEBHOOK_ENDPOINT_NOT_FOUND = (
        auto(),
        "No webhook endpoint of yours has this id, or it was deleted (another partner's looks the same).",
        "Send the id createWebhookEndpoint or webhookEndpoints returned.",
    )
