"""A query cost limit: depth, alias and token limits cannot see `first: 100` nested three deep.

Cost counts one per field, multiplied by the page size of every connection it sits inside, with
variables resolved, so a query's cost bounds the rows it can make the database return.
Introspection fields cost nothing: codegen tools need them and they touch no data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from shared.pagination import DEFAULT_PAGE_SIZE


def _page_size(node: FieldNode, variables: dict[str, Any]) -> int:
    for argument in node.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, VariableNode):
                value = variables.get(argument.value.name.value)
            else:
                value = value_from_ast_untyped(argument.value, variables)
            return value if isinstance(value, int) and value > 0 else DEFAULT_PAGE_SIZE
    return 1


def _is_connection(node: FieldNode) -> bool:
    return any(a.name.value in ("first", "after") for a in node.arguments or ()) or (
        node.selection_set is not None
        and any(isinstance(s, FieldNode) and s.name.value == "edges" for s in node.selection_set.selections)
    )


def selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            multiplier = _page_size(selection, variables) if _is_connection(selection) else 1
            total += 1 + multiplier * selection_cost(selection.selection_set, fragments, variables, seen)
        elif isinstance(selection, InlineFragmentNode):
            total += selection_cost(selection.selection_set, fragments, variables, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:  # cycles are a validation error anyway
                total += selection_cost(fragments[name].selection_set, fragments, variables, seen | {name})
    return total


class GatewayLimits(SchemaExtension):
    """Token, depth, alias and cost limits as one extension (each extension costs a few percent
    of a small request, so the limits share one)."""

    def __init__(self, *, max_tokens: int, rules: tuple[type[ASTValidationRule], ...], max_cost: int) -> None:
        self.max_tokens = max_tokens
        self.rules = rules
        self.max_cost = max_cost

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        # The same rule classes every request, so the validation cache (keyed on them) hits.
        context.validation_rules = context.validation_rules + self.rules
        yield

    def on_validate(self) -> Iterator[None]:
        # Strawberry decides whether to execute before extensions' post-yield code runs, so the
        # check happens here, after the validation cache (listed earlier) has validated.
        self._check()
        yield

    def _check(self) -> None:
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            return
        definitions = context.graphql_document.definitions
        fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
        variables = context.variables or {}
        for operation in definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            cost = selection_cost(operation.selection_set, fragments, variables)
            if cost > self.max_cost:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"query cost {cost} exceeds the limit of {self.max_cost}: ask for "
                        "smaller pages or fewer nested lists",
                        extensions={"code": "QUERY_TOO_COMPLEX"},
                    )
                ]
                return
