"""The compiled plans' straight-line code answers exactly as the runner's generic steps do.

schema/compiled/codegen.py writes, per plan, an object's result as one dict literal (`start`) and,
per field, a loop completing its values on a whole level (`complete`). Whatever the values
(as-is strings, Decimals, Ints in and out of range, null for a non-null field, enums, objects of
another class, errors), they must give the same result dicts, in the same key order, the same
objects queued for the next level, and the same failures, or fail alike, as the runner's
`_leaf` and `_complete_field`.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from graphql import GraphQLEnumType, GraphQLField, GraphQLObjectType, GraphQLString
from graphql.type.scalars import GraphQLFloat, GraphQLInt
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.compiled.codegen import completer_function, rest_fields, start_function
from schema.compiled.plan import LEAF, LIST, Completion, FieldPlan, ObjectPlan, castable, object_completion
from schema.compiled.run import Abandon, Run, _leaf, _specialize


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


def _reference(plan: ObjectPlan, thing: Any) -> dict[str, Any]:
    """What the runner's generic steps make of `thing`: each leaf through `_leaf`, other fields None."""
    out: dict[str, Any] = {}
    for field in plan.fields:
        if field.typename is not None:
            out[field.key] = field.typename
        elif field.attribute is not None and field.completion is not None and field.completion.kind is LEAF:
            out[field.key] = _leaf(field.completion, getattr(thing, field.attribute))
        else:
            out[field.key] = None
    return out


@pytest.mark.parametrize(
    "values",
    [{}, {"count": None, "ratio": None, "size": None}, {"count": True}, {"ratio": 2}, {"amount": Decimal("1E+2")}],
)
def test_an_object_is_started_as_the_generic_steps_fill_it_in(values: dict[str, Any]):
    plan, things = _plan(), [_thing(), _thing(**values)]
    start = start_function(plan, _leaf)
    for thing in things:
        expected = _reference(plan, thing)
        assert start(thing) == expected
        assert list(start(thing)) == list(expected)  # key order
    assert rest_fields(plan) == []


@pytest.mark.parametrize("values", [{"count": 2**31}, {"name": None}, {"size": "not an enum member"}])
def test_a_value_the_generic_steps_fail_on_fails_the_generated_code_alike(values: dict[str, Any]):
    """Any exception abandons the compiled run (graphql-core then answers): the same one, from both."""
    plan, thing = _plan(), _thing(**values)
    with pytest.raises(Exception) as generic:
        _reference(plan, thing)
    with pytest.raises(type(generic.value)):
        start_function(plan, _leaf)(thing)
    assert values != {"name": None} or isinstance(generic.value, Abandon)  # null for a non-null leaf


def test_fields_the_start_does_not_read_keep_their_place_for_the_runner():
    plan = _plan()
    later = FieldPlan("later", [], OWNER, None, Completion(LEAF, True), resolve=lambda *a: None)
    plan.fields.insert(2, later)
    assert rest_fields(plan) == [later]
    out = start_function(plan, _leaf)(_thing())
    assert list(out)[:4] == ["__typename", "name", "later", "price"] and out["later"] is None


def test_an_attribute_name_python_would_normalise_is_read_by_getattr():
    """`source.ﬁ` in source code reads `fi` (NFKC); the generated code must read the attribute named."""
    plan = ObjectPlan(OWNER, [_leaf_field("ligature", "ﬁ", Completion(LEAF, False, coerce=str, serializes_as_is=str))])
    thing = SimpleNamespace(fi="wrong")
    setattr(thing, "ﬁ", "right")  # noqa: B010  # `thing.ﬁ = ...` would set `fi`, the very point
    assert start_function(plan, _leaf)(thing) == _reference(plan, thing) == {"ligature": "right"}


# ---------------------------------------------------------------- completers


class Child:
    """A type's own class: its objects are started inline by a completer."""

    def __init__(self, name: str) -> None:
        self.name = name


class PARENT_CLASS:
    """Another class, for a cast."""


CHILD = GraphQLObjectType("Child", {"name": GraphQLField(GraphQLString)})
PARENT = GraphQLObjectType("Parent", {"child": GraphQLField(CHILD)})


def _child_plan(queues: bool) -> ObjectPlan:
    fields = [_leaf_field("name", "name", Completion(LEAF, False, coerce=str, serializes_as_is=str))]
    if queues:  # a field resolved later: the child needs a level of its own
        fields.append(FieldPlan("later", [], CHILD, None, Completion(LEAF, True), resolve=lambda *a: None))
    return ObjectPlan(CHILD, fields)


def _object(plan: ObjectPlan, nullable: bool = True) -> Completion:
    return object_completion(CHILD, plan, Child, nullable)


def _batch_field(completion: Completion) -> FieldPlan:
    async def batch(sources: Any, context: Any, args: Any) -> list[Any]:
        raise AssertionError("not called here")

    return FieldPlan("child", [], PARENT, None, completion, batch=batch)


def _attribute_field(completion: Completion) -> FieldPlan:
    """The field read off its object (`source.child`), as an access-checked field's unguarded plan is."""
    return FieldPlan("child", [], PARENT, None, completion, attribute="child")


def _complete(field: FieldPlan, values: list[Any], generated: bool) -> tuple[list[Any], Any, list[Any]]:
    """Each parent's result, the next level's queued objects and the failures, one way or the other."""
    run = object.__new__(Run)
    run.failures = []
    sources = [SimpleNamespace(child=value) for value in values]
    items: list[Any] = [(source, {"child": None}, ("parent", index, None)) for index, source in enumerate(sources)]
    next_level: dict[Any, Any] = {}
    if generated:
        complete = completer_function(field, _leaf)
        assert complete is not None
        complete(run, field, items, None if field.attribute else values, next_level)
    else:  # as Run._start_field and Run._complete_batch do with no completer
        run._complete_values(field, items, values, next_level)
    queued = {
        plan.fields[0].key: [(source, out, path) for source, out, path in found] for plan, found in next_level.items()
    }
    failures = [(type(error), str(error), path) for error, _, path in run.failures]
    return [out for _, out, _ in items], queued, failures


def _alike(field: FieldPlan, values: list[Any]) -> Any:
    """The generated completer's outcome, checked to be the generic loop's to the JSON type
    (`repr`: `True == 1` and `1.0 == 1` in Python, not in JSON); or the type of the exception
    both raised (any exception abandons the compiled run: graphql-core then answers)."""
    outcomes: list[Any] = []
    for generated in (True, False):
        try:
            outcomes.append(_complete(field, values, generated))
        except Exception as error:
            outcomes.append(type(error))
    made, generic = outcomes
    assert repr(made) == repr(generic)
    return made


# ... and one cast to another type: Child has no is_type_of, so graphql-core takes it as a Child
VALUES: list[Any] = [
    Child("a"),
    None,
    Child("b"),
    ValueError("refused"),
    SimpleNamespace(name="other class"),
    strawberry.cast(PARENT_CLASS, Child("cast")),
]


@pytest.mark.parametrize("queues", [False, True])
def test_a_completer_of_objects_answers_and_queues_as_the_generic_loop(queues: bool):
    plan = _child_plan(queues)
    _specialize(plan)
    field = _batch_field(_object(plan))
    results, queued, _ = _alike(field, VALUES)
    assert [r["child"] for r in results][:3] == [
        {"name": "a", **({"later": None} if queues else {})},
        None,
        {"name": "b", **({"later": None} if queues else {})},
    ]
    assert bool(queued) is queues  # no level is left behind for objects that are done
    assert _complete(field, [None, ValueError("refused")], generated=True)[1] == {}  # nor for no object at all


@pytest.mark.parametrize("queues", [False, True])
def test_a_completer_of_lists_of_objects_answers_and_queues_as_the_generic_loop(queues: bool):
    plan = _child_plan(queues)
    _specialize(plan)
    field = _batch_field(Completion(LIST, True, item=_object(plan, nullable=False)))
    lists = [[Child("a"), Child("b")], [], None, ValueError("refused"), [SimpleNamespace(name="other class")]]
    _alike(field, lists)
    assert _alike(field, [[Child("a"), None]]) is Abandon  # null for a non-null item: graphql-core answers


LEAVES = [
    Completion(LEAF, True, coerce=GraphQLInt.serialize, serializes_as_is=int),
    Completion(LEAF, False, coerce=GraphQLString.serialize, serializes_as_is=str),
    Completion(LEAF, True, coerce=str, stringifies=Decimal),
    Completion(LEAF, True, coerce=SIZE.serialize),
]


@pytest.mark.parametrize("completion", LEAVES, ids=["Int", "String!", "Decimal", "enum"])
@pytest.mark.parametrize("value", [7, 2**31, True, 1.0, None, ValueError("refused"), "7", Decimal("1.50"), Size.S])
@pytest.mark.parametrize("read", [_batch_field, _attribute_field], ids=["batch", "attribute"])
def test_a_completer_of_leaves_answers_as_the_generic_loop(completion: Completion, value: Any, read: Any):
    """A batch resolver's leaves, and an access-checked field's attribute leaves, one value each."""
    _alike(read(completion), [value])


@pytest.mark.parametrize("queues", [False, True])
def test_completers_of_attributes_answer_and_queue_as_the_generic_loop(queues: bool):
    plan = _child_plan(queues)
    _specialize(plan)
    _alike(_attribute_field(_object(plan)), VALUES)
    lists = [[Child("a")], None, (Child("tuple"),), "not a list", [SimpleNamespace(name="other class")]]
    field = _attribute_field(Completion(LIST, True, item=_object(plan)))
    assert _alike(field, lists) is Abandon  # a string is no list: graphql-core answers
    assert _alike(field, lists[:3])[0][2]["child"][0]["name"] == "tuple"  # any iterable, as graphql-core


def test_an_access_checked_field_gets_a_completer_for_the_objects_its_check_grants_at_once():
    """The runner completes a checked field on its unguarded plan when the grant has no condition."""
    plan = _child_plan(queues=False)
    checked = FieldPlan("secret", [], CHILD, None, Completion(LEAF, True), resolve=lambda *a: None)
    checked.unguarded = _leaf_field("secret", "secret", Completion(LEAF, True, coerce=str, serializes_as_is=str))
    plan.fields.append(checked)
    _specialize(plan)
    assert plan.rest == [checked] and checked.complete is None and checked.unguarded.complete is not None


@pytest.mark.parametrize("listed", [False, True])
def test_an_object_cast_to_another_type_is_asked_by_its_types_is_type_of(listed: bool):
    """Strawberry gives a type with interfaces an `is_type_of` that honours `strawberry.cast`: a cast
    object of the type's own class must be asked, not taken as its own (a type without takes any)."""
    asked: list[Any] = []

    def is_type_of(value: Any, info: Any) -> bool:
        asked.append(value)
        return getattr(value, TYPE_CAST_ATTRIBUTE, None) is None

    checked = GraphQLObjectType("Checked", {"name": GraphQLField(GraphQLString)}, is_type_of=is_type_of)
    plan = ObjectPlan(checked, _child_plan(queues=False).fields)
    _specialize(plan)
    completion = object_completion(checked, plan, Child)
    assert completion.reads_cast_mark
    field = _batch_field(Completion(LIST, True, item=completion) if listed else completion)
    field.definition, field.info_head = GraphQLField(checked), ("child", [], checked, PARENT)
    plain, cast = Child("plain"), strawberry.cast(PARENT_CLASS, Child("cast"))
    complete = completer_function(field, _leaf)
    assert complete is not None
    run = object.__new__(Run)
    run.failures, run.info_tail = [], (None,) * 9  # type: ignore[assignment]  # no request: is_type_of reads none of it
    items: list[Any] = [(None, {"child": None}, None), (None, {"child": None}, None)]
    with pytest.raises(Abandon):  # not a Checked: graphql-core reports it
        complete(run, field, items, [[plain], [cast]] if listed else [plain, cast], {})
    assert asked == [cast] and items[0][1] == {"child": [{"name": "plain"}] if listed else {"name": "plain"}}


class SlottedChild:
    """A type's own class with `__slots__`: no attribute can be added to its objects, not even a cast's."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def test_objects_that_cannot_be_cast_are_taken_without_asking_is_type_of():
    """`strawberry.cast` marks the object itself, which a slotted object refuses: its class's objects
    are its type's own, and the generated loop does not read the cast mark (nor asks is_type_of)."""
    with pytest.raises(AttributeError):
        strawberry.cast(PARENT_CLASS, SlottedChild("cast"))
    asked: list[Any] = []

    def is_type_of(value: Any, info: Any) -> bool:
        asked.append(value)
        return True

    checked = GraphQLObjectType("Checked", {"name": GraphQLField(GraphQLString)}, is_type_of=is_type_of)
    plan = ObjectPlan(checked, _child_plan(queues=False).fields)
    _specialize(plan)
    completion = object_completion(checked, plan, SlottedChild)
    assert not completion.reads_cast_mark
    field = _batch_field(completion)
    complete = completer_function(field, _leaf)
    assert complete is not None
    items: list[Any] = [(None, {"child": None}, None)]
    complete(object.__new__(Run), field, items, [SlottedChild("plain")], {})
    assert asked == [] and items[0][1] == {"child": {"name": "plain"}}
    assert TYPE_CAST_ATTRIBUTE not in complete.__code__.co_consts  # the mark is not even looked for
    castable = ObjectPlan(checked, _child_plan(queues=False).fields)
    _specialize(castable)
    field = _batch_field(object_completion(checked, castable, Child))
    looks = completer_function(field, _leaf)
    assert looks is not None and TYPE_CAST_ATTRIBUTE in looks.__code__.co_consts


def test_only_classes_whose_objects_take_no_new_attribute_skip_the_cast_check():
    class SlottedUnderADict(Child):
        __slots__ = ("price",)

    class SlottedWithRoomForTheMark:
        __slots__ = ("name", TYPE_CAST_ATTRIBUTE)

    class SlottedWithADict:
        __slots__ = ("__dict__", "name")

    class SlottedWithItsOwnSetattr(SlottedChild):
        __slots__ = ()

        def __setattr__(self, name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

    class SlottedWithAMarkOnTheClass(SlottedChild):
        __slots__ = ()
        __as_strawberry_type__ = None

    assert not castable(SlottedChild)
    assert castable(Child) and castable(SlottedUnderADict) and castable(SlottedWithRoomForTheMark)
    assert castable(SlottedWithADict) and castable(SlottedWithItsOwnSetattr)
    assert castable(SlottedWithAMarkOnTheClass) and castable(None)


def test_the_plan_reads_the_cast_mark_only_where_is_type_of_could_answer_otherwise():
    """One decision, made at plan time, for the runner's `_complete` and the generated loops alike."""
    plan = ObjectPlan(CHILD, _child_plan(queues=False).fields)
    checked = GraphQLObjectType("Checked", {"name": GraphQLField(GraphQLString)}, is_type_of=lambda *_: True)
    assert object_completion(checked, plan, Child).reads_cast_mark  # a cast Child must be asked
    assert not object_completion(checked, plan, SlottedChild).reads_cast_mark  # cannot be cast
    assert not object_completion(CHILD, plan, Child).reads_cast_mark  # no is_type_of: any object passes
