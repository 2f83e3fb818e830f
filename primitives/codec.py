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

import cbor2

# A value ehrnet may encode. Recursive types keep mypy strict without Any at call sites.
Value = None | bool | int | str | bytes | list["Value"] | tuple["Value", ...] | dict[str, "Value"]

INT_MIN = -(2**64)
INT_MAX = 2**64 - 1
MAX_DEPTH = 64
DAG_CBOR_CODEC = 0x71


class CodecError(ValueError):
    """The value or bytes are not canonical DAG-CBOR."""


def _check(value: object, depth: int) -> bool:
    """Raise CodecError unless `value` may be encoded. Returns True when every map's keys are already in canonical
    order: cbor2's plain encoder keeps insertion order, so it then writes the canonical bytes without sorting.

    Exact type tests come first because this runs on every value ehrnet encodes or decodes (a few µs a
    transaction): isinstance chains and re-sorting were a visible share of a node's CPU under load.
    """
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind is bytes or kind is str or kind is bool or value is None:
        return True
    if kind is int or isinstance(value, int):
        assert isinstance(value, int)
        if not INT_MIN <= value <= INT_MAX:
            raise CodecError(f"integer {value} outside the 64-bit range DAG-CBOR allows")
        return True
    if kind is dict or isinstance(value, dict):
        assert isinstance(value, dict)
        ordered = True
        previous = (-1, b"")
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise CodecError(f"map key {key!r} is not a text string")
            # DAG-CBOR's key order: shorter encoded key first, then bytewise.
            encoded = key.encode()
            current = (len(encoded), encoded)
            if current <= previous:
                ordered = False
            previous = current
            if not _check(item, depth + 1):
                ordered = False
        return ordered
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        assert isinstance(value, list | tuple)
        ordered = True
        for item in value:
            if not _check(item, depth + 1):
                ordered = False
        return ordered
    if isinstance(value, str | bytes):
        return True
    if isinstance(value, float):
        raise CodecError("floats are not allowed in canonical encoding")
    raise CodecError(f"cannot encode a value of type {type(value).__name__}")


def _key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return len(encoded), encoded


def keys_in_order(value: dict[str, Value]) -> bool:
    """True when the map's keys are in canonical order (its own values are not looked at)."""
    previous = (-1, b"")
    for key in value:
        current = _key_order(key)
        if current <= previous:
            return False
        previous = current
    return True


def sorted_map(value: dict[str, Value]) -> dict[str, Value]:
    """The same map with its keys inserted in canonical order (one level; the values are shared)."""
    return {key: value[key] for key in sorted(value, key=_key_order)}


def encode(value: Value) -> bytes:
    """The canonical DAG-CBOR bytes of `value` (tuples encode as lists)."""
    if _check(value, 0):
        # Keys already in order (ehrnet builds its own maps that way): the plain encoder writes the same bytes
        # as canonical mode, which would encode and sort every key again.
        return cbor2.dumps(value)
    # cbor2's canonical mode is RFC 7049 §3.9 canonical CBOR: for text keys that is the same length-first order
    # DAG-CBOR specifies, shortest integers and definite lengths.
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes) -> Value:
    """Decode canonical DAG-CBOR; anything non-canonical raises `CodecError`."""
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise CodecError(f"malformed CBOR: {exc}") from exc
    # cbor2 turns some tags into Python objects (bignums into ints, shared references into shared objects), and
    # accepts non-minimal lengths, indefinite lengths, unsorted or duplicate keys. `_check` rejects any type we
    # do not encode and any map whose keys are out of canonical order; with keys in order the plain encoder
    # writes exactly the canonical bytes, so comparing them with the input rejects everything else.
    if not _check(value, 0) or cbor2.dumps(value) != data:
        raise CodecError("bytes are not the canonical encoding of their value")
    return value  # type: ignore[no-any-return]


def digest(value: Value) -> bytes:
    """sha2-256 of the canonical encoding: the hash ehrnet uses for every ledger object."""
    return hashlib.sha256(encode(value)).digest()
