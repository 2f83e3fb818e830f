"""Ledger state: a flat key-value view for fast reads, authenticated by the state tree (smt.py).

Every value lives twice in storage: under its key in a flat table (so a read is one lookup) and as a leaf
(sha256(key), sha256(value)) of the state tree (so the state has one root that block headers commit to). Both
change together in `StateChanges`, which the chain store writes in the same LMDB transaction as the block.

`WorkingState` is what a block executes against: writes go to an overlay with a journal, so the VM can take a
snapshot before a call and revert a failed call (py-evm `vm/state.py` pattern); the base is never modified,
so a proposal can be executed speculatively and dropped when consensus moves to another round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from consensus import smt
from consensus.votes import ValidatorSet
from primitives import codec

_MISSING = object()


class StateReader(smt.NodeReader, Protocol):
    """Read access to a committed state: flat values and tree nodes."""

    def get_value(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class StateChanges:
    """The effect of executing a block: the new root, the flat writes and the tree positions that changed."""

    root: bytes
    values: Mapping[bytes, bytes | None] = field(default_factory=dict)
    nodes: Mapping[int, smt.Node | None] = field(default_factory=dict)


class MemoryState:
    """A state held in dicts: for tests, benchmarks and tools. The node uses the chain store instead."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.nodes: dict[int, smt.Node] = {}

    def get_value(self, key: bytes) -> bytes | None:
        return self.values.get(key)

    def get_node(self, pos: int) -> smt.Node | None:
        return self.nodes.get(pos)

    @property
    def root(self) -> bytes:
        return smt.root_of(self)

    def apply(self, changes: StateChanges) -> None:
        for key, value in changes.values.items():
            if value is None:
                self.values.pop(key, None)
            else:
                self.values[key] = value
        for pos, node in changes.nodes.items():
            if node is None:
                self.nodes.pop(pos, None)
            else:
                self.nodes[pos] = node


class LayeredState:
    """A committed state seen through not-yet-persisted changes (e.g. to execute block h+1 before h is stored)."""

    def __init__(self, base: StateReader, changes: StateChanges) -> None:
        self.base = base
        self.changes = changes

    def get_value(self, key: bytes) -> bytes | None:
        if key in self.changes.values:
            return self.changes.values[key]
        return self.base.get_value(key)

    def get_node(self, pos: int) -> smt.Node | None:
        if pos in self.changes.nodes:
            return self.changes.nodes[pos]
        return self.base.get_node(pos)


class WorkingState:
    """Mutable state for executing one block on top of a committed base, with snapshot/revert."""

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self.base.get_value(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._journal.append((key, self._writes.get(key, _MISSING)))
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._journal.append((key, self._writes.get(key, _MISSING)))
        self._writes[key] = None

    def snapshot(self) -> int:
        """A token for `revert`: everything written after it can be undone."""
        return len(self._journal)

    def revert(self, token: int) -> None:
        if not 0 <= token <= len(self._journal):
            raise ValueError("snapshot token is not from this state or was already reverted past")
        while len(self._journal) > token:
            key, previous = self._journal.pop()
            if previous is _MISSING:
                del self._writes[key]
            else:
                assert previous is None or isinstance(previous, bytes)
                self._writes[key] = previous

    def commit(self) -> StateChanges:
        """Fold the writes into the tree: the new root plus everything to persist. The base is untouched."""
        sha = hashlib.sha256
        tree_writes: dict[bytes, bytes | None] = {}
        values: dict[bytes, bytes | None] = {}
        for key, value in self._writes.items():
            # A value written back to what it was costs one redundant put but no tree change (same leaf).
            values[key] = value
            tree_writes[sha(key).digest()] = None if value is None else sha(value).digest()
        root, nodes = smt.update(self.base, tree_writes)
        return StateChanges(root, values, nodes)


# --- System state layout (docs/LEDGER.md §State layout). Keys are namespaced so the VM's storage can share
# the one tree without collisions: "sys/" for consensus, "rec/" for record transactions, "vm/" for contracts.
Getter = Callable[[bytes], bytes | None]

NONCE_PREFIX = b"sys/nonce/"
VALIDATOR_SCHEDULE_KEY = b"sys/validators"
ADMINS_KEY = b"sys/admins"
APPROVALS_PREFIX = b"sys/approvals/"
EVIDENCE_PREFIX = b"sys/evidence/"
RECORD_PREFIX = b"rec/"


def nonce_key(address: bytes) -> bytes:
    return NONCE_PREFIX + address


def get_nonce(get: Getter, address: bytes) -> int:
    """The next nonce the sender must use (0 for a new sender)."""
    raw = get(nonce_key(address))
    return 0 if raw is None else int.from_bytes(raw, "big")


def set_nonce(state: WorkingState, address: bytes, nonce: int) -> None:
    state.set(nonce_key(address), nonce.to_bytes(8, "big"))


def record_key(address: bytes, key: bytes) -> bytes:
    """Where a `record` transaction from `address` stores `key`: owners cannot overwrite each other."""
    return RECORD_PREFIX + address + b"/" + key


def _decode_keys(value: codec.Value) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not all(isinstance(k, bytes) for k in value):
        raise ValueError("stored key list is corrupt")
    return tuple(k for k in value if isinstance(k, bytes))


def validator_schedule(get: Getter) -> list[tuple[int, tuple[bytes, ...]]]:
    """[(first height, members)] in height order; the last entry at or below h is the set for height h."""
    raw = get(VALIDATOR_SCHEDULE_KEY)
    if raw is None:
        return []
    entries = codec.decode(raw)
    if not isinstance(entries, list):
        raise ValueError("stored validator schedule is corrupt")
    schedule: list[tuple[int, tuple[bytes, ...]]] = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)):
            raise ValueError("stored validator schedule is corrupt")
        schedule.append((entry[0], _decode_keys(entry[1])))
    return schedule


def set_validator_schedule(state: WorkingState, schedule: list[tuple[int, tuple[bytes, ...]]]) -> None:
    state.set(VALIDATOR_SCHEDULE_KEY, codec.encode([[h, list(m)] for h, m in sorted(schedule)]))


def validators_at(get: Getter, height: int) -> ValidatorSet:
    """The validator set that signs height `height`, as far as this state knows its schedule."""
    members: tuple[bytes, ...] | None = None
    for first_height, entry in validator_schedule(get):
        if first_height > height:
            break
        members = entry
    if members is None:
        raise ValueError(f"no validator set is scheduled at height {height}")
    return ValidatorSet(members)


def admins(get: Getter) -> tuple[bytes, ...]:
    raw = get(ADMINS_KEY)
    return () if raw is None else _decode_keys(codec.decode(raw))


def set_admins(state: WorkingState, members: tuple[bytes, ...]) -> None:
    state.set(ADMINS_KEY, codec.encode(list(members)))
