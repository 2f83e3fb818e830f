"""Blocks, headers, commits and their validation.

A header carries everything a light client needs to follow the chain from headers alone (docs/LIGHT.md): the link to
its parent, the Merkle roots of its transactions and receipts, the state root *after* applying the block, the
hash of the validator set that signs it and of the set that signs the next height. A block is final once a
quorum of that set has precommitted its hash (Tendermint, Buchman et al. 2018); the commit travels next to the
block, not inside it, so the block hash is the header digest alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from consensus.errors import BlockError, CommitError, TxError
from consensus.tx import Tx, decode_tx
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives import codec
from primitives.keys import verify

HEADER_TYPE = "ehrnet/header/v1"
EMPTY_ROOT = hashlib.sha256(b"").digest()
NO_PROPOSER = bytes(32)


def merkle_root(leaves: list[bytes]) -> bytes:
    """Binary Merkle root with domain-separated leaves and nodes; an odd node is carried up, never duplicated
    (duplicating it would let two different lists share a root)."""
    if not leaves:
        return EMPTY_ROOT
    sha = hashlib.sha256
    level = [sha(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _hash32(value: codec.Value, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise BlockError(f"header {name} must be 32 bytes")
    return value


def _uint(value: codec.Value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BlockError(f"{name} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    parent_hash: bytes
    time_ms: int
    proposer: bytes
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes

    def to_value(self) -> codec.Value:
        # Keys in canonical (length-first, then bytewise) order, so encoding needs no sort.
        return {
            "type": HEADER_TYPE,
            "height": self.height,
            "time_ms": self.time_ms,
            "tx_root": self.tx_root,
            "chain_id": self.chain_id,
            "proposer": self.proposer,
            "state_root": self.state_root,
            "parent_hash": self.parent_hash,
            "receipts_root": self.receipts_root,
            "validators_hash": self.validators_hash,
            "next_validators_hash": self.next_validators_hash,
        }

    @cached_property
    def hash(self) -> bytes:
        """The block hash: sha256 of the canonical header."""
        return codec.digest(self.to_value())

    @classmethod
    def from_value(cls, value: codec.Value) -> Header:
        fields = {
            "type",
            "chain_id",
            "height",
            "parent_hash",
            "time_ms",
            "proposer",
            "tx_root",
            "receipts_root",
            "state_root",
            "validators_hash",
            "next_validators_hash",
        }
        if not isinstance(value, dict) or set(value) != fields or value["type"] != HEADER_TYPE:
            raise BlockError(f"a header is a map of type {HEADER_TYPE!r} with exactly the fields {sorted(fields)}")
        chain_id = value["chain_id"]
        if not isinstance(chain_id, str):
            raise BlockError("header chain_id must be a string")
        return cls(
            chain_id,
            _uint(value["height"], "header height"),
            _hash32(value["parent_hash"], "parent_hash"),
            _uint(value["time_ms"], "header time_ms"),
            _hash32(value["proposer"], "proposer"),
            _hash32(value["tx_root"], "tx_root"),
            _hash32(value["receipts_root"], "receipts_root"),
            _hash32(value["state_root"], "state_root"),
            _hash32(value["validators_hash"], "validators_hash"),
            _hash32(value["next_validators_hash"], "next_validators_hash"),
        )


@dataclass(frozen=True)
class Commit:
    """Precommits for one block hash: the proof that the block is final."""

    height: int
    round: int
    block_hash: bytes
    votes: tuple[Vote, ...]

    def to_value(self) -> codec.Value:
        return {  # canonical key order
            "round": self.round,
            "votes": [v.to_value() for v in self.votes],
            "height": self.height,
            "block_hash": self.block_hash,
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> Commit:
        if not isinstance(value, dict) or set(value) != {"height", "round", "block_hash", "votes"}:
            raise CommitError("a commit is a map with height, round, block_hash and votes")
        votes = value["votes"]
        if not isinstance(votes, list):
            raise CommitError("commit votes must be a list")
        try:
            parsed = tuple(Vote.from_value(v) for v in votes)
        except ValueError as exc:
            raise CommitError(f"malformed commit vote: {exc}") from exc
        block_hash = value["block_hash"]
        if not isinstance(block_hash, bytes) or len(block_hash) != 32:
            raise CommitError("commit block_hash must be 32 bytes")
        return cls(_uint(value["height"], "commit height"), _uint(value["round"], "commit round"), block_hash, parsed)


@dataclass(frozen=True)
class Block:
    header: Header
    txs: tuple[Tx, ...]

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def to_value(self) -> codec.Value:
        # Transactions travel as their canonical bytes, so their hashes need no re-encoding on the way in.
        return {"txs": [tx.raw for tx in self.txs], "header": self.header.to_value()}  # canonical key order

    def encode(self) -> bytes:
        return codec.encode(self.to_value())


def decode_block(data: bytes, *, chain_id: str, max_block_bytes: int, max_tx_bytes: int) -> Block:
    """Parse a block from a peer. Signatures are checked at execution (skipping ones the mempool checked)."""
    if len(data) > max_block_bytes + 4096:
        raise BlockError(f"block is {len(data)} bytes; the limit is {max_block_bytes} plus the header")
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise BlockError(f"block is not canonical DAG-CBOR: {exc}") from exc
    if not isinstance(value, dict) or set(value) != {"header", "txs"} or not isinstance(value["txs"], list):
        raise BlockError('a block is a map with "header" and a "txs" list')
    header = Header.from_value(value["header"])
    txs: list[Tx] = []
    for index, raw in enumerate(value["txs"]):
        if not isinstance(raw, bytes):
            raise BlockError(f"transaction {index} is not a byte string")
        try:
            txs.append(decode_tx(raw, chain_id=chain_id, max_bytes=max_tx_bytes, check_signature=False))
        except TxError as exc:
            raise BlockError(f"transaction {index}: {exc}") from exc
    return Block(header, tuple(txs))


def validate_link(header: Header, parent: Header) -> None:
    """Check that `header` extends `parent`: chain, height, hash link, time order and validator hand-over."""
    if header.chain_id != parent.chain_id:
        raise BlockError(f"header is for chain {header.chain_id!r}, not {parent.chain_id!r}")
    if header.height != parent.height + 1:
        raise BlockError(f"header height {header.height} does not follow {parent.height}")
    if header.parent_hash != parent.hash:
        raise BlockError(f"header {header.height} does not link to the hash of block {parent.height}")
    if header.time_ms <= parent.time_ms:
        raise BlockError(f"header time {header.time_ms} ms is not after its parent's {parent.time_ms} ms")
    if header.validators_hash != parent.next_validators_hash:
        raise BlockError(f"header {header.height} validator set is not the one its parent named")


def validate_time(header: Header, now_ms: int, max_drift_ms: int) -> None:
    """Reject proposals from the future (the proposer's clock is ahead by more than the allowed drift)."""
    if header.time_ms > now_ms + max_drift_ms:
        raise BlockError(f"header time {header.time_ms} ms is more than {max_drift_ms} ms ahead of {now_ms} ms")


def validate_body(block: Block, *, max_txs: int, max_bytes: int) -> None:
    """Check the body against the header's tx root and the size limits."""
    if len(block.txs) > max_txs:
        raise BlockError(f"block has {len(block.txs)} transactions; the limit is {max_txs}")
    total = sum(tx.size for tx in block.txs)
    if total > max_bytes:
        raise BlockError(f"block transactions total {total} bytes; the limit is {max_bytes}")
    hashes = [tx.hash for tx in block.txs]
    if len(set(hashes)) != len(hashes):
        raise BlockError("block contains the same transaction twice")
    if merkle_root(hashes) != block.header.tx_root:
        raise BlockError("transactions do not match the header's tx_root")


def _validator_offset(sign_bytes: bytes, block_hash: bytes | None) -> int:
    # In canonical order the vote map ends with "validator" then "block_hash" (keys sort length-first), so
    # the 32 validator bytes sit just before the encoded "block_hash" entry.
    tail = b"\x6ablock_hash" + (b"\xf6" if block_hash is None else b"\x58\x20" + block_hash)
    return len(sign_bytes) - len(tail) - 32


def verify_commit(commit: Commit, *, chain_id: str, height: int, block_hash: bytes, validators: ValidatorSet) -> int:
    """Check that `commit` finalises `block_hash` at `height`: a quorum of distinct members of `validators`
    with valid precommit signatures. Stops verifying once the quorum is reached. Returns the signers counted."""
    if commit.height != height or commit.block_hash != block_hash:
        raise CommitError(f"commit is for height {commit.height}, not for block {block_hash.hex()[:16]} at {height}")
    needed, seen, counted = validators.quorum, set[bytes](), 0
    templates: dict[int, tuple[bytes, int]] = {}  # round -> (a signed encoding, offset of its signer)
    for vote in commit.votes:
        if vote.kind != VoteKind.PRECOMMIT or vote.chain_id != chain_id or vote.height != height:
            raise CommitError("commit holds a vote that is not a precommit for this chain and height")
        if vote.block_hash != block_hash:
            raise CommitError("commit holds a precommit for another block")
        if vote.validator not in validators:
            raise CommitError(f"commit holds a vote from {vote.validator.hex()[:16]}, not a validator here")
        if vote.validator in seen:
            raise CommitError(f"commit holds two votes from {vote.validator.hex()[:16]}")
        seen.add(vote.validator)
        cached = templates.get(vote.round)
        if cached is None:
            message = vote.sign_bytes()
            templates[vote.round] = (message, _validator_offset(message, block_hash))
        else:
            # Precommits in a commit differ only by signer: splice the key into the round's encoding instead
            # of re-encoding each vote (the light client verifies thousands of headers; see bench).
            template, offset = cached
            message = template[:offset] + vote.validator + template[offset + 32 :]
        if not verify(vote.validator, message, vote.signature):
            raise CommitError(f"invalid precommit signature from {vote.validator.hex()[:16]}")
        counted += 1
        if counted >= needed:
            return counted
    raise CommitError(f"commit has {counted} valid precommits; a quorum is {needed} of {len(validators)}")


def block_to_json(block: Block, commit: Commit | None) -> dict[str, object]:
    """The JSON shape of `GET /blocks/{height}` (bytes as hex)."""
    h = block.header
    return {
        "height": h.height,
        "hash": h.hash.hex(),
        "parent_hash": h.parent_hash.hex(),
        "time_ms": h.time_ms,
        "proposer": h.proposer.hex(),
        "tx_root": h.tx_root.hex(),
        "receipts_root": h.receipts_root.hex(),
        "state_root": h.state_root.hex(),
        "validators_hash": h.validators_hash.hex(),
        "next_validators_hash": h.next_validators_hash.hex(),
        "txs": [tx.to_json() for tx in block.txs],
        "commit": None
        if commit is None
        else {
            "round": commit.round,
            "signatures": [{"validator": v.validator.hex(), "signature": v.signature.hex()} for v in commit.votes],
        },
    }
