"""The GraphQL documents the tests send, written once (with variables, as real clients do)."""

ENROLL = """
mutation($input: EnrollMemberInput!) {
  enrollMember(input: $input) { member { id memberNumber } userErrors { code field message } }
}"""

PURCHASE = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) {
    transaction { id points status kind orderId }
    pointsEarned
    userErrors { code field message }
  }
}"""

REDEEM = """
mutation($input: RedeemPointsInput!) {
  redeemPoints(input: $input) {
    redemption { id points value { amount currency } }
    userErrors { code field message }
  }
}"""

REVERSE = """
mutation($input: ReversePurchaseInput!) {
  reversePurchase(input: $input) {
    reversal { id points refunded { amount currency } }
    userErrors { code field message }
  }
}"""

CANCEL = """
mutation($input: CancelRedemptionInput!) {
  cancelRedemption(input: $input) { redemptionId pointsRestored userErrors { code field message } }
}"""

MEMBER = """
query($n: String!, $first: Int, $after: String) {
  member(memberNumber: $n) {
    id memberNumber
    balance { available pending }
    transactions(first: $first, after: $after) {
      edges { cursor node { id kind points status orderId partner { name } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""

CREATE_PARTNER = """
mutation($input: CreatePartnerInput!) {
  createPartner(input: $input) {
    partner { id name contract { redeemPrice { amount currency } } }
    credentials { clientId clientSecret }
    userErrors { code field message }
  }
}"""

PARTNERS = """
query($first: Int, $after: String) {
  partners(first: $first, after: $after) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
