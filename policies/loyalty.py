"""The loyalty programme as data: `loyalty.toml` loaded and validated once, at start-up.

A typo (an unknown key, a negative multiplier, tiers out of order) fails when the gateway
starts, never on a customer's checkout. Imports nothing of ours.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LOYALTY_FILE",
    "TIER_NAMES",
    "LoyaltyPolicy",
    "LoyaltyPolicyError",
    "Tier",
    "load_loyalty_policy",
    "loyalty_policy",
]

DEFAULT_LOYALTY_FILE = Path(__file__).with_name("loyalty.toml")
TIER_NAMES = ("BRONZE", "SILVER", "GOLD")  # lowest first; the API's LoyaltyTier enum
_KEYS = {
    "currency",
    "points_per_unit",
    "earning_channels",
    "expiry_months",
    "point_value",
    "max_redeem_share",
    "tier_window_months",
    "card_prefix",
    "tiers",
}


class LoyaltyPolicyError(ValueError):
    """The loyalty file is malformed: the message names the key."""


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    threshold: int  # points earned in the window to reach it
    multiplier: Decimal  # earn multiplier


@dataclass(frozen=True, slots=True)
class LoyaltyPolicy:
    currency: str
    points_per_unit: Decimal
    earning_channels: frozenset[str]
    expiry_months: int
    point_value: Decimal
    max_redeem_share: Decimal
    tier_window_months: int
    card_prefix: str
    tiers: tuple[Tier, ...]  # ascending thresholds, the first at 0

    def tier_for(self, earned_in_window: int) -> Tier:
        reached = [t for t in self.tiers if earned_in_window >= t.threshold]
        return reached[-1] if reached else self.tiers[0]

    def next_tier(self, tier: Tier) -> Tier | None:
        index = self.tiers.index(tier)
        return self.tiers[index + 1] if index + 1 < len(self.tiers) else None

    def earns_in(self, channel: str) -> bool:
        return channel in self.earning_channels


def _decimal(raw: Any, key: str, source: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise LoyaltyPolicyError(f'{source}: {key} must be a number written as a string, e.g. "0.01"')
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise LoyaltyPolicyError(f"{source}: {key} is not a number: {raw!r}") from None
    if not value.is_finite():
        raise LoyaltyPolicyError(f"{source}: {key} must be finite")
    return value


def _positive_int(raw: Any, key: str, source: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise LoyaltyPolicyError(f"{source}: {key} must be a whole number above 0")
    return raw


def parse_loyalty_policy(data: dict[str, Any], source: str = "loyalty.toml") -> LoyaltyPolicy:
    unknown = set(data) - _KEYS
    missing = _KEYS - set(data)
    if unknown:
        raise LoyaltyPolicyError(f"{source}: unknown key(s) {sorted(unknown)}")
    if missing:
        raise LoyaltyPolicyError(f"{source}: missing key(s) {sorted(missing)}")
    currency = data["currency"]
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise LoyaltyPolicyError(f"{source}: currency must be an ISO 4217 code such as PLN")
    points_per_unit = _decimal(data["points_per_unit"], "points_per_unit", source)
    if points_per_unit <= 0:
        raise LoyaltyPolicyError(f"{source}: points_per_unit must be above 0")
    channels = data["earning_channels"]
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        raise LoyaltyPolicyError(f"{source}: earning_channels must be a list of channel codes")
    point_value = _decimal(data["point_value"], "point_value", source)
    if point_value <= 0 or point_value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise LoyaltyPolicyError(f"{source}: point_value must be above 0, in whole minor units (e.g. 0.01)")
    share = _decimal(data["max_redeem_share"], "max_redeem_share", source)
    if not 0 < share <= 1:
        raise LoyaltyPolicyError(f"{source}: max_redeem_share must be above 0 and at most 1")
    prefix = data["card_prefix"]
    if not isinstance(prefix, str) or not re.fullmatch(r"[0-9]{1,8}", prefix):
        raise LoyaltyPolicyError(f"{source}: card_prefix must be 1 to 8 digits")
    tiers_raw = data["tiers"]
    if not isinstance(tiers_raw, dict) or set(tiers_raw) != set(TIER_NAMES):
        raise LoyaltyPolicyError(f"{source}: define exactly the tiers {list(TIER_NAMES)}")
    tiers = []
    for name in TIER_NAMES:
        body = tiers_raw[name]
        if not isinstance(body, dict) or set(body) != {"threshold", "multiplier"}:
            raise LoyaltyPolicyError(f"{source}: [tiers.{name}] needs exactly threshold and multiplier")
        threshold = body["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise LoyaltyPolicyError(f"{source}: [tiers.{name}] threshold must be a whole number >= 0")
        multiplier = _decimal(body["multiplier"], f"[tiers.{name}] multiplier", source)
        if multiplier <= 0:
            raise LoyaltyPolicyError(f"{source}: [tiers.{name}] multiplier must be above 0")
        tiers.append(Tier(name, threshold, multiplier))
    if tiers[0].threshold != 0:
        raise LoyaltyPolicyError(f"{source}: the lowest tier ({TIER_NAMES[0]}) must start at threshold 0")
    if any(a.threshold >= b.threshold for a, b in itertools.pairwise(tiers)):
        raise LoyaltyPolicyError(f"{source}: tier thresholds must rise from {TIER_NAMES[0]} to {TIER_NAMES[-1]}")
    return LoyaltyPolicy(
        currency=currency,
        points_per_unit=points_per_unit,
        earning_channels=frozenset(channels),
        expiry_months=_positive_int(data["expiry_months"], "expiry_months", source),
        point_value=point_value,
        max_redeem_share=share,
        tier_window_months=_positive_int(data["tier_window_months"], "tier_window_months", source),
        card_prefix=prefix,
        tiers=tuple(tiers),
    )


def load_loyalty_policy(path: str | Path | None = None) -> LoyaltyPolicy:
    path = Path(path) if path else DEFAULT_LOYALTY_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LoyaltyPolicyError(f"cannot read the loyalty policy {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LoyaltyPolicyError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_loyalty_policy(data, path.name)


@cache
def loyalty_policy() -> LoyaltyPolicy:
    """The shipped policy, loaded once."""
    return load_loyalty_policy()
