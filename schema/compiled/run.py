"""Running a plan: breadth-first, one level of the result tree at a time.

At each level every field of every object is started before anything is awaited, so the
DataLoader loads of all siblings (all 24 products' categories, all their variants' prices)
are queued together and each loader sends one SQL statement per level, as with graphql-core.
Where every field below a level is read off its object or batch-resolved, the levels below it
are resolved the same way first and their results then built in one pass (onepass.py).

The runner handles the happy path and the common unhappy ones: fields whose resolvers fail
(raise, return an error, or return null for a Non-Null field). Each error is located and its
null propagated as graphql-core does (`_fail`), so a failing query is not run twice, and its
resolver spans and audit records are not written twice. Anything else (two errors under one
nullable ancestor, where graphql-core reports whichever fails first, a bad list or leaf value,
...) raises `Abandon`, and the caller lets graphql-core run the whole operation again: it
produces the errors and the null propagation (queries have no side effects, so that is safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from inspect import iscoroutine
from operator import attrgetter
from typing import Any, overload

from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Undefined,
    get_argument_values,
    located_error,
)
from graphql.execution import default_type_resolver
from graphql.execution.values import VariableValues
from graphql.pyutils import Path, is_awaitable
from graphql.type.definition import GraphQLResolveInfoHelpers
from graphql.type.scalars import GRAPHQL_MAX_INT as MAX_INT
from graphql.type.scalars import GRAPHQL_MIN_INT as MIN_INT
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.compiled.codegen import completer_function, rest_fields, start_function
from schema.compiled.onepass import below, branches, fill_function, fills_in_one_pass, in_one_pass, next_objects
from schema.compiled.plan import (
    ABSTRACT,
    LEAF,
    LIST,
    OBJECT,
    Completion,
    FieldPlan,
    ObjectPlan,
    OperationPlan,
    Planner,
)
from schema.compiled.settle import settle
from schema.loaders import EAGER

__all__ = ["Abandon", "Run"]

# A response path step without NamedTuple's Python-level __new__ (Path is a plain NamedTuple:
# the start-up self-check makes sure of it).
_path = tuple.__new__

# Inside a run, the paths of queued objects are plain tuples `(prev, key, typename)`: Path's own
# layout, without its cost (a Path is a tuple subclass: an extra tuple, a GC-tracked object and a
# generic dealloc each: 1.6% of a storefront request's instructions for its ~170 objects). They
# become graphql-core Paths (`_real`) only where one is handed out: a resolver's info, an error.
Step = tuple[Any, str | int, str | None]

# An object of a type's own class passes strawberry's `is_type_of` unasked unless it was
# `strawberry.cast` to another type, which sets TYPE_CAST_ATTRIBUTE on the object itself: read
# as strawberry reads it (`getattr`, not `__dict__`, which Python builds afresh for an object
# whose attributes live inline), where the plan says it must be (`Completion.reads_cast_mark`,
# plan.py's `object_completion`), by the runner's `_complete` and the generated completers alike.

# The objects of one plan at one level: (source object, its result dict, its path).
Items = list[tuple[Any, dict[str, Any], Step | None]]
Level = dict[ObjectPlan, Items]
# A field awaiting its value: (field, the object's result dict, its path), or for a batch
# resolver (field, every object of the level, None).
Pending = tuple[FieldPlan, dict[str, Any] | Items, Step | None]


class Abandon(Exception):
    """The compiled result cannot be trusted to equal graphql-core's: let graphql-core answer."""


class Run:
    """One request's execution of an `OperationPlan`."""

    def __init__(
        self,
        plan: OperationPlan,
        planner: Planner,
        schema: GraphQLSchema,
        variables: VariableValues,
        context: Any,
        arguments: dict[FieldPlan, dict[str, Any]] | None = None,
    ) -> None:
        """`arguments`: the arguments already worked out from these very variables (shared across requests)."""
        self.plan = plan
        self.planner = planner
        self.schema = schema
        self.variables = variables
        self.tracked: list[Awaitable[Any]] = []
        helpers = GraphQLResolveInfoHelpers(gather=_gather, track=self.tracked.extend)
        # The request-constant end of every GraphQLResolveInfo (see FieldPlan.info_head).
        self.info_tail = (schema, plan.fragments, None, plan.operation, variables, context, is_awaitable, None, helpers)
        self.context = context
        self.arguments: dict[FieldPlan, dict[str, Any]] = {} if arguments is None else arguments
        self.failures: list[tuple[Exception, FieldPlan, Step]] = []

    async def execute(self) -> tuple[dict[str, Any] | None, list[GraphQLError] | None]:
        """`data` and `errors` as graphql-core would answer them."""
        root = self.plan.root
        if root.start is None:
            _specialize(root)
        assert root.start is not None
        data = root.start(None)
        level: Level = {root: [(None, data, None)]} if root.rest else {}
        while level:
            if in_one_pass(level):
                level = await self._run_subtrees(level)
            else:
                level = await self._run_level(level)
        if self.tracked:
            for outcome in await asyncio.gather(*self.tracked, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise Abandon("tracked work failed") from outcome
        if not self.failures:
            return data, None
        return self._fail(data)

    async def _run_level(self, level: Level) -> Level:
        """Fill in every field of every object of this level; returns the objects of the next."""
        next_level: Level = {}
        pending: list[Pending] = []
        awaitables: list[Awaitable[Any]] = []
        try:
            for object_plan, items in level.items():  # each object's result started (`ObjectPlan.start`)
                # the level's source objects, once for all of its batch resolvers and checks (read-only)
                sources = [source for source, _, _ in items] if object_plan.takes_sources else None
                for field in object_plan.rest:
                    self._start_field(field, items, sources, next_level, pending, awaitables)
        except BaseException:
            _discard(awaitables)
            raise
        if awaitables:
            results = await settle(awaitables)
            for (field, out, path), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result  # cancelled: not a field error
                if isinstance(out, list):
                    self._complete_batch(field, out, result, next_level)
                else:
                    assert path is not None
                    out[field.key] = self._complete_field(field, result, path, next_level)
        return next_level

    async def _run_subtrees(self, level: Level) -> Level:
        """The level and every level below it at once (onepass.py): their fields resolved level
        by level, then each plan's results filled in by its `fill`; returns what those left to
        a level of the runner's (objects of other classes than their type's own)."""
        values = await self._resolve_subtrees(level)
        next_level: Level = {}
        for plan, items in level.items():
            assert plan.fill is not None
            plan.fill(self, items, values, next_level)
        return next_level

    async def _resolve_subtrees(self, level: Level) -> dict[FieldPlan, list[Any]]:
        """Every field's values for the objects of each plan, level by level. The objects of the
        next level are those of their type's own class, in order (what `fill` builds)."""
        values: dict[FieldPlan, list[Any]] = {}
        objects_of = {plan: [source for source, _, _ in items] for plan, items in level.items()}
        while objects_of:
            batched: list[tuple[FieldPlan, list[Any]]] = []
            for plan, objects in objects_of.items():
                for field in plan.rest:
                    if field.batch is not None:
                        batched.append((field, objects))
                    else:
                        assert field.attribute is not None
                        values[field] = list(map(attrgetter(field.attribute), objects))
            if len(objects_of) == 1:
                await self._resolve_in_turn(batched, values)
            elif batched:
                await self._resolve_side_by_side(batched, values)
            objects_of = next_objects(objects_of, values)
        return values

    async def _resolve_in_turn(
        self, batched: list[tuple[FieldPlan, list[Any]]], values: dict[FieldPlan, list[Any]]
    ) -> None:
        """One plan's batch resolvers, awaited one after another with their loads fetched at once
        (`EAGER`): each asks for all its keys in one call, and a later one finds those it shares
        cached, so the statements are those of `settle`'s batches, without its stepping. They run
        in the request's own context, one after another (schema/batch.py: they set no variable
        of it for the others to see)."""
        token = EAGER.set(asyncio.current_task())
        try:
            for field, objects in batched:
                try:
                    answer: Any = await self._start_batch(field, objects)
                except Exception as error:
                    answer = error
                values[field] = _one_per_object(field, answer, len(objects))
        finally:
            EAGER.reset(token)

    async def _resolve_side_by_side(
        self, batched: list[tuple[FieldPlan, list[Any]]], values: dict[FieldPlan, list[Any]]
    ) -> None:
        """The batch resolvers of several plans, all started before any is awaited (`settle`), as
        `_run_level` starts them: loads of one loader from different plans share one statement."""
        awaitables: list[Awaitable[Any]] = []
        try:
            for field, objects in batched:
                awaitables.append(self._start_batch(field, objects))
        except BaseException:
            _discard(awaitables)
            raise
        for (field, objects), answer in zip(batched, await settle(awaitables), strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer  # cancelled: not a field error
            values[field] = _one_per_object(field, answer, len(objects))

    def _complete_batch(self, field: FieldPlan, items: Items, answer: Any, next_level: Level) -> None:
        """A batch resolver's values completed, one per object (`_one_per_object`)."""
        values = _one_per_object(field, answer, len(items))
        if field.complete is not None:
            field.complete(self, field, items, values, next_level)
        else:
            self._complete_values(field, items, values, next_level)

    def _complete_values(self, field: FieldPlan, items: Items, values: list[Any], next_level: Level) -> None:
        """`_complete_field` for each object's value (a field with no completer of its own, codegen.py)."""
        key, typename = field.key, field.parent_type.name
        for (_, out, path), value in zip(items, values, strict=True):
            out[key] = self._complete_field(field, value, (path, key, typename), next_level)

    def _start_field(
        self,
        field: FieldPlan,
        items: Items,
        sources: list[Any] | None,
        next_level: Level,
        pending: list[Pending],
        awaitables: list[Awaitable[Any]],
    ) -> None:
        """Read or resolve `field` (one of `ObjectPlan.rest`) on every object; awaitable results are
        left for the caller. Each object's result already holds the field's key, in response order.

        `sources`: the objects of `items`, when the plan has a batch resolver or a guard (else None).
        """
        key = field.key
        if field.guard is not None:
            assert sources is not None
            field = self._checked(field, items, sources)
        completion = field.completion
        assert completion is not None
        typename = field.parent_type.name
        if field.attribute is not None:  # an object, a list, or a leaf behind an access check
            if field.complete is not None:
                field.complete(self, field, items, None, next_level)
            else:
                attribute = field.attribute
                self._complete_values(field, items, [getattr(source, attribute) for source, _, _ in items], next_level)
            return
        if field.batch is not None:
            assert sources is not None
            pending.append((field, items, None))
            awaitables.append(self._start_batch(field, sources))
            return
        args = field.args if field.args is not None else self._arguments(field)
        resolve, direct = field.resolve, field.direct
        assert resolve is not None
        head, tail = field.info_head, self.info_tail
        if any(type(path) is tuple for _, _, path in items):  # each resolver's info gets a graphql-core Path
            items[:] = _real_items(items)  # made once, for every field of the level's objects
        for source, out, path in items:
            field_path = _path(Path, (path, key, typename))
            try:
                info = GraphQLResolveInfo(*head, field_path, *tail)  # type: ignore[call-arg]  # plan-time prefix
                value = resolve(source, info, **args) if direct is None else direct(source, info, args)
            except Exception as error:
                value = error  # graphql-core treats a raised and a returned error alike
            if is_awaitable(value):
                pending.append((field, out, field_path))
                awaitables.append(value)
            else:
                out[key] = self._complete_field(field, value, field_path, next_level)

    def _start_batch(self, field: FieldPlan, sources: list[Any]) -> Awaitable[Any]:
        """The batch resolver's awaitable for these objects; one that raised at once answers its error."""
        assert field.batch is not None
        args = field.args if field.args is not None else self._arguments(field)
        try:
            return field.batch(sources, self.context, args)
        except Exception as error:
            return _failed(error)

    def _checked(self, field: FieldPlan, items: Items, sources: list[Any]) -> FieldPlan:
        """The plan to resolve a guarded field by on these objects: unguarded when its check grants
        every one at once (one decision for the level, each access noted), else the field itself,
        whose `resolve` checks (and refuses) each object as graphql-core's executor would."""
        guard, unguarded = field.guard, field.unguarded
        assert guard is not None and unguarded is not None
        args = field.args if field.args is not None else self._arguments(field)
        info = self._info(field, (items[0][2], field.key, field.parent_type.name))
        if guard.grants_every_object(info, sources, args):
            return unguarded
        return field

    def _arguments(self, field: FieldPlan) -> dict[str, Any]:
        """Arguments that use variables: the same for every object, so coerced once per request."""
        args = self.arguments.get(field)
        if args is None:
            assert field.definition is not None
            args = self.arguments[field] = get_argument_values(field.definition, field.nodes[0], self.variables)
        return args

    def _complete_field(self, field: FieldPlan, value: Any, path: Step, next_level: Level) -> Any:
        """A resolver's result; an error, or null for a Non-Null field, is recorded as the field's failure."""
        completion = field.completion
        assert completion is not None
        if isinstance(value, Exception):
            self.failures.append((value, field, path))
            return None
        if value is None and not completion.nullable:
            message = f"Cannot return null for non-nullable field {field.parent_type.name}.{field.nodes[0].name.value}."
            self.failures.append((TypeError(message), field, path))
            return None
        return self._complete(completion, value, field, path, next_level)

    def _fail(self, data: dict[str, Any]) -> tuple[dict[str, Any] | None, list[GraphQLError]]:
        """Each failure located, and its null set on its nearest nullable ancestor (the whole `data`
        if it has none), as graphql-core does while unwinding the error.

        Several failures are answered only where graphql-core reports every one whatever the timing:
        each nulls an ancestor no other failure is under (graphql-core stops at the first error
        under one such ancestor, and which is first is timing), none nulls the whole `data`. Their
        order is the order they were met in; graphql-core's is the order they happened to fail in.

        A failed non-null field whose null goes up to an ancestor is not answered here once the
        request has noted accesses for the audit log (schema/authorization.py): graphql-core may
        never start a sibling field after it (it stops an object's remaining fields at a failure
        raised at once), while this runner has read them all, and the log must say what was read.
        """
        failures = [(error, field, _real(path)) for error, field, path in self.failures]
        paths = [path.as_list() for _, _, path in failures]
        audited = bool(getattr(self.context, "audit_records", None))
        targets: list[tuple[Any, str | int] | None] = []
        for (_, _, path), steps in zip(failures, paths, strict=True):
            positions = self._positions(data, path)  # all walked before any null is set
            depth = next((i for i in reversed(range(len(positions))) if positions[i][2]), None)
            if audited and depth != len(positions) - 1:
                raise Abandon("a non-null field failed: graphql-core may not read what this run read and audited")
            if len(paths) > 1:
                if depth is None:
                    raise Abandon("an error nulls the whole data, and another one failed too")
                under = steps[: depth + 1]
                if sum(other[: depth + 1] == under for other in paths) > 1:
                    raise Abandon("errors under one nullable ancestor: graphql-core reports the first to fail")
            targets.append(None if depth is None else positions[depth][:2])
        errors = [
            located_error(raw_error, field.nodes, steps)
            for (raw_error, field, _), steps in zip(failures, paths, strict=True)
        ]
        for target in targets:
            if target is None:
                return None, errors
            container, key = target
            container[key] = None
        return data, errors

    def _positions(self, data: dict[str, Any], path: Path) -> list[tuple[Any, str | int, bool]]:
        """(container, key, may be null) for each step of a response path, from the root down."""
        steps: list[Path] = []
        step: Path | None = path
        while step is not None:
            steps.append(step)
            step = step.prev
        positions: list[tuple[Any, str | int, bool]] = []
        plan: ObjectPlan | None = self.plan.root
        completion: Completion | None = None
        container: Any = data
        for step in reversed(steps):
            if isinstance(step.key, int):
                assert completion is not None and completion.item is not None
                completion = completion.item
            else:
                if completion is not None and completion.kind is ABSTRACT:
                    plan = completion.plans.get(step.typename or "")  # a field's typename: its object's type
                assert plan is not None
                completion = next(f for f in plan.fields if f.key == step.key).completion
                assert completion is not None
            positions.append((container, step.key, completion.nullable))
            container = container[step.key]
            if completion.kind is OBJECT:
                plan = completion.plan
        return positions

    def _complete(self, completion: Completion, value: Any, field: FieldPlan, path: Step, next_level: Level) -> Any:
        """graphql-core's `complete_value` for the happy path; objects are queued for the next level."""
        if isinstance(value, Exception):
            raise Abandon("a resolver returned an error")
        if value is None or value is Undefined:
            if not completion.nullable:
                raise Abandon(f"null for non-null {field.key}")
            return None
        kind = completion.kind
        if kind is LEAF:
            return _leaf(completion, value)
        if kind is LIST:
            return self._complete_list(completion, value, field, path, next_level)
        if kind is OBJECT:
            assert completion.object_type is not None and completion.plan is not None
            if type(value) is completion.own_class and (
                not completion.reads_cast_mark or getattr(value, TYPE_CAST_ATTRIBUTE, None) is None
            ):
                return _started(completion.plan, value, path, next_level)
            return self._queue(completion.object_type, completion.plan, value, field, path, next_level)
        if kind is ABSTRACT:
            return self._complete_abstract(completion, value, field, path, next_level)
        raise Abandon(f"unknown completion {kind}")

    def _complete_list(
        self, completion: Completion, value: Any, field: FieldPlan, path: Step, next_level: Level
    ) -> Any:
        if type(value) is not list and (isinstance(value, (str, bytes)) or not isinstance(value, Iterable)):
            raise Abandon(f"{field.key} is not a list")
        item = completion.item
        assert item is not None
        if item.kind is LEAF:
            return [_leaf(item, v) for v in value]
        return [self._complete(item, v, field, (path, index, None), next_level) for index, v in enumerate(value)]

    def _queue(
        self,
        object_type: GraphQLObjectType,
        plan: ObjectPlan,
        value: Any,
        field: FieldPlan,
        path: Step,
        next_level: Level,
    ) -> dict[str, Any]:
        """`value`'s result, started; its other fields are filled in when the next level runs."""
        if is_awaitable(value):
            _discard([value])
            raise Abandon("awaitable object value")
        if object_type.is_type_of is not None and not object_type.is_type_of(value, self._info(field, path)):
            raise Abandon(f"{field.key} is not a {object_type.name}")
        return _started(plan, value, path, next_level)

    def _complete_abstract(
        self, completion: Completion, value: Any, field: FieldPlan, path: Step, next_level: Level
    ) -> Any:
        """Interfaces and unions: the runtime type as graphql-core finds it, then its own plan."""
        abstract_type = completion.abstract_type
        resolve_type = abstract_type.resolve_type or default_type_resolver
        type_name = resolve_type(value, self._info(field, path), abstract_type)
        if not isinstance(type_name, str):
            _discard([type_name])
            raise Abandon("runtime type is not a plain name")
        runtime_type = self.schema.get_type(type_name)
        if not isinstance(runtime_type, GraphQLObjectType) or not self.schema.is_sub_type(abstract_type, runtime_type):
            raise Abandon(f"invalid runtime type {type_name}")
        plan = self.planner.plan_runtime_type(completion, runtime_type, self.plan.fragments)
        if plan is None:
            raise Abandon(f"unsupported selection on {type_name}")
        if plan.start is None:
            _specialize(plan)
        return self._queue(runtime_type, plan, value, field, path, next_level)

    def _info(self, field: FieldPlan, path: Step) -> GraphQLResolveInfo:
        """The info graphql-core passes along with the field's value (is_type_of, resolve_type)."""
        definition = field.definition
        assert definition is not None
        head = field.info_head or (field.nodes[0].name.value, field.nodes, definition.type, field.parent_type)
        return GraphQLResolveInfo(*head, _real(path), *self.info_tail)  # type: ignore[call-arg]  # plan-time prefix


@overload
def _real(path: Step, made: dict[int, Path] | None = None) -> Path: ...
@overload
def _real(path: None, made: dict[int, Path] | None = None) -> None: ...
def _real(path: Step | None, made: dict[int, Path] | None = None) -> Path | None:
    """A run's path as graphql-core's Path: its plain-tuple steps (see Step) made Paths, up to the
    first real one. `made`: Paths already made for steps (by id), so siblings share their ancestors."""
    if type(path) is not tuple:
        return path  # type: ignore[return-value]  # a Path already, or None
    real = made.get(id(path)) if made is not None else None
    if real is None:
        prev, key, typename = path
        real = _path(Path, (_real(prev, made), key, typename))
        if made is not None:
            made[id(path)] = real
    return real


def _real_items(items: Items) -> Items:
    """`items` with graphql-core Paths; an ancestor shared by siblings (their list, its object) made once."""
    made: dict[int, Path] = {}
    return [(source, out, _real(path, made)) for source, out, path in items]


def _specialize(plan: ObjectPlan) -> None:
    """Straight-line code for `plan`, its fields and the plans of their objects (codegen.py).

    `plan.start` is set last: it marks the plan as done, so a failure halfway leaves it to be
    made again (by the next request) rather than half made."""
    rest = rest_fields(plan)
    for field in rest:
        for made in (field, field.unguarded):
            if made is not None:
                made.complete = completer_function(made, _leaf)
        completion = field.completion
        while completion is not None and completion.kind is LIST:
            completion = completion.item
        child = completion.plan if completion is not None and completion.kind is OBJECT else None
        if child is not None and child.start is None:
            _specialize(child)
    plan.rest = rest
    plan.takes_sources = any(field.batch is not None or field.guard is not None for field in plan.fields)
    if rest and fills_in_one_pass(plan):
        plan.fill, plan.branches = fill_function(plan, _leaf), branches(plan)  # no fill: nested too deep
        plan.below = below(plan)
    plan.start = start_function(plan, _leaf)


def _started(plan: ObjectPlan, value: Any, path: Step, next_level: Level) -> dict[str, Any]:
    """`value`'s result as `plan` starts it, queued for the next level when fields are left to fill."""
    assert plan.start is not None
    out = plan.start(value)
    if plan.rest:
        items = next_level.get(plan)
        if items is None:
            items = next_level[plan] = []
        items.append((value, out, path))
    return out


def _fits_int(value: Any) -> bool:
    return bool(MIN_INT <= value <= MAX_INT)


def _leaf(completion: Completion, value: Any) -> Any:
    """A scalar or enum value as graphql-core serializes it; null only where the type allows."""
    as_is = completion.serializes_as_is
    # a str for String or ID, a bool for Boolean, an int for Int (in Int's 32 bits)
    if type(value) is as_is and (as_is is not int or _fits_int(value)):
        return value
    if value is None or value is Undefined:
        if completion.nullable:
            return None
        raise Abandon("null for a non-null leaf")
    if isinstance(value, Exception):
        raise Abandon("a resolver returned an error")
    assert completion.coerce is not None
    coerced = completion.coerce(value)
    if coerced is None or coerced is Undefined:
        raise Abandon("leaf coerced to null")
    return coerced


def _one_per_object(field: FieldPlan, answer: Any, count: int) -> list[Any]:
    """A batch resolver's values, one per object; an exception it raised is every object's error."""
    if isinstance(answer, Exception):
        return [answer] * count
    if not isinstance(answer, list) or len(answer) != count:
        raise Abandon(f"batch resolver of {field.key} answered {type(answer).__name__}, not one value per object")
    return answer


async def _failed(error: Exception) -> Any:
    """A batch resolver that raised before returning its awaitable: its error, awaited like the others."""
    return error


async def _gather(values: Any) -> list[Any]:
    """`info.async_helpers.gather` for resolvers that ask for it."""
    return list(await asyncio.gather(*values))


def _discard(awaitables: list[Any]) -> None:
    """Close coroutines that will never be awaited, so they do not warn about it."""
    for awaitable in awaitables:
        if iscoroutine(awaitable):
            awaitable.close()
