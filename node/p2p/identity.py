"""libp2p peer IDs computed without importing libp2p (which costs ~0.6 s of start-up for every CLI command).

A peer ID of an Ed25519 key is the *identity* multihash of the key's protobuf encoding (libp2p peer-ids spec:
keys of 42 bytes or less are inlined): protobuf {Type: Ed25519 (1), Data: 32-byte key} = 08 01 12 20 ‖ key,
wrapped as multihash 00 24 ‖ …, written in base58btc — the familiar `12D3KooW…`.
"""

from __future__ import annotations

import base58

from primitives.keys import SigningKey

_ED25519_PROTOBUF_PREFIX = bytes([0x08, 0x01, 0x12, 0x20])
_IDENTITY_MULTIHASH = 0x00


def peer_id_of_public_key(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    encoded = _ED25519_PROTOBUF_PREFIX + public_key
    return base58.b58encode(bytes([_IDENTITY_MULTIHASH, len(encoded)]) + encoded).decode()


def peer_id_from_seed(seed: bytes) -> str:
    return peer_id_of_public_key(SigningKey(seed).public_key)


def public_key_of_peer_id(peer_id: str) -> bytes:
    """The Ed25519 public key inlined in a peer ID (the inverse of `peer_id_of_public_key`)."""
    raw = base58.b58decode(peer_id)
    prefix = bytes([_IDENTITY_MULTIHASH, 36]) + _ED25519_PROTOBUF_PREFIX
    if len(raw) != len(prefix) + 32 or not raw.startswith(prefix):
        raise ValueError(f"{peer_id} is not an Ed25519 peer ID")
    return raw[len(prefix) :]
