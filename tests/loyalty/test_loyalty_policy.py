"""policies/loyalty.toml is validated when loaded: a bad value stops start-up, naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from commerce.loyalty.service import add_months, card_is_valid, luhn_check_digit, new_card_number
from core.settings import Settings
from gateway.__main__ import main
from policies.loyalty import DEFAULT_LOYALTY_FILE, LoyaltyPolicyError, load_loyalty_policy, parse_loyalty_policy


def _shipped() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_LOYALTY_FILE.read_text())


def test_the_shipped_policy_loads_with_three_rising_tiers() -> None:
    policy = load_loyalty_policy()
    assert [t.name for t in policy.tiers] == ["BRONZE", "SILVER", "GOLD"]
    assert policy.tier_for(0).name == "BRONZE" and policy.tier_for(10**9).name == "GOLD"
    assert policy.next_tier(policy.tiers[-1]) is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"points_per_unit": "-1"}, "points_per_unit"),
        ({"point_value": "0.001"}, "point_value"),
        ({"max_redeem_share": "1.5"}, "max_redeem_share"),
        ({"expiry_months": 0}, "expiry_months"),
        ({"currency": "zloty"}, "currency"),
        ({"earning_channels": "web"}, "earning_channels"),
        ({"card_prefix": "77a"}, "card_prefix"),
        ({"bonus": 1}, "bonus"),
        ({"tiers": {"BRONZE": {"threshold": 0, "multiplier": "1"}}}, "tiers"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(change: dict[str, Any], named: str) -> None:
    with pytest.raises(LoyaltyPolicyError, match=named):
        parse_loyalty_policy({**_shipped(), **change})


def test_tiers_must_rise(tmp_path: Path) -> None:
    data = _shipped()
    data["tiers"]["GOLD"]["threshold"] = 10
    with pytest.raises(LoyaltyPolicyError, match="rise"):
        parse_loyalty_policy(data)


def test_card_numbers_carry_a_luhn_check_digit() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the textbook example
    for _ in range(50):
        number = new_card_number("7700")
        assert card_is_valid(number)
        assert not card_is_valid(number[:-1] + str((int(number[-1]) + 1) % 10))


def test_months_are_calendar_months_clamped_to_the_month_end() -> None:
    from datetime import UTC, datetime

    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 3, 15, tzinfo=UTC), -12) == datetime(2025, 3, 15, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 24) == datetime(2028, 11, 30, tzinfo=UTC)


def test_expire_points_command_runs_and_reports(settings: Settings, monkeypatch, capsys, runtime) -> None:
    monkeypatch.setenv("OMNIGATE_DATABASE_URL", settings.database_url)
    assert main(["expire-points"]) == 0
    assert capsys.readouterr().out.strip() == "expired 0 loyalty points"
