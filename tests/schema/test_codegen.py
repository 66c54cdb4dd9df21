"""The compiled plans' straight-line code answers exactly as the runner's generic loops do.

schema/compiled/codegen.py writes, per plan, the attribute reads of a level's objects as Python
source. Whatever the values (as-is strings, Decimals, Ints in and out of range, null for a
non-null field, enums), the generated `reads` and `fill` must give the same result dicts, in the
same key order, or fail alike, as `Run._start_field`'s generic loops.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLField, GraphQLObjectType, GraphQLString
from graphql.type.scalars import GraphQLFloat, GraphQLInt

from schema.compiled.codegen import fill_function, reads_function
from schema.compiled.plan import LEAF, Completion, FieldPlan, ObjectPlan, _flat_fields
from schema.compiled.run import Abandon, Run, _leaf


class Size(enum.Enum):
    S = "s"
    M = "m"


SIZE = GraphQLEnumType("Size", {"S": Size.S, "M": Size.M})
DECIMAL = Completion(LEAF, False, coerce=str, stringifies=Decimal)
OWNER = GraphQLObjectType("Thing", {"name": GraphQLField(GraphQLString)})


def _leaf_field(key: str, attribute: str, completion: Completion) -> FieldPlan:
    return FieldPlan(key, [], OWNER, None, completion, attribute=attribute)


def _plan() -> ObjectPlan:
    return ObjectPlan(
        OWNER,
        [
            FieldPlan("__typename", [], OWNER, None, None, typename="Thing"),
            _leaf_field("name", "name", Completion(LEAF, False, coerce=GraphQLString.serialize, serializes_as_is=str)),
            _leaf_field("price", "amount", DECIMAL),
            _leaf_field("count", "count", Completion(LEAF, True, coerce=GraphQLInt.serialize, serializes_as_is=int)),
            _leaf_field("ratio", "ratio", Completion(LEAF, True, coerce=GraphQLFloat.serialize)),
            _leaf_field("size", "size", Completion(LEAF, True, coerce=SIZE.serialize)),
            _leaf_field("alias", "class", Completion(LEAF, False, coerce=str, serializes_as_is=str)),  # a keyword
            _leaf_field("odd", "not-an-identifier", Completion(LEAF, True, coerce=str, serializes_as_is=str)),
        ],
    )


def _thing(**values: Any) -> SimpleNamespace:
    thing = SimpleNamespace(name="kettle", amount=Decimal("19.90"), count=3, ratio=0.5, size=Size.M, **{"class": "A"})
    setattr(thing, "not-an-identifier", "x")
    for name, value in values.items():
        setattr(thing, name, value)
    return thing


def _generic(plan: ObjectPlan, things: list[Any]) -> list[dict[str, Any]]:
    run = object.__new__(Run)
    items: list[tuple[Any, dict[str, Any], Any]] = [(thing, {}, None) for thing in things]
    for field in plan.fields:
        run._start_field(field, items, None, {}, [], [])
    return [out for _, out, _ in items]


def _generated(plan: ObjectPlan, things: list[Any]) -> list[dict[str, Any]]:
    made = reads_function(plan, _leaf)
    assert made is not None
    reads, rest = made
    assert rest == []
    items: list[tuple[Any, dict[str, Any], Any]] = [(thing, {}, None) for thing in things]
    reads(items)
    return [out for _, out, _ in items]


@pytest.mark.parametrize(
    "values",
    [{}, {"count": None, "ratio": None, "size": None}, {"count": True}, {"ratio": 2}, {"amount": Decimal("1E+2")}],
)
def test_generated_reads_and_fills_answer_as_the_generic_loops(values: dict[str, Any]):
    plan, things = _plan(), [_thing(), _thing(**values)]
    expected = _generic(plan, things)
    assert _generated(plan, things) == expected
    assert [list(out) for out in _generated(plan, things)] == [list(out) for out in expected]  # key order
    flat = _flat_fields(plan)
    assert flat is not None
    fill = fill_function(flat, _leaf)
    assert [fill(thing) for thing in things] == expected


@pytest.mark.parametrize("values", [{"count": 2**31}, {"name": None}, {"size": "not an enum member"}])
def test_a_value_the_generic_loop_fails_on_fails_the_generated_code_alike(values: dict[str, Any]):
    """Any exception abandons the compiled run (graphql-core then answers): the same one, from both."""
    plan, thing = _plan(), _thing(**values)
    with pytest.raises(Exception) as generic:
        _generic(plan, [thing])
    with pytest.raises(type(generic.value)):
        _generated(plan, [thing])
    flat = _flat_fields(plan)
    assert flat is not None
    with pytest.raises(type(generic.value)):
        fill_function(flat, _leaf)(thing)
    assert values != {"name": None} or isinstance(generic.value, Abandon)  # null for a non-null leaf


def test_fields_the_generated_code_does_not_read_keep_their_place_for_the_runner():
    plan = _plan()
    later = FieldPlan("later", [], OWNER, None, Completion(LEAF, True), resolve=lambda *a: None)
    plan.fields.insert(2, later)
    made = reads_function(plan, _leaf)
    assert made is not None
    reads, rest = made
    assert rest == [later]
    items: list[tuple[Any, dict[str, Any], Any]] = [(_thing(), {}, None)]
    reads(items)
    assert list(items[0][1])[:4] == ["__typename", "name", "later", "price"] and items[0][1]["later"] is None


def test_an_attribute_name_python_would_normalise_is_read_by_getattr():
    """`source.ﬁ` in source code reads `fi` (NFKC); the generated code must read the attribute named."""
    plan = ObjectPlan(OWNER, [_leaf_field("ligature", "ﬁ", Completion(LEAF, False, coerce=str, serializes_as_is=str))])
    thing = SimpleNamespace(fi="wrong")
    setattr(thing, "ﬁ", "right")  # noqa: B010  # `thing.ﬁ = ...` would set `fi`, the very point
    assert _generated(plan, [thing]) == _generic(plan, [thing]) == [{"ligature": "right"}]
