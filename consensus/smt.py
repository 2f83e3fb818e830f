"""The state tree: a compact sparse Merkle tree over sha256(key), 256 levels deep.

Design (docs/LEDGER.md §State tree):
- Every key sits on the path given by the bits of sha256(key), most significant bit first.
- A subtree holding exactly one leaf is represented by that leaf, at the shallowest position its path is unique
  (the "empty-subtree shortcut"): the tree is about log2(n) deep instead of 256, and its shape depends only on
  the set of keys, never on the order of writes, so every node computes the same root.
- Hashes are domain-separated so a leaf can never pass for an inner node:
  leaf = sha256(0x00 || key_hash || value_hash), inner = sha256(0x01 || left || right), empty = 32 zero bytes.
- Positions are heap indices: the root is 1, the children of p are 2p and 2p + 1. A position is stored in place
  (not by hash), so a node keeps one copy of the latest tree on disk and never collects stale versions.

`update` applies a whole block's writes in one pass: structural changes first, then every touched inner node is
rehashed once, deepest first, so paths shared by many writes are hashed once per block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from consensus.errors import ProofError
from primitives import codec

ZERO = bytes(32)
KEY_BITS = 256
# A leaf is (key_hash, value_hash, leaf_hash); an inner node is its 32-byte hash (b"" while awaiting rehash).
Leaf = tuple[bytes, bytes, bytes]
Node = bytes | Leaf
_STALE = b""
_UNREAD: Node = b"<unread>"  # sentinel for "not yet read" (never a valid node: inner nodes are 32 bytes)


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + key_hash + value_hash).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def make_leaf(key_hash: bytes, value_hash: bytes) -> Leaf:
    return (key_hash, value_hash, leaf_hash(key_hash, value_hash))


def encode_node(node: Node) -> bytes:
    """Storage form: 32 bytes for an inner node, key_hash || value_hash (64 bytes) for a leaf."""
    return node if isinstance(node, bytes) else node[0] + node[1]


def decode_node(data: bytes) -> Node:
    if len(data) == 32:
        return bytes(data)
    if len(data) == 64:
        return make_leaf(bytes(data[:32]), bytes(data[32:]))
    raise ValueError(f"a stored tree node is 32 or 64 bytes, not {len(data)}")


def position_key(pos: int) -> bytes:
    """Storage key of a position: 33 bytes big-endian (positions have up to 257 bits)."""
    return pos.to_bytes(33, "big")


class NodeReader(Protocol):
    def get_node(self, pos: int) -> Node | None: ...


def _hash_of(node: Node | None) -> bytes:
    if node is None:
        return ZERO
    return node if isinstance(node, bytes) else node[2]


def _bit(key: int, depth: int) -> int:
    return (key >> (KEY_BITS - 1 - depth)) & 1


def root_of(reader: NodeReader) -> bytes:
    return _hash_of(reader.get_node(1))


class _Batch:
    """Structural edits over a reader, collected in memory; nothing in the reader changes.

    `view` merges what was read from the reader with what this batch wrote (every write walks from the root,
    so the shared top of the tree is read once per block); `changed` names the positions to persist.
    """

    def __init__(self, reader: NodeReader) -> None:
        self.reader = reader
        self.view: dict[int, Node | None] = {}
        self.changed: set[int] = set()
        self.dirty: set[int] = set()

    def get(self, pos: int) -> Node | None:
        node = self.view.get(pos, _UNREAD)
        if node is _UNREAD:
            node = self.view[pos] = self.reader.get_node(pos)
        return node

    def put(self, pos: int, node: Node | None) -> None:
        self.view[pos] = node
        self.changed.add(pos)

    def mark_dirty(self, pos: int) -> None:
        # Invariant: if a position is dirty, so are all its ancestors; so the walk can stop at the first one.
        while pos >= 1 and pos not in self.dirty:
            self.dirty.add(pos)
            pos >>= 1

    def write(self, key_hash: bytes, value_hash: bytes | None) -> None:
        key = int.from_bytes(key_hash, "big")
        pos, depth = 1, 0
        view, reader = self.view, self.reader
        while True:  # the hot loop of block execution: kept free of method calls on inner nodes
            node = view.get(pos, _UNREAD)
            if node is _UNREAD:
                node = view[pos] = reader.get_node(pos)
            if node.__class__ is bytes:
                pos = 2 * pos + ((key >> (KEY_BITS - 1 - depth)) & 1)
                depth += 1
                continue
            break
        if node is None:
            if value_hash is not None:
                self.put(pos, make_leaf(key_hash, value_hash))
                self.mark_dirty(pos >> 1)
            return
        assert isinstance(node, tuple)
        if node[0] == key_hash:
            if value_hash is None:
                self.put(pos, None)
                self._collapse(pos)
            elif node[1] != value_hash:
                self.put(pos, make_leaf(key_hash, value_hash))
                self.mark_dirty(pos >> 1)
            return
        if value_hash is not None:  # (deleting an absent key changes nothing)
            self._split(pos, depth, key, make_leaf(key_hash, value_hash), node)

    def _split(self, pos: int, depth: int, key: int, new: Leaf, old: Leaf) -> None:
        """Push the old leaf down until its path and the new key's path diverge."""
        other = int.from_bytes(old[0], "big")
        while _bit(key, depth) == _bit(other, depth):
            self.put(pos, _STALE)
            pos = 2 * pos + _bit(key, depth)
            depth += 1
            if depth >= KEY_BITS:
                raise ValueError("two distinct keys with the same sha256: impossible in practice")
        self.put(pos, _STALE)
        self.put(2 * pos + _bit(key, depth), new)
        self.put(2 * pos + _bit(other, depth), old)
        self.mark_dirty(pos)

    def _collapse(self, pos: int) -> None:
        """After emptying `pos`, lift a now-lonely sibling leaf to the shallowest position where it is alone."""
        while pos > 1:
            parent, sibling = pos >> 1, self.get(pos ^ 1)
            if sibling is None:  # defensive: a subtree left with no leaf at all disappears
                self.put(parent, None)
                pos = parent
                continue
            if isinstance(sibling, bytes):
                self.mark_dirty(parent)
                return
            self.put(pos ^ 1, None)
            pos = parent
            self.put(pos, sibling)
            while pos > 1 and self.get(pos ^ 1) is None:
                self.put(pos, None)
                pos >>= 1
                self.put(pos, sibling)
            self.mark_dirty(pos >> 1)
            return

    def rehash(self) -> None:
        """Recompute every touched inner node once, deepest first (children before parents)."""
        get, view, changed, sha = self.get, self.view, self.changed, hashlib.sha256
        for pos in sorted(self.dirty, key=int.bit_length, reverse=True):
            if get(pos).__class__ is not bytes:
                continue  # became a leaf or empty during collapse
            left, right = get(2 * pos), get(2 * pos + 1)
            # Inlined _hash_of: this loop runs a few times per write in every block.
            left_hash = ZERO if left is None else left if isinstance(left, bytes) else left[2]
            right_hash = ZERO if right is None else right if isinstance(right, bytes) else right[2]
            view[pos] = sha(b"\x01" + left_hash + right_hash).digest()
            changed.add(pos)

    def changes(self) -> dict[int, Node | None]:
        return {pos: self.view[pos] for pos in self.changed}


def update(reader: NodeReader, writes: Mapping[bytes, bytes | None]) -> tuple[bytes, dict[int, Node | None]]:
    """Apply {key_hash: value_hash or None (delete)} to the tree in `reader`.

    Returns the new root and the changed positions (None = remove) for the caller to persist; `reader` is not
    modified, so a block can be executed speculatively and thrown away.
    """
    batch = _Batch(reader)
    for key_hash in sorted(writes):
        batch.write(key_hash, writes[key_hash])
    batch.rehash()
    return _hash_of(batch.get(1)), batch.changes()


@dataclass(frozen=True, slots=True)
class Proof:
    """Siblings from the root down to where the key's path ends, and what sits there.

    `leaf` is the (key_hash, value_hash) found at the end of the path, or None for an empty position. It proves
    inclusion when its key_hash is sha256(key); otherwise it proves absence (another key owns that subtree).
    """

    siblings: tuple[bytes, ...]
    leaf: tuple[bytes, bytes] | None

    def to_value(self) -> codec.Value:
        # Empty siblings are common near the leaves; they travel as b"" to keep proofs small.
        return {
            "siblings": [b"" if s == ZERO else s for s in self.siblings],
            "leaf": None if self.leaf is None else [self.leaf[0], self.leaf[1]],
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> Proof:
        if not isinstance(value, dict) or set(value) != {"siblings", "leaf"}:
            raise ProofError('a proof is a map with "siblings" and "leaf"')
        siblings, leaf = value["siblings"], value["leaf"]
        if not isinstance(siblings, list) or len(siblings) > KEY_BITS:
            raise ProofError(f"proof siblings must be a list of at most {KEY_BITS} hashes")
        parsed: list[bytes] = []
        for s in siblings:
            if not isinstance(s, bytes) or len(s) not in (0, 32):
                raise ProofError("each proof sibling is 32 bytes (or empty for an empty subtree)")
            parsed.append(s or ZERO)
        if leaf is None:
            return cls(tuple(parsed), None)
        if not (isinstance(leaf, list) and len(leaf) == 2 and all(isinstance(x, bytes) and len(x) == 32 for x in leaf)):
            raise ProofError("proof leaf must be null or [key_hash, value_hash] of 32 bytes each")
        kh, vh = leaf
        assert isinstance(kh, bytes) and isinstance(vh, bytes)
        return cls(tuple(parsed), (kh, vh))


def prove(reader: NodeReader, key: bytes) -> Proof:
    """An inclusion or absence proof for `key` against the root of the tree in `reader`."""
    key_hash = hashlib.sha256(key).digest()
    k = int.from_bytes(key_hash, "big")
    siblings: list[bytes] = []
    pos = 1
    while True:
        node = reader.get_node(pos)
        if node is None:
            return Proof(tuple(siblings), None)
        if not isinstance(node, bytes):
            return Proof(tuple(siblings), (node[0], node[1]))
        bit = _bit(k, len(siblings))
        siblings.append(_hash_of(reader.get_node(2 * pos + 1 - bit)))
        pos = 2 * pos + bit


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """True iff `proof` shows that under `root` the key maps to `value` (None: the key is absent). Pure."""
    depth = len(proof.siblings)
    if depth > KEY_BITS:
        return False
    key_hash = hashlib.sha256(key).digest()
    k = int.from_bytes(key_hash, "big")
    if proof.leaf is None:
        if value is not None:
            return False
        h = ZERO
    else:
        leaf_key, leaf_value = proof.leaf
        if value is not None:
            if leaf_key != key_hash or leaf_value != hashlib.sha256(value).digest():
                return False
        else:
            # Absence: another key's leaf owns the subtree on our path; it must share our first `depth` bits.
            other = int.from_bytes(leaf_key, "big")
            if leaf_key == key_hash or (other >> (KEY_BITS - depth)) != (k >> (KEY_BITS - depth)):
                return False
        h = leaf_hash(leaf_key, leaf_value)
    sha = hashlib.sha256
    for depth_index in range(depth - 1, -1, -1):
        sibling = proof.siblings[depth_index]
        if (k >> (KEY_BITS - 1 - depth_index)) & 1:
            h = sha(b"\x01" + sibling + h).digest()
        else:
            h = sha(b"\x01" + h + sibling).digest()
    return h == root
