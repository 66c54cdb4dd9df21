"""JSON columns read back what was stored, on both backends, whichever parser reads them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import JSON, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import json_loads


async def test_a_json_column_reads_back_lists_maps_and_text_as_stored(engine: AsyncEngine) -> None:
    stored = {"codes": ["WINTER10", "ŻABKA"], "ids": [1, 2**62], "nested": {"a": None, "b": True}}
    async with engine.connect() as conn:
        read = (await conn.execute(select(literal(stored, JSON)))).scalar_one()
    assert read == stored


@pytest.mark.parametrize("text_", ["[1, NaN]", '{"x": Infinity}'])
def test_what_orjson_refuses_is_still_read_as_the_standard_library_reads_it(text_: str) -> None:
    assert repr(json_loads(text_)) == repr(json.loads(text_))
