"""The error codes are a contract: one enum lists them, every operation says which it returns, the
docs are generated from both, and no code reaches a client that the enum does not list.

The static scan and the runtime refusal guard the same thing from two sides: a string literal
passed as a code is found in the source before it runs, and a code built some other way (a
variable, a stored answer) is refused when the UserError is made.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    introspection_types,
    specified_scalar_types,
)

from services.gateway.error_docs import ERRORS_FILE, declared_operations, render_errors_md
from services.gateway.schema import build_schema
from services.gateway.schema_export import render_errors
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, UserError, Validator
from shared.graphql_error_codes import GraphQLErrorCode
from shared.settings import PROJECT_ROOT

# The calls that take a UserError code, and where the code sits in their arguments.
CODE_TAKERS = {"single": 0, "add": 1, "check": 2, "UserError": 0}


def literal_codes(source: str) -> list[tuple[int, str]]:
    """(line, literal) for every string literal passed as a code to DomainError.single /
    InputError.single, Validator.add / check or UserError(...), or compared with an error's code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name not in CODE_TAKERS:
                continue
            position = CODE_TAKERS[name]
            candidates = node.args[position : position + 1] + [
                k.value for k in node.keywords if k.arg == "code"
            ]
            found += [(a.lineno, a.value) for a in candidates if _is_code_literal(a)]
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr == "code"
        ):
            found += [(c.lineno, c.value) for c in node.comparators if _is_code_literal(c)]
    return found


def _is_code_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_the_scan_finds_literal_codes():
    """The scanner itself, on the shapes services used before the enum existed."""
    sample = (
        'raise DomainError.single("OUT_OF_STOCK", "gone", "quantity")\n'
        'v.add("email", "INVALID_EMAIL", "no")\n'
        'v.check(ok, "points", "INVALID_AMOUNT", "no")\n'
        'UserError(code="INVALID_ROW", field="csv", message="m")\n'
        'raise InputError([UserError("INVALID_HEADER", "csv", "m")])\n'
        'if e.code == "MEMBER_NOT_FOUND": pass\n'
        'v.add("email", UserErrorCode.INVALID_EMAIL, "fine")\n'
    )
    assert [code for _, code in sorted(literal_codes(sample))] == [
        "OUT_OF_STOCK",
        "INVALID_EMAIL",
        "INVALID_AMOUNT",
        "INVALID_ROW",
        "INVALID_HEADER",
        "MEMBER_NOT_FOUND",
    ]


def test_no_service_passes_a_code_as_a_string_literal():
    offenders = []
    for root in ("services", "shared"):
        for path in sorted((PROJECT_ROOT / root).rglob("*.py")):
            for line, code in literal_codes(path.read_text()):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{line}: {code!r}")
    assert offenders == [], "use UserErrorCode members (shared/error_codes.py):\n" + "\n".join(offenders)


def test_a_user_error_refuses_a_code_the_enum_lacks():
    with pytest.raises(TypeError, match=r"shared/error_codes\.py"):
        UserError(code="NOT_A_CODE", field=None, message="m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a known code as a bare string is refused as well
        UserError(code="OUT_OF_STOCK", field=None, message="m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DomainError.single("NOT_A_CODE", "m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Validator().add("f", "NOT_A_CODE", "m")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # a stored answer whose code is gone fails its replay loudly
        UserError.from_dict({"code": "NOT_A_CODE", "field": None, "message": "m"})


def test_codes_stay_the_same_strings_on_the_wire():
    error = UserError(code=UserErrorCode.INSUFFICIENT_POINTS, field="points", message="m")
    assert error.as_dict() == {"code": "INSUFFICIENT_POINTS", "field": "points", "message": "m"}
    assert type(error.as_dict()["code"]) is str
    assert UserError.from_dict(error.as_dict()) == error
    assert error.code == "INSUFFICIENT_POINTS"  # tests and clients comparing strings keep working
    for code in (*UserErrorCode, *GraphQLErrorCode):
        assert code.value == code.name
        assert code.meaning.strip() and code.action.strip(), code


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema()._schema


def test_every_mutation_declares_its_access_and_codes(schema: GraphQLSchema):
    declared = {op.name for op in declared_operations(schema)}
    assert schema.mutation_type is not None and schema.query_type is not None
    missing = [f"mutation {m}" for m in schema.mutation_type.fields if f"mutation {m}" not in declared]
    missing += [f"query {q}" for q in schema.query_type.fields if f"query {q}" not in declared]
    assert missing == [], "declare them with shared.operations.mutation / field"
    for name, graphql_field in schema.mutation_type.fields.items():
        operation = next(op.operation for op in declared_operations(schema) if op.name == f"mutation {name}")
        assert operation.codes, f"{name} declares no codes"
        assert operation.access.scopes, f"{name} names no scope"
        for scope in operation.access.scopes:
            assert f"`{scope}`" in (graphql_field.description or ""), (name, scope)
        for code in operation.codes:
            assert code.value in (graphql_field.description or ""), (name, code)


def test_every_code_is_returned_somewhere_or_says_where(schema: GraphQLSchema):
    returned = {code for op in declared_operations(schema) for code in op.operation.codes}
    assert all(isinstance(code, UserErrorCode) for code in returned)
    never = [c.value for c in UserErrorCode if c not in returned and not c.outside_graphql]
    assert never == [], "no operation declares these: declare them, or say where they are returned"
    both = [c.value for c in UserErrorCode if c in returned and c.outside_graphql]
    assert both == [], "marked as returned outside GraphQL only, yet an operation declares them"


def test_docs_errors_md_matches_the_code(schema: GraphQLSchema):
    """docs/errors.md is generated: run `make schema` after changing codes or declarations."""
    assert ERRORS_FILE.read_text() == render_errors()
    rendered = render_errors_md(schema)
    for code in (*UserErrorCode, *GraphQLErrorCode):
        assert f"| `{code.value}` |" in rendered


def described_share(schema: GraphQLSchema) -> tuple[int, list[str]]:
    """(how many schema elements there are, those without a description): types, fields, input
    fields, arguments and enum values, built-in scalars and introspection types aside."""
    total, missing = 0, []

    def count(name: str, description: str | None) -> None:
        nonlocal total
        total += 1
        if not (description or "").strip():
            missing.append(name)

    for name, graphql_type in schema.type_map.items():
        if name in introspection_types or name in specified_scalar_types:
            continue
        count(name, graphql_type.description)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, graphql_field in graphql_type.fields.items():
                count(f"{name}.{field_name}", graphql_field.description)
                for arg_name, arg in getattr(graphql_field, "args", {}).items():
                    count(f"{name}.{field_name}({arg_name})", arg.description)
        if isinstance(graphql_type, GraphQLEnumType):
            for value_name, value in graphql_type.values.items():
                count(f"{name}.{value_name}", value.description)
    return total, missing


def test_everything_in_the_schema_is_described(schema: GraphQLSchema):
    total, missing = described_share(schema)
    assert total > 500  # the walk reached the whole schema
    print(f"described: {total - len(missing)} of {total}")
    assert missing == []


@pytest.mark.parametrize(
    ("type_name", "field_name", "must_say"),
    [
        ("RecordPurchaseInput", "idempotencyKey", ["per OAuth client", "IDEMPOTENCY_KEY_REUSED", "same key"]),
        ("RedeemPointsInput", "idempotencyKey", ["1 to 200 characters", "moves nothing"]),
        ("RecordPurchaseInput", "orderId", ["Unique per partner", "DUPLICATE_ORDER"]),
        ("AuthorizeRedemptionInput", "orderId", ["DUPLICATE_ORDER"]),
        ("RecordPurchaseInput", "memberNumber", ["12", "check digit", "MEMBER_NOT_FOUND"]),
        ("RedeemRewardInput", "memberNumber", ["linked", "MEMBER_NOT_FOUND"]),
        ("RecordPurchaseInput", "occurredAt", ["offset", "IN_FUTURE", "TOO_OLD", "omitted"]),
        ("UserError", "code", ["switch"]),
    ],
)
def test_the_fields_clients_trip_on_are_explained(schema, type_name, field_name, must_say):
    graphql_type = schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType)
    description = graphql_type.fields[field_name].description or ""
    for words in must_say:
        assert words in description, (type_name, field_name, words)


def test_the_graphql_enum_is_the_domain_enum(schema: GraphQLSchema):
    graphql_enum = schema.type_map["UserErrorCode"]
    assert isinstance(graphql_enum, GraphQLEnumType)
    assert list(graphql_enum.values) == [c.name for c in UserErrorCode]
    user_error = schema.type_map["UserError"]
    assert isinstance(user_error, GraphQLObjectType)
    assert str(user_error.fields["code"].type) == "UserErrorCode!"


def test_docs_file_lives_in_docs():
    assert Path(ERRORS_FILE).parent == PROJECT_ROOT / "docs"
