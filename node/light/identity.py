"""A light client's identity: an Ed25519 signing key, an X25519 encryption key, and optionally a P-256 device key.

- The Ed25519 key (primitives/keys.py format, `signing.key`) signs the user's transactions; its address is the
  user's address on the ledger.
- The X25519 key (`box.key`) is what EHR data keys are wrapped for (step 4 of sharing, docs/PROTOCOL.md §9).
  It is independent of the signing key, so either can be rotated alone.
- Phones' secure hardware signs only ECDSA P-256. With `--p256` the device key (`device_p256.pem`) endorses the
  two keys above once, in `device_binding.cbor`: a P-256 signature over a canonical statement naming them. The
  binding is verified when an identity is loaded or registered (the `ecdsa` package, imported only then), never
  per message: transactions stay Ed25519, so block execution and the light client's hot path never see P-256.

The libp2p peer identity is deliberately NOT one of these keys: a fresh seed per session keeps a device's peer ID
unlinkable to its ledger address for the full nodes it asks.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.public

from node.light.errors import IdentityError
from primitives import codec
from primitives.keys import KeyFileError, SigningKey

SIGNING_FILE = "signing.key"
BOX_FILE = "box.key"
DEVICE_FILE = "device_p256.pem"
BINDING_FILE = "device_binding.cbor"
BINDING_TYPE = "ehrnet/device-binding/v1"


@dataclass(frozen=True)
class DeviceBinding:
    """A P-256 device key's endorsement of an Ed25519 signing key and an X25519 encryption key."""

    device_key: bytes  # uncompressed SEC1 point, 65 bytes
    signing_key: bytes
    box_key: bytes
    signature: bytes  # raw r || s, 64 bytes, over sha256(statement)

    def statement(self) -> bytes:
        return binding_statement(self.device_key, self.signing_key, self.box_key)

    def to_value(self) -> codec.Value:
        return {
            "type": BINDING_TYPE,
            "device_key": self.device_key,
            "signing_key": self.signing_key,
            "box_key": self.box_key,
            "signature": self.signature,
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> DeviceBinding:
        fields = {"type": None, "device_key": 65, "signing_key": 32, "box_key": 32, "signature": 64}
        if not isinstance(value, dict) or set(value) != set(fields) or value["type"] != BINDING_TYPE:
            raise IdentityError(f"a device binding is a {BINDING_TYPE!r} map with {sorted(fields)}")
        parts: dict[str, bytes] = {}
        for name, size in fields.items():
            item = value[name]
            if size is not None:
                if not isinstance(item, bytes) or len(item) != size:
                    raise IdentityError(f"device binding {name} must be {size} bytes")
                parts[name] = item
        return cls(parts["device_key"], parts["signing_key"], parts["box_key"], parts["signature"])

    def verify(self) -> bool:
        """Check the P-256 signature (done once, off the hot path)."""
        import ecdsa  # only here: a client without a device key never loads it

        try:
            key = ecdsa.VerifyingKey.from_string(self.device_key, curve=ecdsa.NIST256p)
            return bool(key.verify(self.signature, self.statement(), hashfunc=hashlib.sha256))
        except (ecdsa.BadSignatureError, ecdsa.MalformedPointError, ValueError):
            return False


def binding_statement(device_key: bytes, signing_key: bytes, box_key: bytes) -> bytes:
    """What the device key signs: both keys it vouches for, under a domain-separating type."""
    statement: dict[str, codec.Value] = {"type": BINDING_TYPE, "device_key": device_key}
    statement.update(signing_key=signing_key, box_key=box_key)
    return codec.encode(statement)


@dataclass(frozen=True)
class LightIdentity:
    signing: SigningKey
    box: nacl.public.PrivateKey
    device: DeviceBinding | None = None

    @property
    def address(self) -> bytes:
        return self.signing.address

    @property
    def box_public_key(self) -> bytes:
        return bytes(self.box.public_key)

    def describe(self) -> dict[str, str]:
        out = {
            "address": self.address.hex(),
            "public_key": self.signing.public_key.hex(),
            "box_public_key": self.box_public_key.hex(),
        }
        if self.device is not None:
            out["device_key_p256"] = self.device.device_key.hex()
        return out


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def generate(out: Path, p256: bool = False) -> LightIdentity:
    """Create a new identity in directory `out`; refuses to overwrite any existing key file."""
    out.mkdir(parents=True, exist_ok=True)
    names = [SIGNING_FILE, BOX_FILE, *([DEVICE_FILE, BINDING_FILE] if p256 else [])]
    existing = [n for n in names if (out / n).exists()]
    if existing:
        raise IdentityError(f"{out}: {', '.join(existing)} exists; refusing to overwrite a key")
    signing = SigningKey.generate()
    box = nacl.public.PrivateKey.generate()
    signing.save(out / SIGNING_FILE)
    _write_private(out / BOX_FILE, (json.dumps({"type": "x25519", "secret": bytes(box).hex()}) + "\n").encode())
    device = None
    if p256:
        import ecdsa

        device_key = ecdsa.SigningKey.generate(curve=ecdsa.NIST256p)
        point = device_key.get_verifying_key().to_string("uncompressed")
        statement = binding_statement(point, signing.public_key, bytes(box.public_key))
        signature = device_key.sign_deterministic(statement, hashfunc=hashlib.sha256)
        device = DeviceBinding(point, signing.public_key, bytes(box.public_key), signature)
        _write_private(out / DEVICE_FILE, device_key.to_pem())
        _write_private(out / BINDING_FILE, codec.encode(device.to_value()))
    return LightIdentity(signing, box, device)


def load(directory: Path) -> LightIdentity:
    """Load an identity; a device binding, if present, must verify and name these very keys."""
    try:
        signing = SigningKey.load(directory / SIGNING_FILE)
    except KeyFileError as exc:
        raise IdentityError(str(exc)) from exc
    box_path = directory / BOX_FILE
    try:
        doc = json.loads(box_path.read_text())
        if not isinstance(doc, dict) or doc.get("type") != "x25519":
            raise IdentityError(f'{box_path}: not an X25519 key file ("type" must be "x25519")')
        secret = bytes.fromhex(doc.get("secret", ""))
    except (OSError, ValueError, TypeError) as exc:
        raise IdentityError(f"{box_path}: not an X25519 key file ({exc})") from exc
    if len(secret) != 32:
        raise IdentityError(f'{box_path}: "secret" must be 64 hex characters')
    box = nacl.public.PrivateKey(secret)
    device = None
    binding_path = directory / BINDING_FILE
    if binding_path.exists():
        try:
            device = DeviceBinding.from_value(codec.decode(binding_path.read_bytes()))
        except codec.CodecError as exc:
            raise IdentityError(f"{binding_path}: {exc}") from exc
        if (device.signing_key, device.box_key) != (signing.public_key, bytes(box.public_key)):
            raise IdentityError(f"{binding_path}: endorses other keys than this identity's")
        if not device.verify():
            raise IdentityError(f"{binding_path}: the P-256 signature does not verify")
    return LightIdentity(signing, box, device)
