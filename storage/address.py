"""Content identifiers: CIDv1 with a sha2-256 multihash, as IPFS writes them.

A CID is <version=1><codec varint><multihash>; its text form is multibase base32 (prefix "b"), which is what
`ipfs add --cid-version=1` prints. We parse and print through py-cid / py-multihash so our identifiers mean
the same thing as everyone else's; the value type itself is a small frozen dataclass so the rest of the code
gets strict typing and cheap hashing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cid as pycid
import multihash

from storage.errors import BlockHashMismatchError, InvalidCidError

RAW = 0x55  # multicodec "raw": a leaf holding file bytes as they are
DAG_PB = 0x70  # multicodec "dag-pb": UnixFS interior nodes
DAG_CBOR = 0x71  # multicodec "dag-cbor": ledger objects (primitives/codec.py)
SHA2_256 = 0x12
DIGEST_SIZE = 32

_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor"}
_CODECS_BY_NAME = {name: code for code, name in _CODEC_NAMES.items()}


@dataclass(frozen=True, slots=True)
class CID:
    """A CIDv1 over sha2-256; `digest` is the 32-byte hash of the block's bytes."""

    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.codec not in _CODEC_NAMES:
            raise InvalidCidError(f"unsupported multicodec 0x{self.codec:x}")
        if len(self.digest) != DIGEST_SIZE:
            raise InvalidCidError(f"sha2-256 digest must be {DIGEST_SIZE} bytes, got {len(self.digest)}")

    @classmethod
    def of(cls, codec: int, block: bytes) -> CID:
        """The CID of `block` under `codec`."""
        return cls(codec, hashlib.sha256(block).digest())

    @property
    def multihash(self) -> bytes:
        # Both the code (0x12) and the length (32) fit in one varint byte.
        return bytes((SHA2_256, DIGEST_SIZE)) + self.digest

    def to_bytes(self) -> bytes:
        """Binary CID (what dag-pb links and the wire carry)."""
        # Version 1 and our codecs (< 0x80) are single-byte varints.
        return bytes((1, self.codec)) + self.multihash

    @classmethod
    def from_bytes(cls, data: bytes) -> CID:
        try:
            parsed = pycid.from_bytes(bytes(data))
        except Exception as exc:  # py-cid raises assorted ValueError/KeyError types for garbage
            raise InvalidCidError(f"not a binary CID: {exc}") from exc
        return cls._from_pycid(parsed)

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse the text form (any multibase py-cid understands; we print base32)."""
        try:
            parsed = pycid.from_string(text.strip())
        except Exception as exc:
            raise InvalidCidError(f"not a CID: {text[:80]!r}") from exc
        return cls._from_pycid(parsed)

    @classmethod
    def _from_pycid(cls, parsed: object) -> CID:
        if getattr(parsed, "version", None) != 1:
            raise InvalidCidError("only CIDv1 is supported")
        codec = _CODECS_BY_NAME.get(str(getattr(parsed, "codec", "")))
        if codec is None:
            raise InvalidCidError(f"unsupported codec {getattr(parsed, 'codec', '?')}")
        try:
            decoded = multihash.decode(bytes(getattr(parsed, "multihash", b"")))
        except Exception as exc:
            raise InvalidCidError(f"bad multihash: {exc}") from exc
        if int(decoded.code) != SHA2_256:
            raise InvalidCidError("only sha2-256 multihashes are supported")
        return cls(codec, bytes(decoded.digest))

    def __str__(self) -> str:
        text: bytes = pycid.make_cid(1, _CODEC_NAMES[self.codec], self.multihash).encode("base32")
        return text.decode("ascii")

    def __repr__(self) -> str:
        return f"CID({self})"

    def verify(self, block: bytes) -> None:
        """Raise `BlockHashMismatchError` unless `block` hashes to this CID."""
        if hashlib.sha256(block).digest() != self.digest:
            raise BlockHashMismatchError(f"block does not match {self}")
