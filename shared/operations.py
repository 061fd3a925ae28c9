"""What a GraphQL operation promises its callers, declared once, next to its resolver: who may call
it (the access token and scope it needs) and which UserErrorCode codes it can return.

`mutation(...)` and `field(...)` wrap Strawberry's decorators: they build the field's description
from the declaration (so the schema tells a client the scope and the codes) and keep the
declaration in the field's metadata, where the docs generator (`services/gateway/error_docs.py`,
behind `coalition schema export`) and the tests read it back off the assembled schema. Nothing
else lists which operation returns which code, so the description, docs/errors.md and the tests
cannot disagree.

The scope named here is documentation: the service checks it (`Principal.require…`), and a test
calls every mutation with a token lacking it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import strawberry

from shared.access import ALL_SCOPES
from shared.error_codes import UserErrorCode

OPERATION = "coalition.operation"
ERRORS_DOC = "docs/errors.md"


@dataclass(frozen=True)
class Access:
    """Who may call an operation, in words, and the scopes those words name."""

    summary: str
    scopes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [s for s in self.scopes if s not in ALL_SCOPES]
        if unknown:
            raise ValueError(f"unknown scopes {unknown}: shared/access.py lists them all")


def partner(scope: str, note: str = "") -> Access:
    """Partner credentials with `scope`; a partner always acts as itself, never by argument."""
    return Access(
        f"partner credentials with the scope `{scope}`, acting as the calling partner{note}", (scope,)
    )


def admin(scope: str) -> Access:
    return Access(f"coalition admins with the scope `{scope}`", (scope,))


def partner_or_admin(partner_scope: str, admin_scope: str, partner_note: str, admin_note: str) -> Access:
    return Access(
        f"partner credentials with the scope `{partner_scope}` ({partner_note}), or coalition admins"
        f" with the scope `{admin_scope}` ({admin_note})",
        (partner_scope, admin_scope),
    )


ANY_TOKEN = Access("any valid access token")


@dataclass(frozen=True)
class Operation:
    """The declaration a field carries in its metadata."""

    access: Access
    codes: tuple[UserErrorCode, ...]
    is_mutation: bool

    def describe(self, summary: str) -> str:
        text = f"{summary.rstrip()}\n\nAccess: {self.access.summary}."
        if self.codes:
            listed = ", ".join(code.value for code in self.codes)
            where = "userErrors" if self.is_mutation else "BAD_USER_INPUT error, extensions.userErrors"
            text += f"\n\n{where} codes: {listed} (what each means and what to do: {ERRORS_DOC})."
        return text


def _declare(access: Access, codes: Iterable[UserErrorCode], *, is_mutation: bool) -> Operation:
    codes = tuple(codes)
    for code in codes:
        if not isinstance(code, UserErrorCode):
            raise TypeError(f"{code!r} is not a UserErrorCode member")
    if len(set(codes)) != len(codes):
        raise ValueError(f"a code is listed twice: {[c.value for c in codes]}")
    return Operation(access, tuple(sorted(codes)), is_mutation)


def mutation(summary: str, *, access: Access, codes: Iterable[UserErrorCode], **kwargs: Any) -> Any:
    """`@strawberry.mutation` whose description says who may call it and what userErrors it returns."""
    operation = _declare(access, codes, is_mutation=True)
    return strawberry.mutation(
        description=operation.describe(summary), metadata={OPERATION: operation}, **kwargs
    )


def field(
    summary: str,
    *,
    access: Access,
    codes: Iterable[UserErrorCode] = (),
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """`@strawberry.field` for a query field that checks access or refuses its arguments: the codes
    are those its BAD_USER_INPUT error carries in `extensions.userErrors`."""
    operation = _declare(access, codes, is_mutation=False)
    return strawberry.field(
        description=operation.describe(summary),
        metadata={**(metadata or {}), OPERATION: operation},
        **kwargs,
    )


def subscription(summary: str, *, access: Access, codes: Iterable[UserErrorCode] = (), **kwargs: Any) -> Any:
    """`@strawberry.subscription` declared like a query field: the codes are those of the
    BAD_USER_INPUT error that refuses it before its first event."""
    operation = _declare(access, codes, is_mutation=False)
    return strawberry.subscription(
        description=operation.describe(summary), metadata={OPERATION: operation}, **kwargs
    )


def declared(strawberry_field: object) -> Operation | None:
    """The declaration of a Strawberry field, if it made one."""
    found = (getattr(strawberry_field, "metadata", None) or {}).get(OPERATION)
    return found if isinstance(found, Operation) else None


# The codes every operation that pages through a connection can return.
PAGE_CODES = (UserErrorCode.INVALID_PAGE_SIZE, UserErrorCode.INVALID_CURSOR)
# The checks every point-moving mutation makes of its idempotencyKey (and orderId, if it has one).
KEY_CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.INVALID,
    UserErrorCode.IDEMPOTENCY_KEY_REUSED,
)
# A member named by number: the number's format, and the one answer for unknown and unlinked.
MEMBER_CODES = (UserErrorCode.INVALID_MEMBER_NUMBER, UserErrorCode.MEMBER_NOT_FOUND)

# The description of every mutation's one `input` argument (`input: Annotated[XInput, INPUT]`).
INPUT = strawberry.argument(description="The mutation's one input: its fields say what each one means.")
