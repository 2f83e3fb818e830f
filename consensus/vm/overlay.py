"""A write-buffering `Storage` over any read-only key-value backend.

Lets the ledger run a block's contract transactions against its authenticated state tree without touching the
tree until the block is done: reads fall through to the backend, writes stay in an in-memory overlay with an
undo journal (so `snapshot`/`revert` per transaction is cheap), and `changes()` hands back the net effect —
key → new value, or None for a deletion — to apply to the tree and recompute the state root in one go.
"""

from __future__ import annotations

from typing import Protocol

_ABSENT = object()  # "the overlay had no entry for this key" in the journal


class ReadableState(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class OverlayStorage:
    def __init__(self, backend: ReadableState) -> None:
        self._backend = backend
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []
        self._open: list[int] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._backend.get(key)

    def _record(self, key: bytes) -> None:
        if self._open:
            self._journal.append((key, self._writes.get(key, _ABSENT)))

    def set(self, key: bytes, value: bytes) -> None:
        self._record(key)
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._record(key)
        self._writes[key] = None

    def snapshot(self) -> int:
        token = len(self._journal)
        self._open.append(token)
        return token

    def _close(self, snapshot: int) -> None:
        if not self._open or self._open[-1] != snapshot:
            raise ValueError("snapshots must be closed in the reverse order they were opened")
        self._open.pop()

    def revert(self, snapshot: int) -> None:
        self._close(snapshot)
        while len(self._journal) > snapshot:
            key, previous = self._journal.pop()
            if previous is _ABSENT:
                self._writes.pop(key, None)
            else:
                self._writes[key] = previous  # type: ignore[assignment]
        if not self._open:
            self._journal.clear()

    def commit(self, snapshot: int) -> None:
        self._close(snapshot)
        if not self._open:
            self._journal.clear()

    def changes(self) -> dict[bytes, bytes | None]:
        """Net writes since creation: value, or None where the key is to be deleted (sorted by key)."""
        if self._open:
            raise ValueError("close every snapshot before taking the changes")
        return {key: self._writes[key] for key in sorted(self._writes)}
