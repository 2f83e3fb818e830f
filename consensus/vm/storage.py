"""The storage interface the VM needs, its key layout, and an in-memory implementation for tests.

The ledger's authenticated state tree implements `Storage`, so contract code, metadata and every contract's
storage live in the one tree whose root the block header commits to (docs/VM.md). Key layout, all under
one flat byte-string key space:

    b"c/" + address(20) + b"/code"        contract source, UTF-8
    b"c/" + address(20) + b"/meta"        DAG-CBOR {"deployer": bytes, "code_hash": bytes, "name": str|None}
    b"c/" + address(20) + b"/s/" + key    DAG-CBOR value the contract stored under `key` (ctx.set)
    b"n/" + name (UTF-8)                  20-byte address of a contract deployed under a well-known name

Because the address has a fixed length and the storage part starts with "/s/", no contract key can collide
with another contract's keys, its code or its metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from consensus.vm.journal import JournaledEntries

CONTRACT_PREFIX = b"c/"
NAME_PREFIX = b"n/"
ADDRESS_BYTES = 20


def code_key(address: bytes) -> bytes:
    return CONTRACT_PREFIX + address + b"/code"


def meta_key(address: bytes) -> bytes:
    return CONTRACT_PREFIX + address + b"/meta"


def storage_key(address: bytes, key: bytes) -> bytes:
    """Where the contract at `address` keeps the value it stores under `key`."""
    return CONTRACT_PREFIX + address + b"/s/" + key


def name_key(name: str) -> bytes:
    return NAME_PREFIX + name.encode("utf-8")


class Storage(Protocol):
    """A key-value state with nested snapshots. `snapshot()` returns a token; `revert(token)` undoes every change
    made since, `commit(token)` keeps them and forgets the snapshot. Tokens are used in LIFO order."""

    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def snapshot(self) -> int: ...

    def revert(self, snapshot: int) -> None: ...

    def commit(self, snapshot: int) -> None: ...


class MemoryStorage(JournaledEntries[bytes]):
    """A dict plus an undo journal: each change records the value it replaced."""

    def __init__(self, items: dict[bytes, bytes] | None = None) -> None:
        super().__init__(dict(items or {}))
        self.items = self._entries

    def get(self, key: bytes) -> bytes | None:
        return self.items.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._record(key)
        self.items[key] = value

    def delete(self, key: bytes) -> None:
        if key in self.items:
            self._record(key)
            del self.items[key]


class ReadOnlyStorage:
    """A storage for views: reads go to `get_value`; the VM refuses writes before they get here."""

    refusal = "read-only storage"

    def __init__(self, get_value: Callable[[bytes], bytes | None]) -> None:
        self._get = get_value

    def get(self, key: bytes) -> bytes | None:
        return self._get(key)

    def set(self, key: bytes, value: bytes) -> None:
        raise PermissionError(self.refusal)

    def delete(self, key: bytes) -> None:
        raise PermissionError(self.refusal)

    def snapshot(self) -> int:
        return 0

    def revert(self, snapshot: int) -> None:
        return None

    def commit(self, snapshot: int) -> None:
        return None
