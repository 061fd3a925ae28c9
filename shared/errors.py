"""Errors every service raises, in two families.

`DomainError` is something the caller can fix (bad input, not enough points): the gateway turns
it into `userErrors` in the mutation payload. `AccessError` is an authentication or
authorisation failure: the gateway turns it into a GraphQL error whose `extensions.code` is
`UNAUTHENTICATED` or `FORBIDDEN`. Anything else is a bug and is masked before it reaches a client.

A UserError's code is a `UserErrorCode` member, never a bare string: the enum is the list clients
code against (and docs/errors.md is generated from it), so a code no one documented cannot reach
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.error_codes import UserErrorCode
from shared.graphql_error_codes import GraphQLErrorCode
from shared.parsing import text_problem


@dataclass(frozen=True)
class UserError:
    code: UserErrorCode
    field: str | None
    message: str

    def __post_init__(self) -> None:
        if not isinstance(self.code, UserErrorCode):
            raise TypeError(
                f"UserError code {self.code!r} is not a UserErrorCode member: add the code, with what"
                " it means and what the client should do, to shared/error_codes.py"
            )

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code.value, "field": self.field, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> UserError:
        """An answer stored under an idempotency key, read back; its code must still exist (codes
        are never removed), or the replay fails loudly rather than send an unknown code."""
        return cls(
            code=UserErrorCode(str(data["code"])), field=data.get("field"), message=str(data["message"])
        )


class DomainError(Exception):
    """One or more problems the caller can fix; nothing has been written."""

    def __init__(self, errors: list[UserError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
        # Raised from a query (no payload to carry userErrors), it becomes a GraphQL error.
        self.extensions = {
            "code": GraphQLErrorCode.BAD_USER_INPUT.value,
            "userErrors": [e.as_dict() for e in errors],
        }

    @classmethod
    def single(cls, code: UserErrorCode, message: str, field: str | None = None) -> DomainError:
        return cls([UserError(code=code, field=field, message=message)])


class InputError(DomainError):
    """A problem with the request itself, found only once its transaction began (a currency the
    partner does not trade in). Never stored against an idempotency key: the caller fixes the
    input and retries with the same key."""


class AccessError(Exception):
    code: str = GraphQLErrorCode.FORBIDDEN.value

    def __init__(self, message: str):
        super().__init__(message)
        # graphql-core copies `extensions` of the original error onto the GraphQL error.
        self.extensions = {"code": self.code}


class Unauthenticated(AccessError):
    code = GraphQLErrorCode.UNAUTHENTICATED.value


class Forbidden(AccessError):
    code = GraphQLErrorCode.FORBIDDEN.value


class Validator:
    """Collects every problem with an input, so a caller learns all of them in one round trip."""

    def __init__(self) -> None:
        self.errors: list[UserError] = []

    def add(self, field: str | None, code: UserErrorCode, message: str) -> None:
        self.errors.append(UserError(code=code, field=field, message=message))

    def check(self, condition: bool, field: str, code: UserErrorCode, message: str) -> bool:
        if not condition:
            self.add(field, code, message)
        return condition

    def text(self, value: str | None, field: str, *, max_length: int, required: bool = True) -> None:
        """Text a person reads and PostgreSQL stores: not blank (when required), not too long,
        nothing `shared.parsing.text_problem` refuses (controls, bidi overrides, surrogates)."""
        if value is None or value.strip() == "":
            if required:
                self.add(field, UserErrorCode.REQUIRED, f"{field} must not be empty")
            return
        if len(value) > max_length:
            self.add(field, UserErrorCode.TOO_LONG, f"{field} must be at most {max_length} characters")
        problem = text_problem(value)
        if problem is not None:
            self.add(field, UserErrorCode.INVALID, f"{field} {problem}")

    def instant(self, value: datetime | None, field: str) -> bool:
        """A moment in time carries its offset: a naive one would mean different instants on
        servers in different zones, and cannot be compared with the aware ones stored."""
        if value is None:
            return True
        return self.check(
            value.tzinfo is not None, field, UserErrorCode.INVALID, f"{field} must carry a time zone offset"
        )

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainError(self.errors)


def print_user_errors(exc: DomainError) -> int:
    """For the command line: every problem on its own line; the exit code for bad input."""
    for error in exc.errors:
        print(f"error: {error.field or 'input'}: {error.message}")
    return 2
