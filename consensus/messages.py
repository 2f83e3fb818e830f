"""The error type and field checks shared by the consensus messages peers send each other.

Proposals, votes and evidence arrive from peers that may be faulty or Byzantine, so every decoded field is
checked before an object is built: a malformed message raises `MessageError` with a message naming the field,
which the network shell logs and scores against the peer instead of crashing.
"""

from __future__ import annotations

from consensus.errors import LedgerError
from primitives import codec

HASH_SIZE = 32
KEY_SIZE = 32
SIGNATURE_SIZE = 64


class MessageError(LedgerError, ValueError):
    """A consensus message is malformed, wrongly signed or not acceptable at this point.

    Part of the ledger's exception tree (`consensus.errors.LedgerError`), and a ValueError like the parse errors
    of `Vote.from_value`, so one `except ValueError` covers every malformed consensus message."""


def decode_map(data: bytes, what: str, error: type[Exception] = MessageError) -> dict[str, codec.Value]:
    """Decode canonical DAG-CBOR that must be a map; anything else raises `error` with a message naming `what`.
    Each wire module passes its own error type, so its callers keep catching what they already catch."""
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise error(f"{what}: {exc}") from exc
    if not isinstance(value, dict):
        raise error(f"{what}: expected a map")
    return value


def as_map(value: codec.Value, what: str) -> dict[str, codec.Value]:
    if not isinstance(value, dict):
        raise MessageError(f"{what} is not a map")
    return value


def int_field(value: dict[str, codec.Value], name: str, what: str, minimum: int = 0) -> int:
    item = value.get(name)
    # bool is a subclass of int in Python; a CBOR true must not pass as 1.
    if not isinstance(item, int) or isinstance(item, bool) or item < minimum:
        raise MessageError(f"{what} {name} must be an integer ≥ {minimum}")
    return item


def str_field(value: dict[str, codec.Value], name: str, what: str) -> str:
    item = value.get(name)
    if not isinstance(item, str):
        raise MessageError(f"{what} {name} must be a string")
    return item


def bytes_field(value: dict[str, codec.Value], name: str, what: str, size: int | None = None) -> bytes:
    item = value.get(name)
    if not isinstance(item, bytes) or (size is not None and len(item) != size):
        expected = "bytes" if size is None else f"{size} bytes"
        raise MessageError(f"{what} {name} must be {expected}")
    return item
