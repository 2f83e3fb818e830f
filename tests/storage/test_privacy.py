from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nacl.public
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.blockstore import Blockstore
from storage.ehr_vault import EhrVault, open_for_reader, seal_and_store
from storage.errors import DecryptionError, KeyStoreError
from storage.keystore import KeyStore
from storage.objects import ObjectStore
from storage.record_encryption import (
    SEGMENT,
    Opener,
    decrypt_chunks,
    encrypt_chunks,
    new_data_key,
    open_record,
    rewrap,
    seal_record,
    unwrap_key,
    wrap_key,
    x25519_from_ed25519_seed,
)

KEY = bytes(range(32))
PREFIX = b"p" * 16


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 3 * SEGMENT + 5), piece=st.integers(1, SEGMENT + 7))
def test_stream_roundtrip_any_chunking(size: int, piece: int) -> None:
    plain = bytes(i % 256 for i in range(size))
    sealed = b"".join(encrypt_chunks(KEY, [plain[i : i + piece] for i in range(0, size, piece)], PREFIX))
    # The ciphertext does not depend on how the plaintext was cut.
    assert sealed == b"".join(encrypt_chunks(KEY, [plain], PREFIX))
    assert b"".join(decrypt_chunks(KEY, [sealed[i : i + piece] for i in range(0, len(sealed), piece)])) == plain


def test_tampering_truncation_reordering_and_wrong_key_fail() -> None:
    plain = bytes(3 * SEGMENT)
    sealed = seal_record(KEY, plain)
    assert open_record(KEY, sealed) == plain
    flipped = bytearray(sealed)
    flipped[100] ^= 1
    header, body = sealed[:20], sealed[20:]
    seg = SEGMENT + 16
    swapped = header + body[seg : 2 * seg] + body[:seg] + body[2 * seg :]
    for bad in (bytes(flipped), sealed[: 20 + 2 * seg], swapped, b"nope" + sealed[4:]):
        with pytest.raises(DecryptionError):
            open_record(KEY, bad)
    with pytest.raises(DecryptionError):
        open_record(new_data_key(), sealed)
    opener = Opener(KEY)
    opener.feed(sealed)
    opener.finish()
    with pytest.raises(DecryptionError):
        opener.feed(b"more")


def test_wrapping_and_rewrapping() -> None:
    manager, doctor = nacl.public.PrivateKey.generate(), nacl.public.PrivateKey.generate()
    data_key = new_data_key()
    for_manager = wrap_key(data_key, bytes(manager.public_key))
    for_doctor = rewrap(for_manager, bytes(manager), bytes(doctor.public_key))
    assert unwrap_key(for_doctor, bytes(doctor)) == data_key
    with pytest.raises(KeyStoreError):
        unwrap_key(for_doctor, bytes(manager))
    with pytest.raises(KeyStoreError):
        wrap_key(data_key, b"short")


def test_x25519_from_ed25519_seed_is_a_working_keypair() -> None:
    private, public = x25519_from_ed25519_seed(b"s" * 32)
    assert unwrap_key(wrap_key(KEY, public), private) == KEY


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 50_000):
        yield data[i : i + 50_000]


async def test_seal_file_grant_open_and_erase(tmp_path: Path) -> None:
    """The key grant as the node runs it: a filer seals and stores, the manager files and grants, a reader opens."""
    objects = ObjectStore(Blockstore(tmp_path / "blocks"))
    patient, manager, doctor = (nacl.public.PrivateKey.generate() for _ in range(3))
    vault = EhrVault(KeyStore(tmp_path / "keys"), b"manager", bytes(manager))
    ehr = b"tremor severity 2; " * 20_000
    readers = {b"patient": bytes(patient.public_key), b"manager": bytes(manager.public_key)}
    sealed = await seal_and_store(objects, _chunks(ehr), readers, replication=2)
    vault.file(sealed.cid, b"patient", sealed.wrapped)
    record = sealed.cid
    # The store holds only ciphertext, and no wrapped key.
    stored = b"".join(objects.cat(record))
    assert b"tremor" not in stored and len(stored) > len(ehr)
    assert sealed.data_key not in stored and not any(w in stored for w in sealed.wrapped.values())
    assert objects.pins()[0].replication == 2
    assert open_for_reader(vault.keys.wrapped_key(record, b"patient"), bytes(patient), stored) == ehr
    with pytest.raises(KeyStoreError):
        vault.keys.wrapped_key(record, b"doctor")
    with pytest.raises(KeyStoreError):  # the patient's wrapped key does not open with the doctor's private key
        open_for_reader(sealed.wrapped[b"patient"], bytes(doctor), stored)
    granted = vault.grant(record, b"doctor", bytes(doctor.public_key))
    assert granted is not None and vault.keys.wrapped_key(record, b"doctor") == granted
    assert open_for_reader(granted, bytes(doctor), stored) == ehr
    assert sorted(vault.keys.readers(record)) == [b"doctor", b"manager", b"patient"]
    other = await seal_and_store(objects, _chunks(b"other"), readers, replication=1)
    vault.file(other.cid, b"doctor", other.wrapped)

    assert vault.erase_user(b"patient") == [record]
    for reader in (b"patient", b"manager", b"doctor"):
        with pytest.raises(KeyStoreError):
            vault.keys.wrapped_key(record, reader)
    with pytest.raises(KeyStoreError):
        vault.keys.wrapped_key(other.cid, b"patient")  # the erased user's grants on others' records go too
    assert vault.keys.records_of(b"patient") == [] and vault.keys.records_of(b"doctor") == [other.cid]
    assert vault.grant(record, b"doctor", bytes(doctor.public_key)) is None  # nothing left to grant


async def test_vault_refuses_a_record_the_manager_could_never_grant(tmp_path: Path) -> None:
    objects = ObjectStore(Blockstore(tmp_path / "blocks"))
    patient, manager = nacl.public.PrivateKey.generate(), nacl.public.PrivateKey.generate()
    vault = EhrVault(KeyStore(tmp_path / "keys"), b"manager", bytes(manager))
    sealed = await seal_and_store(objects, _chunks(b"x"), {b"patient": bytes(patient.public_key)}, replication=1)
    with pytest.raises(KeyStoreError, match="wrapped for the manager"):
        vault.file(sealed.cid, b"patient", sealed.wrapped)
    assert vault.keys.readers(sealed.cid) == []
    vault.file(
        sealed.cid, b"patient", {**sealed.wrapped, b"manager": wrap_key(sealed.data_key, bytes(manager.public_key))}
    )
    with pytest.raises(KeyStoreError):  # a requester key that is not an X25519 key is an error, not "no key here"
        vault.grant(sealed.cid, b"doctor", b"short")


def test_keystore_rejects_duplicates_and_unknown_records(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    from storage.address import CID, RAW

    record = CID.of(RAW, b"r")
    keys.add_record(record, b"owner", {b"owner": b"wrapped"})
    assert keys.owner_of(record) == b"owner"
    with pytest.raises(KeyStoreError):
        keys.add_record(record, b"owner", {})
    with pytest.raises(KeyStoreError):
        keys.grant(CID.of(RAW, b"unknown"), b"x", b"w")
    assert keys.revoke(record, b"owner") and not keys.revoke(record, b"owner")
