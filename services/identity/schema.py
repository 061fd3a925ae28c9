"""GraphQL for identity: admins register member apps, disable clients and rotate their secrets
(scope admin:partners).

The mutation names and payload fields are a contract partner tooling codes against; the rules
(who may, what happens to live tokens, the audit log) are in `clients`, not here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry

from services.identity import service
from shared.error_codes import UserErrorCode
from shared.errors import DomainError
from shared.graphql_types import GraphQLInfo, UserError, user_errors
from shared.ids import to_global_id
from shared.operations import INPUT, admin, mutation

T = TypeVar("T")


@strawberry.type(description="OAuth client credentials: a partner's backend, or an admin's.")
class OAuthClient:
    client_id: str = strawberry.field(description="The id the client authenticates with.")
    name: str = strawberry.field(description='What the client is, for people ("Café Blue backend").')
    scopes: list[str] = strawberry.field(description="The scopes its tokens may carry.")
    partner_id: strawberry.ID | None = strawberry.field(
        description="The Partner (global ID) whose credentials these are; null for an admin client."
    )
    created_at: datetime = strawberry.field(description="When the client was created.")
    disabled_at: datetime | None = strawberry.field(
        description="When it was disabled: it gets no tokens and its tokens are refused. Null: enabled."
    )
    secret_rotated_at: datetime | None = strawberry.field(
        description="When its secret was last rotated; null if never."
    )

    @classmethod
    def of(cls, view: service.ClientView) -> OAuthClient:
        return cls(
            client_id=view.client_id,
            name=view.name,
            scopes=view.scopes,
            partner_id=strawberry.ID(to_global_id("Partner", view.partner_id))
            if view.partner_id is not None
            else None,
            created_at=view.created_at,
            disabled_at=view.disabled_at,
            secret_rotated_at=view.secret_rotated_at,
        )


@strawberry.input(description="The client to disable.")
class DisableClientInput:
    client_id: str = strawberry.field(description="The client's id (cl_…), not a global ID.")


@strawberry.input(description="The client to give a new secret.")
class RotateClientSecretInput:
    client_id: str = strawberry.field(description="The client's id (cl_…), not a global ID.")


@strawberry.input(description="A member app to register: a public OAuth client with scope member.")
class CreateMemberAppInput:
    name: str = strawberry.field(description='What the app is, shown on the sign-in page ("Coalition app").')
    redirect_uris: list[str] = strawberry.field(
        description="The exact redirect URIs codes may be sent to: absolute, https (http only on"
        " 127.0.0.1, localhost or [::1]), no fragment. Compared as whole strings."
    )


@strawberry.type(description="The answer to createMemberApp.")
class CreateMemberAppPayload:
    client_id: str | None = strawberry.field(
        default=None,
        description="The app's client_id (app_…); it has no secret. Null when userErrors say why.",
    )
    redirect_uris: list[str] | None = strawberry.field(default=None, description="The URIs registered.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why no app was registered; empty on success."
    )


@strawberry.type(description="The answer to disableClient.")
class DisableClientPayload:
    client: OAuthClient | None = strawberry.field(
        default=None, description="The client, disabledAt set; null when userErrors say why not."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the client was not disabled; empty on success."
    )


@strawberry.type(description="The answer to rotateClientSecret.")
class RotateClientSecretPayload:
    client_secret: str | None = strawberry.field(
        default=None,
        description="The new secret, shown this once and stored nowhere. Null when userErrors say why.",
    )
    client: OAuthClient | None = strawberry.field(
        default=None, description="The client, secretRotatedAt set."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why no secret was issued; empty on success."
    )


async def _attempt(operation: Awaitable[T]) -> T | list[UserError]:
    try:
        return await operation
    except DomainError as exc:
        return user_errors(exc.errors)


# A client id is checked as text (blank, too long, control characters) before it is looked up.
CLIENT_CODES = (
    UserErrorCode.REQUIRED,
    UserErrorCode.TOO_LONG,
    UserErrorCode.INVALID,
    UserErrorCode.CLIENT_NOT_FOUND,
)


@strawberry.type
class IdentityMutation:
    @mutation(
        "Register a member app (audit-logged): a public OAuth client, no secret, scope member only,"
        " that signs members in at /oauth/authorize with the authorization code and PKCE (S256) and"
        " gets its codes only at the exact redirect URIs given here.",
        access=admin("admin:partners"),
        codes=(UserErrorCode.REQUIRED, UserErrorCode.TOO_LONG, UserErrorCode.INVALID),
    )
    async def create_member_app(
        self, info: GraphQLInfo, input: Annotated[CreateMemberAppInput, INPUT]
    ) -> CreateMemberAppPayload:
        outcome = await _attempt(
            service.register_member_app(
                info.context.db, info.context.principal, name=input.name, redirect_uris=input.redirect_uris
            )
        )
        if isinstance(outcome, list):
            return CreateMemberAppPayload(user_errors=outcome)
        return CreateMemberAppPayload(client_id=outcome.client_id, redirect_uris=outcome.redirect_uris)

    @mutation(
        "Disable a client for good (audit-logged): it gets no new tokens, and when this returns every"
        " gateway refuses the tokens it holds (a gateway cut off from the database learns it within"
        " REVOCATION_CACHE_SECONDS of reconnecting). The payload's client carries disabledAt;"
        " disabling a disabled client keeps its first disabledAt.",
        access=admin("admin:partners"),
        codes=CLIENT_CODES,
    )
    async def disable_client(
        self, info: GraphQLInfo, input: Annotated[DisableClientInput, INPUT]
    ) -> DisableClientPayload:
        outcome = await _attempt(
            service.disable_client(info.context.db, info.context.principal, input.client_id)
        )
        if isinstance(outcome, list):
            return DisableClientPayload(user_errors=outcome)
        return DisableClientPayload(client=OAuthClient.of(outcome))

    @mutation(
        "Give a client a new secret (audit-logged), returned once in clientSecret and stored nowhere."
        " The old secret stops working at once, and when this returns every gateway refuses the"
        " tokens issued under it (as for disableClient): a rotated secret is treated as leaked. A"
        " disabled client stays disabled.",
        access=admin("admin:partners"),
        codes=CLIENT_CODES,
    )
    async def rotate_client_secret(
        self, info: GraphQLInfo, input: Annotated[RotateClientSecretInput, INPUT]
    ) -> RotateClientSecretPayload:
        outcome = await _attempt(
            service.rotate_client_secret(info.context.db, info.context.principal, input.client_id)
        )
        if isinstance(outcome, list):
            return RotateClientSecretPayload(user_errors=outcome)
        return RotateClientSecretPayload(
            client_secret=outcome.client_secret, client=OAuthClient.of(outcome.client)
        )
