"""The first check of every storage peer message (DHT, replica requests): one bounded, canonical DAG-CBOR map
with a text "type" field. Everything a peer sends passes here first, so a malformed frame is a `ProtocolError`
naming the protocol, never a crash."""

from __future__ import annotations

from primitives import codec
from storage.errors import ProtocolError


def decode_typed_map(data: bytes, what: str, max_bytes: int) -> dict[str, codec.Value]:
    """`data` as a map whose "type" is text; `what` names the protocol's message in errors."""
    # The size check comes first so an oversized frame costs nothing to refuse.
    if len(data) > max_bytes:
        raise ProtocolError(f"{what} of {len(data)} bytes exceeds {max_bytes}")
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise ProtocolError(f"{what} is not canonical CBOR: {exc}") from exc
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ProtocolError(f"{what} must be a map with a text 'type'")
    return value
