"""A database outage, logged once per interval with a count instead of a stack trace per request.

While the database is unreachable every request fails the same way; a stack trace for each
(168,000 log lines in ten seconds, measured) buries everything else. The first refused request
logs at once, then one line per interval says how many more were refused, and one line says
when the database answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["OutageLog"]

log = logging.getLogger("omnigate.database")


class OutageLog:
    """Counts requests refused for want of the database; call `answered()` when one succeeds."""

    def __init__(self, interval_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # when the outage began; None while the database answers
        self._last_report = float("-inf")
        self._unreported = 0
        self._total = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def refused(self) -> None:
        now = self._clock()
        with self._lock:
            if self._since is None:
                self._since = now
            self._unreported += 1
            self._total += 1
            if now - self._last_report < self.interval:
                return
            count, since = self._unreported, self._since
            self._unreported = 0
            self._last_report = now
        log.warning(
            "the database is unreachable (for %.0f s): %d request(s) answered 503 since the last report",
            now - since,
            count,
        )

    def answered(self) -> None:
        if self._since is None:  # the usual case: no lock, no work
            return
        now = self._clock()
        with self._lock:
            if self._since is None:
                return
            since, total = self._since, self._total
            self._since = None
            self._unreported = self._total = 0
            self._last_report = float("-inf")
        log.warning("the database answers again after %.0f s; %d request(s) were answered 503", now - since, total)
