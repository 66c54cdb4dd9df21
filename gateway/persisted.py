"""Persisted operations: Automatic Persisted Queries and trusted documents.

APQ (the `extensions.persistedQuery` protocol Apollo and Relay clients speak): a client sends
only `sha256Hash`; an unknown hash is answered `PERSISTED_QUERY_NOT_FOUND`, and the client
sends the document once with its hash to register it. Later requests, GETs included (a short,
cacheable URL), carry the hash alone.

Trusted documents: the `.graphql` files of `OMNIGATE_TRUSTED_DOCUMENTS_DIR`, loaded at
start-up and known by the SHA-256 of their text. With `OMNIGATE_TRUSTED_DOCUMENTS_ONLY=true`
nothing else runs: a hostile document never reaches the parser (OWASP's strongest defence
against expensive or probing queries), and APQ may not register new ones.

A document is registered only once it has parsed and validated (`register`, after the
executor's `prepare`): nothing the executor refuses is kept. The registrations are bounded by
count (`OMNIGATE_PERSISTED_QUERY_CACHE_SIZE`, 0 turns APQ registration off) and by their total
length (`REGISTERED_CHARS`), least recently used first out.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from graphql import GraphQLError

from core.settings import Settings, SettingsError

__all__ = ["REGISTERED_CHARS", "PersistedDocuments", "PersistedQueryError", "sha256_hex"]

REGISTERED_CHARS = 20_000_000  # ~20-80 MB of registered documents per process at most, whatever their count

logger = logging.getLogger("omnigate.persisted")


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class PersistedQueryError(Exception):
    """The request names a document we cannot (or may not) run; `error` says which, for the client."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})


class PersistedDocuments:
    """The trusted documents (fixed at start-up) and the APQ registrations (a bounded LRU)."""

    def __init__(self, trusted: dict[str, str], *, trusted_only: bool, cache_size: int) -> None:
        self.trusted = trusted
        self.trusted_only = trusted_only
        self.cache_size = cache_size
        self._registered: LRUCache[str, str] = LRUCache(maxsize=REGISTERED_CHARS, getsizeof=len)

    @classmethod
    def from_settings(cls, settings: Settings) -> PersistedDocuments:
        if settings.persisted_query_cache_size < 0:
            raise SettingsError("OMNIGATE_PERSISTED_QUERY_CACHE_SIZE must be 0 (APQ off) or more")
        trusted = load_trusted_documents(settings.trusted_documents_dir) if settings.trusted_documents_dir else {}
        if settings.trusted_documents_only and not trusted:
            raise ValueError(
                "OMNIGATE_TRUSTED_DOCUMENTS_ONLY=true needs OMNIGATE_TRUSTED_DOCUMENTS_DIR with .graphql files"
            )
        return cls(
            trusted, trusted_only=settings.trusted_documents_only, cache_size=settings.persisted_query_cache_size
        )

    def resolve(self, query: Any, extensions: dict[str, Any] | None) -> tuple[Any, str | None]:
        """The document text to run: `query` itself, or the one its persisted-query hash names;
        and the hash to `register` it under once it has proved runnable (None: nothing to keep).

        Raises PersistedQueryError for an unknown or mismatched hash, or for any document that
        is not trusted when only trusted documents may run. Returns `query` unchanged when the
        request uses neither mechanism (the caller checks it is a string).
        """
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if self.trusted_only and isinstance(query, str) and sha256_hex(query) not in self.trusted:
                raise PersistedQueryError(
                    "Only trusted documents run here: send a persisted query's hash.", "PERSISTED_QUERY_NOT_IN_LIST"
                )
            return query, None
        if not isinstance(persisted, dict) or persisted.get("version", 1) != 1:
            raise PersistedQueryError("Unsupported persistedQuery version: use 1.", "PERSISTED_QUERY_NOT_SUPPORTED")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or len(digest) != 64:
            raise PersistedQueryError("`persistedQuery.sha256Hash` must be a SHA-256 hex digest.", "BAD_REQUEST")
        digest = digest.lower()
        if query is None or query == "":
            found = self.trusted.get(digest) or self._registered.get(digest)
            if found is not None:
                return found, None
            if self.cache_size == 0 and not self.trusted_only:  # the client then sends whole documents
                raise PersistedQueryError("Automatic Persisted Queries are off here.", "PERSISTED_QUERY_NOT_SUPPORTED")
            raise PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
        if not isinstance(query, str):
            return query, None
        if sha256_hex(query) != digest:
            raise PersistedQueryError("The document's SHA-256 is not `sha256Hash`.", "PERSISTED_QUERY_HASH_MISMATCH")
        if digest in self.trusted:
            return query, None
        if self.trusted_only:
            raise PersistedQueryError(
                "Only trusted documents run here: this one cannot be registered.", "PERSISTED_QUERY_NOT_IN_LIST"
            )
        return query, digest

    def register(self, digest: str, query: str) -> None:
        """Keep a document that parsed and validated under its hash, evicting the least recently used."""
        if self.cache_size <= 0 or len(query) > REGISTERED_CHARS:
            return
        while len(self._registered) >= self.cache_size and digest not in self._registered:
            self._registered.popitem()
        self._registered[digest] = query


def load_trusted_documents(directory: str) -> dict[str, str]:
    """Every `.graphql` file under `directory`, by the SHA-256 of its text (as a client hashes it)."""
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"OMNIGATE_TRUSTED_DOCUMENTS_DIR={directory!r} is not a directory")
    documents: dict[str, str] = {}
    for path in sorted(root.rglob("*.graphql")):
        text = path.read_text(encoding="utf-8")
        documents[sha256_hex(text)] = text
        if text != text.strip():  # a client may hash the document without the file's final newline
            documents[sha256_hex(text.strip())] = text.strip()
    logger.info("loaded %d trusted documents from %s", len(set(documents.values())), directory)
    return documents
