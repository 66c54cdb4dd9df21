"""The retention policy is checked at start-up: a gap in it stops the gateway, not a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Settings
from gateway.runtime import build_runtime
from policies.retention import Period, RetentionPolicyError, load_retention_policy, parse_retention_policy

GOOD = {
    "version": 1,
    "categories": {
        "orders": {
            "description": "d",
            "purpose": "p",
            "legal_basis": "b",
            "retention": "r",
            "on_erasure": "retain",
            "reason": "accounting",
            "retained_basis": "Art. 17(3)(b)",
            "period": "P5Y",
            "counted_from": "end_of_year",
        }
    },
}


def test_a_retained_category_needs_its_reason_basis_and_a_well_formed_period() -> None:
    assert parse_retention_policy(GOOD).period("orders") == Period(years=5, counted_from="end_of_year")
    for key, value in (("reason", None), ("period", "5 years"), ("on_erasure", "forget"), ("counted_from", "dawn")):
        category = dict(GOOD["categories"]["orders"])
        if value is None:
            del category[key]
        else:
            category[key] = value
        with pytest.raises(RetentionPolicyError):
            parse_retention_policy({"version": 1, "categories": {"orders": category}})


def test_tax_records_run_five_years_from_the_end_of_the_year() -> None:
    period = Period.parse("P5Y", "end_of_year")
    assert period.until(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2031, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert Period.parse("P1M").until(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)


@given(
    now=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    years=st.integers(0, 10),
    months=st.integers(0, 30),
    days=st.integers(0, 400),
    counted_from=st.sampled_from(["event", "end_of_year"]),
)
def test_what_ended_by_now_has_ended_and_little_else(
    now: datetime, years: int, months: int, days: int, counted_from: str
) -> None:
    """A store deletes what is dated up to `ended_by(now)`: never a record whose period runs on,
    and an event-dated record at most a few days past its period."""
    period = Period(years, months, days, counted_from)
    cut = period.ended_by(now)
    assert period.until(cut) <= now
    later = cut + timedelta(days=4) if counted_from == "event" else cut + timedelta(microseconds=1)
    assert period.until(later) > now


def test_a_source_category_missing_from_the_policy_stops_start_up(settings: Settings, tmp_path: Path) -> None:
    shipped = load_retention_policy()
    lines = [
        f'[categories.{name}]\ndescription = "d"\npurpose = "p"\nlegal_basis = "b"\nretention = "r"\non_erasure = "erase"\n'
        for name in shipped.categories
        if name != "orders"
    ]
    partial = tmp_path / "retention.toml"
    partial.write_text("version = 1\n" + "\n".join(lines))
    with pytest.raises(RetentionPolicyError, match="orders"):
        build_runtime(settings.replace(retention_file=str(partial)))
