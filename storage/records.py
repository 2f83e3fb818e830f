"""EHR records end to end on one node: encrypt then store, open for a reader, grant, and erase a user.

This composes the primitives for the sharing issue: `envelope` (per-record data key, wrapping), the content
store (ciphertext only) and the manager's `KeyStore` (wrapped keys only). Reader and owner IDs are opaque bytes
(ledger addresses in practice); public keys are X25519.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping

from storage.address import CID
from storage.errors import NotPinnedError
from storage.keystore import KeyStore
from storage.objects import ObjectStore
from storage.record_encryption import Opener, Sealer, new_data_key, rewrap, unwrap_key, wrap_key


class EhrVault:
    def __init__(self, objects: ObjectStore, keys: KeyStore) -> None:
        self.objects = objects
        self.keys = keys

    async def store(
        self,
        plaintext: AsyncIterable[bytes],
        owner: bytes,
        readers: Mapping[bytes, bytes],
        replication: int = 1,
        nonce_prefix: bytes | None = None,
    ) -> CID:
        """Encrypt a record under a fresh data key, store and pin the ciphertext, and file the key wrapped for
        each reader in `readers` (reader ID -> X25519 public key: at least the patient and the manager)."""
        data_key = new_data_key()
        sealer = Sealer(data_key, nonce_prefix)

        async def ciphertext() -> AsyncIterator[bytes]:
            async for chunk in plaintext:
                out = sealer.feed(chunk)
                if out:
                    yield out
            yield sealer.finish()

        record = await self.objects.add_stream(ciphertext(), pin=True, replication=replication)
        self.keys.add_record(record, owner, {reader: wrap_key(data_key, public) for reader, public in readers.items()})
        return record

    def grant(self, record: CID, manager: bytes, manager_private: bytes, requester: bytes, public: bytes) -> None:
        """A read the contract allowed: wrap the record's key for `requester` (paper §III-B, step 4)."""
        self.keys.grant(record, requester, rewrap(self.keys.wrapped_key(record, manager), manager_private, public))

    def read(self, record: CID, reader: bytes, reader_private: bytes) -> Iterator[bytes]:
        """The record's plaintext for a reader holding a wrapped key, streamed and authenticated."""
        opener = Opener(unwrap_key(self.keys.wrapped_key(record, reader), reader_private))
        for piece in self.objects.cat(record):
            out = opener.feed(piece)
            if out:
                yield out
        yield opener.finish()

    def erase_user(self, owner: bytes) -> list[CID]:
        """Crypto-shred a user: destroy the wrapped keys of their records, unpin the ciphertext (GC reclaims it
        here; other holders unpin when told). Returns the record CIDs (to announce the unpin cluster-wide)."""
        records = self.keys.erase_user(owner)
        for record in records:
            with contextlib.suppress(NotPinnedError):  # the operator may have unpinned it already
                self.objects.unpin(record)
        return records
