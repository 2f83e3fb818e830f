"""The key grant of EHR sharing (paper Sec. III-B), pure of networking: the one implementation the node runs.

Three steps, each here once:
- **sealing** (`seal_and_store`): whoever files a record — the EHRs manager for a device's own result, an edge
  node for an offloaded one — encrypts it under a fresh data key before it reaches the content store, and wraps
  that key for each initial reader (the patient and the manager);
- **custody** (`EhrVault`): the manager files the wrapped keys in its `KeyStore`, never in the content store or
  on the ledger; at a read the contract allowed it opens its own copy and wraps the key for that requester only
  (step 4 of the protocol), and at a user's erasure it destroys every wrapped key of theirs (crypto-shredding;
  unpinning the ciphertext is the storage service's part, on every holder);
- **opening** (`open_for_reader`): the requester opens the wrapped key with its private key, then the record.

The callers own the transport (node/ehr/ files locally or sends the wrapped keys to the manager over libp2p);
this module touches only the object store and the key store, so tests/storage/test_privacy.py covers the code
the node runs. Reader and owner IDs are opaque bytes (ledger addresses in the node); public keys are X25519.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass

from storage.address import CID
from storage.errors import KeyStoreError
from storage.keystore import KeyStore
from storage.objects import ObjectStore
from storage.record_encryption import Sealer, new_data_key, open_record, rewrap, unwrap_key, wrap_key


@dataclass(frozen=True)
class SealedRecord:
    cid: CID  # of the ciphertext, pinned in the local store
    wrapped: dict[bytes, bytes]  # reader ID -> the data key sealed for that reader
    data_key: bytes  # for the filer's salted content hash; never stored anywhere


async def seal_and_store(
    objects: ObjectStore,
    plaintext: AsyncIterable[bytes],
    readers: Mapping[bytes, bytes],
    replication: int,
    nonce_prefix: bytes | None = None,
) -> SealedRecord:
    """Encrypt a record under a fresh data key, store and pin the ciphertext with factor `replication`, and wrap
    the key for each reader in `readers` (reader ID -> X25519 public key). The plaintext streams through in
    constant memory; the store only ever sees ciphertext."""
    data_key = new_data_key()
    sealer = Sealer(data_key, nonce_prefix)

    async def ciphertext() -> AsyncIterator[bytes]:
        async for chunk in plaintext:
            out = sealer.feed(chunk)
            if out:
                yield out
        yield sealer.finish()

    cid = await objects.add_stream(ciphertext(), pin=True, replication=replication)
    wrapped = {reader: wrap_key(data_key, public) for reader, public in readers.items()}
    return SealedRecord(cid, wrapped, data_key)


def open_for_reader(wrapped_key: bytes, reader_private: bytes, ciphertext: bytes) -> bytes:
    """A record's plaintext for the reader whose X25519 private key opens `wrapped_key` (authenticated: a wrong
    key raises `KeyStoreError`, tampered ciphertext `DecryptionError`)."""
    return open_record(unwrap_key(wrapped_key, reader_private), ciphertext)


class EhrVault:
    """The EHRs manager's custody of data keys: it holds a wrapped copy of every record's key, and that copy is
    what it re-wraps for a requester the contract allowed."""

    def __init__(self, keys: KeyStore, manager: bytes, manager_private: bytes) -> None:
        self.keys = keys
        self.manager = manager  # the manager's reader ID
        self._manager_private = manager_private  # its X25519 private key

    def close(self) -> None:
        self.keys.close()

    def file(self, record: CID, owner: bytes, wrapped: Mapping[bytes, bytes]) -> None:
        """Keep a new record's wrapped keys. One of them must be the manager's, or no read could ever be granted."""
        if self.manager not in wrapped:
            raise KeyStoreError(f"record {record}: its key must be wrapped for the manager too")
        self.keys.add_record(record, owner, wrapped)

    def grant(self, record: CID, requester: bytes, requester_public: bytes) -> bytes | None:
        """A read the contract allowed: the record's key wrapped for `requester` only, also kept as their grant
        (so a later erasure of either party destroys it). None if no key of `record` is filed here."""
        try:
            mine = self.keys.wrapped_key(record, self.manager)
        except KeyStoreError:
            return None
        wrapped = rewrap(mine, self._manager_private, requester_public)
        self.keys.grant(record, requester, wrapped)
        return wrapped

    def erase_user(self, owner: bytes) -> list[CID]:
        """Crypto-shred a user: every wrapped key of their records (theirs, the manager's, each grantee's) and their
        grants on others' records, in one transaction. Returns their record CIDs; without the keys the ciphertext
        on any holder is noise, and the storage service unpins it."""
        return self.keys.erase_user(owner)
