"""The erasure ledger: every erasure, written down outside the database before it starts.

A backup restored later brings back people erased since it was taken; `restore` replays this
ledger (subject ids and account keys only, never personal data) before the gateway serves. It
lives outside the database for that reason: a restored database would bring back an old
ledger too. One JSON object per line, appended and fsync'ed; replaying an entry twice is
harmless (erasure is idempotent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["ErasureLedger", "LedgerEntry"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    subject_id: str
    customer_key: int
    requested_at: datetime


class ErasureLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, entry: LedgerEntry) -> None:
        self.append_many([entry])

    def append_many(self, entries: Sequence[LedgerEntry]) -> None:
        """Appended in one write and made durable (fsync) before the erasures begin."""
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(
            json.dumps(
                {
                    "subject_id": e.subject_id,
                    "customer_key": e.customer_key,
                    "requested_at": e.requested_at.isoformat(),
                },
                separators=(",", ":"),
            )
            + "\n"
            for e in entries
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> Iterator[LedgerEntry]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    yield LedgerEntry(
                        str(raw["subject_id"]), int(raw["customer_key"]), datetime.fromisoformat(raw["requested_at"])
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash mid-write: the erasure it began is retried by `dsr run`
