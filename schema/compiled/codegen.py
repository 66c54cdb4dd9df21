"""Straight-line Python for the attribute reads of a plan: one pass over a level's objects, not one per field.

The runner's generic loops (run.py) read each attribute field of a level in a pass of its own over
the objects, by `getattr(source, name)`; an object read off its attributes alone (a price) would
need a level of its own. Here the same steps are written out once per plan, as Python source
compiled with `compile`: `source.name` (an attribute read the interpreter specialises) for each
field in response order, in one pass. Each value goes through the very expression the generic
loop uses (`value if its type serializes as is, str(value) if it stringifies, else _leaf`), so
answers, key order and fallbacks are unchanged.

Nothing from the request reaches the source: response keys are written as string literals
(`repr`), attribute names only when they are plain identifiers (else `getattr` with a constant),
and every object the code needs (types, completions, `_leaf`) is bound by name in its globals.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

from schema.compiled.plan import LEAF, Completion, FieldPlan, FlatField, ObjectPlan

__all__ = ["fill_function", "reads_function"]

Leaf = Callable[[Completion, Any], Any]


def _read(attribute: str, names: dict[str, Any], source: str = "source") -> str:
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


def _leaf_expression(
    read: str, as_is: type | None, as_str: type | None, completion: Completion, names: dict[str, Any]
) -> str:
    """`read`'s value as JSON, exactly as run.py's attribute loop computes it.

    A test that cannot pass is left out (`type(v) is None` never is): most leaves have no
    `as_str`, and an Int has no `as_is` (its range is leaf's to check)."""
    n = len(names)
    names[f"t{n}"], names[f"s{n}"], names[f"c{n}"] = as_is, as_str, completion
    if as_is is None and as_str is None:
        return f"leaf(c{n}, {read})"
    if as_str is None:
        return f"(v if type(v := {read}) is t{n} else leaf(c{n}, v))"
    if as_is is None:
        return f"(str(v) if type(v := {read}) is s{n} else leaf(c{n}, v))"
    return f"(v if (k := type(v := {read})) is t{n} else str(v) if k is s{n} else leaf(c{n}, v))"


def fill_function(flat: tuple[FlatField, ...], leaf: Leaf) -> Callable[[Any], dict[str, Any]]:
    """`source -> dict` for an object whose every field is read off it (`Completion.flat`), unrolled."""
    names: dict[str, Any] = {"leaf": leaf}
    entries = []
    for key, attribute, typename, as_is, as_str, completion in flat:
        if attribute is None:
            entries.append(f"{key!r}: {typename!r}")
        else:
            assert completion is not None
            entries.append(f"{key!r}: {_leaf_expression(_read(attribute, names), as_is, as_str, completion, names)}")
    source = "def fill(source):\n    return {" + ", ".join(entries) + "}\n"
    return _compiled(source, "fill", names)


def reads_function(plan: ObjectPlan, leaf: Leaf) -> tuple[Callable[[Any], None], list[FieldPlan]] | None:
    """A function filling in the attribute leaves and `__typename`s of a level's objects in one pass,
    and the fields left for the runner's own loops (their keys are placed now, in response order,
    their values set later); None when the plan has no such field (nothing to gain)."""
    names: dict[str, Any] = {"leaf": leaf}
    lines: list[str] = []
    rest: list[FieldPlan] = []
    for field in plan.fields:
        completion = field.completion
        if field.typename is not None:
            lines.append(f"out[{field.key!r}] = {field.typename!r}")
        elif field.attribute is not None and completion is not None and completion.kind is LEAF:
            as_is = completion.serializes_as_is
            as_is = None if as_is is int else as_is  # a range to check: leaf() does
            read = _read(field.attribute, names)
            lines.append(
                f"out[{field.key!r}] = {_leaf_expression(read, as_is, completion.stringifies, completion, names)}"
            )
        else:
            lines.append(f"out[{field.key!r}] = None")  # its place in the response; the runner sets it
            rest.append(field)
    if len(rest) == len(plan.fields):
        return None
    body = "".join(f"        {line}\n" for line in lines)
    source = f"def reads(items):\n    for source, out, _ in items:\n{body}"
    return _compiled(source, "reads", names), rest


def _compiled(source: str, name: str, names: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = dict(names)
    exec(compile(source, f"<compiled plan: {name}>", "exec"), namespace)  # noqa: S102  # our own source, see above
    return namespace[name]
