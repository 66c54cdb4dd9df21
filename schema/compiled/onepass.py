"""A level's whole subtree in one pass: resolved level by level first, its results built after.

The runner (run.py) completes a level's objects field by field and queues each child object,
with its result and its path, for the next level. Where every field below a level is read off
the object or resolved by a batch resolver (schema/batch.py), it can instead resolve the levels
first (the same batch calls, level by level, so the same statements) and then build every
result of the subtree with one generated function: nested loops, as a hand-written endpoint
would write them, with no queue entry, path or per-field loop per object. A level of one plan
awaits its batch resolvers in turn, their loads fetched at once (schema/loaders.py, `EAGER`),
as a hand-written endpoint awaits its statements; a level of several plans starts them all
before awaiting any (`settle`), so that one loader's keys from every plan share one statement.
The storefront query (bench/README.md): 3.6% fewer instructions on SQLite, 4.0% on PostgreSQL.

The two passes must agree on which objects are the subtree's own: an object of its type's own
class that graphql-core takes unasked (`own_check`). The first pass lists exactly those, in the
order the second visits them (parents in order, then each one's children in order), so the
second finds an object's values at its running count. Any other value (an error, a null, an
object of another class or cast by `strawberry.cast`, a list that is not a `list`) goes to the
runner's own completion, as the generated completers send it (codegen.py): a failure is recorded
at its path, built only then; an object its type takes all the same is queued for a level of
the runner's, and resolved there with batch calls of its own (the runner would have batched it
with its siblings). Also unlike the runner: failures are met depth first, and every level's
statements are sent before the second pass can find a reason to leave the query to graphql-core.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.compiled.codegen import (
    Leaf,
    compiled,
    leaf_expression,
    leaf_or_failure,
    object_of,
    own_check,
    start_expression,
)
from schema.compiled.plan import ABSTRACT, LEAF, LIST, OBJECT, Completion, FieldPlan, ObjectPlan

__all__ = [
    "Branch",
    "Fill",
    "below",
    "branches",
    "fill_function",
    "fills_in_one_pass",
    "in_one_pass",
    "next_objects",
    "own_objects",
]

# (the run, the level's items of the plan, every field's values from the first pass, the next level)
Fill = Callable[[Any, list[Any], dict[FieldPlan, list[Any]], dict[Any, Any]], None]
# A field whose objects have fields left to resolve: (the field, their plan, listed, the completion of one)
Branch = tuple[FieldPlan, ObjectPlan, bool, Completion]


def _branch_of(field: FieldPlan) -> Branch | None:
    completion = field.completion
    assert completion is not None
    child = object_of(completion)
    if child is None or child.plan is None or not child.plan.rest:
        return None
    return field, child.plan, completion.kind is LIST, child


def branches(plan: ObjectPlan) -> list[Branch]:
    """The fields of `plan` under which the first pass finds the objects of the next level."""
    return [branch for field in plan.rest if (branch := _branch_of(field)) is not None]


def below(plan: ObjectPlan) -> frozenset[ObjectPlan]:
    """The plans of every object the first pass may find below `plan`'s (after `branches` is set)."""
    return frozenset(child for _, child, _, _ in plan.branches).union(
        *(child.below for _, child, _, _ in plan.branches)
    )


def in_one_pass(level: dict[ObjectPlan, Any]) -> bool:
    """Whether a level of the runner's can run in one pass: each plan has its `fill`, and none lies
    below another. The runner queues objects of another class where it meets them, so a later
    level may hold a plan and one below it; the first pass, keyed by field, would then find
    the same field's objects twice, the second time overwriting the first."""
    plans = level.keys()
    return all(plan.fill is not None for plan in plans) and (
        len(plans) == 1 or not any(plan.below & plans for plan in plans)
    )


def own_objects(values: list[Any], listed: bool, completion: Completion) -> list[Any]:
    """The objects among a field's values (or in its lists, `listed`) that `fill` builds itself, in
    order: those of their type's own class, with no cast mark where the plan reads one. Checked
    a whole level at once where they all are (the usual case), else one by one."""
    own = completion.own_class
    if listed:
        lists = values if set(map(type, values)) == {list} else [value for value in values if type(value) is list]
        found = list(chain.from_iterable(lists))
    else:
        found = list(values)  # a list of its own: the batch resolvers get it, `fill` reads `values`
    if set(map(type, found)) != {own}:
        found = [value for value in found if type(value) is own]
    if completion.reads_cast_mark:
        found = [value for value in found if getattr(value, TYPE_CAST_ATTRIBUTE, None) is None]
    return found


def next_objects(
    objects_of: dict[ObjectPlan, list[Any]], values: dict[FieldPlan, list[Any]]
) -> dict[ObjectPlan, list[Any]]:
    """The first pass's objects one level below these, per plan (one field leads to each plan)."""
    found: dict[ObjectPlan, list[Any]] = {}
    for plan in objects_of:
        for field, child, listed, completion in plan.branches:
            objects = own_objects(values[field], listed, completion)
            if objects:
                found[child] = objects
    return found


def fills_in_one_pass(plan: ObjectPlan) -> bool:
    """Every field below `plan` is read or batch-resolved, with no access check, and completes as a
    leaf, an object or a list of objects; objects with fields left are of their type's own class."""
    for field in plan.rest:
        completion = field.completion
        if field.guard is not None or (field.batch is None and field.attribute is None) or completion is None:
            return False
        inner = completion.item if completion.kind is LIST else completion
        if inner is None or inner.kind in (LIST, ABSTRACT):
            return False
        if inner.kind is OBJECT:
            child = inner.plan
            if child is None or child.start is None:
                return False
            if child.rest and (_branch_of(field) is None or child.fill is None):
                return False
    return True


def fill_function(plan: ObjectPlan, leaf: Leaf) -> Fill | None:
    """`fill(run, items, values, next_level)`: the results of a level's objects of `plan` (started,
    their other fields None) filled in, and those of every object below them built, each in one
    dict literal once its fields' values are worked out. None for a subtree nested deeper than
    one Python function can be (20 nested loops): the runner runs it level by level."""
    names: dict[str, Any] = {"leaf": leaf}
    counters: list[str] = []
    body, filled = _fields(plan, "path", names, counters, depth=1)
    body += [f"out[{key!r}] = {value}" for key, value in filled.items()]
    fields = [name for name in names if name[0] == "f" and name[1:].isdigit()]
    lines = ["def fill(run, items, values, next_level):"]
    lines += [f"    {name} = 0" for name in counters]
    lines += [f"    v{name[1:]} = values.get({name}, ())" for name in fields]  # none: no object asked for it
    lines += ["    for source, out, path in items:"]
    lines += [f"        {line}" for line in body]
    try:
        return compiled("".join(f"{line}\n" for line in lines), "fill", names)
    except (SyntaxError, RecursionError):  # "too many statically nested blocks"
        return None


def _fields(
    plan: ObjectPlan, path: str, names: dict[str, Any], counters: list[str], depth: int
) -> tuple[list[str], dict[str, str]]:
    """Statements working out the fields left of an object of `plan` at response path `path`, each
    into a variable of its own; returns them and each field's variable by key. A field's value is
    the next of those the first pass found for the plan's objects (its running count)."""
    count = f"k{len(counters)}"
    counters.append(count)
    lines: list[str] = []
    filled: dict[str, str] = {}
    for field in plan.rest:
        n = len(names)
        names[f"f{n}"] = field
        value, target = f"value{depth}", f"r{n}"
        filled[field.key] = target
        field_path = f"({path}, {field.key!r}, {field.parent_type.name!r})"
        slow = f"run._complete_field(f{n}, {{0}}, {field_path}, next_level)"
        lines.append(f"{value} = v{n}[{count}]")
        completion = field.completion
        assert completion is not None
        child = object_of(completion)
        if completion.kind is LEAF:
            names[f"c{n}"] = completion
            otherwise = leaf_or_failure(f"c{n}", slow)
            lines.append(f"{target} = {leaf_expression(value, completion, names, otherwise)}")
        elif child is None:  # a list of leaves, an object of no own class: the runner's completion
            lines.append(f"{target} = {slow.format(value)}")
        elif completion.kind is OBJECT:
            lines += _object(child, value, f"{target} = {{}}", field_path, names, counters, depth)
            lines += ["else:", f"    {target} = {slow.format(value)}"]
        else:
            names[f"i{n}"] = completion.item
            element, listed = f"element{depth}", f"listed{depth}"
            element_path = f"({field_path}, len({listed}), None)"  # an element's index: those before it are in
            built = _object(child, element, f"{listed}.append({{}})", element_path, names, counters, depth)
            lines += [
                f"if type({value}) is not list:",
                f"    {target} = {slow.format(value)}",
                "else:",
                f"    {listed} = []",
                f"    for {element} in {value}:",
                *(f"        {line}" for line in built),
                "        else:",
                f"            {listed}.append(run._complete(i{n}, {element}, f{n}, {element_path}, next_level))",
                f"    {target} = {listed}",
            ]
    lines.append(f"{count} += 1")
    return lines, filled


def _object(
    child: Completion, source: str, store: str, path: str, names: dict[str, Any], counters: list[str], depth: int
) -> list[str]:
    """`if <source is of its type's own class>:` and the statements building its result, stored by
    `store` (a format with one place for the dict literal); the caller writes the `else:`."""
    assert child.plan is not None
    n = len(names)
    names[f"own{n}"] = child.own_class
    lines = [f"if {own_check(child, source, f'own{n}')}:"]
    filled: dict[str, str] = {}
    if child.plan.rest:
        inner, filled = _fields(child.plan, path, names, counters, depth + 1)
        lines += [f"    {line}" for line in inner]
    lines.append(f"    {store.format(start_expression(child.plan, source, names, filled))}")
    return lines
