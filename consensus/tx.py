"""Signed ledger transactions: canonical encoding, signing, hashing and a strict typed decode.

Wire form (canonical DAG-CBOR, so a transaction is also a valid IPLD block):

    {"tx": {"chain_id": str, "kind": str, "sender": 32-byte Ed25519 key, "nonce": uint, "body": map},
     "sig": 64-byte Ed25519 signature}

The sender signs `SIGN_DOMAIN || canonical(tx map)`: the domain prefix keeps a transaction signature from ever
being valid as a vote or any other signed object. The chain ID inside the signed map stops replay on another
chain; the per-sender nonce (0, 1, 2, ...) stops replay within the chain and orders a sender's transactions.
The transaction hash is sha256 of the whole canonical encoding (DAG-CBOR, docs/PROTOCOL.md §4).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consensus.errors import TxChainIdError, TxEncodingError, TxSignatureError, TxSizeError
from primitives import codec
from primitives.keys import SigningKey, address_of, verify

SIGN_DOMAIN = b"ehrnet/tx/v1\x00"
MAX_KIND_LENGTH = 32
MAX_NONCE = 2**64 - 1
# Canonical layout of {"tx": ..., "sig": <64 bytes>}: keys sort length-first, so "tx" precedes "sig".
_HEAD = b"\xa2\x62tx"  # map(2), text(2) "tx"
_TAIL = b"\x63sig\x58\x40"  # text(3) "sig", bytes(64)
_TAIL_LENGTH = len(_TAIL) + 64


@dataclass(frozen=True, slots=True)
class Tx:
    """A decoded, structurally valid transaction. Build one with `Tx.create` or `decode_tx`, not directly."""

    chain_id: str
    kind: str
    sender: bytes
    nonce: int
    body: dict[str, codec.Value]
    signature: bytes
    raw: bytes
    hash: bytes
    address: bytes

    @classmethod
    def create(cls, key: SigningKey, chain_id: str, kind: str, nonce: int, body: dict[str, codec.Value]) -> Tx:
        """Sign a new transaction with the sender's key."""
        # Keys in canonical (length-first) order, so encoding needs no sort.
        unsigned: codec.Value = {
            "body": body,
            "kind": kind,
            "nonce": nonce,
            "sender": key.public_key,
            "chain_id": chain_id,
        }
        signature = key.sign(SIGN_DOMAIN + codec.encode(unsigned))
        raw = codec.encode({"tx": unsigned, "sig": signature})
        return _from_value(codec.decode(raw), raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    def sign_bytes(self) -> bytes:
        # The canonical bytes of the inner map sit verbatim inside `raw` (see _HEAD/_TAIL), so no re-encoding.
        return SIGN_DOMAIN + self.raw[len(_HEAD) : -_TAIL_LENGTH]

    def verify_signature(self) -> bool:
        return verify(self.sender, self.sign_bytes(), self.signature)

    def to_value(self) -> codec.Value:
        return codec.decode(self.raw)

    def to_json(self) -> dict[str, object]:
        """A JSON-friendly summary (bytes as hex) for HTTP answers."""
        return {
            "hash": self.hash.hex(),
            "kind": self.kind,
            "sender": self.sender.hex(),
            "nonce": self.nonce,
            "body": _jsonable(self.body),
        }


def _jsonable(value: codec.Value) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _from_value(value: codec.Value, raw: bytes) -> Tx:
    if not isinstance(value, dict) or set(value) != {"tx", "sig"}:
        raise TxEncodingError('a transaction is a map with exactly the keys "tx" and "sig"')
    inner, signature = value["tx"], value["sig"]
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise TxEncodingError('"sig" must be a 64-byte Ed25519 signature')
    if not isinstance(inner, dict) or set(inner) != {"chain_id", "kind", "sender", "nonce", "body"}:
        raise TxEncodingError('"tx" must be a map with exactly chain_id, kind, sender, nonce and body')
    chain_id, kind, sender = inner["chain_id"], inner["kind"], inner["sender"]
    nonce, body = inner["nonce"], inner["body"]
    if not isinstance(chain_id, str) or not chain_id:
        raise TxEncodingError('"chain_id" must be a non-empty string')
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_LENGTH:
        raise TxEncodingError(f'"kind" must be a string of 1 to {MAX_KIND_LENGTH} characters')
    if not isinstance(sender, bytes) or len(sender) != 32:
        raise TxEncodingError('"sender" must be a 32-byte Ed25519 public key')
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= MAX_NONCE:
        raise TxEncodingError('"nonce" must be an unsigned 64-bit integer')
    if not isinstance(body, dict):
        raise TxEncodingError('"body" must be a map')
    return Tx(chain_id, kind, sender, nonce, body, signature, raw, hashlib.sha256(raw).digest(), address_of(sender))


def decode_tx(raw: bytes, *, chain_id: str, max_bytes: int, check_signature: bool = True) -> Tx:
    """Decode and check a transaction from an untrusted source.

    Raises a `TxError` subclass naming the first problem found, cheapest check first: size, encoding, chain ID,
    signature. Kind-specific body checks and the nonce need the ledger's rules and state (see execute.py and
    mempool.py).
    """
    if not isinstance(raw, bytes | bytearray):
        raise TxEncodingError("a transaction is a byte string")
    raw = bytes(raw)
    if len(raw) > max_bytes:
        raise TxSizeError(f"transaction is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        value = codec.decode(raw)
    except codec.CodecError as exc:
        raise TxEncodingError(f"transaction is not canonical DAG-CBOR: {exc}") from exc
    tx = _from_value(value, raw)
    if tx.chain_id != chain_id:
        raise TxChainIdError(f"transaction is for chain {tx.chain_id!r}; this chain is {chain_id!r}")
    if check_signature and not tx.verify_signature():
        raise TxSignatureError("signature does not verify against the sender's public key")
    return tx
