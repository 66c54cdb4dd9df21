"""Enforcement generated from `policies/access.toml`: the one place access checks are made.

At start-up `authorize(schema, policy)` checks the policy against the built schema (an
unknown type, field, argument or condition raises `PolicyError`) and wraps the graphql-core
`GraphQLField.resolve` of every field the policy protects with a check, composed with the
resolver already there. Fields the policy leaves open (the public catalog) are not touched,
so they cost nothing. Wrapping the graphql-core field, not the strawberry resolver, means
every executor (graphql-core's, a compiled fast path) goes through the same check. The compiled
path asks the check once for a whole level of objects where the principal's grant has no
condition (`Guard.grants_every_object`: the same answer for every object, each access noted);
where the grant depends on the object, or there is none, it calls the check for each object.

A rule that needs a row read inside a transaction (whose cart it is) is evaluated by
`permits`, which the service calls with the row it has locked: `[types.X]` for reading,
`[changes.X]` for changing. `require` refuses before a look-up says whether anything exists.

Conditions are named in the policy and implemented here, in `CONDITIONS`. Accesses to a
customer's data by the roles the policy audits are collected in the request's Context and
written once after execution by `write_audit`; a granted change is written by `permits` in
the change's own transaction.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    default_field_resolver,
)

from commerce.catalog import service as catalog
from commerce.orders import service as orders
from core.ids import InvalidGlobalId, from_global_id, int_key
from policies.access import ROOT_TYPES, AccessPolicy, Grant, PolicyError, Rule, SubjectKind
from policies.principal import Principal, Role
from schema.errors import ClientError, forbidden, unauthenticated
from schema.execution import current_trace_id
from vault.audit import AuditEntry

__all__ = [
    "CONDITIONS",
    "AuditUnavailable",
    "Check",
    "Guard",
    "PolicyReport",
    "authorize",
    "condition",
    "guard_of",
    "is_guarded",
    "permits",
    "record_change",
    "require",
    "validate_policy",
    "write_audit",
]

logger = logging.getLogger("omnigate.authorization")

Condition = Callable[["Check"], "bool | Awaitable[bool]"]
CONDITIONS: dict[str, Condition] = {}
_DENY_ALL = Rule(target="(default deny)", grants={})


@dataclass(frozen=True, slots=True)
class Check:
    """What a condition may look at: who asks, through which channel, about which subject."""

    principal: Principal
    info: GraphQLResolveInfo
    source: Any
    args: dict[str, Any]
    subject: str | None  # the customer's key the field is about, when the policy names it

    @property
    def channel_kind(self) -> str:
        return self.info.context.channel.kind


def condition(name: str) -> Callable[[Condition], Condition]:
    """Register a named predicate the policy file may use."""

    def register(fn: Condition) -> Condition:
        CONDITIONS[name] = fn
        return fn

    return register


@condition("self")
def _is_self(check: Check) -> bool:
    """Own data only: the signed-in customer is the subject."""
    own = check.principal.customer_subject
    return own is not None and check.subject == own


@condition("unowned")
def _unowned(check: Check) -> bool:
    """No customer is the subject: a guest's cart (open to whoever holds its unguessable id), or an
    operation that names no customer (it acts on the caller's own account)."""
    return check.subject is None


@condition("self_or_unnamed")
def _self_or_unnamed(check: Check) -> bool:
    """A customer acting on their own data: the subject argument is absent or names them."""
    p = check.principal
    return p.role is Role.CUSTOMER and (check.subject is None or check.subject == p.subject)


@condition("created_in_request")
def _created_in_request(check: Check) -> bool:
    """The subject was created by this very request (a registrant sees the account just made)."""
    return check.subject is not None and check.subject in check.info.context.created_subjects


@condition("at_till")
def _at_till(check: Check) -> bool:
    """Store staff serving a customer in person: the request comes through the store channel."""
    return check.principal.location is not None and check.channel_kind == "STORE"


@condition("pickup_location")
def _pickup_location(check: Check) -> bool:
    """Staff of the store where the order is collected (the parent's `pickup_location_code`)."""
    location = getattr(check.source, "pickup_location_code", None)
    return check.principal.location is not None and location == check.principal.location


async def _location_code(check: Check, location_id: int | None) -> str | None:
    if location_id is None:
        return None
    found = await catalog.locations_by_ids(check.info.context.services.engine, [location_id])
    return found[location_id].code if location_id in found else None


def _arg_key(raw: Any, type_name: str) -> int | None:
    try:
        return int_key(from_global_id(str(raw), type_name)[1]) if raw is not None else None
    except InvalidGlobalId:
        return None


async def _order_of_arg(check: Check) -> tuple[int | None, int | None] | None:
    """(customer key, store id) of the order named by the `orderId` argument, if it exists."""
    order_id = _arg_key(check.args.get("orderId"), "Order")
    return await orders.order_location(check.info.context.services.engine, order_id) if order_id else None


@condition("own_order")
async def _own_order(check: Check) -> bool:
    """The signed-in customer's own order, or the order this request's checkout placed (or replayed)
    from the cart the caller holds (how a guest sees the order they just placed)."""
    if getattr(check.source, "from_checkout", False):
        return True
    p = check.principal
    if p.role is not Role.CUSTOMER or p.subject is None:
        return False
    if "orderId" in check.args:
        found = await _order_of_arg(check)
        return found is not None and found[0] is not None and str(found[0]) == p.subject
    return check.subject == p.subject


@condition("order_store")
async def _order_store(check: Check) -> bool:
    """Staff of the order's store (where it is collected, or whose till sold it) or of the store
    serving it: the store taking its return, or the till serving its customer (store channel).
    A step on the order (`orderId` argument) is for the order's own store only."""
    location = check.principal.location
    if location is None:
        return False
    source = check.source
    if hasattr(source, "store_code"):
        serving = (source.store_code, getattr(source, "serving_store_code", None))
        return location in serving or check.channel_kind == "STORE"
    found = await _order_of_arg(check)
    return found is not None and await _location_code(check, found[1]) == location


@condition("own_store_filter")
async def _own_store_filter(check: Check) -> bool:
    """The list is filtered to the staff member's own store (`filter.pickupLocationId`)."""
    location = check.principal.location
    raw = (check.args.get("filter") or {}).get("pickupLocationId")
    return location is not None and await _location_code(check, _arg_key(raw, "Location")) == location


@condition("at_own_store")
async def _at_own_store(check: Check) -> bool:
    """The `locationId` argument is the staff member's own store (a return taken over its counter)."""
    location = check.principal.location
    return (
        location is not None
        and await _location_code(check, _arg_key(check.args.get("locationId"), "Location")) == location
    )


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """What start-up found: the fields now guarded, and root fields that fall to a default."""

    guarded: tuple[str, ...]
    uncovered: tuple[str, ...]  # "Query.x (default: public)"


# ---------------------------------------------------------------- validation


def _object_types(schema: GraphQLSchema) -> dict[str, GraphQLObjectType | GraphQLInterfaceType]:
    return {
        name: t
        for name, t in schema.type_map.items()
        if not name.startswith("__") and isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
    }


def validate_policy(policy: AccessPolicy, schema: GraphQLSchema) -> PolicyReport:
    """Every type, field, argument and condition the policy names exists; else `PolicyError`."""
    types = _object_types(schema)
    problems: list[str] = []
    for name, rule in policy.personal.items():
        if name not in types or isinstance(types[name], GraphQLInterfaceType):
            problems.append(f"[types.{name}]: no object type {name!r} in the schema")
        elif rule.subject is not None and not _has_attribute(types[name], rule.subject.name):
            problems.append(f"[types.{name}]: subject names {rule.subject.name!r}, which {name} objects do not have")
    for name, rule in policy.changes.items():
        if name not in types or isinstance(types[name], GraphQLInterfaceType):
            problems.append(f"[changes.{name}]: no object type {name!r} in the schema")
        elif rule.subject is not None and not _has_attribute(types[name], rule.subject.name):
            problems.append(f"[changes.{name}]: subject names {rule.subject.name!r}, which {name} objects do not have")
    for target, rule in policy.rules.items():
        type_name, field_name = target.split(".")
        gql_type = types.get(type_name)
        if gql_type is None:
            problems.append(f"rule {target!r}: no type {type_name!r} in the schema")
            continue
        if isinstance(gql_type, GraphQLInterfaceType):
            problems.append(f"rule {target!r}: {type_name} is an interface: write the rule for its object types")
            continue
        gql_field = gql_type.fields.get(field_name)
        if gql_field is None:
            problems.append(f"rule {target!r}: {type_name} has no field {field_name!r}")
            continue
        if (
            rule.subject is not None
            and rule.subject.kind is SubjectKind.ARG
            and rule.subject.name not in gql_field.args
        ):
            problems.append(f"rule {target!r}: the field has no argument {rule.subject.name!r}")
        if (
            rule.subject is not None
            and rule.subject.kind is SubjectKind.ATTR
            and not _has_attribute(gql_type, rule.subject.name)
        ):
            problems.append(
                f"rule {target!r}: subject names {rule.subject.name!r}, which {type_name} objects do not have"
            )
    kinds = schema.get_type("ChannelKind")
    known_kinds = set(kinds.values) if isinstance(kinds, GraphQLEnumType) else set()
    for kind in sorted(set(policy.channels) - known_kinds):
        problems.append(f"[channels]: no channel kind {kind!r}; known: {sorted(known_kinds)}")
    unknown = policy.condition_names() - set(CONDITIONS)
    if unknown:
        problems.append(f"unknown condition(s) {sorted(unknown)}; known: {sorted(CONDITIONS)}")
    if problems:
        raise PolicyError("the access policy does not match the schema: " + "; ".join(problems))
    uncovered = [
        f"{root}.{name} (default: {policy.default_for(root)})"
        for root in ROOT_TYPES
        if root in types
        for name in types[root].fields
        if f"{root}.{name}" not in policy.rules
    ]
    guarded = [
        f"{type_name}.{name}"
        for type_name, gql_type in types.items()
        for name in gql_type.fields
        if _effective_rule(policy, type_name, name) is not None
    ]
    return PolicyReport(guarded=tuple(guarded), uncovered=tuple(uncovered))


def _has_attribute(gql_type: GraphQLObjectType | GraphQLInterfaceType, name: str) -> bool:
    """Whether the strawberry class behind `gql_type` has `name` (a field, Private or not, or a property).

    A subject attribute that does not exist would make every `self` check fail and, worse,
    silently skip the audit record, so a typo in the policy must stop start-up.
    """
    definition = (gql_type.extensions or {}).get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    if definition is None or origin is None:
        return True  # not a strawberry type: nothing to check against
    names = {f.python_name for f in definition.fields} | {f.name for f in dataclasses.fields(origin)}
    return name in names or hasattr(origin, name)


def _effective_rule(policy: AccessPolicy, type_name: str, field_name: str) -> Rule | None:
    """The rule to enforce on a field, or None when the field is open to every role."""
    rule = policy.rule_for(type_name, field_name)
    if rule is None:
        return _DENY_ALL if type_name in ROOT_TYPES and policy.default_for(type_name) == "deny" else None
    everyone = all(rule.grants.get(role) is not None and not rule.grants[role].conditions for role in Role)
    if everyone and rule.subject is None:
        return None
    return rule


# ---------------------------------------------------------------- enforcement


def authorize(schema: strawberry.Schema, policy: AccessPolicy) -> PolicyReport:
    """Validate `policy` against `schema` and guard every field it protects (once per schema)."""
    gql = schema._schema
    report = validate_policy(policy, gql)
    if gql.extensions.get("omnigate_authorized"):
        raise PolicyError("the schema is already authorized: build a fresh schema per policy")
    for type_name, gql_type in _object_types(gql).items():
        if isinstance(gql_type, GraphQLInterfaceType):
            continue  # interfaces do not resolve; their object types do
        for field_name, gql_field in gql_type.fields.items():
            rule = _effective_rule(policy, type_name, field_name)
            if rule is None:
                continue
            target = f"{type_name}.{field_name}"
            gql_field.resolve = _guard(gql_field.resolve or default_field_resolver, rule, policy, target)
            if gql_field.subscribe is not None:  # refuse the subscription itself, not only its events
                gql_field.subscribe = _guard(gql_field.subscribe, rule, policy, target)
    gql.extensions = {**(gql.extensions or {}), "omnigate_authorized": True}
    for line in report.uncovered:
        logger.warning("no access rule for %s: add one to policies/access.toml", line)
    return report


def is_guarded(gql_field: GraphQLField) -> bool:
    """Whether the field's resolve checks access (a fast path must call it, never bypass it).

    Follows `__wrapped__`, so a wrapper composed on top (tracing) still reports the guard below it.
    """
    resolve = gql_field.resolve
    while resolve is not None:
        if getattr(resolve, "__omnigate_guarded__", False):
            return True
        resolve = getattr(resolve, "__wrapped__", None)
    return False


def _guard(resolve: Callable[..., Any], rule: Rule, policy: AccessPolicy, target: str) -> Callable[..., Any]:
    audited_type = target.split(".")[0]

    def guarded(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        context = info.context
        principal: Principal = context.principal
        grant = rule.grant_for(principal.role)
        subject = _subject(rule, source, args)
        if grant is None:
            _note(info, policy, rule, audited_type, subject, allowed=False)
            raise _denied(principal)
        if grant.conditions:
            outcomes = _outcomes(grant, Check(principal, info, source, args, subject))
            if any(inspect.isawaitable(o) for o in outcomes):
                return _await_then_resolve(outcomes, resolve, source, info, args, policy, rule, audited_type, subject)
            if not all(outcomes):
                _note(info, policy, rule, audited_type, subject, allowed=False)
                raise _denied(principal)
        _note(info, policy, rule, audited_type, subject, allowed=True)
        return resolve(source, info, **args)

    guarded.__wrapped__ = resolve  # type: ignore[attr-defined]
    guarded.__omnigate_guarded__ = True  # type: ignore[attr-defined]
    guarded.__omnigate_guard__ = Guard(rule, policy, audited_type, resolve, guarded)  # type: ignore[attr-defined]
    return guarded


@dataclass(frozen=True, slots=True)
class Guard:
    """A field's check, for an executor that resolves the field for many objects at once."""

    rule: Rule
    policy: AccessPolicy
    type_name: str  # the type its accesses are audited under
    resolve: Callable[..., Any]  # the field's own resolve, which the check wraps
    guarded: Callable[..., Any]  # the check itself

    def grants_every_object(self, info: GraphQLResolveInfo, sources: list[Any], args: dict[str, Any]) -> bool:
        """True when the principal's grant has no condition, so it holds for every object alike: the
        access to each is then noted as `guarded` notes it, and the caller resolves the field unchecked.
        False (nothing noted) when the grant depends on the object or there is none: the caller must
        then call the guarded resolve for each object, which refuses and notes each as before.

        `info` is the first object's; every object of `sources` is reached through the same root
        field (one plan level), which is all the audit record takes from the path.
        """
        context = info.context
        grant = self.rule.grant_for(context.principal.role)
        if grant is None or grant.conditions:
            return False
        rule, policy = self.rule, self.policy
        if rule.audit and policy.is_audited(context.principal) and rule.subject is not None:
            operation, field_name, records = _operation(info), info.field_name, context.audit_records
            for subject in _subjects(rule, sources, args):
                records.setdefault((operation, self.type_name, subject, "allowed"), set()).add(field_name)
        return True


def _subjects(rule: Rule, sources: list[Any], args: dict[str, Any]) -> set[str]:
    """`_subject` of each object, each once, none for no subject (not audited, as in `_note`):
    a customer's 50 orders are one subject."""
    ref = rule.subject
    if ref is not None and ref.kind is SubjectKind.ATTR:
        name = ref.name
        return {str(value) for source in sources if (value := getattr(source, name, None)) is not None}
    subject = _subject(rule, None, args)  # from the arguments: the same for every object
    return set() if subject is None else {subject}


def guard_of(resolve: Any) -> Guard | None:
    """The check `authorize` put around a field, when `resolve` is that very check (a wrapper on top,
    a resolver span say, copies its attributes but is not the check: None, so it is never bypassed)."""
    guard: Guard | None = getattr(resolve, "__omnigate_guard__", None)
    return guard if guard is not None and guard.guarded is resolve else None


def _outcomes(grant: Grant, check: Check) -> list[bool | Awaitable[bool]]:
    """One outcome per clause of `grant`: whether any of its alternatives holds (awaitable when one is)."""
    outcomes: list[bool | Awaitable[bool]] = []
    for clause in grant.clauses:
        results = [CONDITIONS[name](check) for name in clause]
        if any(inspect.isawaitable(r) for r in results):
            outcomes.append(_any_of(results))
        else:
            outcomes.append(any(results))
    return outcomes


async def _any_of(results: list[bool | Awaitable[bool]]) -> bool:
    held = False
    for result in results:  # every one awaited: none is left un-awaited
        held = (await result if inspect.isawaitable(result) else result) or held
    return held


async def _holds(grant: Grant | None, check: Check) -> bool:
    if grant is None:
        return False
    for outcome in _outcomes(grant, check):
        if not (await outcome if inspect.isawaitable(outcome) else outcome):
            return False
    return True


async def permits(info: Any, type_name: str, obj: Any, *, change: bool = False, conn: Any = None) -> bool:
    """May this request read (or, with `change`, change) `obj`, an object of personal type `type_name`?

    For a rule that needs the row itself (whose cart it is): the service calls this with the row
    it has locked. The policy's `[types.X]` rule decides reading, `[changes.X]` changing. The
    access is audited like any other (roles in `[audit]`, objects with a subject): a refusal is
    written after execution; a granted change is written through `conn`, the change's own
    transaction, so the change and its audit record commit together or not at all.
    """
    info = getattr(info, "_raw_info", info)  # strawberry's Info wraps graphql-core's
    context = info.context
    policy: AccessPolicy = context.services.policy
    rule = policy.change_rule(type_name) if change else policy.read_rule(type_name)
    subject = _subject(rule, obj, {})
    check = Check(context.principal, info, obj, {}, subject)
    allowed = await _holds(rule.grant_for(context.principal.role), check)
    if allowed and conn is not None and _audited(policy, rule, context.principal, subject):
        entry = _entry(context, (_operation(info), type_name, str(subject), "allowed"), f"{type_name} (changed)")
        await context.services.audit.append([entry], conn=conn)
    else:
        _note(info, policy, rule, type_name, subject, allowed=allowed)
    return allowed


async def record_change(info: Any, conn: Any, subject: str) -> None:
    """Audit this mutation field's granted access to `subject` inside `conn`, the change's own
    transaction, so that the change and its audit record commit together or not at all (as `permits`
    does for a locked row).

    For a root mutation whose rule names the customer by argument (`subject = "arg:..."`): its guard
    noted the access, to be written after execution, when the change has committed and a refused
    audit append could no longer undo it. The note is taken over here, so the access is written once."""
    info = getattr(info, "_raw_info", info)
    context = info.context
    policy: AccessPolicy = context.services.policy
    type_name = info.parent_type.name
    rule = policy.rule_for(type_name, info.field_name)
    if rule is None or context.services.audit is None or not _audited(policy, rule, context.principal, subject):
        return
    key = (_operation(info), type_name, subject, "allowed")
    noted = context.audit_records.get(key)
    if noted is not None:
        noted.discard(info.field_name)
        if not noted:
            del context.audit_records[key]
    await context.services.audit.append([_entry(context, key, f"{type_name}.{info.field_name}")], conn=conn)


async def require(info: Any, type_name: str, obj: Any) -> None:
    """`permits` to read, or the refusal a guarded field gives (UNAUTHENTICATED / FORBIDDEN).

    For a look-up that must refuse before it finds out whether the object exists, so that the
    answer tells a caller who may not read it nothing about its existence.
    """
    if not await permits(info, type_name, obj):
        raise _denied(info.context.principal)


async def _await_then_resolve(
    outcomes: list[Any],
    resolve: Callable[..., Any],
    source: Any,
    info: GraphQLResolveInfo,
    args: dict[str, Any],
    policy: AccessPolicy,
    rule: Rule,
    audited_type: str,
    subject: str | None,
) -> Any:
    for outcome in outcomes:
        if not (await outcome if inspect.isawaitable(outcome) else outcome):
            _note(info, policy, rule, audited_type, subject, allowed=False)
            raise _denied(info.context.principal)
    _note(info, policy, rule, audited_type, subject, allowed=True)
    result = resolve(source, info, **args)
    return await result if inspect.isawaitable(result) else result


def _denied(principal: Principal) -> ClientError:
    if principal.is_anonymous:
        return unauthenticated("Sign in first: this needs an account or an operator token.")
    return forbidden("Your role may not do this.")


def _subject(rule: Rule, source: Any, args: dict[str, Any]) -> str | None:
    ref = rule.subject
    if ref is None:
        return None
    if ref.kind is SubjectKind.ATTR:
        value = getattr(source, ref.name, None)
        return None if value is None else str(value)
    raw = args.get(ref.name)
    if raw is None:
        return None
    try:
        key = int_key(from_global_id(str(raw), ref.id_type)[1])
    except InvalidGlobalId:
        return None  # the resolver reports the bad id; no subject, so `self` does not hold
    # One spelling per subject ("0001" is customer 1, audited as "1"), and never free text: the
    # append-only audit log cannot be erased, so an email typed into an id must not reach it.
    return None if key is None else str(key)


def _note(
    info: GraphQLResolveInfo, policy: AccessPolicy, rule: Rule, type_name: str, subject: str | None, *, allowed: bool
) -> None:
    """Collect an audited access in the request's Context (written once, after execution)."""
    context = info.context
    if not _audited(policy, rule, context.principal, subject):
        return
    key = (_operation(info), type_name, str(subject), "allowed" if allowed else "denied")
    context.audit_records.setdefault(key, set()).add(info.field_name)


def _audited(policy: AccessPolicy, rule: Rule, principal: Principal, subject: str | None) -> bool:
    return subject is not None and rule.audit and policy.is_audited(principal)


def _operation(info: GraphQLResolveInfo) -> str:
    """`query customer`: the operation type and the root field (not its alias) this access is under.

    The root field is looked for in fragments too: an alias must not pass a customer look-up off
    as another operation in the audit log.
    """
    path = info.path
    while path.prev is not None:
        path = path.prev
    name = _field_name(info.operation.selection_set, str(path.key), info.fragments, set()) or str(path.key)
    return f"{info.operation.operation.value} {name}"


def _field_name(selection_set: SelectionSetNode, key: str, fragments: dict[str, Any], seen: set[str]) -> str | None:
    """The name of the field answered under response key `key` in `selection_set`, fragments followed."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if (selection.alias or selection.name).value == key:
                return selection.name.value
            continue
        if isinstance(selection, InlineFragmentNode):
            inner = selection.selection_set
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                continue
            inner = fragment.selection_set
        else:
            continue
        found = _field_name(inner, key, fragments, seen)
        if found is not None:
            return found
    return None


class AuditUnavailable(ClientError):
    """The accesses could not be recorded: the result (personal data) must not be shown either."""

    def __init__(self, trace_id: str) -> None:
        super().__init__(
            "This access could not be recorded in the audit log, so its result is withheld. "
            f"Quote trace id {trace_id}.",
            "AUDIT_UNAVAILABLE",
            traceId=trace_id,
        )


def _entry(context: Any, key: tuple[str, str, str, str], fields: str, trace_id: str | None = None) -> AuditEntry:
    """The audit record of one access: `key` is (operation, type, subject, outcome)."""
    operation, _type_name, subject, outcome = key
    principal: Principal = context.principal
    return AuditEntry(
        actor=principal.subject or principal.role.value,
        role=principal.role.value,
        channel=context.channel.code,
        operation=operation,
        fields=fields,
        subject=subject,
        outcome=outcome,
        trace_id=trace_id or current_trace_id(),
    )


async def write_audit(context: Any, trace_id: str) -> None:
    """Append the request's collected accesses to the audit log, in one transaction.

    Raises `AuditUnavailable` when that fails: an operator's access to a customer's data that
    cannot be audited is not answered (a change already committed stays; the audit of it is lost).
    """
    records = context.audit_records
    audit = context.services.audit
    if not records or audit is None:
        return
    entries = [
        _entry(context, key, " ".join(f"{key[1]}.{f}" for f in sorted(fields)), trace_id)
        for key, fields in sorted(records.items())
    ]
    records.clear()
    try:
        await audit.append(entries)
    except Exception as error:
        logger.error("audit append failed (trace %s): %s", trace_id, type(error).__name__)  # never the message
        raise AuditUnavailable(trace_id) from None
