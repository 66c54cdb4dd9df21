"""A public answer's headers, exactly: the same names, values and order for a 200 and for its 304."""

from __future__ import annotations

import zlib

import httpx
from xxhash import xxh3_128_hexdigest

from gateway import caching

NAMES = "{ products(first: 3) { edges { node { name slug } } } }"


async def test_a_public_answer_and_its_304_carry_exactly_these_headers(http: httpx.AsyncClient):
    first = await http.post("/graphql", json={"query": NAMES})
    etag = '"' + xxh3_128_hexdigest(first.content, seed=zlib.crc32(b"application/json")) + '"'
    assert [(k.decode(), v.decode()) for k, v in first.headers.raw][:-1] == [
        ("cache-control", "public, max-age=300"),
        ("etag", etag),
        ("vary", "Accept, X-Channel, Authorization"),
        ("content-length", str(len(first.content))),
        ("content-type", "application/json"),
    ]
    assert first.headers.raw[-1][0] == b"traceresponse"
    again = await http.post("/graphql", json={"query": NAMES}, headers={"If-None-Match": f"W/{etag}"})
    assert again.status_code == 304 and again.content == b""
    assert [(k.decode(), v.decode()) for k, v in again.headers.raw][:-1] == [
        ("cache-control", "public, max-age=300"),
        ("etag", etag),
        ("vary", "Accept, X-Channel, Authorization"),
    ]


def test_the_etag_is_the_xxh3_of_the_whole_answer_whatever_its_size_and_tells_one_byte_apart():
    for size in (0, 1, 63, 64, 2048, 13_833, 65_536, 65_537, 100_000):  # above 64 KB xxhash lets the GIL go
        body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        etag = caching.etag_of(body, "application/json")
        assert etag == '"' + xxh3_128_hexdigest(body, seed=zlib.crc32(b"application/json")) + '"' and len(etag) == 34, (
            size
        )
        if size:
            changed = body[:-1] + bytes([(body[-1] + 1) % 256])
            assert caching.etag_of(changed, "application/json") != etag, size
        assert caching.etag_of(body, "application/graphql-response+json") != etag, size  # two representations
