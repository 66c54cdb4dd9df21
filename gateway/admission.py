"""Admission: at most N GraphQL requests run at once in a worker; the rest wait their turn, first come first served.

One worker is one event loop on one core. Past the few requests that keep it busy while others
wait on the database, admitting more only interleaves them: each request's objects and the code
it runs are evicted from the CPU caches by the other fifteen before it resumes, so every request
costs more CPU, and all of them finish late together instead of the first ones finishing early.
Under callgrind's cache model (a 1 MB last level, this machine's L2), with requests limited
outside the app and never lent, a storefront request of the gateway missed 29.7 K times at 16
concurrent requests, 25.1 K with 4 at once, 19.7 K one at a time (20.1 K at one client). In
process, at 16 concurrent requests, two runs of 11-15 alternating rounds with 2 at once: the
gateway 2.22 -> 2.07 and 2.77 -> 2.25 ms of CPU per request, the hand-written endpoint 1.54 -> 1.57
and 2.02 -> 1.72 ms (the second run on a busier machine). Over HTTP the gain is smaller than the
run-to-run noise of a shared machine.

A request that holds its slot longer than `LEND_AFTER_SECONDS` (a report, an export) lends it to
the next in line and runs on outside the count, so a slow operation never stalls the cheap ones
behind it for longer than that.

PostgreSQL round trips leave the CPU idle while they travel, and how many requests it takes to
fill that time depends on the network, so there the automatic setting admits every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from core.settings import SettingsError

__all__ = ["AUTOMATIC", "LEND_AFTER_SECONDS", "SQLITE_LIMIT", "Admission", "admission_limit"]

AUTOMATIC = -1  # the setting's default: SQLITE_LIMIT on SQLite, no limit on PostgreSQL
SQLITE_LIMIT = 2
LEND_AFTER_SECONDS = 0.1
_NO_LIMIT = nullcontext()  # stateless: one serves every request


def admission_limit(setting: int, database_url: str) -> int:
    """Requests run at once for `OMNIGATE_MAX_CONCURRENT_REQUESTS` (0: no limit); a bad value stops start-up."""
    if setting < AUTOMATIC:
        raise SettingsError(
            f"OMNIGATE_MAX_CONCURRENT_REQUESTS must be -1 (automatic), 0 (no limit) or a positive number, not {setting}"
        )
    if setting != AUTOMATIC:
        return setting
    return SQLITE_LIMIT if database_url.startswith("sqlite") else 0


class Admission:
    """A first-come-first-served limit on requests running at once (0: none)."""

    def __init__(self, limit: int, lend_after: float = LEND_AFTER_SECONDS) -> None:
        self.limit = limit
        self.lend_after = lend_after
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Held while a request runs; a request cancelled while waiting holds nothing."""
        return self._held() if self.limit else _NO_LIMIT  # no generator per request when nothing is counted

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        slots = self._semaphore()
        await slots.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        lend = asyncio.get_running_loop().call_later(self.lend_after, give_back)
        try:
            yield
        finally:
            lend.cancel()
            give_back()

    def _semaphore(self) -> asyncio.Semaphore:
        """The semaphore of the running loop (a test suite runs one app on several loops in turn)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.limit), loop
        return self._slots
