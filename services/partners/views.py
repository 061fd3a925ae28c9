"""The partners' read contract: the views other services read in aggregate instead of its tables.

Settlement prices every movement of a period at the contract in force at its instant, in one SQL
statement, so partners publish their contract versions as a view it joins. Changing a view's
columns is changing the contract: its test pins them.
"""

from __future__ import annotations

from shared.views import View

# Every version of every partner's contract and the instant it stopped being in force: a version
# is in force over [effective_from, effective_to); the latest runs to 'infinity'. Prices are per
# point, in `currency` (the coalition's settlement currency when the version was made).
PARTNER_CONTRACT_TERMS = View(
    "partner_contract_terms",
    """
SELECT partner_id, effective_from,
       lead(effective_from, 1, 'infinity') OVER (PARTITION BY partner_id ORDER BY effective_from)
         AS effective_to,
       currency, issue_price, redeem_price, issue_fee_per_point, breakage_share
FROM partner_contracts
""",
)

VIEWS = (PARTNER_CONTRACT_TERMS,)
