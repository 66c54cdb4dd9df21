"""Straight-line Python for the hot loops of a plan: each object's result made in one expression.

The runner (run.py) would otherwise fill in a level's objects field by field: a pass over the
objects per field, a `getattr` per value, a check per object of which case applies. Here the
same steps are written out once per plan, as Python source compiled with `compile`:

- `start_function(plan)`: an object's result dict as one literal, in response order, with its
  `__typename`s and attribute leaves read off the object (`source.name`, an attribute read the
  interpreter specialises) and `None` holding the place of every other field (`rest_fields`),
  which the runner sets when the object's level runs. An object with no other field (a price, a
  category's name and slug) is done where it is found and needs no level of its own.
- `completer_function(field)`: a loop completing one field's values for every object of a
  level, for the common shapes (a leaf, an object or a list of objects of the type's own class),
  with the child objects' results made inline by their start expression. Every other value goes
  to the runner's own `_complete_field`/`_complete`, so answers, errors and fallbacks are the
  runner's, as they are graphql-core's.

Each leaf goes through the expression the runner's `leaf` stands for (`value if its type
serializes as is, str(value) if it stringifies, else leaf(...)`), so answers, key order and
fallbacks are unchanged. Nothing from the request reaches the source: response keys and type
names are written as string literals (`repr`), attribute names only when they are plain
identifiers (else `getattr` with a constant), and every object the code needs (types,
completions, `leaf`) is bound by name in its globals.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.compiled.plan import LEAF, LIST, OBJECT, Completion, FieldPlan, ObjectPlan

__all__ = [
    "Completer",
    "compiled",
    "completer_function",
    "leaf_expression",
    "leaf_or_failure",
    "object_of",
    "own_check",
    "rest_fields",
    "start_expression",
    "start_function",
]

Leaf = Callable[[Completion, Any], Any]
# (the run, the field, the level's items, the field's values or None for an attribute, the next level)
Completer = Callable[[Any, FieldPlan, list[Any], list[Any] | None, dict[Any, Any]], None]


def _read(attribute: str, names: dict[str, Any], source: str) -> str:
    # ASCII only: Python normalises identifiers in source (NFKC), getattr does not ("ﬁ" would read "fi")
    if (
        attribute.isascii()
        and attribute.isidentifier()
        and not keyword.iskeyword(attribute)
        and not attribute.startswith("__")
    ):
        return f"{source}.{attribute}"
    name = f"a{len(names)}"
    names[name] = attribute
    return f"getattr({source}, {name})"


def leaf_expression(value: str, completion: Completion, names: dict[str, Any], otherwise: Callable[[str], str]) -> str:
    """`value` as JSON when its type is the leaf's own (the runner's `leaf` would return it as is,
    or as `str`); `otherwise(v)`, an expression of the value `v`, for anything else."""
    n = len(names)
    as_is, as_str = completion.serializes_as_is, completion.stringifies
    names[f"t{n}"], names[f"s{n}"] = as_is, as_str
    if as_is is int:  # an Int has a range to check
        fits = f"{GRAPHQL_MIN_INT} <= v <= {GRAPHQL_MAX_INT}"
        return f"(v if type(v := {value}) is t{n} and {fits} else {otherwise('v')})"
    if as_is is None and as_str is None:
        return otherwise(value)
    if as_str is None:
        return f"(v if type(v := {value}) is t{n} else {otherwise('v')})"
    if as_is is None:
        return f"(str(v) if type(v := {value}) is s{n} else {otherwise('v')})"
    return f"(v if (k := type(v := {value})) is t{n} else str(v) if k is s{n} else {otherwise('v')})"


def _is_read(field: FieldPlan) -> bool:
    """Filled in by the start expression: `__typename`, or a leaf read off the object."""
    if field.typename is not None:
        return True
    return field.attribute is not None and field.completion is not None and field.completion.kind is LEAF


def leaf_or_failure(completion: str, failed: str) -> Callable[[str], str]:
    """What the runner does with a leaf value not of its type's own: a failure (an error, null)
    is the field's (`failed`, a format of the value), anything else goes through `leaf`."""
    return f"(leaf({completion}, {{0}}) if {{0}} is not None and not isinstance({{0}}, Exception) else {failed})".format


def rest_fields(plan: ObjectPlan) -> list[FieldPlan]:
    """The fields the start expression leaves to the runner (their keys hold None until set)."""
    return [field for field in plan.fields if not _is_read(field)]


def start_expression(plan: ObjectPlan, source: str, names: dict[str, Any], filled: dict[str, str] | None = None) -> str:
    """A dict literal: `plan`'s result for the object named `source`, other fields None (or the
    expression `filled` has for their key)."""
    entries = []
    for field in plan.fields:
        if field.typename is not None:
            value = repr(field.typename)
        elif _is_read(field):
            assert field.attribute is not None and field.completion is not None
            n = len(names)
            names[f"c{n}"] = field.completion
            read = _read(field.attribute, names, source)
            value = leaf_expression(read, field.completion, names, f"leaf(c{n}, {{}})".format)
        else:
            value = filled[field.key] if filled else "None"
        entries.append(f"{field.key!r}: {value}")
    return "{" + ", ".join(entries) + "}"


def start_function(plan: ObjectPlan, leaf: Leaf) -> Callable[[Any], dict[str, Any]]:
    """`source -> dict`: the object's result as the start expression makes it."""
    names: dict[str, Any] = {"leaf": leaf}
    source = f"def start(source):\n    return {start_expression(plan, 'source', names)}\n"
    return compiled(source, "start", names)


def object_of(completion: Completion) -> Completion | None:
    """The object completion of a field of an object, or of a list of objects, of a type's own class."""
    if completion.kind is LIST:
        completion = completion.item  # type: ignore[assignment]
        if completion is None:
            return None
    if completion.kind is OBJECT and completion.own_class is not None and completion.plan is not None:
        return completion
    return None


def own_check(child: Completion, source: str, own: str) -> str:
    """An expression: `source` is an object of `child`'s own class (named `own` in the code's
    globals) that graphql-core takes for its type without asking."""
    check = f"type({source}) is {own}"
    if child.reads_cast_mark:  # its is_type_of would answer for the type a `strawberry.cast` names
        check += f" and getattr({source}, {TYPE_CAST_ATTRIBUTE!r}, None) is None"
    return check


def completer_function(field: FieldPlan, leaf: Leaf) -> Completer | None:
    """A loop completing `field` on a whole level (see the module docstring), or None when the
    field's shape is not one of the common ones (the runner's generic loops complete it).

    An attribute leaf is read by its object's start expression unless an access check stands
    in front of it: then the runner completes it here, on the plan the check's grant selects."""
    completion = field.completion
    if completion is None or field.typename is not None:
        return None
    if field.attribute is None and field.batch is None:
        return None  # resolved object by object: completed as each value comes
    names: dict[str, Any] = {"leaf": leaf, "item": completion.item}
    key, path = repr(field.key), f"(path, {field.key!r}, {field.parent_type.name!r})"
    if field.attribute is not None:
        head = ["for source, out, path in items:", f"    value = {_read(field.attribute, names, 'source')}"]
    else:
        head = ["for (_, out, path), value in zip(items, values):"]
    if completion.kind is LEAF:
        names["c"] = completion
        otherwise = leaf_or_failure("c", f"run._complete_field(field, {{0}}, {path}, next_level)")
        body = [f"    out[{key}] = {leaf_expression('value', completion, names, otherwise)}"]
        return _completer(head + body, names, queues=False)
    child = object_of(completion)
    if child is None:
        return None
    assert child.plan is not None
    names["own"], names["plan"] = child.own_class, child.plan
    queues = bool(rest_fields(child.plan))
    own = own_check(child, "source", "own")
    start = start_expression(child.plan, "source", names)
    if completion.kind is OBJECT:
        body = ["    source = value", f"    if {own}:"]
        if queues:
            body += [f"        out[{key}] = result = {start}", f"        queue((source, result, {path}))"]
        else:
            body += [f"        out[{key}] = {start}"]
        body += ["    else:", f"        out[{key}] = run._complete_field(field, value, {path}, next_level)"]
        return _completer(head + body, names, queues)
    body = [
        f"    field_path = {path}",
        "    if type(value) is not list:",
        f"        out[{key}] = run._complete_field(field, value, field_path, next_level)",
        "        continue",
        "    completed = []",
        "    for index, source in enumerate(value):",
        f"        if {own}:",
    ]
    if queues:
        body += [
            f"            result = {start}",
            "            queue((source, result, (field_path, index, None)))",
            "            completed.append(result)",
        ]
    else:
        body += [f"            completed.append({start})"]
    body += [
        "        else:",
        "            completed.append(run._complete(item, source, field, (field_path, index, None), next_level))",
        f"    out[{key}] = completed",
    ]
    return _completer(head + body, names, queues)


def _completer(loop: list[str], names: dict[str, Any], queues: bool) -> Completer:
    """The completer around `loop`; `queues`: it puts objects on the next level (plan's items)."""
    lines = ["def complete(run, field, items, values, next_level):"]
    if queues:
        lines += [
            "    queued = next_level.get(plan)",
            "    if queued is None:",
            "        queued = next_level[plan] = []",
            "    queue = queued.append",
        ]
    lines += [f"    {line}" for line in loop]
    if queues:
        lines += ["    if not queued:", "        del next_level[plan]  # no object to run a level for"]
    return compiled("".join(f"{line}\n" for line in lines), "complete", names)


def compiled(source: str, name: str, names: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = dict(names)
    exec(compile(source, f"<compiled plan: {name}>", "exec"), namespace)  # noqa: S102  # our own source, see above
    return namespace[name]
