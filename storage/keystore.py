"""The EHRs manager's key store: wrapped data keys per record per reader, in its own LMDB environment.

Wrapped keys never enter the content store or the ledger (paper §III-B: the EHRs manager mediates every
access). Layout, all keys binary:
    records:  <record CID>                      -> owner ID
    wrapped:  <record CID (36 bytes)><reader ID> -> SealedBox-wrapped data key
    owned:    <len(owner)><owner><record CID>    -> b""     (index for erasure)
    granted:  <len(reader)><reader><record CID>  -> b""     (index for erasure)

`erase_user` is the crypto-shredding step of DeleteUser: it deletes every wrapped key of the user's records
(theirs, the manager's, every grantee's) and the user's grants on others' records, in one transaction, and
returns the record CIDs for the caller to unpin. LMDB is copy-on-write, so erased bytes can linger in free
pages until reused: deploy the key store on an encrypted volume for forensic-grade erasure (docs/STORAGE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lmdb

from storage.address import CID
from storage.errors import KeyStoreError

_CID_BYTES = 36
MAX_ID_BYTES = 255


def _prefixed(identity: bytes) -> bytes:
    if not 0 < len(identity) <= MAX_ID_BYTES:
        raise KeyStoreError(f"user IDs are 1..{MAX_ID_BYTES} bytes")
    return bytes((len(identity),)) + identity


class KeyStore:
    def __init__(self, directory: Path, map_size: int = 256 << 20) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(directory), map_size=map_size, max_dbs=4, subdir=True)
        self._records = self._env.open_db(b"records")
        self._wrapped = self._env.open_db(b"wrapped")
        self._owned = self._env.open_db(b"owned")
        self._granted = self._env.open_db(b"granted")

    def close(self) -> None:
        self._env.close()

    def add_record(self, record: CID, owner: bytes, wrapped: Mapping[bytes, bytes]) -> None:
        """Register a new record with its owner and the data key wrapped for each initial reader."""
        key = record.to_bytes()
        with self._env.begin(write=True) as txn:
            if not txn.put(key, owner, db=self._records, overwrite=False):
                raise KeyStoreError(f"record {record} is already registered")
            txn.put(_prefixed(owner) + key, b"", db=self._owned)
            for reader, sealed in wrapped.items():
                self._put_grant(txn, key, reader, sealed)

    def _put_grant(self, txn: Any, key: bytes, reader: bytes, sealed: bytes) -> None:
        txn.put(key + _prefixed(reader), sealed, db=self._wrapped)
        txn.put(_prefixed(reader) + key, b"", db=self._granted)

    def grant(self, record: CID, reader: bytes, wrapped: bytes) -> None:
        key = record.to_bytes()
        with self._env.begin(write=True) as txn:
            if txn.get(key, db=self._records) is None:
                raise KeyStoreError(f"record {record} is unknown or erased")
            self._put_grant(txn, key, reader, wrapped)

    def revoke(self, record: CID, reader: bytes) -> bool:
        key = record.to_bytes()
        with self._env.begin(write=True) as txn:
            txn.delete(_prefixed(reader) + key, db=self._granted)
            return bool(txn.delete(key + _prefixed(reader), db=self._wrapped))

    def wrapped_key(self, record: CID, reader: bytes) -> bytes:
        with self._env.begin() as txn:
            value = txn.get(record.to_bytes() + _prefixed(reader), db=self._wrapped)
        if value is None:
            raise KeyStoreError(f"no key of record {record} for this reader")
        return bytes(value)

    def owner_of(self, record: CID) -> bytes:
        with self._env.begin() as txn:
            value = txn.get(record.to_bytes(), db=self._records)
        if value is None:
            raise KeyStoreError(f"record {record} is unknown or erased")
        return bytes(value)

    def readers(self, record: CID) -> list[bytes]:
        key = record.to_bytes()
        with self._env.begin() as txn:
            return [bytes(k[_CID_BYTES + 1 :]) for k in _scan(txn, self._wrapped, key)]

    def records_of(self, owner: bytes) -> list[CID]:
        prefix = _prefixed(owner)
        with self._env.begin() as txn:
            return [CID.from_bytes(bytes(k[len(prefix) :])) for k in _scan(txn, self._owned, prefix)]

    def erase_user(self, owner: bytes) -> list[CID]:
        """Destroy every wrapped key of `owner`'s records and `owner`'s grants; returns the CIDs to unpin."""
        prefix = _prefixed(owner)
        with self._env.begin(write=True) as txn:
            records = [bytes(k[len(prefix) :]) for k in _scan(txn, self._owned, prefix)]
            for key in records:
                for wrapped_key in _scan(txn, self._wrapped, key):
                    txn.delete(_prefixed(wrapped_key[_CID_BYTES + 1 :]) + key, db=self._granted)
                    txn.delete(wrapped_key, db=self._wrapped)
                txn.delete(key, db=self._records)
                txn.delete(prefix + key, db=self._owned)
            for granted_key in _scan(txn, self._granted, prefix):
                txn.delete(granted_key[len(prefix) :] + prefix, db=self._wrapped)
                txn.delete(granted_key, db=self._granted)
        return [CID.from_bytes(key) for key in records]


def _scan(txn: Any, db: Any, prefix: bytes) -> list[bytes]:
    """Keys starting with `prefix` (materialised, so callers may delete while iterating)."""
    keys: list[bytes] = []
    cursor = txn.cursor(db=db)
    if not cursor.set_range(prefix):
        return keys
    for key in cursor.iternext(keys=True, values=False):
        key = bytes(key)
        if not key.startswith(prefix):
            break
        keys.append(key)
    return keys
