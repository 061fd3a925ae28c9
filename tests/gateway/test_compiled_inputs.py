"""The compiled input conversion (shared/graphql_inputs.py) builds exactly what Strawberry's own
conversion builds, for every input type of the schema, with every field given, every optional
field null and every optional field left out; and a bulk request converts through it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from strawberry.relay import GlobalID, to_base64
from strawberry.types.arguments import convert_argument
from strawberry.types.base import (
    StrawberryList,
    StrawberryObjectDefinition,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.lazy_type import LazyType

from services.gateway.schema import build_schema


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema()


def _input_types(schema: strawberry.Schema) -> dict[str, type]:
    return {
        name: concrete.definition.origin
        for name, concrete in schema.schema_converter.type_map.items()
        if isinstance(concrete.definition, StrawberryObjectDefinition) and concrete.definition.is_input
    }


class _Values:
    """GraphQL input values for a type: leaves are unique objects (both conversions pass them
    through untouched, so equality shows they landed in the same field), GlobalIDs valid ones."""

    def __init__(self, schema: strawberry.Schema, mode: str) -> None:
        self.names = schema.config.name_converter
        self.mode = mode  # "all", "nulls" (optional fields null) or "omitted" (left out)
        self.counter = itertools.count()

    def value(self, type_: Any, depth: int = 0) -> Any:
        if isinstance(type_, LazyType):
            type_ = type_.resolve_type()
        if isinstance(type_, StrawberryOptional):
            return None if self.mode == "nulls" else self.value(type_.of_type, depth)
        if isinstance(type_, StrawberryList):
            return [self.value(type_.of_type, depth) for _ in range(2)]
        if type_ is GlobalID:
            return to_base64("Partner", next(self.counter))
        if has_object_definition(type_) and type_.__strawberry_definition__.is_input:
            return self.input_value(type_.__strawberry_definition__, depth + 1)
        return ("leaf", next(self.counter))

    def input_value(self, definition: StrawberryObjectDefinition, depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for f in definition.fields:
            field_type = f.resolve_type(type_definition=definition)
            optional = isinstance(field_type, StrawberryOptional)
            if optional and (self.mode == "omitted" or depth > 4):
                continue
            value[self.names.from_field(f)] = self.value(field_type, depth)
        return value


def _convert(schema: strawberry.Schema, cls: type, value: Any) -> Any:
    return convert_argument(value, cls, schema.schema_converter.scalar_registry, schema.config)


@pytest.fixture
def strawberry_conversion(schema: strawberry.Schema) -> Iterator[Any]:
    """Converts with Strawberry's generic code: every compiled hook taken off while it runs."""
    definitions = [cls.__strawberry_definition__ for cls in _input_types(schema).values()]

    def convert(cls: type, value: Any) -> Any:
        saved = [d.from_input for d in definitions]
        try:
            for d in definitions:
                d.from_input = None
            return _convert(schema, cls, value)
        finally:
            for d, hook in zip(definitions, saved, strict=True):
                d.from_input = hook

    yield convert


def test_every_input_type_is_compiled(schema: strawberry.Schema) -> None:
    types = _input_types(schema)
    assert len(types) > 30
    plain = [n for n, cls in types.items() if cls.__strawberry_definition__.from_input is None]
    assert plain == []


@pytest.mark.parametrize("mode", ["all", "nulls", "omitted"])
def test_compiled_equals_strawberrys_conversion(
    schema: strawberry.Schema, strawberry_conversion: Any, mode: str
) -> None:
    checked = 0
    for name, cls in _input_types(schema).items():
        value = _Values(schema, mode).input_value(cls.__strawberry_definition__, 0)
        compiled = _convert(schema, cls, value)
        generic = strawberry_conversion(cls, value)
        assert compiled == generic, name
        assert type(compiled) is cls
        checked += 1
    assert checked > 30


def test_lists_are_copied_not_shared(schema: strawberry.Schema) -> None:
    """graphql-core gives every request that omits a list the same default object: a converted
    input must hold its own list, or a change to it would leak into later requests."""
    types = _input_types(schema)
    cls = types["RecordPurchasesInput"]
    value = _Values(schema, "all").input_value(cls.__strawberry_definition__, 0)
    converted = _convert(schema, cls, value)
    assert converted.purchases is not value["purchases"]
    first = converted.purchases[0]
    if first.promo_codes is not None:
        assert first.promo_codes is not value["purchases"][0]["promoCodes"]
