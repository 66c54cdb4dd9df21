"""Query plans: what graphql-core works out for every field of every object, worked out once.

graphql-core, for each object in a result, collects the fields of the selection set (following
fragments), looks up each field's definition, builds its arguments and walks the return type's
wrappers. None of that depends on the data, only on the document and the object's type, so a
plan does it once per (document, operation) and the runner (`run.py`) only reads it.

A plan is a tree: an `ObjectPlan` (one concrete object type and a selection) lists its
`FieldPlan`s; each field says how to read its value (an attribute, or the field's own `resolve`)
and how to complete it (a `Completion`: leaf, list, object, or abstract type), and the object
completions hold the sub-plans. Anything a plan cannot express raises `Unsupported`, and the
operation is left to graphql-core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_argument_values,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
    specified_scalar_types,
    type_from_ast,
)
from graphql.execution import default_field_resolver
from strawberry.schema import schema_converter
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.authorization import Guard, guard_of
from schema.batch import BatchResolver, batch_resolver
from schema.compiled.direct import DirectCall, direct_call

__all__ = [
    "Completion",
    "FieldPlan",
    "ObjectPlan",
    "OperationPlan",
    "Planner",
    "Unsupported",
    "castable",
    "object_completion",
]

LEAF, LIST, OBJECT, ABSTRACT = "leaf", "list", "object", "abstract"
TYPENAME = "__typename"


class Unsupported(Exception):
    """The document uses something the compiled path does not handle: graphql-core runs it."""


@dataclass(slots=True, eq=False)
class Completion:
    """How to turn a resolved value into JSON for one (possibly wrapped) output type.

    `nullable` is False for a Non-Null type; `kind` says which of the other fields apply:
    leaf -> `coerce` (the scalar's or enum's `coerce_output_value`), list -> `item`,
    object -> `object_type` and `plan`, abstract -> `abstract_type` and a plan per runtime type
    made on first use (`plans`; None there marks a type the compiled path cannot handle).
    """

    kind: str
    nullable: bool
    coerce: Callable[[Any], Any] | None = None
    own_class: type | None = None  # object: values of exactly this class pass `is_type_of` unasked...
    reads_cast_mark: bool = True  # ... once they carry no `strawberry.cast` mark (`object_completion`)
    serializes_as_is: type | None = None  # leaf: values of exactly this type are their own JSON
    stringifies: type | None = None  # leaf: values of exactly this type serialize as `str(value)`
    item: Completion | None = None
    object_type: GraphQLObjectType | None = None
    plan: ObjectPlan | None = None
    abstract_type: Any = None
    nodes: list[FieldNode] = field(default_factory=list)
    plans: dict[str, ObjectPlan | None] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class FieldPlan:
    """One response key of an object: where its value comes from and how it is completed.

    Exactly one source applies: `typename` (the literal `__typename`), `attribute` (strawberry's
    default resolver is `getattr(source, python_name)`, so we read it directly), or `resolve`
    (every other field: the same function graphql-core would call, so wrappers that enforce
    authorization or tracing on `GraphQLField.resolve` still run). `args` holds arguments coerced
    once at plan time; it is None when they depend on variables (coerced once per request).
    `info_head` is the field-constant start of its `GraphQLResolveInfo`. `batch`, when set,
    resolves the field for all objects of a level in one call (schema/batch.py): only for a
    field whose `resolve` nothing wraps (or the unguarded plan below), so no access check or
    span is ever skipped.
    `guard` is the access check that is the field's `resolve` (schema/authorization.py), and
    `unguarded` the same field planned as if nothing checked it: the runner uses it for a level
    whose objects the check grants all at once (the principal's grant has no condition), after
    the check has noted their accesses; otherwise each object goes through `resolve`.
    """

    key: str
    nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    definition: GraphQLField | None
    completion: Completion | None
    typename: str | None = None
    attribute: str | None = None
    resolve: Callable[..., Any] | None = None
    args: dict[str, Any] | None = None
    info_head: tuple[Any, ...] = ()
    batch: BatchResolver | None = None
    direct: DirectCall | None = None
    guard: Guard | None = None
    unguarded: FieldPlan | None = None
    complete: Callable[..., None] | None = None  # completes its values on a whole level (codegen.py)


@dataclass(slots=True, eq=False)
class ObjectPlan:
    """The fields to produce, in response order, for objects of one concrete type.

    Made by the runner on first use (codegen.py): `start` makes an object's result with its
    attribute leaves and `__typename`s filled in; `rest` are the fields left to the runner (none:
    the object is done where it is found, it needs no level of its own). `fill`, when every
    field below the plan can be, runs a level of its objects and everything below them in one pass.
    """

    object_type: GraphQLObjectType
    fields: list[FieldPlan]
    start: Callable[[Any], dict[str, Any]] | None = None
    rest: list[FieldPlan] = field(default_factory=list)
    takes_sources: bool = False  # a field has a batch resolver or a guard: the runner lists a level's objects once
    fill: Callable[..., None] | None = None  # the level's whole subtree in one pass (onepass.py)
    # with `fill`: the fields the next level's objects are under (field, their plan, listed, completion)
    branches: list[tuple[FieldPlan, ObjectPlan, bool, Completion]] = field(default_factory=list)
    below: frozenset[ObjectPlan] = frozenset()  # with `fill`: every plan of the objects below (their values' keys)


@dataclass(slots=True, eq=False)
class OperationPlan:
    """A whole query: the root plan plus what every resolver's `info` shares.

    `variables` keeps, per set of scalar variables (`{"first": 24}`), what graphql-core coerced
    them to and the arguments worked out from them (field -> arguments), as `args` keeps the
    arguments written into the document: requests with the same variables share both.
    """

    operation: OperationDefinitionNode
    root: ObjectPlan
    fragments: dict[str, FragmentDefinitionNode]
    declared: tuple[str, ...] = ()  # the operation's variables, in order
    variables: dict[tuple[Any, ...], tuple[Any, dict[FieldPlan, dict[str, Any]]]] = field(default_factory=dict)


def _basic_resolver_code() -> Any:
    """The code object of strawberry's resolver for fields without a resolver of their own.

    Strawberry gives such fields a `_get_basic_result` closure that returns
    `getattr(source, python_name)`. Recognising it by its code object (not by name or a marker
    attribute, which `functools.wraps` would copy onto a wrapper) means a field whose resolve was
    wrapped, e.g. for authorization, is never mistaken for a plain attribute.
    """
    for constant in schema_converter.GraphQLCoreConverter.from_resolver.__code__.co_consts:
        if getattr(constant, "co_name", None) == "_get_basic_result":
            return constant
    return None  # another strawberry version: every field is then called through resolve


_BASIC_RESOLVER_CODE = _basic_resolver_code()


def _attribute_name(definition: GraphQLField, resolve: Callable[..., Any] | None) -> str | None:
    """The Python attribute to read for this field, when reading it is all `resolve` (its resolver) does."""
    if resolve is None or _BASIC_RESOLVER_CODE is None:
        return None
    if getattr(resolve, "__code__", None) is not _BASIC_RESOLVER_CODE:
        return None
    strawberry_field = (definition.extensions or {}).get(schema_converter.GraphQLCoreConverter.DEFINITION_BACKREF)
    if strawberry_field is None or strawberry_field.base_resolver is not None:
        return None
    if strawberry_field.default_resolver is not getattr:
        return None
    return strawberry_field.python_name


def _resolved_by(plan: FieldPlan, resolve: Callable[..., Any] | None) -> FieldPlan:
    """`plan` with where its values come from, when `resolve` is the field's resolve."""
    definition = plan.definition
    assert definition is not None
    nodes, name = plan.nodes, plan.nodes[0].name.value
    plan.attribute = _attribute_name(definition, resolve) if not definition.args else None
    if plan.attribute is None:
        plan.resolve = resolve or default_field_resolver
        if not hasattr(plan.resolve, "__wrapped__"):  # guarded or traced: every object through resolve
            plan.batch = batch_resolver(plan.parent_type.name, name)
            plan.direct = direct_call(definition, plan.resolve) if plan.batch is None else None
        plan.info_head = (name, nodes, definition.type, plan.parent_type)
        if not any(_uses_variables(a.value) for a in nodes[0].arguments or ()):
            plan.args = get_argument_values(definition, nodes[0])
    return plan


# graphql-core's String, ID, Boolean and Int return a value of exactly this type unchanged (Int
# when it fits in 32 bits, which the runner checks).
_SERIALIZED_AS_IS: dict[str, type] = {"String": str, "ID": str, "Boolean": bool, "Int": int}
# Scalars whose output coercion is `str` itself, and the Python type of their values (strawberry's
# Decimal: every price on a page).
_STRINGIFIED: dict[str, type] = {"Decimal": Decimal}


def _own_class(object_type: GraphQLObjectType) -> type | None:
    """The strawberry class whose instances strawberry's own `is_type_of` always accepts.

    Strawberry's generated check is an isinstance test against the class (and its interfaces),
    unless the object was `strawberry.cast` to another type; a type with an `is_type_of` of its
    own gets None here, and the runner asks it for every value.
    """
    definition = (object_type.extensions or {}).get("strawberry-definition")
    if definition is None or getattr(definition, "is_type_of", None) is not None:
        return None
    if getattr(definition, "concrete_of", None) is not None:
        return None
    origin = getattr(definition, "origin", None)
    return origin if isinstance(origin, type) else None


def object_completion(
    object_type: GraphQLObjectType, plan: ObjectPlan, own_class: type | None, nullable: bool = True
) -> Completion:
    """An object completion; whether its own class's objects are checked for the cast mark is
    decided here, once, for the runner and the generated completers alike.

    `strawberry.cast` sets TYPE_CAST_ATTRIBUTE on the object, and strawberry's `is_type_of` then
    answers for the type it was cast to. The mark needs no reading for a type without
    `is_type_of` (graphql-core takes any object for it) nor for a class whose objects cannot
    carry it (`castable`).
    """
    reads_cast_mark = object_type.is_type_of is not None and castable(own_class)
    return Completion(
        OBJECT, nullable, object_type=object_type, plan=plan, own_class=own_class, reads_cast_mark=reads_cast_mark
    )


def castable(own_class: type | None) -> bool:
    """Whether `strawberry.cast` may mark an instance of `own_class` (it sets an attribute on the
    object) or its `is_type_of` may read such a mark: no, for a plain class with `__slots__`, no
    `__dict__`, and nothing of that name or custom attribute access anywhere in its MRO."""
    if own_class is None:
        return True
    return (
        own_class.__dictoffset__ != 0
        or any(TYPE_CAST_ATTRIBUTE in vars(klass) for klass in own_class.__mro__)  # a slot, a property, a value
        or own_class.__setattr__ is not object.__setattr__
        or own_class.__getattribute__ is not object.__getattribute__
        or hasattr(own_class, "__getattr__")
    )


def _uses_variables(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_uses_variables(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_uses_variables(f.value) for f in value.fields)
    return False


class Planner:
    """Builds plans against one graphql-core schema."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema

    def plan_operation(self, document: Any, operation: OperationDefinitionNode) -> OperationPlan:
        if operation.directives:
            raise Unsupported("operation directives")
        root_type = self.schema.query_type
        if root_type is None:
            raise Unsupported("no query type")
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        if any(getattr(f, "variable_definitions", None) for f in fragments.values()):
            raise Unsupported("fragment variables")
        root = self.plan_object(root_type, [operation.selection_set], fragments)
        if any(f.key.startswith("__") and f.typename is None for f in root.fields):
            raise Unsupported("introspection")
        declared = tuple(d.variable.name.value for d in operation.variable_definitions or ())
        return OperationPlan(operation=operation, root=root, fragments=fragments, declared=declared)

    def plan_object(
        self,
        object_type: GraphQLObjectType,
        selection_sets: list[SelectionSetNode],
        fragments: dict[str, FragmentDefinitionNode],
    ) -> ObjectPlan:
        """The plan for objects of `object_type` under the merged `selection_sets`."""
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._collect(object_type, selection_set, fragments, grouped, visited)
        fields = [self._plan_field(object_type, key, nodes, fragments) for key, nodes in grouped.items()]
        return ObjectPlan(object_type, [f for f in fields if f is not None])

    def _collect(
        self,
        object_type: GraphQLObjectType,
        selection_set: SelectionSetNode,
        fragments: dict[str, FragmentDefinitionNode],
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        """graphql-core's `collect_fields`, in the same order, with directives known at plan time."""
        for selection in selection_set.selections:
            if not _included(selection.directives):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._matches(selection.type_condition, object_type):
                    self._collect(object_type, selection.selection_set, fragments, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or not self._matches(fragment.type_condition, object_type) or name in visited:
                    continue
                visited.add(name)
                self._collect(object_type, fragment.selection_set, fragments, grouped, visited)

    def _matches(self, type_condition: Any, object_type: GraphQLObjectType) -> bool:
        if type_condition is None:
            return True
        conditional_type = type_from_ast(self.schema, type_condition)
        if conditional_type is object_type:
            return True
        return is_abstract_type(conditional_type) and self.schema.is_sub_type(conditional_type, object_type)

    def _plan_field(
        self,
        parent_type: GraphQLObjectType,
        key: str,
        nodes: list[FieldNode],
        fragments: dict[str, FragmentDefinitionNode],
    ) -> FieldPlan | None:
        name = nodes[0].name.value
        if name == TYPENAME:
            return FieldPlan(key, nodes, parent_type, None, None, typename=parent_type.name)
        definition = parent_type.fields.get(name)
        if definition is None:
            if name.startswith("__"):
                raise Unsupported("introspection")
            return None  # graphql-core skips unknown fields too (validation has refused them)
        plan = _resolved_by(
            FieldPlan(key, nodes, parent_type, definition, self._completion(definition.type, nodes, fragments)),
            definition.resolve,
        )
        guard = guard_of(plan.resolve)
        if guard is not None:  # the same field as if nothing checked it, for a level the check grants at once
            plan.guard = guard
            plan.unguarded = _resolved_by(
                FieldPlan(key, nodes, parent_type, definition, plan.completion), guard.resolve
            )
        return plan

    def _completion(
        self, type_: GraphQLOutputType, nodes: list[FieldNode], fragments: dict[str, FragmentDefinitionNode]
    ) -> Completion:
        nullable = not isinstance(type_, GraphQLNonNull)
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            return Completion(LIST, nullable, item=self._completion(type_.of_type, nodes, fragments))
        if is_leaf_type(type_):
            as_is = _SERIALIZED_AS_IS.get(type_.name) if specified_scalar_types.get(type_.name) is type_ else None
            coerce = type_.coerce_output_value
            stringifies = _STRINGIFIED.get(type_.name) if coerce is str else None
            return Completion(LEAF, nullable, coerce=coerce, serializes_as_is=as_is, stringifies=stringifies)
        selection_sets = [n.selection_set for n in nodes if n.selection_set is not None]
        if is_object_type(type_):
            plan = self.plan_object(type_, selection_sets, fragments)
            return object_completion(type_, plan, _own_class(type_), nullable)
        if is_abstract_type(type_):
            return Completion(ABSTRACT, nullable, abstract_type=type_, nodes=nodes)
        raise Unsupported(f"output type {type_}")

    def plan_runtime_type(
        self, completion: Completion, object_type: GraphQLObjectType, fragments: dict[str, FragmentDefinitionNode]
    ) -> ObjectPlan | None:
        """The sub-plan of an abstract field for one of its runtime types, made on first use."""
        if object_type.name not in completion.plans:
            selection_sets = [n.selection_set for n in completion.nodes if n.selection_set is not None]
            try:
                completion.plans[object_type.name] = self.plan_object(object_type, selection_sets, fragments)
            except Unsupported:
                completion.plans[object_type.name] = None
        return completion.plans[object_type.name]


def _included(directives: tuple[DirectiveNode, ...] | None) -> bool:
    """@skip/@include with literal arguments; any other directive, or a variable, is unsupported."""
    if not directives:
        return True
    include = True
    for directive in directives:
        name = directive.name.value
        if name not in (GraphQLSkipDirective.name, GraphQLIncludeDirective.name):
            raise Unsupported(f"directive @{name}")
        if any(_uses_variables(a.value) for a in directive.arguments or ()):
            raise Unsupported("@skip/@include on a variable")
        definition = GraphQLSkipDirective if name == GraphQLSkipDirective.name else GraphQLIncludeDirective
        condition = get_argument_values(definition, directive)["if"]
        include = include and (not condition if definition is GraphQLSkipDirective else condition)
    return include
