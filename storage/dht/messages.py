"""DHT wire messages (protocol `/ehrnet/kad/1.0.0`), canonical DAG-CBOR maps (primitives/codec.py).

One request and one response per stream, each a single CBOR map with a "type" field:

    {"type": "find_node", "target": <32 bytes: keyspace position>}          -> nodes
    {"type": "get_providers", "key": <multihash bytes>}                     -> nodes (with providers)
    {"type": "add_provider", "key": <multihash bytes>, "provider": peer}    -> ack
    {"type": "ping"}                                                        -> ack
    {"type": "nodes", "closer": [peer...], "providers": [peer...]}
    {"type": "ack"}
    peer = {"id": <libp2p peer ID bytes>, "addrs": [<multiaddr text>...]}

FIND_NODE carries the keyspace position itself (not a key to hash) so a bucket refresh can aim at any point.
Decoding validates types and bounds everything a peer controls; anything else is a `ProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from primitives import codec
from storage.dht.keyspace import Contact
from storage.errors import ProtocolError
from storage.peer_message import decode_typed_map

PROTOCOL_ID = "/ehrnet/kad/1.0.0"
MAX_MESSAGE_BYTES = 256 << 10
MAX_PEERS = 64
MAX_ADDRS = 8
MAX_ADDR_LENGTH = 256
MAX_KEY_LENGTH = 80


@dataclass(frozen=True, slots=True)
class FindNode:
    target: int


@dataclass(frozen=True, slots=True)
class GetProviders:
    key: bytes


@dataclass(frozen=True, slots=True)
class AddProvider:
    key: bytes
    provider: Contact


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Nodes:
    closer: tuple[Contact, ...] = ()
    providers: tuple[Contact, ...] = ()


@dataclass(frozen=True, slots=True)
class Ack:
    pass


Request = FindNode | GetProviders | AddProvider | Ping
Response = Nodes | Ack


def _peer(contact: Contact) -> codec.Value:
    return {"id": contact.peer_id, "addrs": list(contact.addrs)}


def encode_message(message: Request | Response) -> bytes:
    value: dict[str, codec.Value]
    match message:
        case FindNode(target):
            value = {"type": "find_node", "target": target.to_bytes(32, "big")}
        case GetProviders(key):
            value = {"type": "get_providers", "key": key}
        case AddProvider(key, provider):
            value = {"type": "add_provider", "key": key, "provider": _peer(provider)}
        case Ping():
            value = {"type": "ping"}
        case Nodes(closer, providers):
            value = {"type": "nodes", "closer": [_peer(c) for c in closer], "providers": [_peer(p) for p in providers]}
        case Ack():
            value = {"type": "ack"}
    return codec.encode(value)


def _map(data: bytes) -> dict[str, codec.Value]:
    return decode_typed_map(data, "DHT message", MAX_MESSAGE_BYTES)


def _bytes(value: dict[str, codec.Value], name: str, max_length: int = MAX_KEY_LENGTH) -> bytes:
    field = value.get(name)
    if not isinstance(field, bytes) or not 0 < len(field) <= max_length:
        raise ProtocolError(f"'{name}' must be 1..{max_length} bytes")
    return field


def _contact(value: codec.Value) -> Contact:
    if not isinstance(value, dict):
        raise ProtocolError("peer entry must be a map")
    peer_id = _bytes(value, "id")
    addrs = value.get("addrs")
    if not isinstance(addrs, list) or len(addrs) > MAX_ADDRS:
        raise ProtocolError(f"peer 'addrs' must be a list of at most {MAX_ADDRS}")
    if not all(isinstance(a, str) and len(a) <= MAX_ADDR_LENGTH for a in addrs):
        raise ProtocolError("peer addresses must be short text multiaddrs")
    return Contact(peer_id, tuple(str(a) for a in addrs))


def _contacts(value: dict[str, codec.Value], name: str) -> tuple[Contact, ...]:
    field = value.get(name)
    if not isinstance(field, list) or len(field) > MAX_PEERS:
        raise ProtocolError(f"'{name}' must be a list of at most {MAX_PEERS} peers")
    return tuple(_contact(item) for item in field)


def decode_request(data: bytes) -> Request:
    value = _map(data)
    kind = value["type"]
    if kind == "find_node":
        target = _bytes(value, "target", 32)
        if len(target) != 32:
            raise ProtocolError("find_node target must be 32 bytes")
        return FindNode(int.from_bytes(target, "big"))
    if kind == "get_providers":
        return GetProviders(_bytes(value, "key"))
    if kind == "add_provider":
        return AddProvider(_bytes(value, "key"), _contact(value.get("provider")))
    if kind == "ping":
        return Ping()
    raise ProtocolError(f"unknown DHT request type {kind!r}")


def decode_response(data: bytes) -> Response:
    value = _map(data)
    kind = value["type"]
    if kind == "nodes":
        return Nodes(_contacts(value, "closer"), _contacts(value, "providers"))
    if kind == "ack":
        return Ack()
    raise ProtocolError(f"unknown DHT response type {kind!r}")
