"""Everything the gateway does around one GraphQL operation, as ONE schema extension.

Strawberry runs every extension's hooks on every request (four hook contexts, each asking every
extension for its hook), and on a one-statement read that bookkeeping cost more than the read's
own SQL: five extensions (error completion, parser cache, validation cache, limits, masking) were
about a fifth of a balance read's CPU (docs/decisions.md, "Reads at the speed of the writes"). One
extension does the same work, in this order:

- on_operation, before: the token limit for the parser and the depth/alias rules for validation;
- on_parse: the document from a cache keyed on the query text (a parse error is not cached);
- on_validate: the validation errors, cached with the document (keyed on the text too: a parsed
  document hashes itself node by node, which Strawberry's own validation cache pays per request);
  then the cost limit, which depends on the variables and the caller, so it is cached per
  document, caller kind and the variables' cost-relevant shape;
- on_operation, after: unexpected resolver errors masked (an outage named as such, see
  `availability.OutageAwareMaskErrors`), then every error completed with its code and the
  request id (`graphql_errors.complete`), so the client sees them as the log does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.schema.schema import validate_document

from services.gateway.availability import OutageAwareMaskErrors
from services.gateway.graphql_errors import complete
from services.gateway.limits import cost_error

CACHED_DOCUMENTS = 512  # distinct query texts remembered (parse, validation); LRU beyond
CACHED_COSTS = 2048  # (document, caller kind, variable shape) cost verdicts remembered


def _shape(value: object) -> object:
    """What of a variable's value the cost walk can see: an integer's value (`first`), whether
    it is null (`one_with` arguments), nothing else."""
    if value is None or isinstance(value, int):
        return value
    return True


@dataclass
class Prepared:
    """A query text's document and, once validated, its validation errors."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None


@dataclass
class OperationPolicy:
    """The process-wide part: limits and caches shared by every request's extension."""

    max_tokens: int
    rules: tuple[type[ASTValidationRule], ...]
    max_cost: int
    cost_partners: int
    should_mask_error: Callable[[GraphQLError], bool]
    _documents: OrderedDict[str, Prepared] = field(default_factory=OrderedDict, init=False)
    _all_rules: tuple[type[ASTValidationRule], ...] | None = field(default=None, init=False)
    _costs: OrderedDict[tuple[Any, ...], GraphQLError | None] = field(default_factory=OrderedDict, init=False)

    def prepared(self, query: str, parse_options: dict[str, Any]) -> Prepared:
        """The parsed document for `query` (a GraphQLError from parsing propagates, uncached)."""
        found = self._documents.get(query)
        if found is None:
            found = Prepared(parse(query, **parse_options))
            self._documents[query] = found
            if len(self._documents) > CACHED_DOCUMENTS:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(query)
        return found

    def rules_with(self, defaults: Any) -> tuple[type[ASTValidationRule], ...]:
        """Strawberry's rules and ours, built once: the validation cache keys on them."""
        if self._all_rules is None:
            self._all_rules = (*defaults, *self.rules)
        return self._all_rules

    def cost_error(self, context: Any) -> GraphQLError | None:
        principal = getattr(context.context, "principal", None)
        variables = context.variables or {}
        key = (
            id(context.graphql_document),
            principal is not None and not principal.is_admin,
            tuple(sorted((name, _shape(value)) for name, value in variables.items())),
        )
        try:
            found = self._costs[key]
        except KeyError:
            found = cost_error(context, max_cost=self.max_cost, partners=self.cost_partners)
            self._costs[key] = found
            if len(self._costs) > CACHED_COSTS:
                self._costs.popitem(last=False)
        else:
            self._costs.move_to_end(key)
        return found

    def __call__(self) -> GatewayOperation:
        """A fresh extension for one request (Strawberry calls the factory per operation)."""
        return GatewayOperation(self)


class GatewayOperation(OutageAwareMaskErrors):
    def __init__(self, policy: OperationPolicy) -> None:
        super().__init__(should_mask_error=policy.should_mask_error, error_message="Internal error.")
        self.policy = policy
        self.prepared: Prepared | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.policy.max_tokens
        context.validation_rules = self.policy.rules_with(context.validation_rules)
        self._stream_result_processed = False  # MaskErrors' own flag (subscription results)
        yield
        result = context.result
        # MaskErrors' after-yield, but only when there are errors: its result type check is a
        # runtime Protocol isinstance, tens of microseconds on every request.
        errors = getattr(result, "errors", None)
        if errors and not self._stream_result_processed:
            result.errors = errors = self._process_errors(errors)  # type: ignore[union-attr]
        if errors:
            complete(errors)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        assert context.query is not None  # Strawberry refuses an empty query before parsing
        self.prepared = self.policy.prepared(context.query, context.parse_options)
        context.graphql_document = self.prepared.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        prepared = self.prepared
        assert prepared is not None  # parsing succeeded, or Strawberry would not validate
        if prepared.errors is None:
            schema: GraphQLSchema = context.schema._schema
            prepared.errors = validate_document(schema, prepared.document, context.validation_rules)
        errors = prepared.errors
        if not errors:
            too_costly = self.policy.cost_error(context)
            errors = [too_costly] if too_costly is not None else errors
        # Strawberry decides whether to execute before this hook's after-yield code runs. Cached
        # errors are copied: completing them writes this request's id into them.
        context.pre_execution_errors = [_copy(error) for error in errors]
        yield


def _copy(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        dict(error.extensions or {}),
    )
