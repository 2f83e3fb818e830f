from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from consensus import smt
from consensus.block import Block
from consensus.chainstore import ChainStore
from consensus.errors import BlockError, CommitError, StoreMismatchError
from consensus.execute import apply_block
from consensus.genesis_block import build_genesis
from consensus.state import MemoryState, WorkingState, get_nonce, record_key
from tests.consensus.ledger_helpers import (
    CHAIN_ID,
    USER_KEYS,
    VALIDATOR_KEYS,
    Chain,
    make_genesis,
    record,
    sign_commit,
)
from tests.consensus.ledger_store_worker import commit_next

ROOT = Path(__file__).resolve().parents[2]


def full_check(store: ChainStore) -> None:
    """Every stored block links up, and the stored state tree is exactly the tree of the stored values."""
    with store.reader() as reader:
        assert smt.root_of(reader) == store.state_root
        values = dict(reader._txn.cursor(db=store._db["values"]).iternext())  # test-only peek at the table
    rebuilt = WorkingState(MemoryState())
    for k, v in values.items():
        rebuilt.set(bytes(k), bytes(v))
    assert rebuilt.commit().root == store.state_root
    parent = store.get_header(0)
    assert parent is not None
    for height in range(1, store.height + 1):
        header = store.get_header(height)
        assert header is not None and header.parent_hash == parent.hash
        parent = header


def test_new_store_starts_at_genesis_and_reopens(tmp_path: Path) -> None:
    genesis = make_genesis()
    store = ChainStore(tmp_path, genesis)
    block0, changes = build_genesis(genesis)
    assert store.height == 0 and store.head == block0.header and store.state_root == changes.root
    store.close()
    again = ChainStore(tmp_path, genesis)
    assert again.head == block0.header
    again.close()
    with pytest.raises(StoreMismatchError, match="genesis"):
        ChainStore(tmp_path, dataclasses.replace(genesis, chain_id="another"))


def test_commit_block_stores_everything_and_agrees_with_memory_execution(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path, chain.genesis)
    for height in range(1, 4):
        block, _, commit = chain.add_block([record(k, height - 1, b"k", b"v%d" % height) for k in USER_KEYS])
        with store.reader() as reader:
            applied = apply_block(reader, block, store.head, params=chain.genesis.params, registry=chain.registry)
        store.commit_block(block, commit, applied)
        assert store.state_root == chain.state.root
    assert store.height == 3 and store.get_block(2) == chain.blocks[2]
    assert store.get_commit(3) == chain.commits[3] and store.height_of(chain.blocks[3].hash) == 3
    tx = chain.blocks[2].txs[5]
    assert store.tx_location(tx.hash) == (2, 5)
    receipt = store.get_receipt(tx.hash)
    assert receipt is not None and receipt.ok and receipt.tx_hash == tx.hash
    assert store.get_value(record_key(USER_KEYS[0].address, b"k")) == b"v3"
    with store.reader() as reader:
        value, proof = reader.prove(record_key(USER_KEYS[1].address, b"k"))
        assert value == b"v3" and smt.verify_proof(
            store.state_root, record_key(USER_KEYS[1].address, b"k"), value, proof
        )
        assert get_nonce(reader.get_value, USER_KEYS[2].address) == 3
    assert store.get_block(9) is None and store.tx_location(b"\x00" * 32) is None
    full_check(store)


def test_commit_block_refuses_pieces_that_do_not_belong_together(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path, chain.genesis)
    block1, result1, commit1 = chain.add_block([])
    block2, result2, commit2 = chain.add_block([record(USER_KEYS[0], 0)])
    with pytest.raises(StoreMismatchError, match="does not extend"):
        store.commit_block(block2, commit2, result2)
    with pytest.raises(StoreMismatchError, match="commit"):
        store.commit_block(block1, commit2, result1)
    with pytest.raises(StoreMismatchError, match="state root"):
        store.commit_block(block1, commit1, result2)
    assert store.height == 0


def test_map_grows_from_a_tiny_initial_size(tmp_path: Path) -> None:
    store = ChainStore(tmp_path, make_genesis(), initial_map_size=64 * 1024)
    for _ in range(30):
        commit_next(store, 1000)
    assert store.height == 30 and store._env.info()["map_size"] > 64 * 1024
    full_check(store)


def _worker(path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.consensus.ledger_store_worker", str(path), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_sigkill_mid_write_loses_nothing_that_was_final(tmp_path: Path) -> None:
    for kill_after in (7, 23):
        proc = _worker(tmp_path, "loop")
        assert proc.stdout is not None
        last = 0
        for line in proc.stdout:
            last = int(line)
            if last >= kill_after:
                break
        proc.send_signal(signal.SIGKILL)  # lands while the child is somewhere inside its next commit
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        store = ChainStore(tmp_path, make_genesis())
        assert store.height >= last  # every reported-final block survived
        full_check(store)
        commit_next(store, 64)  # and the chain continues from there
        store.close()


def test_disk_full_is_a_typed_error_and_leaves_the_store_intact(tmp_path: Path) -> None:
    proc = _worker(tmp_path, "fill", str(2_000_000))
    out, _ = proc.communicate(timeout=120)
    lines = out.split("\n")
    full = [line for line in lines if line.startswith("full")]
    assert proc.returncode == 0 and full, out[-500:]
    stored_height = int(full[0].split()[1])
    assert "disk full" in full[0] and stored_height > 0
    store = ChainStore(tmp_path, make_genesis())
    assert store.height == stored_height
    full_check(store)
    commit_next(store, 1000)  # space is back (no limit here): the node resumes
    assert store.height == stored_height + 1
    assert store.get_block(stored_height + 1) is not None and store.head.chain_id == CHAIN_ID
    store.close()


def test_import_block_verifies_commit_and_execution_before_storing(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path, chain.genesis)
    assert store.next_validators() == chain.validators
    block, _, commit = chain.add_block([record(USER_KEYS[0], 0)])
    weak = dataclasses.replace(commit, votes=commit.votes[:2])
    with pytest.raises(CommitError, match="quorum"):
        store.import_block(block, weak, chain.registry)
    lying = Block(dataclasses.replace(block.header, state_root=bytes(32)), block.txs)
    with pytest.raises(BlockError):
        store.import_block(lying, sign_commit(lying.header, VALIDATOR_KEYS[:3]), chain.registry)
    assert store.height == 0
    store.import_block(block, commit, chain.registry)
    assert store.height == 1 and store.state_root == chain.state.root
