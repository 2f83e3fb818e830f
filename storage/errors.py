"""The storage package's exception tree.

Every error a peer's or a user's bad input can cause is a subclass of `StorageError`, so the network and HTTP
layers can catch one type, log it, score the peer or answer 4xx, and never crash on it.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the storage package raises on purpose."""


class InvalidCidError(StorageError, ValueError):
    """Text or bytes that are not a CIDv1 with a sha2-256 multihash this store understands."""


class BlockHashMismatchError(StorageError):
    """A block's bytes do not hash to the CID it was stored or sent under (tampered or corrupted)."""


class BlockNotFoundError(StorageError, KeyError):
    """The block is not in the local store."""


class MalformedNodeError(StorageError, ValueError):
    """A dag-pb or UnixFS node that does not decode, or whose sizes contradict its children."""


class StoreFullError(StorageError):
    """The disk (or the configured map ceiling) is full; nothing of the failed write was committed."""


class NotPinnedError(StorageError, KeyError):
    """Unpinning something that was never pinned."""


class ProtocolError(StorageError, ValueError):
    """A wire message from a peer that does not decode or breaks the protocol."""


class KeyStoreError(StorageError):
    """A record key that is missing, already erased, or cannot be unwrapped with the given key."""


class DecryptionError(StorageError):
    """Ciphertext that fails authentication: wrong key, tampered, truncated or reordered."""


class CarError(StorageError, ValueError):
    """Input that is not a CAR v1 file this store accepts (the message says what and at which byte)."""


class NotAcceptableError(StorageError):
    """A response format the client asked for (`?format=`, `Accept`) that this node does not serve."""
