"""Block exchange (protocol `/ehrnet/blocks/1.0.0`): fetch blocks by CID, verify each, score the sender.

One request, one response per stream, canonical DAG-CBOR (primitives/codec.py):

    {"type": "get_blocks", "cids": [<binary CID>...]}                      (at most 64 CIDs)
    {"type": "blocks", "blocks": [{"cid": <binary CID>, "data": <bytes>}...], "missing": [<binary CID>...]}

The server answers in request order until its byte budget is spent; CIDs it does not hold go in "missing",
CIDs left out for the budget are simply absent and asked again. The client accepts only blocks it asked for
and checks every block against its CID: one bad block condemns the whole response, and `PeerScores` drops
the peer that sent it (it must be malicious or broken: honest peers verify what they store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from primitives import codec
from storage.address import CID
from storage.errors import InvalidCidError, ProtocolError, StorageError
from storage.importer import Block

PROTOCOL_ID = "/ehrnet/blocks/1.0.0"
MAX_CIDS_PER_REQUEST = 64
MAX_RESPONSE_BYTES = 8 << 20
MAX_BLOCK_BYTES = 1 << 20  # UnixFS leaves are 256 KiB; kubo refuses blocks over 1 MiB on bitswap too
MAX_MESSAGE_BYTES = MAX_RESPONSE_BYTES + (1 << 20)


@dataclass(frozen=True, slots=True)
class GetBlocks:
    cids: tuple[CID, ...]


@dataclass(frozen=True, slots=True)
class Blocks:
    blocks: tuple[Block, ...] = ()
    missing: tuple[CID, ...] = ()


def encode_get_blocks(request: GetBlocks) -> bytes:
    if not 0 < len(request.cids) <= MAX_CIDS_PER_REQUEST:
        raise ValueError(f"a request carries 1..{MAX_CIDS_PER_REQUEST} CIDs")
    return codec.encode({"type": "get_blocks", "cids": [c.to_bytes() for c in request.cids]})


def encode_blocks(response: Blocks) -> bytes:
    return codec.encode(
        {
            "type": "blocks",
            "blocks": [{"cid": b.cid.to_bytes(), "data": b.data} for b in response.blocks],
            "missing": [c.to_bytes() for c in response.missing],
        }
    )


def _map(data: bytes, kind: str) -> dict[str, codec.Value]:
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"block-exchange message of {len(data)} bytes is too large")
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise ProtocolError(f"block-exchange message is not canonical CBOR: {exc}") from exc
    if not isinstance(value, dict) or value.get("type") != kind:
        raise ProtocolError(f"expected a '{kind}' message")
    return value


def _cids(items: codec.Value, limit: int) -> tuple[CID, ...]:
    if not isinstance(items, list) or len(items) > limit:
        raise ProtocolError(f"expected a list of at most {limit} CIDs")
    try:
        return tuple(CID.from_bytes(item) for item in items if isinstance(item, bytes))
    except InvalidCidError as exc:
        raise ProtocolError(str(exc)) from exc


def decode_get_blocks(data: bytes) -> GetBlocks:
    cids = _map(data, "get_blocks").get("cids")
    parsed = _cids(cids, MAX_CIDS_PER_REQUEST)
    if not parsed or not isinstance(cids, list) or len(parsed) != len(cids):
        raise ProtocolError(f"get_blocks needs 1..{MAX_CIDS_PER_REQUEST} binary CIDs")
    return GetBlocks(parsed)


def decode_blocks(data: bytes) -> Blocks:
    value = _map(data, "blocks")
    entries = value.get("blocks")
    if not isinstance(entries, list) or len(entries) > MAX_CIDS_PER_REQUEST:
        raise ProtocolError("'blocks' must be a list")
    blocks: list[Block] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("cid"), bytes):
            raise ProtocolError("block entry needs 'cid' and 'data' bytes")
        data_field = entry.get("data")
        if not isinstance(data_field, bytes) or len(data_field) > MAX_BLOCK_BYTES:
            raise ProtocolError("block 'data' must be bytes of at most 1 MiB")
        cid_field = entry["cid"]
        assert isinstance(cid_field, bytes)
        try:
            blocks.append(Block(CID.from_bytes(cid_field), data_field))
        except InvalidCidError as exc:
            raise ProtocolError(str(exc)) from exc
    return Blocks(tuple(blocks), _cids(value.get("missing"), MAX_CIDS_PER_REQUEST))


def serve_get_blocks(
    request: GetBlocks, get_block: Callable[[CID], bytes], max_bytes: int = MAX_RESPONSE_BYTES
) -> Blocks:
    """The server side: blocks we hold, in request order, within the byte budget (always at least one)."""
    blocks: list[Block] = []
    missing: list[CID] = []
    spent = 0
    for cid in request.cids:
        try:
            data = get_block(cid)
        except StorageError:
            missing.append(cid)  # absent, or corrupt on our disk: never serve a block that fails its hash
            continue
        if blocks and spent + len(data) > max_bytes:
            break
        blocks.append(Block(cid, data))
        spent += len(data)
    return Blocks(tuple(blocks), tuple(missing))


def accept_blocks(requested: Iterable[CID], response: Blocks) -> list[Block]:
    """The client side: verified blocks of a response; raises if any block is unasked-for or tampered."""
    wanted = set(requested)
    for block in response.blocks:
        if block.cid not in wanted:
            raise ProtocolError(f"peer sent {block.cid}, which was not requested")
        block.cid.verify(block.data)  # BlockHashMismatchError: a tampered block
    return list(response.blocks)


@dataclass
class PeerScores:
    """Block-exchange reputation: useful blocks raise a peer's score, failures lower it, bad blocks ban it."""

    timeout_penalty: float = 5.0
    ban_threshold: float = -20.0
    _scores: dict[bytes, float] = field(default_factory=dict)
    _banned: set[bytes] = field(default_factory=set)
    _misbehaved: set[bytes] = field(default_factory=set)

    def score(self, peer_id: bytes) -> float:
        return self._scores.get(peer_id, 0.0)

    def delivered(self, peer_id: bytes, blocks: int) -> None:
        self._scores[peer_id] = self.score(peer_id) + blocks

    def failed(self, peer_id: bytes) -> None:
        """A timeout or a refused stream: a penalty, a ban only if it keeps happening."""
        self._scores[peer_id] = self.score(peer_id) - self.timeout_penalty
        if self._scores[peer_id] <= self.ban_threshold:
            self._banned.add(peer_id)

    def misbehaved(self, peer_id: bytes, error: Exception) -> None:
        """A bad block or a protocol violation: dropped at once."""
        self._scores[peer_id] = min(self.score(peer_id), self.ban_threshold) - 100.0
        self._banned.add(peer_id)
        self._misbehaved.add(peer_id)

    def misbehaving(self) -> set[bytes]:
        """Peers dropped for bad data or protocol violations (not for timeouts): to be remembered beyond one
        fetch, unlike the penalties of an unreachable peer."""
        return set(self._misbehaved)

    def banned(self, peer_id: bytes) -> bool:
        return peer_id in self._banned

    def ranked(self, peer_ids: Sequence[bytes]) -> list[bytes]:
        """Usable peers, best first (stable for equal scores)."""
        usable = [p for p in peer_ids if p not in self._banned]
        return sorted(usable, key=lambda p: -self.score(p))
