"""HTTP caching of public reads: Cache-Control from per-field hints, ETag and 304, a response cache.

Hints come from policies/cache.toml (see the comments there). For an anonymous query the
answer's max-age is the smallest hint of every field its document touches, worked out once per
document; anything personal (an Authorization header, a field without a hint, a mutation, an
answer with errors) is `private, no-store`.

The optional response cache (`OMNIGATE_RESPONSE_CACHE=true`) keeps cacheable answers for their
max-age, in-process, or in Redis for every replica when `OMNIGATE_REDIS_URL` is set. It is
emptied when the catalog changes: a write to a table in `TOPICS` (products, variants, prices,
stock, what else a public answer reads) is announced on the broadcast topics `catalog` and
`stock` (PostgreSQL triggers, migrations 0050 and 0090, so every replica hears every writer; on
SQLite the engine's own statements), and each replica empties its cache when it hears it. A
request stores its answer only if no change was heard while it ran (`Runtime.cache_generation`).
The pricing cache (commerce/pricing/cache.py) listens the same way to `catalog` and `pricing`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import tomllib
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from graphql import (
    DocumentNode,
    EnumValueNode,
    FieldNode,
    GraphQLSchema,
    NullValueNode,
    ObjectValueNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableNode,
    Visitor,
    get_named_type,
    is_leaf_type,
    visit,
)
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine
from xxhash import xxh3_128_hexdigest

from core.broadcast import Broadcaster

__all__ = [
    "CATALOG_TOPIC",
    "DEFAULT_CACHE_FILE",
    "CacheHints",
    "CachedResponse",
    "InProcessResponseCache",
    "RedisResponseCache",
    "announce_writes",
    "etag_of",
    "load_cache_hints",
    "watch",
]

logger = logging.getLogger("omnigate.caching")

DEFAULT_CACHE_FILE = Path(__file__).resolve().parent.parent / "policies" / "cache.toml"
CATALOG_TOPIC = "catalog"  # products, variants, categories, prices
STOCK_TOPIC = "stock"
PRICING_TOPIC = "pricing"  # promotions and their usage
TOPICS = {  # as the triggers of migrations 0050 and 0090 announce them on PostgreSQL
    "products": CATALOG_TOPIC,
    "product_variants": CATALOG_TOPIC,
    "categories": CATALOG_TOPIC,
    "prices": CATALOG_TOPIC,
    "channels": CATALOG_TOPIC,
    "locations": CATALOG_TOPIC,
    "product_tags": CATALOG_TOPIC,
    "product_options": CATALOG_TOPIC,
    "variant_option_values": CATALOG_TOPIC,
    "product_media": CATALOG_TOPIC,
    "stock_levels": STOCK_TOPIC,
    "promotions": PRICING_TOPIC,
    "promotion_usages": PRICING_TOPIC,
}
NO_STORE = "private, no-store"


_ARGUMENT = re.compile(r"^(\w+)\.(\w+)\((\w+)(?:\.(\w+)|=(\w+))\)$")  # Type.field(arg.inputField) or (arg=VALUE)


@dataclass(frozen=True, slots=True)
class ArgumentHint:
    """`[arguments]`: an argument (one field of an input object, or one enum value) that makes
    the answer depend on fresher data than the field it is given to: a filter on stock or price."""

    owner: str
    field: str
    argument: str
    input_field: str | None
    value: str | None
    max_age: int

    def applies(self, node: FieldNode) -> bool:
        """Given in `node`: as a literal, or through a variable, which may hold it (the hint is per
        document, worked out before any variables are seen)."""
        given = next((a.value for a in node.arguments or () if a.name.value == self.argument), None)
        if given is None or isinstance(given, (VariableNode, NullValueNode)):
            return isinstance(given, VariableNode)
        if self.value is not None:
            return isinstance(given, EnumValueNode) and given.value == self.value
        if not isinstance(given, ObjectValueNode):
            return False
        inner = next((f.value for f in given.fields if f.name.value == self.input_field), None)
        return inner is not None and not isinstance(inner, NullValueNode)


class CacheHints:
    """Hints per type, field and argument, checked against the schema; max-age per document, cached."""

    def __init__(
        self,
        schema: GraphQLSchema,
        types: dict[str, int],
        fields: dict[str, int],
        arguments: dict[str, int] | None = None,
    ) -> None:
        problems = [f"[types] {name}: no such type" for name in types if name not in schema.type_map]
        for target in fields:
            type_name, _, field_name = target.partition(".")
            owner = schema.type_map.get(type_name)
            if owner is None or field_name not in getattr(owner, "fields", {}):
                problems.append(f"[fields] {target}: no such field")
        self.arguments: dict[tuple[str, str], list[ArgumentHint]] = {}
        for target, max_age in (arguments or {}).items():
            hint = _argument_hint(schema, target, max_age)
            if hint is None:
                problems.append(f"[arguments] {target}: no such argument (Type.field(arg.inputField) or (arg=VALUE))")
            else:
                self.arguments.setdefault((hint.owner, hint.field), []).append(hint)
        if problems:
            raise ValueError("the cache hints do not match the schema: " + "; ".join(problems))
        self.schema = schema
        self.types = types
        self.fields = fields
        self._documents: OrderedDict[int, tuple[DocumentNode, int]] = OrderedDict()

    def max_age(self, document: DocumentNode) -> int:
        """Seconds an anonymous answer to `document` may be reused (0: not at all)."""
        cached = self._documents.get(id(document))
        if cached is not None and cached[0] is document:
            return cached[1]
        age = self._compute(document)
        self._documents[id(document)] = (document, age)
        while len(self._documents) > 1024:
            self._documents.popitem(last=False)
        return age

    def _compute(self, document: DocumentNode) -> int:
        type_info = TypeInfo(self.schema)
        hints = self
        ages: list[int] = []

        class Touched(Visitor):
            def enter_field(self, node: FieldNode, *_: Any) -> None:
                parent = type_info.get_parent_type()
                definition = type_info.get_field_def()
                name = node.name.value
                if name == "__typename":
                    return
                if parent is None or definition is None or name.startswith("__"):
                    ages.append(0)  # introspection, or something validation would refuse
                    return
                for hint in hints.arguments.get((parent.name, name), ()):
                    if hint.applies(node):
                        ages.append(hint.max_age)
                own = hints.fields.get(f"{parent.name}.{name}")
                if own is not None:
                    ages.append(own)
                    return
                returned = get_named_type(definition.type)
                if is_leaf_type(returned):
                    if returned.name in hints.types:
                        ages.append(hints.types[returned.name])
                    return  # a scalar inherits its parent's hint
                ages.append(hints.types.get(returned.name, 0))

        visit(document, TypeInfoVisitor(type_info, Touched()))
        return max(0, min(ages)) if ages else 0


def _argument_hint(schema: GraphQLSchema, target: str, max_age: int) -> ArgumentHint | None:
    """`target` parsed and checked against the schema; None if it names nothing there."""
    match = _ARGUMENT.match(target)
    if match is None:
        return None
    owner, field, argument, input_field, value = match.groups()
    definition = getattr(schema.type_map.get(owner), "fields", {}).get(field)
    declared = definition.args.get(argument) if definition is not None else None
    if declared is None:
        return None
    named = get_named_type(declared.type)
    if input_field is not None and input_field not in getattr(named, "fields", {}):
        return None
    if value is not None and value not in getattr(named, "values", {}):
        return None
    return ArgumentHint(owner, field, argument, input_field, value, max_age)


def load_cache_hints(schema: GraphQLSchema, path: str | None = None) -> CacheHints:
    raw = tomllib.loads(Path(path or DEFAULT_CACHE_FILE).read_text(encoding="utf-8"))
    types = {str(k): int(v) for k, v in raw.get("types", {}).items()}
    fields = {str(k): int(v) for k, v in raw.get("fields", {}).items()}
    arguments = {str(k): int(v) for k, v in raw.get("arguments", {}).items()}
    return CacheHints(schema, types, fields, arguments)


def etag_of(body: bytes, media_type: str) -> str:
    """The answer's ETag: the 128-bit XXH3 hash of its media type and body, in hex.

    The same body is sent as `application/json` or `application/graphql-response+json`: two
    representations, which a strong ETag must tell apart (RFC 9110 8.8.3).

    An ETag only has to tell two versions of an answer apart; nobody signs anything with it, so a
    cryptographic hash is not needed. XXH3 hashes a ~20 KB storefront page in ~1 us where SHA-256
    took ~18 us, on every public read. It keeps the GIL below 64 KB (a page is far smaller), so
    the database driver's threads are not handed the GIL in the middle of an answer.
    """
    return '"' + xxh3_128_hexdigest(body, seed=zlib.crc32(media_type.encode())) + '"'  # no copy of the body


def etag_matches(if_none_match: str, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    etag: str
    media_type: str
    expires_at: float  # time.time()

    def age_left(self) -> int:
        return max(0, int(self.expires_at - time.time()))


class ResponseCache(Protocol):
    async def get(self, key: str) -> CachedResponse | None: ...
    async def put(self, key: str, response: CachedResponse) -> None: ...
    async def discard(self, key: str) -> None: ...
    async def clear(self) -> None: ...
    async def aclose(self) -> None: ...


class InProcessResponseCache:
    """An LRU of answers bounded by count and by their bytes, each dropped when its max-age has passed.

    Any anonymous client makes a new entry with a new comment in its query, and one answer within
    the cost limits can be hundreds of KB: the bytes are the bound that matters.
    """

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 2**20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self._bytes = 0

    async def get(self, key: str) -> CachedResponse | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found.expires_at <= time.time():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found

    async def put(self, key: str, response: CachedResponse) -> None:
        if len(response.body) > self.max_bytes // 16:  # one answer never crowds out the rest
            return
        self._drop(key)
        self._entries[key] = response
        self._bytes += len(response.body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def discard(self, key: str) -> None:
        self._drop(key)

    def _drop(self, key: str) -> None:
        dropped = self._entries.pop(key, None)
        if dropped is not None:
            self._bytes -= len(dropped.body)

    def forget_all(self) -> None:
        self._entries.clear()
        self._bytes = 0

    async def clear(self) -> None:
        self.forget_all()

    async def aclose(self) -> None:
        self.forget_all()


class RedisResponseCache:
    """Answers in Redis (SET with EX = their max-age), shared by every replica."""

    def __init__(self, url: str, prefix: str = "omnigate:") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix + "response:"

    async def get(self, key: str) -> CachedResponse | None:
        raw: dict[Any, Any] = await self._redis.hgetall(self._prefix + key)
        if not raw:
            return None
        return CachedResponse(
            raw[b"body"], raw[b"etag"].decode(), raw[b"media_type"].decode(), float(raw[b"expires_at"])
        )

    async def put(self, key: str, response: CachedResponse) -> None:
        name = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                name,
                mapping={
                    "body": response.body,
                    "etag": response.etag,
                    "media_type": response.media_type,
                    "expires_at": str(response.expires_at),
                },
            )
            pipe.expire(name, max(1, response.age_left()))
            await pipe.execute()

    async def discard(self, key: str) -> None:
        await self._redis.unlink(self._prefix + key)

    async def clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*", count=500)]
        for start in range(0, len(keys), 500):
            await self._redis.unlink(*keys[start : start + 500])

    async def aclose(self) -> None:
        await self._redis.aclose()


def cache_key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


def announce_writes(
    engine: AsyncEngine, broadcaster: Broadcaster, on_change: Callable[[str], Awaitable[None] | None]
) -> None:
    """This process's committed writes to cached tables: `on_change(topic)` once the commit has
    landed (the connection back in the pool), then the broadcast.

    Not at the engine's `commit` event, which fires before the database has the commit: until it
    lands, other requests still read the snapshot before it, and would store answers from it
    after the caches were emptied. Once it has landed, `on_change` empties them, and an answer
    read before is not stored (`Runtime.cache_generation`). The writer's own next request already
    misses them. Other processes hear it through the broadcast: on PostgreSQL the triggers of
    migrations 0050 and 0090 send it for every writer; on SQLite (one host) this hook publishes it.
    """
    publish = engine.dialect.name == "sqlite"

    def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        match = _WRITE.match(statement)
        topic = TOPICS.get(match.group(1).lower()) if match else None
        if topic is not None:
            conn.info.setdefault("omnigate_changed", set()).add(topic)

    def on_commit(conn: Any) -> None:
        topics = conn.info.pop("omnigate_changed", None)
        if topics:
            conn.info.setdefault("omnigate_committed", set()).update(topics)  # `conn.info` is the record's

    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        for topic in record.info.pop("omnigate_committed", ()):
            outcome = on_change(topic)  # what is in-process is forgotten now; Redis a moment later
            if outcome is not None:
                _soon(outcome)
            if publish:
                _soon(broadcaster.publish(topic, ""))

    def on_rollback(conn: Any) -> None:
        try:
            conn.info.pop("omnigate_changed", None)
        except exc.SQLAlchemyError:  # an invalidated connection (a cancelled statement): nothing was written
            return

    event.listen(engine.sync_engine, "after_cursor_execute", on_execute)
    event.listen(engine.sync_engine, "commit", on_commit)
    event.listen(engine.sync_engine, "rollback", on_rollback)
    event.listen(engine.sync_engine.pool, "checkin", on_checkin)


def _soon(awaitable: Any) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(awaitable)
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[Any]] = set()


async def watch(broadcaster: Broadcaster, topic: str, on_change: Callable[[str], Awaitable[None] | None]) -> None:
    """Call `on_change(topic)` for every message on `topic`, until cancelled."""
    async with broadcaster.subscribe(topic) as messages:
        async for _ in messages:
            try:
                outcome = on_change(topic)
                if outcome is not None:
                    await outcome
            except Exception as error:  # Redis away: its entries still expire by themselves
                logger.warning("could not empty a cache on %s: %s", topic, type(error).__name__)
