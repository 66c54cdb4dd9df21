"""Product counts per filter, kept so that paging a large catalog does not count it every page.

Counting a million products takes a scan (an index-only one at best) on every page a shopper
turns. The count of a filter is kept until the catalog or the stock changes (the gateway empties
it then, through the broadcast, on every replica) and for `max_age` seconds at most, so a count
may lag a change by no more than the broadcast's delay, or a minute should a message be lost.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

__all__ = ["CountCache"]


class CountCache:
    def __init__(self, max_age: float = 60.0, max_entries: int = 10_000) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._counts: dict[Hashable, tuple[float, int]] = {}

    def get(self, key: Hashable) -> int | None:
        found = self._counts.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: Hashable, count: int) -> int:
        if len(self._counts) >= self.max_entries:
            self._counts.clear()
        self._counts[key] = (time.monotonic() + self.max_age, count)
        return count

    def clear(self) -> None:
        self._counts.clear()
