"""Who may do what: tokens, scopes and the tenancy matrix, enforced whatever the resolver does."""

from __future__ import annotations

import pytest

from tests.factories import unique
from tests.gateway import queries as q


async def _member_with_points(gateway, token, points_amount="50") -> tuple[str, str]:
    body = await gateway.gql(token, q.ENROLL, {"input": {"partnerCustomerRef": unique("c")}})
    number = body["data"]["enrollMember"]["member"]["memberNumber"]
    order = unique("o")
    await gateway.gql(
        token,
        q.PURCHASE,
        {
            "input": {
                "idempotencyKey": unique("k"),
                "memberNumber": number,
                "orderId": order,
                "amount": {"amount": points_amount, "currency": "EUR"},
            }
        },
    )
    return number, order


async def test_no_token_or_a_bad_one_is_401_unauthenticated(gateway):
    for token in (None, "not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.sig"):
        response = await gateway.post(token, "{ viewer { clientId } }")
        assert response.status_code == 401
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "Traceback" not in response.text


async def test_a_token_without_the_scope_is_forbidden(gateway, partner_pair):
    cafe, _, _, _ = partner_pair
    read_only = await gateway.partner_token(cafe, scope="members:read")
    body = await gateway.gql(read_only, q.ENROLL, {"input": {"partnerCustomerRef": unique("c")}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None or body["data"]["enrollMember"] is None


async def test_partners_cannot_use_admin_operations(gateway, partner_pair):
    _, token, _, _ = partner_pair
    body = await gateway.gql(token, q.PARTNERS, {"first": 5})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gateway.gql(
        token,
        q.CREATE_PARTNER,
        {
            "input": {
                "name": unique("x"),
                "currency": "EUR",
                "issuePrice": "1",
                "redeemPrice": "1",
                "earnRate": "1",
            }
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_admins_cannot_move_points(gateway, admin_token, partner_pair):
    _, token, _, _ = partner_pair
    number, _ = await _member_with_points(gateway, token)
    body = await gateway.gql(
        admin_token,
        q.REDEEM,
        {
            "input": {
                "idempotencyKey": unique("k"),
                "memberNumber": number,
                "points": 1,
                "orderId": unique("o"),
            }
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_tenancy_matrix(gateway, partner_pair):
    """Partner B cannot read or move anything of partner A's, nor probe who is a member."""
    a, a_token, b, b_token = partner_pair
    number, order = await _member_with_points(gateway, a_token)

    # B cannot see A's member: exactly like an unknown number.
    seen = await gateway.gql(b_token, q.MEMBER, {"n": number})
    unknown = await gateway.gql(b_token, q.MEMBER, {"n": "100000000008"})
    assert seen == unknown == {"data": {"member": None}}

    # B cannot refund A's purchase.
    body = await gateway.gql(b_token, q.REVERSE, {"input": {"idempotencyKey": unique("k"), "orderId": order}})
    assert body["data"]["reversePurchase"]["userErrors"][0]["code"] == "PURCHASE_NOT_FOUND"

    # A's redemption cannot be cancelled by B.
    redeemed = await gateway.gql(
        a_token,
        q.REDEEM,
        {
            "input": {
                "idempotencyKey": unique("k"),
                "memberNumber": number,
                "points": 10,
                "orderId": unique("o"),
            }
        },
    )
    rid = redeemed["data"]["redeemPoints"]["redemption"]["id"]
    body = await gateway.gql(
        b_token, q.CANCEL, {"input": {"idempotencyKey": unique("k"), "redemptionId": rid}}
    )
    assert body["data"]["cancelRedemption"]["userErrors"][0]["code"] == "REDEMPTION_NOT_FOUND"

    # Once the member shops at B, B sees the coalition balance but none of A's history.
    await gateway.gql(
        b_token,
        q.PURCHASE,
        {
            "input": {
                "idempotencyKey": unique("k"),
                "memberNumber": number,
                "orderId": unique("o"),
                "amount": {"amount": "5", "currency": "EUR"},
            }
        },
    )
    member = (await gateway.gql(b_token, q.MEMBER, {"n": number}))["data"]["member"]
    assert member["balance"]["available"] == 45
    assert [e["node"]["points"] for e in member["transactions"]["edges"]] == [5]

    # A member id from A's view cannot be resolved by B through node().
    a_view = (await gateway.gql(a_token, q.MEMBER, {"n": number}))["data"]["member"]
    c_token = await gateway.partner_token(b)  # B again, fresh token
    node = await gateway.gql(c_token, "query($id: ID!) { node(id: $id) { id } }", {"id": a_view["id"]})
    assert node["data"]["node"] is not None  # B is linked now
    # Another partner through node(): its id and name, nothing of its terms.
    partner_node = await gateway.gql(
        b_token,
        "query($id: ID!) { node(id: $id) { id ... on Partner { name earnRate"
        " contract { issuePrice { amount } } } } }",
        {"id": _partner_global_id(a.id)},
    )
    assert partner_node["data"]["node"] == {
        "id": _partner_global_id(a.id),
        "name": a.name,
        "earnRate": None,
        "contract": None,
    }


def _partner_global_id(local_id: int) -> str:
    from shared.ids import to_global_id

    return to_global_id("Partner", local_id)


@pytest.mark.logs_traceback
async def test_unexpected_errors_are_masked_and_no_internals_leak(database_url, caplog):
    """A resolver failing for a reason nobody planned (here: the configured database does not
    exist, a misconfiguration rather than an outage) reaches the client as a bare "Internal
    error." with no stack trace or driver message."""
    from sqlalchemy.engine import make_url

    from services.gateway.schema import build_schema
    from shared.access import PARTNER_SCOPES, Principal
    from shared.database import Database
    from shared.graphql_types import Context

    missing = make_url(database_url).set(database="coalition_no_such_database")
    broken = Database(missing.render_as_string(hide_password=False), pool_size=1)
    context = Context(principal=Principal("c", PARTNER_SCOPES, partner_id=1), db=broken)
    try:
        result = await build_schema().execute(q.MEMBER, {"n": "100000000008"}, context_value=context)
    finally:
        await broken.dispose()
    assert [e.message for e in result.errors] == ["Internal error."]
    assert result.errors[0].extensions == {"code": "INTERNAL_SERVER_ERROR"}  # and nothing else
    # The operator is told everything the client is not: the traceback goes to the log.
    [logged] = [r for r in caplog.records if r.name == "coalition.graphql" and r.exc_info]
    assert logged.levelname == "ERROR" and "coalition_no_such_database" in str(logged.exc_info[1])


async def test_an_unreachable_database_is_unavailable_not_internal():
    """An outage is not a bug: the client is told to retry (UNAVAILABLE), still without internals."""
    from services.gateway.schema import build_schema
    from shared.access import PARTNER_SCOPES, Principal
    from shared.database import Database
    from shared.graphql_types import Context

    broken = Database("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere", pool_size=1)
    context = Context(principal=Principal("c", PARTNER_SCOPES, partner_id=1), db=broken)
    try:
        result = await build_schema().execute(q.MEMBER, {"n": "100000000008"}, context_value=context)
    finally:
        await broken.dispose()
    assert [e.extensions for e in result.errors] == [{"code": "UNAVAILABLE"}]
    message = result.errors[0].message
    assert "retry" in message and "127.0.0.1" not in message and "Connect call" not in message


async def test_bad_variables_say_what_is_wrong(gateway, partner_pair):
    _, token, _, _ = partner_pair
    body = await gateway.gql(
        token,
        q.REDEEM,
        {"input": {"idempotencyKey": "k", "memberNumber": "100000000008", "points": 1.5, "orderId": "o"}},
    )
    message = body["errors"][0]["message"]
    assert "Points must be a whole number" in message and "Internal error" not in message
    missing = await gateway.gql(token, q.PURCHASE, {"input": {"idempotencyKey": "k"}})
    assert "memberNumber" in missing["errors"][0]["message"]
