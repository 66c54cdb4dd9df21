"""Rate limits as data: `limits.toml` loaded and checked; the buckets themselves are in core.ratelimit."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ACTIONS", "DEFAULT_LIMITS_FILE", "Bucket", "LimitPolicy", "LimitsError", "load_limits", "parse_limits"]

DEFAULT_LIMITS_FILE = Path(__file__).with_name("limits.toml")
ACTIONS = ("sign_in", "register", "password_reset", "password_change", "checkout")
_SCOPES = ("per_client", "per_account")


class LimitsError(ValueError):
    """The limits file is malformed or names an unknown action."""


@dataclass(frozen=True, slots=True)
class Bucket:
    capacity: int
    per_minute: float

    @property
    def per_second(self) -> float:
        return self.per_minute / 60


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    actions: Mapping[str, Mapping[str, Bucket]]  # action -> scope -> bucket

    def bucket(self, action: str, scope: str) -> Bucket | None:
        if action not in ACTIONS:
            raise KeyError(f"no such rate-limited action {action!r}")
        return self.actions.get(action, {}).get(scope)


def load_limits(path: str | Path | None = None) -> LimitPolicy:
    path = Path(path) if path else DEFAULT_LIMITS_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LimitsError(f"cannot read the limits file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LimitsError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_limits(raw, source=path.name)


def parse_limits(raw: Mapping[str, Any], source: str = "limits.toml") -> LimitPolicy:
    unknown = set(raw) - {"version", "actions"}
    if unknown:
        raise LimitsError(f"{source}: unknown section(s) {sorted(unknown)}")
    actions: dict[str, dict[str, Bucket]] = {}
    for action, scopes in raw.get("actions", {}).items():
        where = f"{source} [actions.{action}]"
        if action not in ACTIONS:
            raise LimitsError(f"{where}: unknown action (known: {', '.join(ACTIONS)})")
        if not isinstance(scopes, Mapping) or set(scopes) - set(_SCOPES):
            raise LimitsError(f"{where}: give per_client and/or per_account")
        actions[action] = {scope: _bucket(body, f"{where}.{scope}") for scope, body in scopes.items()}
    return LimitPolicy(actions=actions)


def _bucket(body: Any, where: str) -> Bucket:
    if not isinstance(body, Mapping) or set(body) != {"capacity", "per_minute"}:
        raise LimitsError(f"{where}: write {{ capacity = N, per_minute = R }}")
    capacity, per_minute = body["capacity"], body["per_minute"]
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise LimitsError(f"{where}.capacity: a whole number of at least 1")
    if not isinstance(per_minute, int | float) or isinstance(per_minute, bool) or per_minute <= 0:
        raise LimitsError(f"{where}.per_minute: a positive number")
    return Bucket(capacity=capacity, per_minute=float(per_minute))
