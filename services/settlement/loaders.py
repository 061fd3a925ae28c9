"""Per-request DataLoaders for settlement's GraphQL types: every lookup a row of a run makes (a
run's reconciliations and their items, the runs a request names by id) is batched, so a request
runs a bounded number of SQL statements whatever the number of runs, statements, lines or
reconciliations it returns. The partners statements, lines and reconciliations name come through
the partners' own loader (`services.partners.schema.partner_loader`), one for the whole request.

Loaders live in `info.context.loaders` for one request (their cache must not outlive it: access
rules depend on who asks). Each batch calls a service function with the request's database, and
each batch has its own connection (sibling fields resolve concurrently).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from services.settlement import queries, reconciliation
from shared.graphql_types import GraphQLInfo
from shared.pagination import Page

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def _loader(info: GraphQLInfo, name: str, load: Callable[[list[K]], Awaitable[list[T]]]) -> DataLoader[K, T]:
    loaders: dict[str, Any] = info.context.loaders
    found = loaders.get(name)
    if found is None:
        found = loaders[name] = DataLoader(load_fn=load)
    return found


def runs(info: GraphQLInfo) -> DataLoader[int, queries.Run | None]:
    """Runs by id as the caller may see them (a partner: its own statement)."""

    async def load(ids: list[int]) -> list[queries.Run | None]:
        found = await queries.get_runs(info.context.db, info.context.principal, ids)
        return [found.get(i) for i in ids]

    return _loader(info, "settlement.runs", load)


def run_reconciliations(info: GraphQLInfo) -> DataLoader[int, list[reconciliation.Reconciliation]]:
    """Each run's reconciliations the caller may see."""

    async def load(ids: list[int]) -> list[list[reconciliation.Reconciliation]]:
        found = await reconciliation.runs_reconciliations(info.context.db, info.context.principal, ids)
        return [found[i] for i in ids]

    return _loader(info, "settlement.run_reconciliations", load)


def reconciliation_items(
    info: GraphQLInfo,
) -> DataLoader[reconciliation.ItemsPage, Page[reconciliation.Item]]:
    """A page of a reconciliation's items, per (reconciliation, page asked)."""

    async def load(pages: list[reconciliation.ItemsPage]) -> list[Page[reconciliation.Item]]:
        return await reconciliation.item_pages(info.context.db, info.context.principal, pages)

    return _loader(info, "settlement.reconciliation_items", load)
