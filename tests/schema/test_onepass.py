"""A level's subtree run in one pass answers as the runner's level-by-level steps do.

schema/compiled/onepass.py resolves every level below a level first, then builds the results in
one generated pass. Whatever the values (errors for one object or for a whole batch, nulls, an
object of another class than its type's own, lists that are not lists), the results, their key
order and the failures at their paths must be the runner's, and a subtree of objects of their
own class must cost the same batch calls with the same objects.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from graphql import FieldNode, GraphQLField, GraphQLObjectType, GraphQLString, NameNode

from schema.compiled.onepass import own_objects
from schema.compiled.plan import LEAF, LIST, Completion, FieldPlan, ObjectPlan, object_completion
from schema.compiled.run import Abandon, Level, Run, _real, _specialize


class Shelf:
    def __init__(self, label: str, books: Any) -> None:
        self.label, self.books = label, books


class Book:
    def __init__(self, title: str, price: Any = Decimal("9.90"), author: Any = "Lem") -> None:
        self.title, self.price, self.author = title, price, author


class Author:
    def __init__(self, name: str) -> None:
        self.name = name


class Pamphlet(Book):
    """Another class than Book's own: graphql-core takes it for a Book (no is_type_of asks)."""


SHELF = GraphQLObjectType("Shelf", {"label": GraphQLField(GraphQLString)})
BOOK = GraphQLObjectType("Book", {"title": GraphQLField(GraphQLString)})
AUTHOR = GraphQLObjectType("Author", {"name": GraphQLField(GraphQLString)})
STRING = Completion(LEAF, False, coerce=GraphQLString.serialize, serializes_as_is=str)


def _field(key: str, parent: GraphQLObjectType, completion: Completion, **source: Any) -> FieldPlan:
    return FieldPlan(key, [FieldNode(name=NameNode(value=key))], parent, None, completion, **source)


def _plans(calls: list[tuple[str, list[Any]]]) -> ObjectPlan:
    """Shelf { label books { title price author { name } } }: books, price and author batch-resolved,
    each call noted with the objects it was asked for."""

    def batch(name: str, value: Any) -> Any:
        async def resolve(sources: list[Any], context: Any, args: dict[str, Any]) -> list[Any]:
            calls.append((name, list(sources)))
            if any(getattr(source, "title", None) == "raises" for source in sources):
                raise LookupError(f"{name} failed")
            return [value(source) for source in sources]

        return resolve

    def author_of(book: Book) -> Any:
        return Author(book.author) if isinstance(book.author, str) else book.author

    author = ObjectPlan(AUTHOR, [_field("name", AUTHOR, STRING, attribute="name")])
    price = Completion(LEAF, False, coerce=str, stringifies=Decimal)
    book = ObjectPlan(
        BOOK,
        [
            _field("title", BOOK, STRING, attribute="title"),
            _field("price", BOOK, price, args={}, batch=batch("price", lambda b: b.price)),
            _field(
                "author", BOOK, object_completion(AUTHOR, author, Author), args={}, batch=batch("author", author_of)
            ),
        ],
    )
    books = Completion(LIST, True, item=object_completion(BOOK, book, Book, nullable=False))
    shelf = ObjectPlan(
        SHELF,
        [
            _field("label", SHELF, STRING, attribute="label"),
            _field("books", SHELF, books, args={}, batch=batch("books", lambda s: s.books)),
        ],
    )
    _specialize(shelf)
    return shelf


def _run() -> Run:
    run = object.__new__(Run)
    run.failures, run.context, run.arguments = [], None, {}
    return run


async def _answer(shelves: list[Shelf], one_pass: bool) -> tuple[Any, ...]:
    """Each shelf's result, the failures (error, path) and the batch calls, level by level or in one pass."""
    calls: list[tuple[str, list[Any]]] = []
    plan, run = _plans(calls), _run()
    assert plan.start is not None
    outs = [plan.start(shelf) for shelf in shelves]
    level: Level = {
        plan: [(shelf, out, (None, index, None)) for index, (shelf, out) in enumerate(zip(shelves, outs, strict=True))]
    }
    while level:
        if one_pass and all(p.fill is not None for p in level):
            level = await run._run_subtrees(level)
        else:
            level = await run._run_level(level)
    failures = sorted((type(e).__name__, str(e), _real(path).as_list()) for e, _, path in run.failures)
    return outs, [list(out) for out in outs], failures, calls


SHELVES: dict[str, Any] = {
    "every object its type's own": lambda: [
        Shelf("a", [Book("Solaris"), Book("Eden")]),
        Shelf("b", []),
        Shelf("c", [Book("Fiasco", Decimal("1E+2"))]),
    ],
    "a batch raising for every object": lambda: [Shelf("a", [Book("raises"), Book("Eden")]), Shelf("b", [Book("x")])],
    "null for a non-null leaf": lambda: [Shelf("a", [Book("Solaris"), Book("Eden", price=None)])],
    "an error as one object's value": lambda: [Shelf("a", [Book("Solaris", price=ValueError("no price"))])],
    "an object of another class": lambda: [Shelf("a", [Book("Solaris"), Pamphlet("Tract"), Book("Eden")])],
    "a null, a non-list and an error for a list": lambda: [
        Shelf("a", None),
        Shelf("b", ValueError("no books")),
        Shelf("c", [Book("Eden")]),
    ],
    "a null author": lambda: [Shelf("a", [Book("Solaris", author=None)])],
}


@pytest.mark.parametrize("case", list(SHELVES))
async def test_one_pass_answers_as_level_by_level(case: str):
    by_levels, in_one_pass = await _answer(SHELVES[case](), False), await _answer(SHELVES[case](), True)
    assert in_one_pass[:3] == by_levels[:3]  # results, key order, failures
    if case == "every object its type's own":
        assert _named(in_one_pass[3]) == _named(by_levels[3])  # one call per field and level, the same objects


def _named(calls: list[tuple[str, list[Any]]]) -> list[tuple[str, list[str]]]:
    return [(name, [getattr(s, "label", None) or s.title for s in sources]) for name, sources in calls]


async def test_an_object_of_another_class_is_left_to_a_level_of_the_runner():
    """The first pass gives the batch resolvers only objects of their type's own class; another
    (which its type still takes) is queued by the second for a level of its own afterwards."""
    *_, calls = await _answer(SHELVES["an object of another class"](), True)
    assert [(name, [book.title for book in sources]) for name, sources in calls[1:]] == [
        ("price", ["Solaris", "Eden"]),
        ("author", ["Solaris", "Eden"]),
        ("price", ["Tract"]),
        ("author", ["Tract"]),
    ]


async def test_a_null_in_a_list_of_non_null_objects_fails_both_alike():
    shelves = [Shelf("a", [Book("Solaris"), None])]
    for one_pass in (False, True):
        with pytest.raises(Abandon):
            await _answer(shelves, one_pass)


def test_a_plan_with_a_field_resolved_object_by_object_is_left_to_the_runner():
    calls: list[tuple[str, list[Any]]] = []
    plan = _plans(calls)
    assert plan.fill is not None
    per_object = _field("isbn", SHELF, STRING, resolve=lambda *_: "x")
    later = ObjectPlan(SHELF, [*plan.fields, per_object])
    _specialize(later)
    assert later.rest[-1] is per_object and later.fill is None


def test_own_objects_are_those_fill_builds_in_order():
    completion = object_completion(BOOK, ObjectPlan(BOOK, []), Book)
    solaris, eden, tract = Book("Solaris"), Book("Eden"), Pamphlet("Tract")
    assert own_objects([[solaris, eden]], True, completion) == [solaris, eden]
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
