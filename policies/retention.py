"""The retention policy as data: per data category, why it is held, on which basis, for how long,
and what an erasure does with it.

Loaded from `retention.toml` beside this module and validated once at start-up, so a missing
legal basis or a malformed period fails the deploy, not a data-subject request.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "ON_ERASURE",
    "Category",
    "Period",
    "RetentionPolicy",
    "RetentionPolicyError",
    "load_retention_policy",
    "retention_policy",
]

DEFAULT_PATH = Path(__file__).with_name("retention.toml")
ON_ERASURE = frozenset({"erase", "anonymise", "retain"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_PERIOD = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")
_COUNTED_FROM = frozenset({"event", "end_of_year"})
_REQUIRED = ("description", "purpose", "legal_basis", "retention", "on_erasure")
_RETAIN_REQUIRED = ("reason", "retained_basis", "period", "counted_from")
_KEYS = {*_REQUIRED, *_RETAIN_REQUIRED, "recipients"}


class RetentionPolicyError(ValueError):
    """The retention file misses something a category needs, or spells a value badly."""


@dataclass(frozen=True, slots=True)
class Period:
    """An ISO 8601 period of years, months and days (P5Y, P6M, P30D), counted from an event or
    from the end of that event's calendar year (tax records)."""

    years: int = 0
    months: int = 0
    days: int = 0
    counted_from: str = "event"

    @classmethod
    def parse(cls, text: str, counted_from: str = "event") -> Period:
        match = _PERIOD.match(text)
        if match is None or text == "P":
            raise ValueError(f"{text!r} is not a period like P5Y, P6M or P30D")
        years, months, days = (int(g) if g else 0 for g in match.groups())
        return cls(years, months, days, counted_from)

    def until(self, event: datetime) -> datetime:
        """The moment the period ends for a record dated `event` (UTC)."""
        start = event.astimezone(UTC)
        if self.counted_from == "end_of_year":
            start = datetime(start.year, 12, 31, 23, 59, 59, tzinfo=UTC)
        month_index = start.month - 1 + self.months
        year = start.year + self.years + month_index // 12
        month = month_index % 12 + 1
        day = min(start.day, _days_in_month(year, month))
        return start.replace(year=year, month=month, day=day) + timedelta(days=self.days)

    def ended_by(self, now: datetime) -> datetime:
        """The latest record date whose period has ended at `now`: everything dated at or before it
        may be deleted, so a store finds it by one comparison. Where a month's end clamps the
        date it errs by at most a few days towards keeping (`until` of it is never after `now`)."""
        back = now.astimezone(UTC) - timedelta(days=self.days)
        month_index = back.month - 1 - self.months
        year = back.year - self.years + month_index // 12
        month = month_index % 12 + 1
        event = back.replace(year=year, month=month, day=min(back.day, _days_in_month(year, month)))
        if self.counted_from != "end_of_year":
            return event
        whole_year = event >= datetime(event.year, 12, 31, 23, 59, 59, tzinfo=UTC)
        return datetime(event.year if whole_year else event.year - 1, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

    def __str__(self) -> str:
        parts = "".join(f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n)
        return f"P{parts}" + (" from the end of the year" if self.counted_from == "end_of_year" else "")


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    description: str
    purpose: str
    legal_basis: str
    recipients: tuple[str, ...]
    retention: str
    on_erasure: str
    reason: str = ""
    retained_basis: str = ""
    period: Period | None = None

    @property
    def retained(self) -> bool:
        return self.on_erasure == "retain"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    version: int
    controller: dict[str, str]
    categories: dict[str, Category]

    def category(self, name: str) -> Category:
        try:
            return self.categories[name]
        except KeyError:
            raise RetentionPolicyError(f"retention.toml has no category {name!r}") from None

    def period(self, name: str) -> Period:
        """The category's period; a category without one is a policy error."""
        found = self.category(name).period
        if found is None:
            raise RetentionPolicyError(f"retention.toml: category {name!r} needs a `period`")
        return found

    def require(self, names: set[str] | frozenset[str]) -> None:
        """Every category a personal-data source names is described here (checked at start-up)."""
        missing = sorted(set(names) - set(self.categories))
        if missing:
            raise RetentionPolicyError(f"retention.toml lacks the categories {missing}: add them")


def _text(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RetentionPolicyError(f"{where}: `{key}` must be a non-empty string")
    return value.strip()


def _category(name: str, body: Any, source: str) -> Category:
    where = f"{source} [categories.{name}]"
    if not _NAME.match(name):
        raise RetentionPolicyError(f"{where}: category names are lower_snake_case")
    if not isinstance(body, dict):
        raise RetentionPolicyError(f"{where}: a category is a table")
    unknown = set(body) - _KEYS
    if unknown:
        raise RetentionPolicyError(f"{where}: unknown keys {sorted(unknown)}")
    values = {key: _text(body, key, where) for key in _REQUIRED}
    if values["on_erasure"] not in ON_ERASURE:
        raise RetentionPolicyError(f"{where}: on_erasure must be one of {sorted(ON_ERASURE)}")
    recipients = body.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) and r.strip() for r in recipients):
        raise RetentionPolicyError(f"{where}: recipients is a list of strings")
    reason = retained_basis = ""
    period: Period | None = None
    if values["on_erasure"] == "retain":
        reason, retained_basis = _text(body, "reason", where), _text(body, "retained_basis", where)
        if "period" not in body:
            raise RetentionPolicyError(f"{where}: a retained category needs a `period`")
    if "period" in body:
        counted_from = body.get("counted_from", "event")
        if counted_from not in _COUNTED_FROM:
            raise RetentionPolicyError(f"{where}: counted_from must be one of {sorted(_COUNTED_FROM)}")
        try:
            period = Period.parse(_text(body, "period", where), counted_from)
        except ValueError as exc:
            raise RetentionPolicyError(f"{where}: {exc}") from None
    return Category(
        name=name,
        description=values["description"],
        purpose=values["purpose"],
        legal_basis=values["legal_basis"],
        recipients=tuple(recipients),
        retention=values["retention"],
        on_erasure=values["on_erasure"],
        reason=reason,
        retained_basis=retained_basis,
        period=period,
    )


def parse_retention_policy(data: dict[str, Any], source: str = "retention.toml") -> RetentionPolicy:
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise RetentionPolicyError(f"{source}: `version` must be a positive whole number")
    controller = data.get("controller", {})
    if not isinstance(controller, dict) or not all(isinstance(v, str) for v in controller.values()):
        raise RetentionPolicyError(f"{source}: [controller] holds strings")
    categories = data.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise RetentionPolicyError(f"{source}: define at least one [categories.NAME] table")
    return RetentionPolicy(
        version=version,
        controller=dict(controller),
        categories={name: _category(name, body, source) for name, body in categories.items()},
    )


def load_retention_policy(path: Path | str = DEFAULT_PATH) -> RetentionPolicy:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RetentionPolicyError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RetentionPolicyError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_retention_policy(data, path.name)


@cache
def retention_policy() -> RetentionPolicy:
    """The shipped policy, loaded once."""
    return load_retention_policy()
