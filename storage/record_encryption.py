"""Envelope encryption of EHR records: a fresh data key per record, wrapped for each authorised reader.

- Record bytes are encrypted with the record's 32-byte data key (NaCl SecretBox: XSalsa20-Poly1305) before
  they reach the store, so storage nodes and the DHT only ever see ciphertext (architecture §3, "Privacy by
  construction").
- To stream large records in constant memory the plaintext is cut into 64 KiB segments, each sealed with its
  own nonce = 16-byte random prefix ‖ 7-byte segment counter ‖ 1-byte "last segment" flag (the STREAM
  construction of Hoang, Reyhanitabar, Rogaway & Vizár, CRYPTO 2015): segments cannot be reordered, dropped or
  the record truncated without the authentication failing. Layout: b"EHR1" ‖ prefix ‖ sealed segments, each
  segment 16 bytes longer than its plaintext; the last is 0..64 KiB of plaintext and always present.
- The data key is wrapped with a NaCl SealedBox (X25519 + XSalsa20-Poly1305, anonymous sender) for each reader's
  X25519 public key: the patient and the EHRs manager at creation, and at a granted read the manager unwraps
  its copy and wraps it for that requester only (`rewrap`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.signing
import nacl.utils

from storage.errors import DecryptionError, KeyStoreError

MAGIC = b"EHR1"
PREFIX_BYTES = 16
SEGMENT = 64 << 10
MAC_BYTES = nacl.secret.SecretBox.MACBYTES
SEALED_SEGMENT = SEGMENT + MAC_BYTES
HEADER_BYTES = len(MAGIC) + PREFIX_BYTES
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE


def new_data_key() -> bytes:
    return nacl.utils.random(KEY_BYTES)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 1 << 56:
        raise DecryptionError("record has too many segments")
    return prefix + counter.to_bytes(7, "big") + (b"\x01" if last else b"\x00")


class Sealer:
    """Sans-IO encryptor: `feed` plaintext, get ciphertext; `finish` emits the last segment."""

    def __init__(self, key: bytes, nonce_prefix: bytes | None = None) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self._box = nacl.secret.SecretBox(key)
        self._prefix = nonce_prefix if nonce_prefix is not None else nacl.utils.random(PREFIX_BYTES)
        if len(self._prefix) != PREFIX_BYTES:
            raise ValueError("nonce prefix is 16 bytes")
        self._buffer = bytearray()
        self._counter = 0
        self._header_sent = False

    def _header(self) -> bytes:
        if self._header_sent:
            return b""
        self._header_sent = True
        return MAGIC + self._prefix

    def _seal(self, segment: bytes, last: bool) -> bytes:
        sealed = self._box.encrypt(segment, _nonce(self._prefix, self._counter, last)).ciphertext
        self._counter += 1
        return bytes(sealed)

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = [self._header()]
        # Keep at least one byte back: the final segment must be sealed with the "last" flag in `finish`.
        while len(self._buffer) > SEGMENT:
            out.append(self._seal(bytes(self._buffer[:SEGMENT]), last=False))
            del self._buffer[:SEGMENT]
        return b"".join(out)

    def finish(self) -> bytes:
        out = self._header() + self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return out


class Opener:
    """Sans-IO decryptor, the mirror of `Sealer`; raises `DecryptionError` on any tampering or truncation."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self._box = nacl.secret.SecretBox(key)
        self._buffer = bytearray()
        self._prefix: bytes | None = None
        self._counter = 0
        self._done = False

    def _open(self, sealed: bytes, last: bool) -> bytes:
        assert self._prefix is not None
        try:
            plain = self._box.decrypt(sealed, _nonce(self._prefix, self._counter, last))
        except nacl.exceptions.CryptoError as exc:
            raise DecryptionError("record segment failed authentication (wrong key or tampered)") from exc
        self._counter += 1
        return bytes(plain)

    def feed(self, data: bytes) -> bytes:
        if self._done:
            raise DecryptionError("data after the end of the record")
        self._buffer += data
        if self._prefix is None:
            if len(self._buffer) < HEADER_BYTES:
                return b""
            if bytes(self._buffer[: len(MAGIC)]) != MAGIC:
                raise DecryptionError("not an ehrnet encrypted record")
            self._prefix = bytes(self._buffer[len(MAGIC) : HEADER_BYTES])
            del self._buffer[:HEADER_BYTES]
        out = []
        while len(self._buffer) > SEALED_SEGMENT:
            out.append(self._open(bytes(self._buffer[:SEALED_SEGMENT]), last=False))
            del self._buffer[:SEALED_SEGMENT]
        return b"".join(out)

    def finish(self) -> bytes:
        if self._prefix is None or len(self._buffer) < MAC_BYTES:
            raise DecryptionError("record is truncated")
        self._done = True
        plain = self._open(bytes(self._buffer), last=True)
        self._buffer.clear()
        return plain


def encrypt_chunks(key: bytes, chunks: Iterable[bytes], nonce_prefix: bytes | None = None) -> Iterator[bytes]:
    sealer = Sealer(key, nonce_prefix)
    for chunk in chunks:
        out = sealer.feed(chunk)
        if out:
            yield out
    yield sealer.finish()


def decrypt_chunks(key: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    opener = Opener(key)
    for chunk in chunks:
        out = opener.feed(chunk)
        if out:
            yield out
    yield opener.finish()


def seal_record(key: bytes, plaintext: bytes) -> bytes:
    return b"".join(encrypt_chunks(key, [plaintext]))


def open_record(key: bytes, ciphertext: bytes) -> bytes:
    return b"".join(decrypt_chunks(key, [ciphertext]))


def wrap_key(data_key: bytes, reader_public: bytes) -> bytes:
    """The data key sealed for one reader's X25519 public key (only their private key opens it)."""
    try:
        box = nacl.public.SealedBox(nacl.public.PublicKey(reader_public))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise KeyStoreError(f"not an X25519 public key: {exc}") from exc
    return bytes(box.encrypt(data_key))


def unwrap_key(wrapped: bytes, reader_private: bytes) -> bytes:
    try:
        key = nacl.public.SealedBox(nacl.public.PrivateKey(reader_private)).decrypt(wrapped)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise KeyStoreError("wrapped key does not open with this private key") from exc
    if len(key) != KEY_BYTES:
        raise KeyStoreError("wrapped key has the wrong length")
    return bytes(key)


def rewrap(wrapped_for_manager: bytes, manager_private: bytes, requester_public: bytes) -> bytes:
    """At a granted read: the manager opens its copy of the data key and seals it for the requester only."""
    return wrap_key(unwrap_key(wrapped_for_manager, manager_private), requester_public)


def x25519_from_ed25519_seed(seed: bytes) -> tuple[bytes, bytes]:
    """(private, public) X25519 keys derived from a user's Ed25519 seed (primitives/keys.py), so one key file
    serves both signing and record decryption (libsodium's birational map)."""
    signing = nacl.signing.SigningKey(seed)
    private = signing.to_curve25519_private_key()
    return bytes(private), bytes(private.public_key)
