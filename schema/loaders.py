"""Per-request loaders: every list of N objects costs one query per kind, not N.

`BatchLoader` replaces aiodataloader's DataLoader for our needs. Keys asked for in the same
turn of the event loop (by `load` from many resolvers, or by one `load_many` from a batched
resolver) are fetched in one call, and every caller of that batch waits on the batch's one
future: no future per key (aiodataloader made ~130 per storefront page).

Who runs a batch's fetch: by default a Task of its own, two loop turns after its first key.
While the compiled executor steps resolvers (`schema.compiled.settle`), it offers itself as the
`BATCH_RUNNER`: a batch started then is fetched by settle, right after every resolver of the
round has added its keys, inside the request's own task. Same batches, same statements, without
a Task and its extra loop turns per batch.

Where the compiled executor awaits one plan's batch resolvers one after another (onepass.py), it
sets `EAGER` to its task: a load in that task then fetches what is not cached at once. Each
batch resolver asks for all of a level's keys in one call, so that is the same statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from collections.abc import Set as AbstractSet
from contextvars import ContextVar
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog import merchandising
from commerce.catalog import service as catalog
from commerce.customers import service as customers
from commerce.inventory import service as inventory
from commerce.pricing.price_book import price_entries_by_variant_ids
from core.db import Connectable
from vault.service import Vault

__all__ = ["BATCH_RUNNER", "BatchLoader", "BatchRunner", "Loaders"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_BATCH_SIZE = 1000
_running: set[asyncio.Future[None]] = set()


class BatchRunner(Protocol):
    """Runs batch fetches itself (settle does, while it steps resolvers)."""

    def run_batch(self, fetch: Coroutine[Any, Any, None], done: asyncio.Future[None]) -> bool:
        """Take `fetch` (which completes `done`) to run; False when not stepping now."""
        ...


BATCH_RUNNER: ContextVar[BatchRunner | None] = ContextVar("omnigate_batch_runner", default=None)
# The task that awaits one plan's batch resolvers one after another (compiled executor, onepass.py):
# its loads fetch at once what is not cached, with no batch window to wait out (each batch resolver
# asks for all its keys in one call; a later one finds those keys cached). Only in that very task:
# loads it runs side by side in Tasks of their own (a gather) batch as usual, so none is repeated.
EAGER: ContextVar[asyncio.Task[Any] | None] = ContextVar("omnigate_eager_loads", default=None)


def _eager() -> bool:
    task = EAGER.get()
    return task is not None and task is asyncio.current_task()


class BatchLoader(Generic[K, V]):
    """Cached per request; `fetch(keys)` returns what it found, `default` stands for the rest."""

    __slots__ = ("_default", "_fetch", "_open", "_values", "_waiting")

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], default: V | None = None) -> None:
        self._fetch = fetch
        self._default = default
        self._values: dict[K, V | None] = {}
        self._waiting: dict[K, asyncio.Future[None]] = {}  # key -> the batch that will fetch it
        self._open: tuple[list[K], asyncio.Future[None]] | None = None  # the batch still taking keys

    async def load(self, key: K) -> V | None:
        values = self._values
        if key not in values:
            await (self._fetch_now([key]) if not self._waiting and _eager() else self._batch_of([key]))
        return values[key]

    async def load_many(self, keys: Sequence[K]) -> list[V | None]:
        values = self._values
        missing = [key for key in keys if key not in values] if values else keys  # nothing cached: all of them
        if missing:
            await (self._fetch_now(missing) if not self._waiting and _eager() else self._batch_of(missing))
        return list(map(values.__getitem__, keys))

    async def _fetch_now(self, keys: Sequence[K]) -> None:
        """`keys` fetched at once (`EAGER`), as many at a time as a batch takes."""
        wanted = dict.fromkeys(keys)
        unique = list(wanted)
        for start in range(0, len(unique), MAX_BATCH_SIZE):
            chunk = unique[start : start + MAX_BATCH_SIZE]
            found = await self._fetch(chunk)
            self._store(chunk, found, wanted.keys() if len(chunk) == len(unique) else dict.fromkeys(chunk).keys())

    def _store(self, keys: Sequence[K], found: dict[K, V], asked: AbstractSet[K]) -> None:
        """A fetch's answer for `keys` (unique; `asked` the same as a set): the default for any not found."""
        if len(found) == len(keys) and found.keys() == asked:  # every key found, and no other
            self._values.update(found)
        else:
            default = self._default
            for key in keys:
                self._values[key] = found.get(key, default)

    def prime(self, key: K, value: V | None) -> None:
        """Remember a value read elsewhere, so loading it costs nothing."""
        self._values.setdefault(key, value)

    def _batch_of(self, keys: Sequence[K]) -> Awaitable[Any]:
        """What to await until all of `keys` are in `_values` (one future when they share a batch)."""
        waiting = self._waiting
        if not waiting and len(keys) <= MAX_BATCH_SIZE:  # nothing in flight: one new batch takes them all
            fresh = self._start_batch()
            unique = dict.fromkeys(keys, fresh[1])
            fresh[0].extend(unique)
            waiting.update(unique)
            return fresh[1]
        batches: dict[asyncio.Future[None], None] = {}
        for key in keys:
            future = waiting.get(key)
            if future is None:
                batch = self._open
                if batch is None or len(batch[0]) >= MAX_BATCH_SIZE:
                    batch = self._start_batch()
                batch[0].append(key)
                future = waiting[key] = batch[1]
            batches[future] = None
        if len(batches) == 1:
            return next(iter(batches))
        return asyncio.gather(*batches)

    def _start_batch(self) -> tuple[list[K], asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        batch: tuple[list[K], asyncio.Future[None]] = ([], loop.create_future())
        self._open = batch
        runner = BATCH_RUNNER.get()
        if runner is not None:
            fetch = self._run(batch)
            if runner.run_batch(fetch, batch[1]):
                return batch
            fetch.close()  # never started: nothing to clean up
        loop.call_soon(self._dispatch, batch)
        return batch

    def _dispatch(self, batch: tuple[list[K], asyncio.Future[None]]) -> None:
        task = asyncio.ensure_future(self._run(batch))
        _running.add(task)  # the loop holds tasks weakly
        task.add_done_callback(_running.discard)

    async def _run(self, batch: tuple[list[K], asyncio.Future[None]]) -> None:
        # The batch closes when this task first runs, two loop turns after its first key (as
        # aiodataloader): resolvers that graphql-core starts as Tasks a turn later still join it.
        if self._open is batch:
            self._open = None
        keys, done = batch
        try:
            found = await self._fetch(keys)
        except BaseException as error:
            for key in keys:
                self._waiting.pop(key, None)
            if not done.done():
                done.set_exception(error)
                done.exception()  # retrieved: a caller that went away must not log "never retrieved"
            if not isinstance(error, Exception):
                raise
            return
        self._store(keys, found, set(keys))  # a batch's keys are unique
        waiting = self._waiting
        if len(waiting) == len(keys):  # only this batch's keys (each once) are waiting: all of them
            waiting.clear()
        else:
            for key in keys:
                waiting.pop(key, None)
        if not done.done():
            done.set_result(None)


class _made_on_first_use(Generic[V]):
    """`functools.cached_property` without its lock (Python 3.11 takes an RLock on every first
    access, ~1 us each, four a storefront request): a request's loaders are made by one task."""

    __slots__ = ("make", "name")

    def __init__(self, make: Callable[[Any], V]) -> None:
        self.make = make
        self.name = make.__name__

    @overload
    def __get__(self, owner: None, owner_type: type | None = None) -> _made_on_first_use[V]: ...
    @overload
    def __get__(self, owner: object, owner_type: type | None = None) -> V: ...
    def __get__(self, owner: object | None, owner_type: type | None = None) -> V | _made_on_first_use[V]:
        if owner is None:
            return self
        value = owner.__dict__[self.name] = self.make(owner)  # the instance's attribute from now on
        return value


def _loader(fetch: Callable[[list[Any]], Awaitable[dict[Any, Any]]], default: Any = None) -> BatchLoader[Any, Any]:
    return BatchLoader(fetch, default)


async def _channels_by_code(engine: AsyncEngine) -> dict[str, Any]:
    return {c.code: c for c in await catalog.list_channels(engine)}


class Loaders:
    """Created per request (never shared: a loader caches what one principal may see).

    Each loader is made on first use: a request uses a few of them, and every request makes a
    `Loaders`. No loader's fetch refers back to `self`: that cycle would keep every row a
    request loaded alive until the cyclic garbage collector ran (~0.2 ms a storefront request).
    """

    def __init__(
        self, engine: AsyncEngine, *, currency: str, vault: Vault | None = None, reads: Connectable | None = None
    ) -> None:
        """`reads` is where catalog reads go (a request's ReadScope); personal data always uses `engine`."""
        self._engine = engine
        self._reads: Connectable = engine if reads is None else reads
        self._currency = currency
        self._vault = vault

    @_made_on_first_use
    def categories(self) -> BatchLoader[Any, Any]:
        return _loader(partial(catalog.categories_by_ids, self._reads))

    @_made_on_first_use
    def products(self) -> BatchLoader[Any, Any]:
        return _loader(partial(catalog.products_by_ids, self._reads))

    @_made_on_first_use
    def variants(self) -> BatchLoader[Any, Any]:
        return _loader(partial(catalog.variants_by_ids, self._reads))

    @_made_on_first_use
    def variants_by_product(self) -> BatchLoader[Any, Any]:
        return _loader(partial(catalog.variants_by_product_ids, self._reads), [])

    @_made_on_first_use
    def locations(self) -> BatchLoader[Any, Any]:
        return _loader(partial(catalog.locations_by_ids, self._reads))

    @_made_on_first_use
    def channels_by_code(self) -> BatchLoader[Any, Any]:
        engine = self._engine
        return _loader(lambda codes: _channels_by_code(engine))

    @_made_on_first_use
    def stock(self) -> BatchLoader[Any, Any]:
        return _loader(partial(inventory.stock_by_variant_ids, self._reads), [])

    @_made_on_first_use
    def prices(self) -> BatchLoader[Any, Any]:
        """The channel currency's price book entry (price and compare-at price) per variant."""
        reads, currency = self._reads, self._currency
        return _loader(lambda ids: price_entries_by_variant_ids(reads, ids, currency))

    @_made_on_first_use
    def media(self) -> BatchLoader[Any, Any]:
        return _loader(partial(merchandising.media_by_product_ids, self._engine), [])

    @_made_on_first_use
    def options(self) -> BatchLoader[Any, Any]:
        return _loader(partial(merchandising.options_by_product_ids, self._engine), [])

    @_made_on_first_use
    def selected_options(self) -> BatchLoader[Any, Any]:
        return _loader(partial(merchandising.selected_options_by_variant_ids, self._engine), [])

    @_made_on_first_use
    def tags(self) -> BatchLoader[Any, Any]:
        return _loader(partial(merchandising.tags_by_product_ids, self._engine), [])

    @_made_on_first_use
    def collections(self) -> BatchLoader[Any, Any]:
        return _loader(partial(merchandising.collections_by_ids, self._engine))

    # Personal data: decrypted per batch, one query for rows and one for keys (only with a vault).
    @_made_on_first_use
    def customer_profiles(self) -> BatchLoader[Any, Any]:
        vault = self._personal()
        return _loader(partial(customers.profiles_by_ids, self._engine, vault))

    @_made_on_first_use
    def customer_consents(self) -> BatchLoader[Any, Any]:
        vault = self._personal()
        return _loader(partial(customers.consents_by_ids, self._engine, vault), [])

    @_made_on_first_use
    def customer_consent_history(self) -> BatchLoader[Any, Any]:
        vault = self._personal()
        return _loader(partial(customers.consent_history_by_ids, self._engine, vault), [])

    def _personal(self) -> Vault:
        if self._vault is None:
            raise AttributeError("no vault: these loaders read personal data")
        return self._vault
