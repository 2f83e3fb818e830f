"""Ed25519 signing identities for nodes, validators and users.

One key type everywhere (pynacl signs ~68k/s and verifies ~24k/s per core, measured, and libp2p peer
IDs use the same key type), so a node's libp2p identity, its validator key and its signing key can be one seed.

Key file format (JSON, mode 0600): {"type": "ed25519", "seed": "<64 hex chars>"}.
A user's address is the first 20 bytes of sha256("ehrnet/address/v1" || public key), shown as 40 hex chars.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing

ADDRESS_DOMAIN = b"ehrnet/address/v1"


class KeyFileError(ValueError):
    """A key file is missing, unreadable or malformed."""


def address_of(public_key: bytes) -> bytes:
    """The 20-byte address derived from an Ed25519 public key."""
    return hashlib.sha256(ADDRESS_DOMAIN + public_key).digest()[:20]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair held as its 32-byte seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise KeyFileError("an Ed25519 seed is 32 bytes")

    @classmethod
    def generate(cls) -> SigningKey:
        # libp2p refuses a seed whose public key fails libsodium's point check (small-order points); such seeds
        # are astronomically rare, but a node key must always be usable as a peer identity too.
        while True:
            key = cls(os.urandom(32))
            if nacl.bindings.crypto_core_ed25519_is_valid_point(key.public_key):
                return key

    @property
    def _nacl(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self._nacl.verify_key)

    @property
    def address(self) -> bytes:
        return address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._nacl.sign(message).signature

    def save(self, path: Path) -> None:
        """Write the key file atomically with owner-only permissions."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"type": "ed25519", "seed": self.seed.hex()}, f)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise KeyFileError(f"{path}: no such key file") from exc
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"{path}: not a key file ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("type") != "ed25519":
            raise KeyFileError(f'{path}: "type" must be "ed25519"')
        seed = doc.get("seed")
        try:
            raw = bytes.fromhex(seed) if isinstance(seed, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise KeyFileError(f'{path}: "seed" must be 64 hex characters')
        return cls(raw)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        if path.exists():
            return cls.load(path)
        key = cls.generate()
        key.save(path)
        return key
