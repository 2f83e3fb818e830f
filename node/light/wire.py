"""The light-client protocol `/ehrnet/light/1.0.0` (docs/PROTOCOL.md, "Light client"): requests, answers and
their JSON form for the HTTP path.

Over libp2p every message is one canonical DAG-CBOR map in one frame (§3 of the protocol document). Over HTTP
the same objects travel as JSON whose binary fields are the hex of their canonical encoding, so both transports
decode to the same typed values here. Decoding is strict and bounded: anything malformed raises `WireError`,
and a node's typed refusal raises `RemoteError`. Nothing here is trusted: `follower.py` verifies every header,
commit, validator set and proof against what the client already trusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus import smt
from consensus.block import Commit, Header
from consensus.errors import LedgerError
from consensus.messages import decode_map
from consensus.votes import ValidatorSet
from node.light.errors import RemoteError, WireError
from primitives import codec

LIGHT_PROTOCOL = "/ehrnet/light/1.0.0"
MAX_REQUEST_BYTES = 1024
MAX_RESPONSE_BYTES = 1 << 20
# A node answers at most this many headers, and stops earlier once the answer passes the byte budget (a commit
# of a 100-validator set is ~20 KB), so an answer always fits MAX_RESPONSE_BYTES.
MAX_HEADERS = 256
RESPONSE_BUDGET_BYTES = 768 * 1024
# State keys are LMDB keys, which are at most 511 bytes.
MAX_KEY_BYTES = 511
MAX_VALUE_BYTES = 256 * 1024

KINDS = ("head", "headers", "proof", "validators")


@dataclass(frozen=True)
class LightRequest:
    kind: str
    start: int = 0
    end: int = 0
    key: bytes = b""
    height: int = 0

    def to_value(self) -> codec.Value:
        if self.kind == "headers":
            return {"type": "headers", "from": self.start, "to": self.end}
        if self.kind == "proof":
            return {"type": "proof", "key": self.key}
        if self.kind == "validators":
            return {"type": "validators", "height": self.height}
        return {"type": self.kind}

    def encode(self) -> bytes:
        return codec.encode(self.to_value())


def head_request() -> LightRequest:
    return LightRequest("head")


def headers_request(start: int, end: int) -> LightRequest:
    return check_request(LightRequest("headers", start=start, end=end))


def proof_request(key: bytes) -> LightRequest:
    return check_request(LightRequest("proof", key=key))


def validators_request(height: int) -> LightRequest:
    return check_request(LightRequest("validators", height=height))


def _uint(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value >= 2**63:
        raise WireError(f"{what}: a non-negative integer")
    return value


def check_request(req: LightRequest) -> LightRequest:
    """Validate a request's fields; the range of a headers request is clipped to MAX_HEADERS."""
    if req.kind not in KINDS:
        raise WireError(f"unknown light request type {req.kind!r} (known: {', '.join(KINDS)})")
    if req.kind == "headers":
        start, end = _uint(req.start, "from"), _uint(req.end, "to")
        if not 1 <= start <= end:
            raise WireError(f"headers: need 1 ≤ from ≤ to, not from={start} to={end}")
        return LightRequest("headers", start=start, end=min(end, start + MAX_HEADERS - 1))
    if req.kind == "proof" and not 1 <= len(req.key) <= MAX_KEY_BYTES:
        raise WireError(f"proof: the key is 1–{MAX_KEY_BYTES} bytes, not {len(req.key)}")
    if req.kind == "validators":
        _uint(req.height, "height")
    return req


def decode_request(data: bytes) -> LightRequest:
    """Parse a peer's request; raises WireError naming what is wrong."""
    if len(data) > MAX_REQUEST_BYTES:
        raise WireError(f"request of {len(data)} bytes exceeds {MAX_REQUEST_BYTES}")
    value = _decode_map(data, "light request")
    kind = value.get("type")
    fields = {"head": {"type"}, "headers": {"type", "from", "to"}, "proof": {"type", "key"}}
    fields["validators"] = {"type", "height"}
    if not isinstance(kind, str) or kind not in fields:
        raise WireError(f"unknown light request type {kind!r} (known: {', '.join(KINDS)})")
    if set(value) != fields[kind]:
        raise WireError(f"a {kind} request has exactly the fields {sorted(fields[kind])}")
    if kind == "headers":
        return check_request(LightRequest(kind, start=_uint(value["from"], "from"), end=_uint(value["to"], "to")))
    if kind == "proof":
        key = value["key"]
        if not isinstance(key, bytes):
            raise WireError("proof: key must be a byte string")
        return check_request(LightRequest(kind, key=key))
    if kind == "validators":
        return LightRequest(kind, height=_uint(value["height"], "height"))
    return LightRequest(kind)


# ---- answers ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedHeader:
    """A header with the commit that finalised it (None only for block 0) and, when the header hands over to a
    new validator set, that set (which the client checks against `next_validators_hash`)."""

    header: Header
    commit: Commit | None
    next_validators: ValidatorSet | None = None

    def to_value(self) -> codec.Value:
        nxt = self.next_validators
        return {
            "header": self.header.to_value(),
            "commit": None if self.commit is None else self.commit.to_value(),
            "next_validators": None if nxt is None else list(nxt.members),
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> SignedHeader:
        if not isinstance(value, dict) or set(value) != {"header", "commit", "next_validators"}:
            raise WireError("a signed header is a map with header, commit and next_validators")
        try:
            header = Header.from_value(value["header"])
            commit = None if value["commit"] is None else Commit.from_value(value["commit"])
            return cls(header, commit, _validator_set(value["next_validators"]))
        except (LedgerError, ValueError, TypeError) as exc:
            raise WireError(f"signed header: {exc}") from exc


@dataclass(frozen=True)
class StateAnswer:
    """A node's claim that `key` maps to `value` (None: absent) in the state after block `height`."""

    height: int
    key: bytes
    value: bytes | None
    proof: smt.Proof

    def to_value(self) -> codec.Value:
        return {"height": self.height, "key": self.key, "value": self.value, "proof": self.proof.to_value()}

    @classmethod
    def from_value(cls, value: codec.Value) -> StateAnswer:
        if not isinstance(value, dict) or set(value) != {"height", "key", "value", "proof"}:
            raise WireError("a state answer is a map with height, key, value and proof")
        key, found = value["key"], value["value"]
        if not isinstance(key, bytes) or not 1 <= len(key) <= MAX_KEY_BYTES:
            raise WireError(f"state answer: key must be 1–{MAX_KEY_BYTES} bytes")
        if found is not None and (not isinstance(found, bytes) or len(found) > MAX_VALUE_BYTES):
            raise WireError(f"state answer: value must be null or at most {MAX_VALUE_BYTES} bytes")
        try:
            proof = smt.Proof.from_value(value["proof"])
        except (LedgerError, ValueError, TypeError) as exc:
            raise WireError(f"state answer: {exc}") from exc
        return cls(_uint(value["height"], "state answer height"), key, found, proof)


def _validator_set(value: codec.Value) -> ValidatorSet | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(k, bytes) for k in value):
        raise WireError("a validator set is a list of 32-byte public keys")
    try:
        return ValidatorSet(tuple(k for k in value if isinstance(k, bytes)))
    except ValueError as exc:
        raise WireError(f"validator set: {exc}") from exc


def _decode_map(data: bytes, what: str) -> dict[str, codec.Value]:
    return decode_map(data, what, WireError)


def _load_answer(data: bytes, what: str) -> dict[str, codec.Value]:
    value = _load_canonical(data, what)
    if not isinstance(value, dict):
        raise WireError(f"{what}: expected a map")
    return value


def _load_canonical(data: bytes, what: str) -> codec.Value:
    """Decode an answer, refusing anything but the canonical encoding of a ledger value (the shared codec's
    check: one type walk and one plain re-encoding, cheaper than cbor2's sorting canonical mode)."""
    try:
        return codec.decode(data)
    except codec.CodecError as exc:
        raise WireError(f"{what}: {exc}") from exc


def _answer(data: bytes, what: str) -> dict[str, codec.Value]:
    if len(data) > MAX_RESPONSE_BYTES:
        raise WireError(f"{what} of {len(data)} bytes exceeds {MAX_RESPONSE_BYTES}")
    value = _load_answer(data, what)
    error = value.get("error")
    if error is not None:
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            raise WireError(f"{what}: malformed error")
        message = error.get("message")
        raise RemoteError(str(error["code"]), message if isinstance(message, str) else "")
    return value


def encode_error(code: str, message: str) -> bytes:
    return codec.encode({"error": {"code": code, "message": message}})


def encode_head(entry: SignedHeader) -> bytes:
    return codec.encode({"head": entry.to_value()})


def decode_head(data: bytes) -> SignedHeader:
    value = _answer(data, "head answer")
    if set(value) != {"head"}:
        raise WireError('head answer: a map with "head"')
    return SignedHeader.from_value(value["head"])


def encode_headers(entries: list[SignedHeader]) -> bytes:
    return codec.encode({"headers": [e.to_value() for e in entries]})


def decode_headers(data: bytes) -> list[SignedHeader]:
    value = _answer(data, "headers answer")
    entries = value.get("headers")
    if set(value) != {"headers"} or not isinstance(entries, list) or len(entries) > MAX_HEADERS:
        raise WireError(f'headers answer: a map with "headers", a list of at most {MAX_HEADERS}')
    return [SignedHeader.from_value(e) for e in entries]


def encode_state(answer: StateAnswer) -> bytes:
    return codec.encode({"state": answer.to_value()})


def decode_state(data: bytes) -> StateAnswer:
    value = _answer(data, "proof answer")
    if set(value) != {"state"}:
        raise WireError('proof answer: a map with "state"')
    return StateAnswer.from_value(value["state"])


def encode_validators(height: int, validators: ValidatorSet) -> bytes:
    return codec.encode({"height": height, "validators": list(validators.members)})


def decode_validators(data: bytes) -> tuple[int, ValidatorSet]:
    value = _answer(data, "validators answer")
    if set(value) != {"height", "validators"}:
        raise WireError("validators answer: a map with height and validators")
    members = _validator_set(value["validators"])
    if members is None:
        raise WireError("validators answer: validators must be a list")
    return _uint(value["height"], "validators answer height"), members


# ---- JSON form (HTTP path): binary fields as hex of their canonical encoding ------------------------------------


def _hex(value: codec.Value) -> str:
    return codec.encode(value).hex()


def _unhex(text: object, what: str) -> codec.Value:
    if not isinstance(text, str):
        raise WireError(f"{what}: expected a hex string")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise WireError(f"{what}: not hex") from exc
    return _load_canonical(raw, what)


def _raw_hex(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise WireError(f"{what}: expected a hex string")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise WireError(f"{what}: not hex") from exc


def signed_header_to_json(entry: SignedHeader) -> dict[str, Any]:
    nxt = entry.next_validators
    return {
        "height": entry.header.height,
        "hash": entry.header.hash.hex(),
        "header": _hex(entry.header.to_value()),
        "commit": None if entry.commit is None else _hex(entry.commit.to_value()),
        "next_validators": None if nxt is None else [k.hex() for k in nxt.members],
    }


def signed_header_from_json(doc: object) -> SignedHeader:
    if not isinstance(doc, dict):
        raise WireError("signed header: expected an object")
    members = doc.get("next_validators")
    if members is not None and not isinstance(members, list):
        raise WireError("signed header: next_validators must be a list or null")
    commit = doc.get("commit")
    return SignedHeader.from_value(
        {
            "header": _unhex(doc.get("header"), "header"),
            "commit": None if commit is None else _unhex(commit, "commit"),
            "next_validators": None if members is None else [_raw_hex(m, "next_validators") for m in members],
        }
    )


def state_to_json(answer: StateAnswer) -> dict[str, Any]:
    return {
        "height": answer.height,
        "key": answer.key.hex(),
        "value": None if answer.value is None else answer.value.hex(),
        "proof": _hex(answer.proof.to_value()),
    }


def state_from_json(doc: object) -> StateAnswer:
    if not isinstance(doc, dict):
        raise WireError("state answer: expected an object")
    value = doc.get("value")
    return StateAnswer.from_value(
        {
            "height": doc.get("height") if isinstance(doc.get("height"), int) else -1,
            "key": _raw_hex(doc.get("key"), "key"),
            "value": None if value is None else _raw_hex(value, "value"),
            "proof": _unhex(doc.get("proof"), "proof"),
        }
    )
