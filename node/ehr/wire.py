"""The EHR sharing protocol `/ehrnet/ehr/1.0.0` (docs/PROTOCOL.md §7): requests to the EHRs manager.

Every request is a canonical CBOR map signed by its sender's Ed25519 key over a domain-separated encoding of all
its other fields, so the manager knows who asks without trusting the transport:

- `retrieve` (paper Sec. III-B, step 1): a requester's signed `call` transaction of `ehr.retrieve_ehrs(patient)`,
  with `issued_ms`. The manager refuses a request older than `MAX_REQUEST_AGE_MS` (expired) and a transaction
  whose nonce another transaction spent (replayed). The same transaction sent again (by its signer, or first by
  anyone relaying it) gets the ledger's one decision again while it is younger than `MAX_REQUEST_AGE_MS`: the
  answer's keys are wrapped for the signer only, so relaying gains nothing and serving twice costs nothing.
- `store`: a device's result computed locally, sealed (NaCl SealedBox) for the manager's X25519 key.
- `file_keys`: an edge node that stored an encrypted record files the record's data key, wrapped for the patient
  and for the manager, in the manager's key store.

Answers are `{"ok": true, ...}` or `{"ok": false, "code": text, "error": text}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import decode_map
from primitives import codec
from primitives.keys import SigningKey, verify

EHR_PROTOCOL = "/ehrnet/ehr/1.0.0"
SIGN_DOMAIN = "ehrnet/ehr-request/v1"
MAX_REQUEST_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 32 << 20
MAX_REQUEST_AGE_MS = 60_000


class EhrWireError(ValueError):
    """A malformed or badly signed sharing request."""


@dataclass(frozen=True)
class SignedRequest:
    kind: str
    sender: bytes  # Ed25519 public key
    fields: dict[str, codec.Value]
    signature: bytes

    def sign_bytes(self) -> bytes:
        return codec.encode({"domain": SIGN_DOMAIN, "kind": self.kind, "sender": self.sender, **self.fields})

    def encode(self) -> bytes:
        return codec.encode({"kind": self.kind, "sender": self.sender, "fields": self.fields, "sig": self.signature})


def sign_request(key: SigningKey, kind: str, fields: dict[str, codec.Value]) -> bytes:
    unsigned = SignedRequest(kind, key.public_key, fields, b"")
    return SignedRequest(kind, key.public_key, fields, key.sign(unsigned.sign_bytes())).encode()


def decode_request(data: bytes) -> SignedRequest:
    value = decode_map(data, "request", EhrWireError)
    kind, sender, fields, sig = value.get("kind"), value.get("sender"), value.get("fields"), value.get("sig")
    if kind not in ("retrieve", "store", "file_keys"):
        raise EhrWireError(f"request: unknown kind {kind!r}")
    if not isinstance(sender, bytes) or len(sender) != 32:
        raise EhrWireError("request: sender must be a 32-byte public key")
    if not isinstance(fields, dict) or not isinstance(sig, bytes):
        raise EhrWireError("request: fields must be a map and sig bytes")
    assert isinstance(kind, str)
    request = SignedRequest(kind, sender, fields, sig)
    if not verify(sender, request.sign_bytes(), sig):
        raise EhrWireError("request: the signature does not verify")
    return request


def field_bytes(fields: dict[str, codec.Value], name: str, size: int | None = None) -> bytes:
    value = fields.get(name)
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        raise EhrWireError(f"{name}: expected {size or 'some'} bytes")
    return value


def field_int(fields: dict[str, codec.Value], name: str) -> int:
    value = fields.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EhrWireError(f"{name}: expected an integer")
    return value


def field_str(fields: dict[str, codec.Value], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise EhrWireError(f"{name}: expected text")
    return value


def ok(**fields: codec.Value) -> bytes:
    return codec.encode({"ok": True, **fields})


def refuse(code: str, message: str) -> bytes:
    return codec.encode({"ok": False, "code": code, "error": message})


class RequestRefused(Exception):
    """The manager answered with a refusal."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def decode_answer(data: bytes) -> dict[str, codec.Value]:
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise EhrWireError(f"answer: {exc}") from exc
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        raise EhrWireError("answer: expected a map with ok")
    if not value["ok"]:
        raise RequestRefused(str(value.get("code")), str(value.get("error")))
    return value
