from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.errors import TxChainIdError, TxEncodingError, TxError, TxSignatureError, TxSizeError
from consensus.tx import SIGN_DOMAIN, Tx, decode_tx
from primitives import codec
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, record


def decode(raw: bytes) -> Tx:
    return decode_tx(raw, chain_id=CHAIN_ID, max_bytes=4096)


def test_round_trip_keeps_fields_hash_and_signature() -> None:
    tx = record(USER_KEYS[0], 7, b"k", b"v")
    again = decode(tx.raw)
    assert again == tx
    assert again.nonce == 7 and again.kind == "record" and again.body == {"key": b"k", "value": b"v"}
    assert again.hash == codec.digest(codec.decode(tx.raw))
    assert again.address == USER_KEYS[0].address


def test_sign_bytes_slice_equals_reencoding_of_the_signed_map() -> None:
    tx = record(USER_KEYS[1], 3)
    value = codec.decode(tx.raw)
    assert isinstance(value, dict)
    assert tx.sign_bytes() == SIGN_DOMAIN + codec.encode(value["tx"])


def test_oversized_transaction_is_rejected_before_decoding() -> None:
    tx = record(USER_KEYS[0], 0, v=b"x" * 500)
    with pytest.raises(TxSizeError, match="limit is 100"):
        decode_tx(tx.raw, chain_id=CHAIN_ID, max_bytes=100)
    assert TxSizeError.http_status == 413


def test_wrong_chain_id_is_named() -> None:
    tx = Tx.create(USER_KEYS[0], "other-chain", "record", 0, {"key": b"k", "value": b"v"})
    with pytest.raises(TxChainIdError, match="other-chain"):
        decode(tx.raw)


def test_tampered_body_fails_signature() -> None:
    tx = record(USER_KEYS[0], 0, v=b"AAAA")
    tampered = tx.raw.replace(b"AAAA", b"AAAB")
    with pytest.raises(TxSignatureError):
        decode(tampered)
    assert decode_tx(tampered, chain_id=CHAIN_ID, max_bytes=4096, check_signature=False).body["value"] == b"AAAB"


def test_signature_from_another_key_fails() -> None:
    tx = record(USER_KEYS[0], 0)
    forged = codec.decode(tx.raw)
    assert isinstance(forged, dict) and isinstance(forged["tx"], dict)
    forged["tx"]["sender"] = USER_KEYS[1].public_key
    with pytest.raises(TxSignatureError):
        decode(codec.encode(forged))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda v: {"tx": v["tx"]}, "exactly the keys"),
        (lambda v: {**v, "sig": b"short"}, "64-byte"),
        (lambda v: {**v, "tx": {**v["tx"], "nonce": -1}}, "nonce"),
        (lambda v: {**v, "tx": {**v["tx"], "sender": b"x" * 31}}, "sender"),
        (lambda v: {**v, "tx": {**v["tx"], "kind": ""}}, "kind"),
        (lambda v: {**v, "tx": {**v["tx"], "body": [1]}}, "body"),
        (lambda v: {**v, "tx": {**v["tx"], "extra": 1}}, "exactly chain_id"),
        (lambda v: [v], "map"),
    ],
)
def test_malformed_structure_names_the_problem(mutate: object, message: str) -> None:
    value = codec.decode(record(USER_KEYS[0], 0).raw)
    assert callable(mutate)
    with pytest.raises(TxEncodingError, match=message):
        decode(codec.encode(mutate(value)))


def test_non_canonical_bytes_are_an_encoding_error() -> None:
    import cbor2

    value = codec.decode(record(USER_KEYS[0], 0).raw)
    assert isinstance(value, dict)
    non_canonical = cbor2.dumps({"sig": value["sig"], "tx": value["tx"]})  # keys out of canonical order
    with pytest.raises(TxEncodingError, match="canonical"):
        decode(non_canonical)
    with pytest.raises(TxEncodingError):
        decode(b"\xff\x00garbage")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_tx_errors(data: bytes) -> None:
    with pytest.raises(TxError):
        decode(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(min_size=1, max_size=64), st.binary(max_size=200))
def test_any_signed_record_round_trips(nonce: int, k: bytes, v: bytes) -> None:
    tx = record(USER_KEYS[2], nonce, k, v)
    assert decode(tx.raw) == tx
    assert tx.verify_signature()


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_rejected(position: int, xor: int) -> None:
    tx = record(USER_KEYS[3], 1)
    pos = position % len(tx.raw)
    mutated = bytearray(tx.raw)
    mutated[pos] ^= xor or 1
    with pytest.raises(TxError):
        decode(bytes(mutated))


# ---- the canonical codec (primitives/codec.py): its fast paths must agree with cbor2's canonical mode ----------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=codec.INT_MIN, max_value=codec.INT_MAX)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),  # keys in whatever order hypothesis draws them
    max_leaves=20,
)


def _as_decoded(value: object) -> object:
    if isinstance(value, list | tuple):
        return [_as_decoded(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_decoded(v) for k, v in value.items()}
    return value


@settings(max_examples=300, deadline=None)
@given(_values)
def test_encode_is_cbor2_canonical_mode_and_decode_inverts_it(value: codec.Value) -> None:
    import cbor2

    data = codec.encode(value)
    assert data == cbor2.dumps(value, canonical=True)
    assert codec.decode(data) == _as_decoded(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.integers(min_value=0, max_value=1000), min_size=2, max_size=6))
def test_decode_rejects_a_map_whose_keys_are_out_of_canonical_order(value: dict[str, codec.Value]) -> None:
    import cbor2

    plain = cbor2.dumps(value)  # insertion order
    if codec.keys_in_order(value):
        assert codec.decode(plain) == value
    else:
        with pytest.raises(codec.CodecError, match="canonical"):
            codec.decode(plain)
        assert codec.decode(codec.encode(value)) == codec.sorted_map(value)


@pytest.mark.parametrize(
    "data",
    [
        b"\x18\x01",  # 1 in a two-byte form
        b"\x9f\x01\xff",  # indefinite-length list
        b"\x5f\x41\x01\xff",  # indefinite-length byte string
        b"\xa2\x61a\x01\x61a\x02",  # the same key twice
        b"\xa1\x01\x02",  # an integer key
        b"\xf9\x3c\x00",  # a float (1.0)
        b"\xc2\x41\x01",  # 1 as a tagged bignum
        b"\xc2\x49\x01\x00\x00\x00\x00\x00\x00\x00\x00",  # 2**64 as a tagged bignum (beyond 64 bits)
        b"\xd8\x1c\x81\x01",  # a shareable value (tag 28)
        b"\xf7",  # undefined
        b"\x01\x01",  # trailing bytes
    ],
)
def test_decode_rejects_non_canonical_and_foreign_items(data: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(data)


def test_nesting_limit_holds_for_encode_and_decode() -> None:
    deep: codec.Value = 0
    for _ in range(codec.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(codec.CodecError, match="nesting"):
        codec.encode(deep)
    with pytest.raises(codec.CodecError):
        codec.decode(b"\x81" * (codec.MAX_DEPTH + 1) + b"\x00")
    ok: codec.Value = 0
    for _ in range(codec.MAX_DEPTH):
        ok = [ok]
    assert codec.decode(codec.encode(ok)) == ok


def test_event_attrs_in_any_order_give_one_receipt_encoding() -> None:
    from consensus.execute import Event, Receipt

    a = Receipt(b"\x01" * 32, 0, 3000, (Event("record", {"owner": b"o", "key": b"k"}),))
    b = Receipt(b"\x01" * 32, 0, 3000, (Event("record", {"key": b"k", "owner": b"o"}),))
    assert a.encode() == b.encode() == codec.encode(a.to_value())
    assert Receipt.from_value(codec.decode(a.encode())) == a
