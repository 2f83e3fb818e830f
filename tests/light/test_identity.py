"""A light client's keys: Ed25519 + X25519, and the optional P-256 device key that endorses them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.light import identity
from node.light.errors import IdentityError
from primitives import codec


def test_keygen_then_load_gives_the_same_keys_and_refuses_to_overwrite(tmp_path: Path) -> None:
    made = identity.generate(tmp_path / "id")
    loaded = identity.load(tmp_path / "id")
    assert loaded.signing == made.signing and loaded.box_public_key == made.box_public_key
    assert loaded.device is None and loaded.box_public_key != loaded.signing.public_key
    assert (tmp_path / "id" / identity.BOX_FILE).stat().st_mode & 0o077 == 0
    with pytest.raises(IdentityError, match="refusing to overwrite"):
        identity.generate(tmp_path / "id")


def test_a_p256_device_key_endorses_both_keys_and_is_checked_on_load(tmp_path: Path) -> None:
    made = identity.generate(tmp_path / "id", p256=True)
    assert made.device is not None and made.device.verify()
    loaded = identity.load(tmp_path / "id")
    assert loaded.device == made.device
    assert "device_key_p256" in loaded.describe()

    # A binding whose signature no longer matches (here: it claims another box key) is refused.
    other = identity.generate(tmp_path / "other")
    forged = dataclasses.replace(made.device, box_key=other.box_public_key)
    assert not forged.verify()
    (tmp_path / "id" / identity.BINDING_FILE).write_bytes(codec.encode(forged.to_value()))
    with pytest.raises(IdentityError, match="other keys"):
        identity.load(tmp_path / "id")
    # A valid binding copied next to someone else's keys does not transfer to them.
    (tmp_path / "other" / identity.BINDING_FILE).write_bytes(codec.encode(made.device.to_value()))
    with pytest.raises(IdentityError, match="other keys"):
        identity.load(tmp_path / "other")


def test_a_bad_signature_in_a_binding_for_the_right_keys_is_refused(tmp_path: Path) -> None:
    made = identity.generate(tmp_path / "id", p256=True)
    assert made.device is not None
    flipped = bytes([made.device.signature[0] ^ 1]) + made.device.signature[1:]
    bad = dataclasses.replace(made.device, signature=flipped)
    (tmp_path / "id" / identity.BINDING_FILE).write_bytes(codec.encode(bad.to_value()))
    with pytest.raises(IdentityError, match="does not verify"):
        identity.load(tmp_path / "id")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (identity.BOX_FILE, b"{}", "not an X25519 key file"),
        (identity.BOX_FILE, b'{"type": "x25519", "secret": "00"}', "64 hex"),
        (identity.BINDING_FILE, b"\xa0", "binding"),
        (identity.SIGNING_FILE, b"nonsense", "not a key file"),
    ],
)
def test_malformed_key_files_raise_identity_errors(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    identity.generate(tmp_path / "id")
    (tmp_path / "id" / name).write_bytes(content)
    with pytest.raises(IdentityError, match=words):
        identity.load(tmp_path / "id")
