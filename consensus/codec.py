"""Canonical encoding for everything ehrnet hashes or signs.

The rules are DAG-CBOR's strict subset of CBOR (IPLD DAG-CBOR spec, "Strictness"): map keys are text strings
sorted length-first then bytewise, integers in their shortest form and within 64 bits, definite lengths, and
no floats, undefined or tags. Two nodes that encode the same value therefore produce the same bytes, so the
same hash, and every ledger object is a valid IPLD block (multicodec 0x71) that the content store can hold.

`decode` is strict too: it rejects any input that is not the canonical encoding of what it decodes to, so a
peer cannot make two different byte strings that mean the same signed object.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

# A value ehrnet may encode. Recursive types keep mypy strict without Any at call sites.
Value = None | bool | int | str | bytes | list["Value"] | tuple["Value", ...] | dict[str, "Value"]

INT_MIN = -(2**64)
INT_MAX = 2**64 - 1
MAX_DEPTH = 64
DAG_CBOR_CODEC = 0x71


class CodecError(ValueError):
    """The value or bytes are not canonical DAG-CBOR."""


def _check(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | str | bytes):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise CodecError(f"integer {value} outside the 64-bit range DAG-CBOR allows")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CodecError(f"map key {key!r} is not a text string")
            _check(item, depth + 1)
        return
    if isinstance(value, float):
        raise CodecError("floats are not allowed in canonical encoding")
    raise CodecError(f"cannot encode a value of type {type(value).__name__}")


def encode(value: Value) -> bytes:
    """The canonical DAG-CBOR bytes of `value` (tuples encode as lists)."""
    _check(value, 0)
    # cbor2's canonical mode is RFC 7049 §3.9 canonical CBOR: for text keys that is the same length-first order
    # DAG-CBOR specifies, shortest integers and definite lengths.
    return cbor2.dumps(value, canonical=True)


def _untag(value: Any, depth: int) -> Value:
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | int | str | bytes):
        return value
    if isinstance(value, list):
        return [_untag(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {k: _untag(v, depth + 1) for k, v in value.items()}
    raise CodecError(f"unexpected CBOR item of type {type(value).__name__}")


def decode(data: bytes) -> Value:
    """Decode canonical DAG-CBOR; anything non-canonical raises `CodecError`."""
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise CodecError(f"malformed CBOR: {exc}") from exc
    result = _untag(value, 0)
    if encode(result) != data:
        raise CodecError("bytes are not the canonical encoding of their value")
    return result


def digest(value: Value) -> bytes:
    """sha2-256 of the canonical encoding: the hash ehrnet uses for every ledger object."""
    return hashlib.sha256(encode(value)).digest()
