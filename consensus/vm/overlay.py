"""A write-buffering `Storage` over any read-only key-value backend.

Lets the ledger run a block's contract transactions against its authenticated state tree without touching the
tree until the block is done: reads fall through to the backend, writes stay in an in-memory overlay with an
undo journal (so `snapshot`/`revert` per transaction is cheap), and `changes()` hands back the net effect —
key → new value, or None for a deletion — to apply to the tree and recompute the state root in one go.
"""

from __future__ import annotations

from typing import Protocol

from consensus.vm.journal import JournaledEntries


class ReadableState(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class OverlayStorage(JournaledEntries[bytes | None]):
    """Writes buffered over `backend`: an entry of None marks a deletion still to be applied."""

    def __init__(self, backend: ReadableState) -> None:
        super().__init__({})
        self._backend = backend

    def get(self, key: bytes) -> bytes | None:
        if key in self._entries:
            return self._entries[key]
        return self._backend.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._record(key)
        self._entries[key] = value

    def delete(self, key: bytes) -> None:
        self._record(key)
        self._entries[key] = None

    def changes(self) -> dict[bytes, bytes | None]:
        """Net writes since creation: value, or None where the key is to be deleted (sorted by key)."""
        if self._has_open_snapshot():
            raise ValueError("close every snapshot before taking the changes")
        return {key: self._entries[key] for key in sorted(self._entries)}
