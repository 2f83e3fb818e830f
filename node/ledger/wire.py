"""Ledger messages on the wire (docs/PROTOCOL.md, "Ledger"): compact blocks, tx batches and the
`/ehrnet/ledger/1.0.0` requests. Proposals and votes travel in `consensus.gossip_batch.ConsensusBatch`.

All are canonical DAG-CBOR maps. Decoding is strict and bounded; a malformed message raises `WireError`, which
the ledger service counts and logs against the sending peer (never an unhandled exception).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cbor2

from consensus.block import Block, Header
from consensus.errors import LedgerError
from consensus.messages import decode_map
from consensus.tx import Tx
from primitives import codec

LEDGER_PROTOCOL = "/ehrnet/ledger/1.0.0"
MAX_GOSSIP_BYTES = 4 * 1024 * 1024
MAX_SYNC_BLOCKS = 64
MAX_SYNC_RESPONSE_BYTES = 16 * 1024 * 1024
# A blocks answer holds at most this many bytes of blocks (always at least one block). py-libp2p moves a few
# hundred KB/s on a busy machine, so a bigger answer (it was 8 MiB) can outlast the request timeout every time
# and a lagging node never catches up; small answers arrive and the requester simply asks again.
SYNC_RESPONSE_BUDGET = 1024 * 1024


def consensus_topic(chain_id: str) -> str:
    return f"/ehrnet/{chain_id}/consensus/1"


def txs_topic(chain_id: str) -> str:
    return f"/ehrnet/{chain_id}/txs/1"


class WireError(ValueError):
    """A peer's ledger message is malformed."""


def _decode_map(data: bytes, what: str) -> dict[str, codec.Value]:
    return decode_map(data, what, WireError)


def _list(value: dict[str, codec.Value], key: str, what: str) -> list[codec.Value]:
    item = value.get(key, [])
    if not isinstance(item, list):
        raise WireError(f"{what}.{key}: expected a list")
    return item


@dataclass(frozen=True)
class CompactBlock:
    """A proposed block as it travels in consensus gossip: the header and its transactions' hashes.

    Every validator already holds nearly all of a block's transactions (they were gossiped on the txs topic
    before the proposal), so the proposal names them by hash instead of carrying them — about 6× fewer bytes,
    which matters because py-libp2p relays large gossip messages slowly. The receiver rebuilds the exact block
    bytes from its mempool (`expand`) and fetches the full block by hash only when some are missing.
    """

    header: Header
    tx_hashes: tuple[bytes, ...]

    @classmethod
    def of(cls, block: Block) -> CompactBlock:
        return cls(block.header, tuple(tx.hash for tx in block.txs))

    def encode(self) -> bytes:
        return codec.encode({"header": self.header.to_value(), "tx_hashes": list(self.tx_hashes)})

    @classmethod
    def decode(cls, data: bytes, *, max_txs: int) -> CompactBlock:
        value = _decode_map(data, "compact block")
        hashes = _list(value, "tx_hashes", "compact block")
        if set(value) != {"header", "tx_hashes"}:
            raise WireError("compact block: a map of exactly header and tx_hashes")
        if len(hashes) > max_txs:
            raise WireError(f"compact block: {len(hashes)} transactions exceed the limit of {max_txs}")
        if not all(isinstance(h, bytes) and len(h) == 32 for h in hashes):
            raise WireError("compact block: every tx hash is 32 bytes")
        try:
            header = Header.from_value(value["header"])
        except LedgerError as exc:
            raise WireError(f"compact block header: {exc}") from exc
        return cls(header, tuple(h for h in hashes if isinstance(h, bytes)))

    def expand(self, lookup: Callable[[bytes], Tx | None]) -> Block | None:
        """The full block if `lookup` knows every transaction, else None."""
        txs = []
        for tx_hash in self.tx_hashes:
            tx = lookup(tx_hash)
            if tx is None:
                return None
            txs.append(tx)
        return Block(self.header, tuple(txs))


# A batch names at most this many peers as reached (a mesh of members is far smaller), each a peer ID string.
MAX_REACHED = 1024
MAX_PEER_ID_CHARS = 128


def encode_txs(raw_txs: list[bytes], reached: Iterable[str] = ()) -> bytes:
    """A tx batch for the txs topic; `reached` names the peers it has been sent to (node/ledger/gossip/tx_relay.py)."""
    names: list[codec.Value] = [name for name in sorted(set(reached))]
    batch: dict[str, codec.Value] = {"txs": list(raw_txs)}
    if names:
        batch["reached"] = names
    return codec.encode(batch)


def decode_txs(data: bytes) -> list[bytes]:
    """The transactions of a gossiped batch (see `decode_tx_batch`)."""
    return decode_tx_batch(data)[0]


def decode_tx_batch(data: bytes) -> tuple[list[bytes], frozenset[str]]:
    """The transactions of a gossiped batch and the peers it names as reached. The envelope is not checked for
    canonical form (that would encode the whole batch again): each transaction is checked on its own when the
    mempool admits it."""
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise WireError(f"tx batch: malformed CBOR: {exc}") from exc
    txs = value.get("txs") if isinstance(value, dict) else None
    if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
        raise WireError('tx batch: a map with a "txs" list of byte strings')
    reached = value.get("reached", [])
    if (
        not isinstance(reached, list)
        or len(reached) > MAX_REACHED
        or not all(isinstance(p, str) and 0 < len(p) <= MAX_PEER_ID_CHARS for p in reached)
    ):
        raise WireError(f'tx batch: "reached" is a list of at most {MAX_REACHED} peer IDs')
    return txs, frozenset(reached)


# ---- request–response ---------------------------------------------------------------------------------------


def status_request() -> bytes:
    return codec.encode({"type": "status"})


def blocks_request(start: int, end: int) -> bytes:
    return codec.encode({"type": "blocks", "from": start, "to": end})


def value_request(value_hash: bytes) -> bytes:
    return codec.encode({"type": "value", "hash": value_hash})


def round_state_request(height: int) -> bytes:
    return codec.encode({"type": "round_state", "height": height})


@dataclass(frozen=True)
class LedgerRequest:
    type: str
    start: int = 0
    end: int = 0
    value_hash: bytes = b""
    height: int = 0


def decode_request(data: bytes) -> LedgerRequest:
    value = _decode_map(data, "ledger request")
    kind = value.get("type")
    if kind == "status":
        return LedgerRequest("status")
    if kind == "blocks":
        start, end = value.get("from"), value.get("to")
        if not isinstance(start, int) or not isinstance(end, int) or not 1 <= start <= end:
            raise WireError("blocks request: need 1 ≤ from ≤ to")
        return LedgerRequest("blocks", start=start, end=min(end, start + MAX_SYNC_BLOCKS - 1))
    if kind == "value":
        value_hash = value.get("hash")
        if not isinstance(value_hash, bytes) or len(value_hash) != 32:
            raise WireError("value request: hash must be 32 bytes")
        return LedgerRequest("value", value_hash=value_hash)
    if kind == "round_state":
        height = value.get("height")
        if not isinstance(height, int) or height < 1:
            raise WireError("round_state request: height must be a positive integer")
        return LedgerRequest("round_state", height=height)
    raise WireError(f"unknown ledger request type {kind!r}")


@dataclass(frozen=True)
class PeerStatus:
    chain_id: str
    genesis_hash: bytes
    height: int

    def encode(self) -> bytes:
        return codec.encode({"chain_id": self.chain_id, "genesis_hash": self.genesis_hash, "height": self.height})

    @classmethod
    def decode(cls, data: bytes) -> PeerStatus:
        value = _decode_map(data, "status")
        chain_id, genesis_hash, height = value.get("chain_id"), value.get("genesis_hash"), value.get("height")
        if not isinstance(chain_id, str) or not isinstance(genesis_hash, bytes) or not isinstance(height, int):
            raise WireError("status: need chain_id, genesis_hash and height")
        return cls(chain_id, genesis_hash, height)


def encode_blocks(entries: list[tuple[bytes, codec.Value]]) -> bytes:
    """Final blocks with their commits: [(block bytes, commit value)]."""
    return codec.encode({"blocks": [{"block": b, "commit": c} for b, c in entries]})


def decode_blocks(data: bytes) -> list[tuple[bytes, codec.Value]]:
    value = _decode_map(data, "blocks response")
    out: list[tuple[bytes, codec.Value]] = []
    for entry in _list(value, "blocks", "blocks response"):
        if not isinstance(entry, dict) or not isinstance(entry.get("block"), bytes):
            raise WireError("blocks response: each entry has block bytes and a commit")
        block = entry["block"]
        assert isinstance(block, bytes)
        out.append((block, entry.get("commit")))
    return out


def encode_value(value: bytes | None) -> bytes:
    return codec.encode({"value": value})


def decode_value(data: bytes) -> bytes | None:
    value = _decode_map(data, "value response").get("value")
    if value is not None and not isinstance(value, bytes):
        raise WireError("value response: expected bytes or null")
    return value
