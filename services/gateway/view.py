"""The GraphQL endpoint: Strawberry's ASGI view, behind the bearer-token guard and the body limit
(`guard.RequireToken`, `shared.http.BodyLimit`)."""

from __future__ import annotations

from typing import Any

from strawberry.asgi import GraphQL

from services.gateway.guard import principal_of
from shared.graphql_types import Context


class CoalitionGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(principal=principal_of(request), db=request.app.state.db)
