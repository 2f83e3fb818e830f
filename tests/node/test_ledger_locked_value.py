"""The block of a validator's latest precommit on disk (node/ledger/locked_value.py): it survives a restart,
replaces the previous one, and an unreadable file is reported as missing (the block is then fetched from peers)
rather than crashing the node."""

from __future__ import annotations

from pathlib import Path

from node.ledger.locked_value import LockedValueFile
from primitives import codec


def test_the_latest_block_comes_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "locked_block.cbor"
    assert LockedValueFile(path).load() is None
    before = LockedValueFile(path)
    before.save(b"a" * 32, b"block a")
    before.save(b"b" * 32, b"block b")
    assert LockedValueFile(path).load() == (b"b" * 32, b"block b")  # a new process, the newest block
    assert not path.with_suffix(".tmp").exists()


def test_an_unreadable_file_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "locked_block.cbor"
    for garbage in (b"\xff\x00 not cbor", codec.encode({"hash": b"short", "value": b"x"}), codec.encode([1])):
        path.write_bytes(garbage)
        assert LockedValueFile(path).load() is None
