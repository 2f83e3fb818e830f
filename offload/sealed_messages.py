"""Encrypted offload messages: what a device sends an edge node and what comes back (pure functions).

Cipher choice: NaCl Box (X25519 key agreement + XSalsa20-Poly1305) between the device's and the edge node's
X25519 keys. The paper encrypts offloaded data with symmetric AES (Sec. IV) but does not say how the AES key is
agreed; Box does the agreement and the authenticated encryption in one audited primitive, authenticates the
device to the edge (only the holder of the device key can produce the box), needs no key exchange round trip,
and pynacl is already a dependency. The edge key can be derived from the edge node's Ed25519 identity
(`box_public_key_from_identity`), so a device that knows the edge's libp2p peer key can encrypt for it.

Box's shared key is the same in both directions, so every plaintext names its direction ("req"/"res") and the
response echoes the request's random id: a request cannot be reflected back as a response, nor a response for
one request passed off as the answer to another. Wire layout: docs/OFFLOAD.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.public

from offload.context import RecordContext
from offload.errors import (
    MalformedError,
    OffloadError,
    OversizeError,
    TamperedError,
    UnsupportedVersionError,
)
from primitives import codec
from primitives.keys import SigningKey

PROTOCOL_ID = "/ehrnet/offload/1.0.0"
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = nacl.public.Box.NONCE_SIZE  # 24
REQUEST_ID_BYTES = 16
MAX_TASK_NAME = 64
MAX_PATIENT_BYTES = 64
MAX_ERROR_MESSAGE = 300
# Default cap on a whole request: an 11-minute 6-axis window at 100 Hz is ~1.5 MB; leave room for longer ones.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class OpenedRequest:
    device_public: bytes
    request_id: bytes
    task: str
    payload: bytes
    patient: bytes | None = None
    record: RecordContext | None = None


def box_key_from_identity(identity: SigningKey) -> nacl.public.PrivateKey:
    """The X25519 private key matching an Ed25519 identity (libsodium's birational map)."""
    secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(identity.seed + identity.public_key)
    return nacl.public.PrivateKey(secret)


def box_public_key_from_identity(ed25519_public: bytes) -> bytes:
    """The X25519 public key of a node known by its Ed25519 public key (e.g. from its libp2p peer ID)."""
    if len(ed25519_public) != KEY_BYTES:
        raise MalformedError("an Ed25519 public key is 32 bytes")
    try:
        return bytes(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError) as exc:
        raise MalformedError(f"not a valid Ed25519 public key: {exc}") from exc


def _box(own: nacl.public.PrivateKey, peer_public: bytes) -> nacl.public.Box:
    if len(peer_public) != KEY_BYTES:
        raise MalformedError(f"an X25519 public key is {KEY_BYTES} bytes, got {len(peer_public)}")
    return nacl.public.Box(own, nacl.public.PublicKey(peer_public))


def _seal(plaintext: codec.Value, own: nacl.public.PrivateKey, peer_public: bytes, nonce: bytes) -> bytes:
    if len(nonce) != NONCE_BYTES:
        raise MalformedError(f"a nonce is {NONCE_BYTES} bytes")
    return bytes(_box(own, peer_public).encrypt(codec.encode(plaintext), nonce).ciphertext)


def _unseal(ciphertext: bytes, nonce: bytes, own: nacl.public.PrivateKey, peer_public: bytes) -> dict[str, codec.Value]:
    try:
        clear = _box(own, peer_public).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise TamperedError("authenticated decryption failed: the message was altered or not sealed for us") from exc
    try:
        value = codec.decode(clear)
    except codec.CodecError as exc:
        raise MalformedError(f"sealed content is not canonical CBOR: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedError("sealed content must be a map")
    return value


def _decode_outer(data: bytes, max_bytes: int, kinds: tuple[str, ...]) -> dict[str, codec.Value]:
    if len(data) > max_bytes:
        raise OversizeError(f"message of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise MalformedError(f"message is not canonical CBOR: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedError("message must be a map")
    if value.get("v") != VERSION:
        raise UnsupportedVersionError(f"message version {value.get('v')!r}; this node speaks {VERSION}")
    if value.get("kind") not in kinds:
        raise MalformedError(f"message kind must be one of {kinds}, got {value.get('kind')!r}")
    return value


def _bytes_field(table: dict[str, codec.Value], key: str, size: int | None = None) -> bytes:
    value = table.get(key)
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        want = f"{size} bytes" if size is not None else "bytes"
        raise MalformedError(f"field {key!r} must be {want}")
    return value


def _task_field(table: dict[str, codec.Value]) -> str:
    task = table.get("task")
    if not isinstance(task, str) or not 0 < len(task) <= MAX_TASK_NAME:
        raise MalformedError(f"field 'task' must be a name of 1..{MAX_TASK_NAME} characters")
    return task


def seal_request(
    task: str,
    payload: bytes,
    request_id: bytes,
    device_key: nacl.public.PrivateKey,
    edge_public: bytes,
    nonce: bytes,
    patient: bytes | None = None,
    record: RecordContext | None = None,
) -> bytes:
    """The wire bytes of a request to run `task` on `payload` at the edge node holding `edge_public`.

    `patient` (optional, e.g. a 20-byte address) asks the edge to store the result as that patient's EHR
    through its `ResultSink`; it travels inside the box, so only the edge learns whose data this is. `record`
    (optional, only with a patient) names the measuring device and the window, for the FHIR record."""
    if len(request_id) != REQUEST_ID_BYTES:
        raise MalformedError(f"a request id is {REQUEST_ID_BYTES} bytes")
    inner: dict[str, codec.Value] = {"dir": "req", "id": request_id, "task": task, "input": payload}
    if record is not None and patient is None:
        raise MalformedError("a record context needs a patient to store the record for")
    if patient is not None:
        inner["patient"] = patient
    if record is not None:
        inner["record"] = record.to_wire()
    box = _seal(inner, device_key, edge_public, nonce)
    device_public = bytes(device_key.public_key)
    return codec.encode({"v": VERSION, "kind": "request", "device": device_public, "nonce": nonce, "box": box})


def open_request(data: bytes, edge_key: nacl.public.PrivateKey, max_bytes: int) -> OpenedRequest:
    """Check, decrypt and validate a request; every defect raises a typed `EnvelopeError`."""
    outer = _decode_outer(data, max_bytes, ("request",))
    device_public = _bytes_field(outer, "device", KEY_BYTES)
    nonce = _bytes_field(outer, "nonce", NONCE_BYTES)
    inner = _unseal(_bytes_field(outer, "box"), nonce, edge_key, device_public)
    if inner.get("dir") != "req":
        raise MalformedError("sealed content is not a request")
    patient = inner.get("patient")
    if patient is not None and not (isinstance(patient, bytes) and 0 < len(patient) <= MAX_PATIENT_BYTES):
        raise MalformedError(f"field 'patient' must be 1..{MAX_PATIENT_BYTES} bytes")
    record = None
    if "record" in inner:
        if patient is None:
            raise MalformedError("field 'record' needs a patient")
        record = RecordContext.from_wire(inner["record"])
    return OpenedRequest(
        patient=patient,
        record=record,
        device_public=device_public,
        request_id=_bytes_field(inner, "id", REQUEST_ID_BYTES),
        task=_task_field(inner),
        payload=_bytes_field(inner, "input"),
    )


def seal_result(request: OpenedRequest, result: codec.Value, edge_key: nacl.public.PrivateKey, nonce: bytes) -> bytes:
    """The wire bytes of a successful answer, readable only by the requesting device."""
    inner: codec.Value = {"dir": "res", "id": request.request_id, "task": request.task, "result": result}
    box = _seal(inner, edge_key, request.device_public, nonce)
    return codec.encode({"v": VERSION, "kind": "result", "nonce": nonce, "box": box})


def error_response(error: OffloadError, request_id: bytes | None = None) -> bytes:
    """The wire bytes of a refusal. Sent in clear: it carries only a code, a short message and the request id,
    never health data (the message texts are ours, not the peer's input)."""
    message = str(error)[:MAX_ERROR_MESSAGE]
    return codec.encode({"v": VERSION, "kind": "error", "code": error.code, "message": message, "id": request_id})


def decode_response(data: bytes, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> dict[str, codec.Value]:
    """The outer map of a result or error response (not yet decrypted)."""
    return _decode_outer(data, max_bytes, ("result", "error"))


def open_result(
    outer: dict[str, codec.Value], device_key: nacl.public.PrivateKey, edge_public: bytes
) -> tuple[bytes, str, codec.Value]:
    """Decrypt a result response: (request id, task, result)."""
    nonce = _bytes_field(outer, "nonce", NONCE_BYTES)
    inner = _unseal(_bytes_field(outer, "box"), nonce, device_key, edge_public)
    if inner.get("dir") != "res" or "result" not in inner:
        raise MalformedError("sealed content is not a result")
    return _bytes_field(inner, "id", REQUEST_ID_BYTES), _task_field(inner), inner["result"]
