"""Referral rules at enrolment: unknown codes enrol nobody, self-referral and chains are refused,
and a member (a person, by email) is referred at most once."""

from __future__ import annotations

import pytest

from services.engagement import referrals
from services.ledger import erasure
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from tests.engagement.referral_helpers import code_of, enroll_referred, referral_of, rows
from tests.factories import ADMIN, enroll, make_partner, unique


def email() -> str:
    return f"{unique('person')}@example.com"


async def refused(coro) -> tuple[UserErrorCode, str | None]:
    with pytest.raises(DomainError) as caught:
        await coro
    error = caught.value.errors[0]
    return error.code, error.field


async def members_with(db, address: str) -> int:
    found = await rows(db, "SELECT count(*) AS n FROM members WHERE lower(email) = lower($1)", address)
    return found[0]["n"]


async def test_unknown_code_enrols_nobody(db) -> None:
    cafe = await make_partner(db)
    address = email()
    for code in ("ZZZZZZZZ", "abc", ""):
        assert await refused(enroll_referred(db, cafe, code, email=address)) == (
            UserErrorCode.REFERRAL_CODE_INVALID,
            "referralCode",
        )
    assert await members_with(db, address) == 0  # one transaction: the member was rolled back
    # The same customer without a code enrols, with a fresh member.
    await enroll_referred(db, cafe, None, email=address)
    assert await members_with(db, address) == 1


async def test_codes_are_stable_typable_and_read_forgivingly(db) -> None:
    cafe = await make_partner(db)
    referrer = await enroll(db, cafe)
    code = await code_of(db, referrer)
    assert code == await code_of(db, referrer)
    assert len(code) == 8 and set(code) <= set(referrals.ALPHABET)
    typed = f" {code[:4].lower()}-{code[4:]} ".replace("1", "l").replace("0", "o")
    friend = await enroll_referred(db, cafe, typed)
    assert (await referral_of(db, friend))["referrer_member_id"] == referrer.id


async def test_self_referral_is_refused(db) -> None:
    cafe = await make_partner(db)
    shop = await make_partner(db)
    address = email()
    referrer = await enroll(db, cafe, email=address)
    code = await code_of(db, referrer)
    # The same person enrolled anew at another partner, with their own email in other case.
    assert await refused(enroll_referred(db, shop, code, email=address.upper())) == (
        UserErrorCode.REFERRAL_SELF,
        "referralCode",
    )
    assert await members_with(db, address) == 1
    # The same member, linked at another partner with their own code.
    assert (await refused(enroll_referred(db, shop, code, member_number=referrer.member_number)))[0] == (
        UserErrorCode.REFERRAL_SELF
    )


async def test_chains_are_refused_directly_and_transitively(db) -> None:
    cafe = await make_partner(db)
    shop = await make_partner(db)
    a_email = email()
    a = await enroll(db, cafe, email=a_email)
    b = await enroll_referred(db, cafe, await code_of(db, a), email=email())
    c = await enroll_referred(db, cafe, await code_of(db, b), email=email())
    assert (await referral_of(db, c))["referrer_member_id"] == b.id
    for referrer in (b, c):  # B was referred by A; C by B, who was by A
        code = await code_of(db, referrer)
        assert await refused(enroll_referred(db, shop, code, email=a_email)) == (
            UserErrorCode.REFERRAL_CHAIN,
            "referralCode",
        )
        assert (await refused(enroll_referred(db, shop, code, member_number=a.member_number)))[0] == (
            UserErrorCode.REFERRAL_CHAIN
        )
    assert await members_with(db, a_email) == 1
    assert await referral_of(db, a) is None


async def test_a_member_is_referred_at_most_once(db) -> None:
    cafe = await make_partner(db)
    shop = await make_partner(db)
    first = await enroll(db, cafe)
    second = await enroll(db, cafe)
    address = email()
    ref = unique("ref")
    friend = await enroll_referred(db, cafe, await code_of(db, first), email=address, ref=ref)
    # The retry of that enrolment (same ref) with another code changes nothing.
    again = await enroll_referred(db, cafe, await code_of(db, second), email=address, ref=ref)
    assert again.id == friend.id
    # The same email at another partner: a new member, but not a new person, so no referral.
    elsewhere = await enroll_referred(db, shop, await code_of(db, second), email=address)
    assert elsewhere.id != friend.id
    assert await referral_of(db, elsewhere) is None
    # Linking the member at another partner with a code refers nobody either.
    linked = await enroll_referred(db, shop, await code_of(db, second), member_number=friend.member_number)
    assert linked.id == friend.id
    assert (await referral_of(db, friend))["referrer_member_id"] == first.id
    found = await rows(db, "SELECT count(*) AS n FROM referrals WHERE referrer_member_id = $1", second.id)
    assert found == [{"n": 0}]


async def test_an_erased_members_code_names_nobody(db) -> None:
    cafe = await make_partner(db)
    referrer = await enroll(db, cafe)
    code = await code_of(db, referrer)
    await erasure.erase_member(db, ADMIN, referrer.member_number)
    assert (await refused(enroll_referred(db, cafe, code)))[0] == UserErrorCode.REFERRAL_CODE_INVALID
