"""Activation and password reset over the account pages, with the code mailed over real SMTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from services.members import accounts, credentials
from shared import clock
from shared.database import Database
from shared.ids import new_member_number
from tests.factories import enroll, make_partner, unique
from tests.members.conftest import ClientFactory, Inbox, code_of

PASSWORD = "correct horse battery"


async def _member(db: Database) -> tuple[int, str, str]:
    partner = await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, partner, email=email)
    return member.id, member.member_number, email


async def _ask(c: httpx.AsyncClient, number: str, email: str) -> httpx.Response:
    return await c.post("/account/activate", data={"memberNumber": number, "email": email})


async def _confirm(c: httpx.AsyncClient, number: str, code: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post(
        "/account/activate/confirm", data={"memberNumber": number, "code": code, "password": password}
    )


async def test_the_form_has_labelled_inputs(client: ClientFactory) -> None:
    async with client() as c:
        page = await c.get("/account/activate")
        confirm = await c.get("/account/activate/confirm")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("memberNumber", "email"):
        assert f'<label for="{name}">' in page.text and f'name="{name}"' in page.text
    for name in ("memberNumber", "code", "password"):
        assert f'<label for="{name}">' in confirm.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_activation_mails_a_code_that_sets_the_password(
    db: Database, smtp: Inbox, client: ClientFactory
) -> None:
    member_id, number, email = await _member(db)
    async with client() as c:
        asked = await _ask(c, number, email.upper())  # the email as typed, any case
        assert asked.status_code == 200
        [mail] = smtp.to(email)
        assert mail.get_body(("html",)) is not None
        assert number in mail.get_body(("plain",)).get_content()
        code = code_of(mail)
        done = await _confirm(c, number, code)
        assert done.status_code == 200, done.text
        assert "password is set" in done.text
        assert await credentials.authenticate(db, email, PASSWORD) == member_id
        assert await credentials.authenticate(db, number, PASSWORD) == member_id
        again = await _confirm(c, number, code, "another good password")  # used: gone
    assert again.status_code == 400 and 'id="code-error"' in again.text
    assert await credentials.authenticate(db, email, PASSWORD) == member_id


async def test_the_answer_is_the_same_whether_or_not_they_match(
    db: Database, smtp: Inbox, client: ClientFactory
) -> None:
    _, number, email = await _member(db)
    async with client() as c:
        matching = await _ask(c, number, email)
        wrong_email = await _ask(c, number, "someone.else@example.com")
    stranger_number = new_member_number()
    async with client() as c:
        stranger = await _ask(c, stranger_number, email)
    assert matching.text == wrong_email.text  # byte for byte
    assert stranger.text.replace(stranger_number, number) == matching.text
    assert matching.status_code == wrong_email.status_code == stranger.status_code == 200
    assert len(smtp.to(email)) == 1
    assert len(smtp.messages) == 1


async def test_five_wrong_codes_void_the_code(db: Database, smtp: Inbox, client: ClientFactory) -> None:
    _, number, email = await _member(db)
    async with client() as c:
        await _ask(c, number, email)
        code = code_of(smtp.to(email)[0])
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for left in (4, 3, 2, 1):
            refused = await _confirm(c, number, wrong)
            assert refused.status_code == 400 and f"({left} tr" in refused.text
        fifth = await _confirm(c, number, wrong)
        assert fifth.status_code == 400 and "void" in fifth.text
        right_too_late = await _confirm(c, number, code)
    assert right_too_late.status_code == 400 and "no code is pending" in right_too_late.text
    assert await credentials.authenticate(db, email, PASSWORD) is None


async def test_an_expired_code_is_refused(db: Database, smtp: Inbox, client: ClientFactory) -> None:
    _, number, email = await _member(db)
    async with client() as c:
        await _ask(c, number, email)
        code = code_of(smtp.to(email)[0])
        later = clock.now() + accounts.CODE_TTL + timedelta(seconds=1)
        clock.set_clock(lambda: later)
        try:
            refused = await _confirm(c, number, code)
        finally:
            clock.set_clock(None)
    assert refused.status_code == 400 and "older than 15 minutes" in refused.text
    assert await credentials.authenticate(db, email, PASSWORD) is None


async def test_a_weak_password_is_refused_naming_the_field_and_keeps_the_code(
    db: Database, smtp: Inbox, client: ClientFactory
) -> None:
    member_id, number, email = await _member(db)
    async with client() as c:
        await _ask(c, number, email)
        code = code_of(smtp.to(email)[0])
        short = await _confirm(c, number, code, "short")
        with_number = await _confirm(c, number, code, f"my card {number}")
        assert short.status_code == with_number.status_code == 400
        assert 'id="password-error"' in short.text and "at least 10 characters" in short.text
        assert "member number" in with_number.text and 'aria-invalid="true"' in with_number.text
        assert (await _confirm(c, number, code)).status_code == 200
    assert await credentials.authenticate(db, email, PASSWORD) == member_id


async def test_reset_replaces_a_forgotten_password_and_a_new_code_replaces_the_old(
    db: Database, smtp: Inbox, client: ClientFactory
) -> None:
    member_id, number, email = await _member(db)
    await credentials.set_password(db, member_id, "the forgotten one")
    async with client() as c:
        await _ask(c, number, email)
        await _ask(c, number, email)
        first, second = (code_of(m) for m in smtp.to(email))
        assert "reset your password" in smtp.to(email)[1].get_body(("plain",)).get_content()
        if first != second:  # one in a million they coincide
            assert (await _confirm(c, number, first)).status_code == 400
        assert (await _confirm(c, number, second, "a brand new password")).status_code == 200
    assert await credentials.authenticate(db, email, "the forgotten one") is None
    assert await credentials.authenticate(db, email, "a brand new password") == member_id


async def test_requests_are_rate_limited_per_member_and_per_address(
    db: Database, smtp: Inbox, client: ClientFactory
) -> None:
    _, number, email = await _member(db)
    limit = accounts.REQUESTS_PER_MEMBER.limit
    for i in range(limit):  # from as many addresses: the member's own limit
        async with client() as c:
            assert (await _ask(c, number, email if i == 0 else "x@example.com")).status_code == 200
    async with client() as c:
        blocked = await _ask(c, number, email)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "Too many attempts" in blocked.text and len(smtp.to(email)) == 1

    async with client() as c:  # one address trying many numbers
        for _ in range(accounts.REQUESTS_PER_ADDRESS.limit):
            assert (await _ask(c, new_member_number(), "x@example.com")).status_code == 200
        assert (await _ask(c, new_member_number(), "x@example.com")).status_code == 429


async def test_confirmations_are_rate_limited_per_member(
    db: Database, smtp: Inbox, client: ClientFactory
) -> None:
    _, number, _email = await _member(db)
    for _ in range(accounts.CONFIRMS_PER_MEMBER.limit):
        async with client() as c:
            assert (await _confirm(c, number, "000000")).status_code == 400
    async with client() as c:
        assert (await _confirm(c, number, "000000")).status_code == 429


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"memberNumber": "12345", "email": "a@example.com"}, "memberNumber"),
        ({"memberNumber": "<script>alert(1)</script>", "email": "a@example.com"}, "memberNumber"),
        ({"email": "a@example.com"}, "memberNumber"),
        ({"memberNumber": "NUMBER", "email": "not an address"}, "email"),
    ],
)
async def test_malformed_requests_are_400_naming_the_field_and_escaped(
    client: ClientFactory, form: dict[str, str], field: str
) -> None:
    form = {k: new_member_number() if v == "NUMBER" else v for k, v in form.items()}
    async with client() as c:
        refused = await c.post("/account/activate", data=form)
    assert refused.status_code == 400 and f'id="{field}-error"' in refused.text
    assert "<script>" not in refused.text


async def test_confirm_needs_six_digits_and_a_password(client: ClientFactory) -> None:
    async with client() as c:
        refused = await _confirm(c, new_member_number(), "12ab", "")
    assert refused.status_code == 400
    assert 'id="code-error"' in refused.text and 'id="password-error"' in refused.text


async def test_a_body_over_the_form_limit_is_413(client: ClientFactory) -> None:
    async with client() as c:
        refused = await c.post("/account/activate", data={"memberNumber": "1" * 20_000, "email": "a@b.c"})
    assert refused.status_code == 413
