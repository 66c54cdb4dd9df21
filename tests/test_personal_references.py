"""One convention for personal references: every column pointing at a person is named
`customer_key` or `subject_id`, and every table holding one is covered by a registered
data-subject source (export and erasure). A new table that forgets either fails here."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from core.db import Base
from gateway.privacy import personal_data_sources
from policies.retention import retention_policy

PERSON_COLUMNS = {"customer_key", "subject_id"}
# Names that point at a person but break the convention (rename them, with a migration).
MISNAMED = re.compile(r"^(customer|customer_id|customer_ref|subject|person|person_id|user|user_id|member_id|buyer_id)$")


def _all_models() -> None:
    """Import every module Alembic's env imports, so the metadata holds every table."""
    tree = ast.parse(Path(__file__).parents[1].joinpath("migrations", "env.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {"commerce", "vault"}:
                    importlib.import_module(alias.name)


def test_every_table_with_a_personal_reference_is_covered_by_a_registered_source() -> None:
    _all_models()
    covered = personal_data_sources().covered_tables()
    holding = {t.name for t in Base.metadata.tables.values() if PERSON_COLUMNS & {c.name for c in t.columns}}
    assert holding, "the metadata is empty: were the models imported?"
    uncovered = sorted(holding - covered)
    assert not uncovered, f"register a personal-data source (gateway/privacy.py) covering: {uncovered}"


def test_no_column_points_at_a_person_under_another_name() -> None:
    _all_models()
    misnamed = sorted(
        f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns if MISNAMED.match(c.name)
    )
    assert not misnamed, f"name these `customer_key` or `subject_id` (with a migration): {misnamed}"


def test_every_registered_source_names_real_tables_and_described_categories() -> None:
    _all_models()
    registry = personal_data_sources()
    assert registry.covered_tables() <= set(Base.metadata.tables)
    registry.validate(retention_policy())  # what start-up checks too
