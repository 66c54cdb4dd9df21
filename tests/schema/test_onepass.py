"""A level's subtree run in one pass answers as the runner's level-by-level steps do.

schema/compiled/onepass.py resolves every level below a level first, then builds the results in
one generated pass. Whatever the values (errors for one object or for a whole batch, nulls,
objects of another class than their type's own or marked by `strawberry.cast`, tuples for
lists), the results, their key order and the failures at their paths must be the runner's, every
object must be resolved once by each batch resolver, and a subtree of objects of their own class
must cost the same batch calls with the same objects.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from graphql import FieldNode, GraphQLField, GraphQLObjectType, GraphQLString, NameNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.compiled.onepass import in_one_pass, own_objects
from schema.compiled.plan import LEAF, LIST, Completion, FieldPlan, ObjectPlan, object_completion
from schema.compiled.run import Abandon, Level, Run, _real, _specialize
from schema.loaders import EAGER


class Shelf:
    def __init__(self, label: str, books: Any) -> None:
        self.label, self.books = label, books


class Author:
    def __init__(self, name: str, bio: Any = "a bio") -> None:
        self.name, self.bio = name, bio


class Book:
    def __init__(self, title: str, price: Any = Decimal("9.90"), author: Any = None) -> None:
        self.title, self.price = title, price
        self.author = Author("Lem") if author is None else author


class Pamphlet(Book):
    """Another class than Book's own, which its type still takes."""


class Ghost(Author):
    """Another class than Author's own, which its type still takes."""


def _is_type_of(own: type) -> Any:
    """As strawberry's for a type with interfaces: its own objects, or one `strawberry.cast` to it."""
    return lambda value, info: isinstance(value, own) and getattr(value, TYPE_CAST_ATTRIBUTE, None) in (None, "it")


def _types(checked: bool) -> tuple[GraphQLObjectType, ...]:
    def of(name: str, own: type) -> GraphQLObjectType:
        return GraphQLObjectType(
            name, {"name": GraphQLField(GraphQLString)}, is_type_of=_is_type_of(own) if checked else None
        )

    return of("Shelf", Shelf), of("Book", Book), of("Author", Author)


STRING = Completion(LEAF, False, coerce=GraphQLString.serialize, serializes_as_is=str)


def _field(key: str, parent: GraphQLObjectType, completion: Completion, **source: Any) -> FieldPlan:
    return FieldPlan(key, [FieldNode(name=NameNode(value=key))], parent, None, completion, **source)


eager: list[bool] = []  # per batch call: were its loads to be fetched at once (EAGER)?


def _plans(calls: list[tuple[str, list[Any]]], checked: bool = False) -> ObjectPlan:
    """Shelf { label books { title price author { name bio } } }: books, price, author and bio
    batch-resolved, each call noted with the objects it was asked for."""
    shelf_type, book_type, author_type = _types(checked)

    def batch(name: str, value: Any) -> Any:
        async def resolve(sources: list[Any], context: Any, args: dict[str, Any]) -> list[Any]:
            calls.append((name, list(sources)))
            eager.append(EAGER.get() is asyncio.current_task())
            if any(getattr(source, "title", None) == "raises" for source in sources):
                raise LookupError(f"{name} failed")
            return [value(source) for source in sources]

        return resolve

    author = ObjectPlan(
        author_type,
        [
            _field("name", author_type, STRING, attribute="name"),
            _field("bio", author_type, Completion(LEAF, True, coerce=str, serializes_as_is=str), args={},
                   batch=batch("bio", lambda a: a.bio)),
        ],
    )  # fmt: skip
    price = Completion(LEAF, False, coerce=str, stringifies=Decimal)
    by_author = object_completion(author_type, author, Author)
    book = ObjectPlan(
        book_type,
        [
            _field("title", book_type, STRING, attribute="title"),
            _field("price", book_type, price, args={}, batch=batch("price", lambda b: b.price)),
            _field("author", book_type, by_author, args={}, batch=batch("author", lambda b: b.author)),
        ],
    )
    books = Completion(LIST, True, item=object_completion(book_type, book, Book, nullable=False))
    shelf = ObjectPlan(
        shelf_type,
        [
            _field("label", shelf_type, STRING, attribute="label"),
            _field("books", shelf_type, books, args={}, batch=batch("books", lambda s: s.books)),
        ],
    )
    _specialize(shelf)
    assert shelf.fill is not None and by_author.reads_cast_mark is checked
    return shelf


def _run() -> Run:
    run = object.__new__(Run)
    run.failures, run.context, run.arguments = [], None, {}
    run._info = lambda field, path: None  # type: ignore[method-assign,assignment,return-value]  # is_type_of here reads none
    return run


async def _answer(shelves: list[Shelf], one_pass: bool, checked: bool = False) -> tuple[Any, ...]:
    """Each shelf's result with its keys, the failures (error, path), the batch calls and how many
    levels ran in one pass, level by level or in one pass where the runner can."""
    calls: list[tuple[str, list[Any]]] = []
    plan, run, passes = _plans(calls, checked), _run(), 0
    assert plan.start is not None
    outs = [plan.start(shelf) for shelf in shelves]
    level: Level = {plan: [(shelf, out, (None, index, None)) for index, (shelf, out) in enumerate(zip(shelves, outs))]}  # noqa: B905
    while level:
        if one_pass and in_one_pass(level):
            passes += 1
            level = await run._run_subtrees(level)
        else:
            level = await run._run_level(level)
    failures = sorted((type(e).__name__, str(e), _real(path).as_list()) for e, _, path in run.failures)
    return outs, [list(out) for out in outs], failures, calls, passes


def _named(calls: list[tuple[str, list[Any]]]) -> list[tuple[str, list[str]]]:
    return [
        (name, [getattr(s, "label", None) or getattr(s, "title", None) or s.name for s in ss]) for name, ss in calls
    ]


def _asked(calls: list[tuple[str, list[Any]]]) -> Counter[tuple[str, str]]:
    """Which objects each batch resolver was asked for, however the calls were grouped."""
    return Counter((name, label) for name, labels in _named(calls) for label in labels)


def _cast(value: Any, to: str) -> Any:
    setattr(value, TYPE_CAST_ATTRIBUTE, to)
    return value


def _without_author(book: Book) -> Book:
    book.author = None
    return book


SHELVES: dict[str, Any] = {
    "every object its type's own": lambda: [
        Shelf("a", [Book("Solaris"), Book("Eden")]),
        Shelf("b", []),
        Shelf("c", [Book("Fiasco", Decimal("1E+2"), Author("Lem", bio=None))]),
    ],
    "a batch raising for every object": lambda: [Shelf("a", [Book("raises"), Book("Eden")]), Shelf("b", [Book("x")])],
    "null for a non-null leaf": lambda: [Shelf("a", [Book("Solaris"), Book("Eden", price=None)])],
    "an error as one object's value": lambda: [Shelf("a", [Book("Solaris", price=ValueError("no price"))])],
    "an error three levels down": lambda: [
        Shelf("a", [Book("Solaris"), Book("Eden", author=Author("Lem", ValueError("x")))])
    ],
    "an object of another class": lambda: [Shelf("a", [Book("Solaris"), Pamphlet("Tract"), Book("Eden")])],
    "objects of another class at two depths": lambda: [  # a later level holds a plan and one below it
        Shelf("a", [Book("Solaris", author=Ghost("Lem", "ghost bio")), Pamphlet("Tract", author=Author("Swift"))])
    ],
    "a tuple for a list": lambda: [Shelf("a", (Book("Solaris"), Book("Eden"))), Shelf("b", [Book("Fiasco")])],
    "a null, a non-list and an error for a list": lambda: [
        Shelf("a", None),
        Shelf("b", ValueError("no books")),
        Shelf("c", [Book("Eden")]),
    ],
    "a null author": lambda: [Shelf("a", [_without_author(Book("Solaris")), Book("Eden")])],
}


@pytest.mark.parametrize("case", list(SHELVES))
async def test_one_pass_answers_as_level_by_level(case: str):
    eager.clear()
    by_levels = await _answer(SHELVES[case](), False)
    assert not any(eager)  # the runner's levels batch their loads as they always did
    in_one = await _answer(SHELVES[case](), True)
    assert eager[: len(by_levels[3])].count(False) == len(by_levels[3])
    assert eager[len(by_levels[3]) :][0]  # one plan a level: its batch resolvers awaited in turn, loads at once
    assert in_one[:3] == by_levels[:3]  # results, key order, failures
    assert _asked(in_one[3]) == _asked(by_levels[3])  # each object resolved once by each batch resolver
    assert in_one[4] >= 1 and by_levels[4] == 0
    if case == "every object its type's own":
        assert _named(in_one[3]) == _named(by_levels[3])  # one call per field and level, the same objects


async def test_an_object_of_another_class_is_left_to_a_level_of_the_runner():
    """The first pass gives the batch resolvers only objects of their type's own class; another
    (which its type still takes) is queued by the second for a level of its own afterwards."""
    *_, calls, _ = await _answer(SHELVES["an object of another class"](), True)
    assert _named(calls[1:]) == [
        ("price", ["Solaris", "Eden"]),
        ("author", ["Solaris", "Eden"]),
        ("bio", ["Lem", "Lem"]),
        ("price", ["Tract"]),
        ("author", ["Tract"]),
        ("bio", ["Lem"]),
    ]


async def test_objects_cast_to_their_own_type_or_another_are_asked_as_the_runner_asks():
    """Where a type's `is_type_of` reads the cast mark, a marked object is not the subtree's own:
    one cast to the type itself is taken (later), one cast to another type fails alike."""

    def shelves(mark: str) -> list[Shelf]:
        return [Shelf("a", [_cast(Book("Eden", Decimal(1)), mark), Book("Solaris")])]

    by_levels, in_one = await _answer(shelves("it"), False, checked=True), await _answer(shelves("it"), True, True)
    assert in_one[:3] == by_levels[:3] and in_one[4] >= 1
    for one_pass in (False, True):
        with pytest.raises(Abandon):  # not a Book: graphql-core reports it
            await _answer(shelves("another"), one_pass, checked=True)


async def test_a_null_in_a_list_of_non_null_objects_fails_both_alike():
    shelves = [Shelf("a", [Book("Solaris"), None])]
    for one_pass in (False, True):
        with pytest.raises(Abandon):
            await _answer(shelves, one_pass)


@st.composite
def shelves(draw: st.DrawFn) -> list[Shelf]:
    """Shelves of books by authors, some of other classes, cast, null, failing, or in tuples."""
    chance = draw(st.randoms(use_true_random=False))
    count = iter(range(10**6))

    def pick(*weighted: tuple[float, Any]) -> Any:
        roll = chance.random()
        for weight, make in weighted:
            if roll < weight:
                return make()
            roll -= weight
        return weighted[-1][1]()

    def author() -> Any:
        made = (Ghost if chance.random() < 0.2 else Author)(
            f"A{next(count)}", pick((0.2, lambda: None), (0.1, lambda: ValueError("no bio")), (0.7, lambda: "bio"))
        )
        return pick((0.1, lambda: None), (0.05, lambda: ValueError("no author")), (0.05, lambda: _cast(made, "it")), (0.8, lambda: made))  # fmt: skip

    def book() -> Any:
        made = (Pamphlet if chance.random() < 0.15 else Book)(f"B{next(count)}", Decimal(chance.randint(1, 99)))
        made.author = author()
        return _cast(made, "it") if chance.random() < 0.05 else made

    def books() -> Any:
        made = [book() for _ in range(chance.randint(0, 3))]
        return pick((0.1, lambda: None), (0.05, lambda: ValueError("no books")), (0.1, lambda: tuple(made)), (0.75, lambda: made))  # fmt: skip

    return [Shelf(f"S{index}", books()) for index in range(chance.randint(1, 3))]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(made=shelves(), checked=st.booleans())
async def test_generated_shelves_are_answered_in_one_pass_as_level_by_level(made: list[Shelf], checked: bool):
    answers: list[tuple[Any, ...]] = []
    for one_pass in (False, True):
        try:
            outs, keys, failures, calls, _ = await _answer(_copied(made), one_pass, checked)
            answers.append((outs, keys, failures, _asked(calls)))
        except Abandon:
            answers.append(("abandoned",))
    assert answers[0] == answers[1]


def _copied(shelves: list[Shelf]) -> list[Shelf]:
    """The same shelves again (each answer fills its own results from its own objects)."""
    return copy.deepcopy(shelves)


def test_a_plan_with_a_field_resolved_object_by_object_is_left_to_the_runner():
    calls: list[tuple[str, list[Any]]] = []
    plan = _plans(calls)
    per_object = _field("isbn", plan.object_type, STRING, resolve=lambda *_: "x")
    later = ObjectPlan(plan.object_type, [*plan.fields, per_object])
    _specialize(later)
    assert later.rest[-1] is per_object and later.fill is None


def test_own_objects_are_those_fill_builds_in_order():
    completion = object_completion(GraphQLObjectType("Book", {}), ObjectPlan(GraphQLObjectType("Book", {}), []), Book)
    solaris, eden, tract = Book("Solaris"), Book("Eden"), Pamphlet("Tract")
    listed = [solaris, eden]
    assert own_objects([listed], True, completion) == [solaris, eden]
    assert own_objects([listed], True, completion) is not listed  # a list of the batch resolvers' own
    assert own_objects([[solaris], None, ValueError("x"), [tract, eden], ()], True, completion) == [solaris, eden]
    assert own_objects([solaris, None, tract, eden], False, completion) == [solaris, eden]


def test_a_subtree_nested_deeper_than_one_function_can_hold_is_left_to_the_runner():
    """Python refuses more than 20 nested loops in one function: a deeper subtree runs level by level."""

    async def children(sources: list[Any], context: Any, args: dict[str, Any]) -> list[Any]:
        return [[] for _ in sources]

    node = GraphQLObjectType("Node", {"name": GraphQLField(GraphQLString)})
    plan = ObjectPlan(node, [_field("name", node, STRING, attribute="name")])
    plans = [plan]
    for _ in range(25):
        listed = Completion(LIST, True, item=object_completion(node, plans[-1], Book, nullable=False))
        plans.append(ObjectPlan(node, [_field("children", node, listed, args={}, batch=children)]))
    _specialize(plans[-1])
    assert plans[1].fill is not None and plans[-1].fill is None and plans[-1].start is not None
