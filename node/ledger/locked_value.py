"""The block behind this validator's latest precommit, kept on disk so that a restart does not lose it.

A validator that precommits block B in round r is locked on B (Buchman, Kwon, Milosevic 2018, Algorithm 1,
line 36). The sign guard (node/ledger/sign_guard.py) persists the precommit, and after a restart the machine rebuilds
the lock from it (`ConsensusMachine._restore_lock`). A lock without its value is a trap, though: if every node
holding B restarts — a power cut of the whole cluster — nobody can re-propose B, the locked validators prevote
nil on everything else, and the height never ends. So the block is written here, fsynced, before the precommit
is recorded; on restart the service hands it back to the machine. Tendermint keeps it in its write-ahead log for
the same reason. One file, overwritten at each new precommitted block: older heights are final and need nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from consensus.messages import HASH_SIZE, decode_map
from primitives import codec

log = logging.getLogger(__name__)


class LockedValueFile:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._saved: bytes | None = None  # hash of what is on disk, so a repeated precommit costs nothing

    def save(self, value_hash: bytes, value: bytes) -> None:
        """Write (and fsync) `value` under `value_hash`, replacing the previous one atomically."""
        if value_hash == self._saved:
            return
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(codec.encode({"hash": value_hash, "value": value}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        self._saved = value_hash

    def load(self) -> tuple[bytes, bytes] | None:
        """(hash, value) as last saved, or None if there is none or it is unreadable (logged)."""
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            fields = decode_map(data, "locked value")
        except ValueError as exc:
            log.warning("%s is unreadable (%s); the locked block will be fetched from peers", self._path, exc)
            return None
        value_hash, value = fields.get("hash"), fields.get("value")
        if not isinstance(value_hash, bytes) or len(value_hash) != HASH_SIZE or not isinstance(value, bytes):
            log.warning("%s does not hold a hash and a value; the locked block will be fetched", self._path)
            return None
        self._saved = value_hash
        return value_hash, value
