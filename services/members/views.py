"""The members' read contract: the views other services read in aggregate instead of its tables.

Re-engagement (`services/notifications/reengagement.py`) pages through a partner's linked members,
or all members, in one statement joined with the ledger's views: it reads who is linked to whom
and the member's directory entry here. Changing a view's columns is changing the contract: its
test pins them.
"""

from __future__ import annotations

from shared.views import View

# Every member: number, email (null when none was given, and once erased), when they joined, and
# when they were erased (null while they are not).
MEMBER_DIRECTORY = View(
    "member_directory",
    """
SELECT id AS member_id, member_number, email, created_at, erased_at
FROM members
""",
)

# Who is linked to which partner, since when, and under which customer ref of the partner's (null
# for a member linked by presenting the card). A partner sees a member only through such a row.
MEMBER_LINKS = View(
    "member_links",
    """
SELECT member_id, partner_id, partner_customer_ref, created_at AS linked_at
FROM enrollments
""",
)

VIEWS = (MEMBER_DIRECTORY, MEMBER_LINKS)
