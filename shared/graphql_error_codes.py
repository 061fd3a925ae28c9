"""The codes of GraphQL errors' `extensions.code`: the request, or one field of it, was refused
whole (the other family, `userErrors`, is `shared.error_codes.UserErrorCode`). Documented the same
way, generated into docs/errors.md with it; never renamed or removed."""

from __future__ import annotations

from enum import auto

from shared.error_codes import Documented


class GraphQLErrorCode(Documented):
    """`extensions.code` of a GraphQL error: the request (or one field of it) was refused whole.
    Every error the gateway answers with carries one (`services.gateway.graphql_errors`)."""

    UNAUTHENTICATED = (
        auto(),
        "HTTP 401: no bearer token, or one that is expired, revoked, of a disabled client or issued"
        " before its secret was rotated.",
        "Get a new access token (client credentials) and send it as `Authorization: Bearer …`.",
    )
    FORBIDDEN = (
        auto(),
        "The token lacks the scope the field needs, or the caller is the wrong kind (a partner"
        " where admins act, or the reverse); the message names the scope.",
        "Ask the coalition for credentials with that scope; do not retry as is.",
    )
    BAD_USER_INPUT = (
        auto(),
        "A query (not a mutation) refused its arguments; `extensions.userErrors` lists them with"
        " UserErrorCode codes.",
        "Fix the arguments the userErrors name.",
    )
    BAD_REQUEST = (
        auto(),
        "HTTP 400: not a GraphQL request (body not JSON or not an object, no query, wrong"
        " Content-Type, a Content-Length that is not a number).",
        "Send a POST with Content-Type application/json and a body {query, variables}.",
    )
    METHOD_NOT_ALLOWED = (
        auto(),
        "HTTP 405: a mutation over GET, or a method other than GET and POST.",
        "Send mutations over POST.",
    )
    NOT_FOUND = (
        auto(),
        "HTTP 404 on the settlement file routes: no such run, or an unknown export format.",
        "Use SettlementRun.exportUrl, or the id of an existing run.",
    )
    PAYLOAD_TOO_LARGE = (
        auto(),
        "HTTP 413: the body is over the route's limit (1 MiB for /graphql, 32 MiB for a"
        " reconciliation upload, 16 KiB for the OAuth forms).",
        "Send less: big reconciliation files go to the upload route, not GraphQL.",
    )
    RATE_LIMITED = (
        auto(),
        "Too many MEMBER_NOT_FOUND answers to this client lately; every operation naming a member"
        " number is refused, known numbers too. `extensions.retryAfter` gives seconds.",
        "Wait retryAfter seconds; stop trying numbers you do not hold.",
    )
    GRAPHQL_PARSE_FAILED = (
        auto(),
        "The document is not GraphQL (a syntax error); the message gives the line and column.",
        "Fix the document; check it against schema.graphql (codegen tools do this before sending).",
    )
    GRAPHQL_VALIDATION_FAILED = (
        auto(),
        "The document does not fit the schema (an unknown field or argument, a missing selection,"
        " a variable of the wrong type); nothing ran.",
        "Fix the document against schema.graphql; the message names the field.",
    )
    QUERY_TOO_COMPLEX = (
        auto(),
        "The query is over a limit: its cost (fields times the expected size of the lists they sit"
        " in), its depth, its number of aliases or of tokens; nothing ran.",
        "Ask for smaller pages or fewer nested lists; whole statements come from the exports.",
    )
    UNAVAILABLE = (
        auto(),
        "HTTP 503 (Retry-After: 2): the database cannot be reached.",
        "Retry after a moment with the same idempotencyKey: a write may or may not have happened.",
    )
    TIMEOUT = (
        auto(),
        "HTTP 503 (Retry-After: 2): the database cancelled the request (statement or lock timeout).",
        "Retry after a moment with the same idempotencyKey.",
    )
    INTERNAL_SERVER_ERROR = (
        auto(),
        'A bug on our side: the message is only "Internal error.", the server logged the rest'
        " under the error's requestId.",
        "Quote extensions.requestId to the coalition's operators; a retry with the same"
        " idempotencyKey is safe.",
    )
