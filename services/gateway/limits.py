"""A query cost limit: depth, alias and token limits cannot see `first: 100` nested three deep, nor a
run's thousands of statement lines asked for fifteen times.

Cost counts one per field, multiplied by the expected size of every list it sits inside, with
variables resolved, so a query's cost bounds the rows it can make the server produce. The walk
follows the schema's types, so it knows which fields are lists:
- a connection's `edges` holds `first` items (the default page size without it);
- a list field declaring its expected size (`shared/list_sizes.py`: a run's statements, a
  statement's lines) costs that size, per-partner sizes counted for `QUERY_COST_PARTNERS`
  partners, and what a partner sees of it when a partner asks;
- any other list costs the default page size.
Introspection fields cost nothing: codegen tools need them and they touch no data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    value_from_ast_untyped,
)
from strawberry.types import ExecutionContext

from shared.list_sizes import LIST_SIZE, ListSize
from shared.pagination import DEFAULT_PAGE_SIZE

DEFAULT_LIST_SIZE = DEFAULT_PAGE_SIZE  # a list nothing bounds is costed like a page
STRAWBERRY_FIELD = "strawberry-definition"  # where Strawberry keeps its field on graphql-core's


def _page_size(node: FieldNode, variables: dict[str, Any]) -> int:
    for argument in node.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, VariableNode):
                value = variables.get(argument.value.name.value)
            else:
                value = value_from_ast_untyped(argument.value, variables)
            return value if isinstance(value, int) and value > 0 else DEFAULT_PAGE_SIZE
    return DEFAULT_PAGE_SIZE


def _is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and {"edges", "pageInfo"} <= set(named.fields)


@dataclass(frozen=True)
class QueryCost:
    """The cost of one document for one caller."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    partners: int  # the coalition size per-partner lists are sized for
    partner_view: bool  # the caller is not an admin: it sees only its own share of some lists

    def of_operation(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self.of(root, operation.selection_set) if root is not None else 0

    def list_size(self, field: GraphQLField, node: FieldNode) -> int:
        definition = (field.extensions or {}).get(STRAWBERRY_FIELD)
        hint = getattr(definition, "metadata", None) or {}
        size = hint.get(LIST_SIZE)
        if isinstance(size, ListSize):
            narrowed = size.one_with is not None and self._argument(node, size.one_with) is not None
            return size.expected(self.partners, partner_view=self.partner_view, narrowed=narrowed)
        return DEFAULT_LIST_SIZE

    def _argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                if isinstance(argument.value, VariableNode):
                    return self.variables.get(argument.value.name.value)
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def of(
        self,
        parent: GraphQLNamedType | None,
        selection_set: SelectionSetNode | None,
        page: int | None = None,
        seen: frozenset[str] = frozenset(),
    ) -> int:
        """The selection's cost on `parent`; `page` is set inside a connection: its `first`."""
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue
                total += self._field(parent, selection, page, seen)
            elif isinstance(selection, InlineFragmentNode):
                on = selection.type_condition
                total += self.of(
                    self.schema.get_type(on.name.value) if on else parent, selection.selection_set, page, seen
                )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are a validation error anyway
                    on = self.schema.get_type(fragment.type_condition.name.value)
                    total += self.of(on, fragment.selection_set, page, seen | {name})
        return total

    def _field(
        self, parent: GraphQLNamedType | None, node: FieldNode, page: int | None, seen: frozenset[str]
    ) -> int:
        fields = parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
        field = fields.get(node.name.value)
        if field is None:  # not a field of its type: validation has refused the document already
            return 1
        named = get_named_type(field.type)
        size = 1
        if is_list_type(get_nullable_type(field.type)):
            size = page if node.name.value == "edges" and page is not None else self.list_size(field, node)
        inner_page = _page_size(node, self.variables) if _is_connection(named) else None
        return 1 + size * self.of(named, node.selection_set, inner_page, seen)


def cost_error(context: ExecutionContext, *, max_cost: int, partners: int) -> GraphQLError | None:
    """QUERY_TOO_COMPLEX when one of the document's operations costs more than `max_cost` for
    this caller and these variables, else None."""
    document = context.graphql_document
    if document is None:
        return None
    definitions = document.definitions
    principal = getattr(context.context, "principal", None)
    cost = QueryCost(
        schema=context.schema._schema,
        fragments={d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)},
        variables=context.variables or {},
        partners=partners,
        partner_view=principal is not None and not principal.is_admin,
    )
    for operation in definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        found = cost.of_operation(operation)
        if found > max_cost:
            return GraphQLError(
                f"query cost {found} exceeds the limit of {max_cost}: ask for "
                "smaller pages or fewer nested lists",
                extensions={"code": "QUERY_TOO_COMPLEX"},
            )
    return None
