"""What every GraphQL error carries, and how it is logged.

Every error a client gets has `extensions.code` (one of docs/errors.md's GraphQL error codes), so
a client branches on the code, never on the message, and `extensions.requestId`, the id of the
request in the server's log. Errors the services raise carry their code already (`AccessError`,
`DomainError`, an outage); graphql-core's own (syntax, validation, a variable that does not
coerce) and Strawberry's limit rules carry none, and get theirs here.

Logging: an error the client caused (anything with a code the client can act on) is one log
line; only an unexpected exception, the one the client sees masked as "Internal error.", is
logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from graphql import ASTValidationRule, GraphQLError, ValidationContext

from services.gateway.availability import outage_of
from shared.errors import AccessError, DomainError
from shared.graphql_error_codes import GraphQLErrorCode
from shared.logs import request_id

log = logging.getLogger("coalition.graphql")

INTERNAL = GraphQLErrorCode.INTERNAL_SERVER_ERROR
PARSE_FAILED = GraphQLErrorCode.GRAPHQL_PARSE_FAILED
VALIDATION_FAILED = GraphQLErrorCode.GRAPHQL_VALIDATION_FAILED
BAD_USER_INPUT = GraphQLErrorCode.BAD_USER_INPUT
TOO_COMPLEX = GraphQLErrorCode.QUERY_TOO_COMPLEX


def code_of(error: GraphQLError) -> str:  # a GraphQLErrorCode, or what a service set
    """The code an error has, or the one it should have: decided by where it arose."""
    given = (error.extensions or {}).get("code")
    if isinstance(given, str):
        return given
    if error.path is not None:  # raised while executing and not one of ours: a bug
        return INTERNAL
    message = error.message
    if message.startswith("Syntax Error"):
        # graphql-core's token limit aborts parsing with a syntax error; it is a size limit.
        return TOO_COMPLEX if "tokens. Parsing aborted" in message else PARSE_FAILED
    if message.startswith("Variable '$"):  # a variable missing, or its value refused by its type
        return BAD_USER_INPUT
    return VALIDATION_FAILED


def complete(errors: Iterable[GraphQLError]) -> None:
    """Gives each error its code and the request id (in place; idempotent)."""
    rid = request_id.get()
    for error in errors:
        extensions = dict(error.extensions or {})
        extensions["code"] = str(code_of(error))  # the plain string, as JSON will have it
        if rid is not None:
            extensions["requestId"] = rid
        error.extensions = extensions


def coded_rule(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """A validation rule whose errors carry `code`. Strawberry's depth and alias limiters report
    from their constructor through the validation context, so the context's reporter is wrapped
    for the length of the constructor."""

    class Coded(rule):  # type: ignore[valid-type, misc]
        def __init__(self, context: ValidationContext) -> None:
            report = context.report_error

            def report_coded(error: GraphQLError) -> None:
                error.extensions = {**(error.extensions or {}), "code": code}
                report(error)

            context.report_error = report_coded  # type: ignore[method-assign]
            try:
                super().__init__(context)
            finally:
                del context.report_error

    Coded.__name__ = f"Coded{rule.__name__}"
    return Coded


# graphql-core's words for a value a scalar refused, in a variable or in a literal argument: the
# scalar's own exception is the error's `original_error`, and it is the client's mistake.
_COERCION = ("Variable '$", "Expected value of type")


def expected(error: GraphQLError) -> bool:
    """An error the client caused and can fix, or a refusal: no traceback in the log. Anything
    else, before execution too (an extension that raised), is a bug and gets one."""
    original = error.original_error
    if original is None or isinstance(original, AccessError | DomainError | GraphQLError):
        return True
    return error.path is None and error.message.startswith(_COERCION)


def log_errors(errors: Iterable[GraphQLError]) -> None:
    """One line per error; a traceback only for the unexpected. Called with the errors as raised,
    before masking, so the log has what the client does not see."""
    for error in errors:
        path = ".".join(str(p) for p in error.path) if error.path else None
        outage = outage_of(error.original_error) if error.original_error is not None else None
        if outage is not None:
            log.warning("database %s at %s: %r", outage.code.lower(), path, error.original_error)
        elif expected(error):
            fields = {"code": code_of(error), "path": path}
            log.info("graphql error: %s", error.message, extra=fields)
        else:
            log.error("unexpected error at %s: %s", path, error.message, exc_info=error.original_error)
