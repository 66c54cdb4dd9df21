"""Signed checkpoints of the audit chain's head, kept outside the database.

The idea of CloudTrail's digest files: at a set interval the gateway appends one JSON line,
`{"seq": N, "hash": "...", "at": "...", "mac": "..."}`, to a file (never the database), the MAC
an HMAC-SHA256 under the audit key. Someone who can write the database but not this file and
not the key cannot cut the log's tail unnoticed: `audit-verify` finds the log shorter than the
latest checkpoint. A line whose MAC does not hold is reported, never trusted.

Several gateway replicas may append to one file: each line is one `write` on a file opened
with O_APPEND, so lines do not interleave; the latest checkpoint is the highest `seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import Clock
from vault.audit import Checkpoint, head

__all__ = ["CheckpointError", "CheckpointWriter", "append_checkpoint", "latest_checkpoint", "signature"]

logger = logging.getLogger("omnigate.audit")


class CheckpointError(ValueError):
    """The checkpoint file cannot be read, or a line in it is not signed by the audit key."""


def signature(key: bytes, seq: int, digest: str, at: datetime) -> str:
    message = f"omnigate audit checkpoint\n{seq}\n{digest}\n{at.isoformat()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def append_checkpoint(path: Path, key: bytes, checkpoint: Checkpoint) -> None:
    """Append one signed line (creating the file, readable by its owner only, on first use)."""
    line = {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": checkpoint.at.isoformat(),
        "mac": signature(key, checkpoint.seq, checkpoint.hash, checkpoint.at),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
    finally:
        os.close(fd)


def latest_checkpoint(path: Path, key: bytes) -> Checkpoint | None:
    """The checkpoint with the highest sequence number; None when there is no file or no line.

    Raises `CheckpointError` naming the first line that is not a checkpoint signed by `key`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read the audit checkpoint file {path}: {exc.strerror}") from None
    latest: Checkpoint | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            checkpoint = Checkpoint(int(data["seq"]), str(data["hash"]), datetime.fromisoformat(data["at"]))
            mac = str(data["mac"])
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{path} line {number} is not a checkpoint") from None
        if not hmac.compare_digest(signature(key, checkpoint.seq, checkpoint.hash, checkpoint.at), mac):
            raise CheckpointError(f"{path} line {number} is not signed by the audit key")
        if latest is None or checkpoint.seq > latest.seq:
            latest = checkpoint
    return latest


class CheckpointWriter:
    """Appends a checkpoint of the head every `interval` seconds, when the head has moved."""

    def __init__(self, engine: AsyncEngine, key: bytes, path: Path, interval: float, clock: Clock) -> None:
        self._engine, self._key, self._path, self._interval, self._clock = engine, key, path, interval, clock
        self._last_seq = 0
        self._task: asyncio.Task[None] | None = None

    async def write_once(self) -> Checkpoint | None:
        """The checkpoint written now, or None when the log has not grown since the last one."""
        current = await head(self._engine)
        if current is None or current.seq == self._last_seq:
            return None
        checkpoint = replace(current, at=self._clock.now())
        await asyncio.to_thread(append_checkpoint, self._path, self._key, checkpoint)
        self._last_seq = checkpoint.seq
        return checkpoint

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop, writing a last checkpoint of what this process appended."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._safely()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._safely()

    async def _safely(self) -> None:
        try:
            await self.write_once()
        except Exception as error:  # the database or the disk is away: try again next time
            logger.warning("audit checkpoint not written: %s", type(error).__name__)
