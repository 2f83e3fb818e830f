"""Replica requests (protocol `/ehrnet/replicate/1.0.0`): ask a peer to hold a pinned copy of an object.

One request, one answer per stream, canonical DAG-CBOR (primitives/codec.py):

    {"type": "replicate", "cid": <binary CID>, "replication": r}          (1 <= r <= 64)
    {"type": "accepted"}
    {"type": "refused", "reason": <text <= 200 chars>}

The receiver answers at once and does the work afterwards (find providers, fetch every block verified, pin
with factor r, announce itself as a provider); the sender learns the outcome from the DHT on its next
replication check, not from this answer. Only nodes with the `storage` role accept; the others refuse, and
the sender remembers that and places the copy elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from primitives import codec
from storage.address import CID
from storage.errors import InvalidCidError, ProtocolError
from storage.peer_message import decode_typed_map

PROTOCOL_ID = "/ehrnet/replicate/1.0.0"
MAX_MESSAGE_BYTES = 1024
MAX_REPLICATION = 64
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Replicate:
    cid: CID
    replication: int


@dataclass(frozen=True, slots=True)
class Accepted:
    pass


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


Answer = Accepted | Refused


def encode_replicate(request: Replicate) -> bytes:
    return codec.encode({"type": "replicate", "cid": request.cid.to_bytes(), "replication": request.replication})


def encode_answer(answer: Answer) -> bytes:
    if isinstance(answer, Accepted):
        return codec.encode({"type": "accepted"})
    return codec.encode({"type": "refused", "reason": answer.reason[:MAX_REASON]})


def _map(data: bytes) -> dict[str, codec.Value]:
    return decode_typed_map(data, "replicate message", MAX_MESSAGE_BYTES)


def decode_replicate(data: bytes) -> Replicate:
    value = _map(data)
    raw_cid, replication = value.get("cid"), value.get("replication")
    if value["type"] != "replicate" or not isinstance(raw_cid, bytes):
        raise ProtocolError("expected {'type': 'replicate', 'cid': <binary CID>, 'replication': r}")
    if not isinstance(replication, int) or isinstance(replication, bool) or not 1 <= replication <= MAX_REPLICATION:
        raise ProtocolError(f"replication must be an integer from 1 to {MAX_REPLICATION}")
    try:
        return Replicate(CID.from_bytes(raw_cid), replication)
    except InvalidCidError as exc:
        raise ProtocolError(str(exc)) from exc


def decode_answer(data: bytes) -> Answer:
    value = _map(data)
    if value["type"] == "accepted":
        return Accepted()
    reason = value.get("reason")
    if value["type"] == "refused" and isinstance(reason, str):
        return Refused(reason[:MAX_REASON])
    raise ProtocolError("expected an 'accepted' or 'refused' answer")
