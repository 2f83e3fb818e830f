"""The Kademlia keyspace: 256-bit keys and the XOR metric (Maymounkov & Mazières 2002, §2.1).

As in the libp2p kad-dht spec, a peer's position is sha256 of its peer ID bytes and a content key's position
is sha256 of the key (for provider records the key is the CID's multihash), so neither side can choose where
it lands cheaply. Keys are Python ints: XOR and bit_length are then single fast operations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from storage.address import CID

KEY_BITS = 256


def key_of(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


def provider_key(cid: CID) -> bytes:
    """The DHT key under which providers of `cid` are recorded (its multihash, like libp2p)."""
    return cid.multihash


def distance(a: int, b: int) -> int:
    return a ^ b


def common_prefix_length(a: int, b: int) -> int:
    """Leading bits `a` and `b` share; 256 when equal. Bucket i holds peers sharing exactly i bits with us."""
    return KEY_BITS - (a ^ b).bit_length()


@dataclass(frozen=True, slots=True)
class Contact:
    """A peer as the DHT knows it: its libp2p peer ID bytes and the multiaddrs it can be dialled on."""

    peer_id: bytes
    addrs: tuple[str, ...] = ()
    key: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", key_of(self.peer_id))
