"""Who may run which operation and read which field: `access.toml` loaded, checked, and asked.

The policy is data. A rule names, per role, `true` (always), a condition (`"self"`) or a
list of conditions that must all hold; a condition may offer alternatives (`"self | unowned"`:
either holds). A role the rule does not name is refused. Conditions
are only *named* here: the code that evaluates them lives in one registry in `schema`
(`schema/authorization.py`), which also checks this file against the built schema.

Imports nothing of ours but its own modules, so every layer may ask it questions.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from policies.principal import Principal, Role

__all__ = [
    "DEFAULT_POLICY_FILE",
    "ROOT_TYPES",
    "AccessPolicy",
    "Grant",
    "PolicyError",
    "Rule",
    "SubjectKind",
    "SubjectRef",
    "load_policy",
    "parse_policy",
]

DEFAULT_POLICY_FILE = Path(__file__).with_name("access.toml")
ROOT_TYPES = ("Query", "Mutation", "Subscription")
_DEFAULT_MODES = {"public", "deny"}
_RULE_KEYS = {"everyone", "subject", "audit", *(r.value for r in Role)}
_TYPE_KEYS = _RULE_KEYS | {"personal"}


class PolicyError(ValueError):
    """The policy file is malformed or names something that does not exist."""


class SubjectKind(StrEnum):
    """Where a rule finds whose data a field is."""

    ATTR = "attr"  # an attribute of the parent object
    ARG = "arg"  # an argument carrying the customer's global ID


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """Where the subject's key (a customer's key) is: an attribute of the parent object, or an argument."""

    kind: SubjectKind
    name: str
    id_type: str | None = None  # for "arg": the global ID's type, e.g. "Customer"

    @classmethod
    def parse(cls, raw: str, where: str) -> SubjectRef:
        # "attr:key" | "arg:customerId:Customer" | "arg:id:Customer"
        parts = raw.split(":")
        if parts[0] == "attr" and len(parts) == 2 and parts[1]:
            return cls(SubjectKind.ATTR, parts[1])
        if parts[0] == "arg" and len(parts) in (2, 3) and parts[1]:
            return cls(SubjectKind.ARG, parts[1], parts[2] if len(parts) == 3 else None)
        raise PolicyError(f"{where}: subject must be 'attr:NAME' or 'arg:NAME[:IdType]', not {raw!r}")


@dataclass(frozen=True, slots=True)
class Grant:
    """One role's permission: allowed when every clause holds (none: always); a clause holds
    when any of its alternatives does (`"self | unowned"`)."""

    conditions: tuple[str, ...] = ()
    clauses: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)  # split once

    def __post_init__(self) -> None:
        split = tuple(tuple(name.strip() for name in clause.split("|")) for clause in self.conditions)
        object.__setattr__(self, "clauses", split)


@dataclass(frozen=True, slots=True)
class Rule:
    target: str  # "Query.customer", "Customer.email", or a type name for a personal type
    grants: Mapping[Role, Grant]
    subject: SubjectRef | None = None
    audit: bool = True

    def grant_for(self, role: Role) -> Grant | None:
        return self.grants.get(role)

    @property
    def conditions(self) -> set[str]:
        return {name for g in self.grants.values() for clause in g.clauses for name in clause}


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    rules: Mapping[str, Rule]  # "Type.field" -> rule
    personal: Mapping[str, Rule]  # type name -> the rule for every field of that type
    defaults: Mapping[str, str]  # root type -> "public" | "deny"
    audit_roles: frozenset[Role] = field(default_factory=frozenset)
    # type name -> who may change such an object: evaluated by the service on the row it locked
    changes: Mapping[str, Rule] = field(default_factory=dict)
    # channel kind -> the roles that may name a channel of that kind (X-Channel); a kind not listed is open
    channels: Mapping[str, frozenset[Role]] = field(default_factory=dict)

    def rule_for(self, type_name: str, field_name: str) -> Rule | None:
        """The field's own rule, else its personal type's rule, else None (unprotected)."""
        return self.rules.get(f"{type_name}.{field_name}") or self.personal.get(type_name)

    def grant(self, role: Role, type_name: str, field_name: str) -> Grant | None:
        """May `role` run `type_name.field_name`, and on which conditions? None: refused.

        A field no rule covers is open, except a root field whose default is `deny`.
        """
        rule = self.rule_for(type_name, field_name)
        if rule is None:
            return Grant() if type_name not in ROOT_TYPES or self.default_for(type_name) == "public" else None
        return rule.grant_for(role)

    def default_for(self, root_type: str) -> str:
        return self.defaults.get(root_type, "deny")

    def is_audited(self, principal: Principal) -> bool:
        return principal.role in self.audit_roles

    def condition_names(self) -> set[str]:
        every = (*self.rules.values(), *self.personal.values(), *self.changes.values())
        return {c for rule in every for c in rule.conditions}

    def channel_roles(self, kind: str) -> frozenset[Role] | None:
        """The roles that may name a channel of `kind`; None when the kind is open to every role."""
        return self.channels.get(kind)

    def may_use_channel(self, principal: Principal, kind: str) -> bool:
        """May `principal` have a request served through a channel of `kind` (`[channels]`)?"""
        roles = self.channels.get(kind)
        return roles is None or principal.role in roles

    def read_rule(self, type_name: str) -> Rule:
        """Who may read an object of a personal type (refused to all when the type has no rule)."""
        return self.personal.get(type_name) or Rule(target=type_name, grants={})

    def change_rule(self, type_name: str) -> Rule:
        """Who may change an object of `type_name` (refused to all when `[changes]` has no rule)."""
        return self.changes.get(type_name) or Rule(target=f"{type_name} (change)", grants={})


def load_policy(path: str | Path | None = None) -> AccessPolicy:
    path = Path(path) if path else DEFAULT_POLICY_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read the access policy {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_policy(raw, source=path.name)


def parse_policy(raw: Mapping[str, Any], source: str = "access.toml") -> AccessPolicy:
    unknown = set(raw) - {"defaults", "audit", "channels", "types", "changes", "rules", "version"}
    if unknown:
        raise PolicyError(f"{source}: unknown section(s) {sorted(unknown)}")
    defaults = dict(raw.get("defaults", {}))
    for key, mode in defaults.items():
        if key not in ROOT_TYPES:
            raise PolicyError(f"{source} [defaults]: {key!r} is not one of {list(ROOT_TYPES)}")
        if mode not in _DEFAULT_MODES:
            raise PolicyError(f"{source} [defaults].{key}: must be one of {sorted(_DEFAULT_MODES)}, not {mode!r}")
    audit_roles = frozenset(_role(r, f"{source} [audit].roles") for r in raw.get("audit", {}).get("roles", []))
    channels = _channels(raw.get("channels", {}), f"{source} [channels]")
    personal: dict[str, Rule] = {}
    for type_name, body in raw.get("types", {}).items():
        where = f"{source} [types.{type_name}]"
        _check_keys(body, _TYPE_KEYS, where)
        if not body.get("personal", False):
            raise PolicyError(f"{where}: a type rule covers personal data: set personal = true")
        if "subject" not in body:
            raise PolicyError(f"{where}: a personal type must name its subject (subject = 'attr:NAME')")
        personal[type_name] = _rule(type_name, body, where)
    changes: dict[str, Rule] = {}
    for type_name, body in raw.get("changes", {}).items():
        where = f"{source} [changes.{type_name}]"
        _check_keys(body, _RULE_KEYS, where)
        if "subject" not in body:
            raise PolicyError(f"{where}: name whose object it is (subject = 'attr:NAME')")
        changes[type_name] = _rule(f"{type_name} (change)", body, where)
    rules: dict[str, Rule] = {}
    for target, body in raw.get("rules", {}).items():
        where = f"{source} [rules] {target!r}"
        if not isinstance(body, Mapping):
            raise PolicyError(f'{where}: a rule is a table such as {{ customer = "self", agent = true }}')
        if target.count(".") != 1 or not all(target.split(".")):
            raise PolicyError(f"{where}: name the field as 'Type.field'")
        _check_keys(body, _RULE_KEYS, where)
        rules[target] = _rule(target, body, where)
    return AccessPolicy(
        rules=rules, personal=personal, defaults=defaults, audit_roles=audit_roles, changes=changes, channels=channels
    )


def _channels(raw: Any, where: str) -> dict[str, frozenset[Role]]:
    """`KIND = ["role", ...]`: the kinds are checked against the schema's `ChannelKind` at start-up."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f'{where}: a table of channel kinds, e.g. STORE = ["staff", "admin"]')
    channels: dict[str, frozenset[Role]] = {}
    for kind, roles in raw.items():
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise PolicyError(f"{where}.{kind}: give a non-empty list of the roles that may use it")
        channels[kind] = frozenset(_role(r, f"{where}.{kind}") for r in roles)
    return channels


def _check_keys(body: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(body) - allowed
    if unknown:
        roles = ", ".join(r.value for r in Role)
        raise PolicyError(f"{where}: unknown role or key(s) {sorted(unknown)} (roles: {roles})")


def _role(name: str, where: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        raise PolicyError(f"{where}: unknown role {name!r}") from None


def _rule(target: str, body: Mapping[str, Any], where: str) -> Rule:
    grants: dict[Role, Grant] = {}
    if body.get("everyone") is True:
        grants = {role: Grant() for role in Role}
    for role in Role:
        if role.value in body:
            grant = _grant(body[role.value], f"{where}.{role.value}")
            if grant is None:
                grants.pop(role, None)
            else:
                grants[role] = grant
    subject = SubjectRef.parse(body["subject"], where) if "subject" in body else None
    return Rule(target=target, grants=grants, subject=subject, audit=bool(body.get("audit", True)))


def _grant(value: Any, where: str) -> Grant | None:
    if value is True:
        return Grant()
    if value is False:
        return None
    if isinstance(value, str) and _clause(value):
        return Grant((_clause(value),))
    if isinstance(value, list) and value and all(isinstance(v, str) and _clause(v) for v in value):
        return Grant(tuple(_clause(v) for v in value))
    raise PolicyError(
        f"{where}: give true, false, a condition name ('a | b': either) or a list of them (all must hold)"
    )


def _clause(raw: str) -> str:
    """'self|unowned' spelled one way ('self | unowned'); empty when a name is missing."""
    names = [name.strip() for name in raw.split("|")]
    return " | ".join(names) if all(names) else ""
