"""Nested snapshots over a dict by an undo journal, shared by the VM's in-memory storages.

Each change first records the entry it is about to replace (or that there was none); `revert(token)` pops the
journal back to the token's position, restoring entries, and `commit(token)` just forgets the snapshot. Once the
outermost snapshot closes the journal is dropped, so writes outside any snapshot cost nothing to undo.
"""

from __future__ import annotations

from typing import Generic, TypeVar

V = TypeVar("V")


class _Absent:
    """Journal marker: the dict had no entry for the key before the change."""


_ABSENT = _Absent()


class JournaledEntries(Generic[V]):
    """Owns `_entries` and its undo journal; subclasses call `_record(key)` before changing `_entries[key]`."""

    def __init__(self, entries: dict[bytes, V]) -> None:
        self._entries = entries
        self._journal: list[tuple[bytes, V | _Absent]] = []
        self._open: list[int] = []

    def _record(self, key: bytes) -> None:
        if self._open:
            self._journal.append((key, self._entries.get(key, _ABSENT)))

    def _has_open_snapshot(self) -> bool:
        return bool(self._open)

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
            if isinstance(previous, _Absent):
                self._entries.pop(key, None)
            else:
                self._entries[key] = previous
        if not self._open:
            self._journal.clear()

    def commit(self, snapshot: int) -> None:
        self._close(snapshot)
        if not self._open:
            self._journal.clear()
