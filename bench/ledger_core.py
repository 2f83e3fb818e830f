"""Micro-benchmarks of the ledger's pure core (no network): what one transaction costs on its way to final.

    .venv/bin/python -m bench.ledger_core [--json] [--headers 10000] [--block-txs 2000] [--blocks 5]

Prints rates (per CPU second of this process) for transaction sign/verify/decode, mempool admission and its
journal on disk, block building and re-execution of `record` transactions (in memory and into LMDB), state-tree
batch updates and proofs, and light-client header verification. The node must sustain >= 2,000 committed tx/s on 2 cores
(the ledger's throughput target, README), so the per-transaction pure cost must stay well under 0.25 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from consensus import smt
from consensus.block import EMPTY_ROOT, Commit, Header
from consensus.chainstore import ChainStore
from consensus.execute import apply_block, build_block
from consensus.genesis import Genesis, Params
from consensus.lightclient import LightClient
from consensus.mempool import Mempool
from consensus.mempool_journal import MempoolJournal
from consensus.state import MemoryState, WorkingState, get_nonce
from consensus.system_txs import default_registry
from consensus.tx import Tx, decode_tx
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives.keys import SigningKey, verify

CHAIN_ID = "bench-chain"


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds this process spent in `fn`: on a machine shared with other work, wall time mostly measures
    the neighbours. (Persistence is timed on the wall clock instead: its cost is waiting for fsync.)"""
    start = time.process_time()
    fn()
    return time.process_time() - start


def bench_txs(results: dict[str, float], users: list[SigningKey], count: int) -> list[Tx]:
    keys = [users[i % len(users)] for i in range(count)]
    txs: list[Tx] = []
    elapsed = timed(
        lambda: txs.extend(
            Tx.create(k, CHAIN_ID, "record", i // len(users), {"key": b"obs/%d" % i, "value": b"x" * 64})
            for i, k in enumerate(keys)
        )
    )
    results["tx_sign_per_s"] = count / elapsed
    results["tx_verify_per_s"] = count / timed(lambda: [tx.verify_signature() for tx in txs])
    params = Params()
    raws = [tx.raw for tx in txs]
    results["tx_decode_nosig_per_s"] = count / timed(
        lambda: [decode_tx(r, chain_id=CHAIN_ID, max_bytes=params.max_tx_bytes, check_signature=False) for r in raws]
    )
    results["tx_decode_verify_per_s"] = count / timed(
        lambda: [decode_tx(r, chain_id=CHAIN_ID, max_bytes=params.max_tx_bytes) for r in raws]
    )
    return txs


def bench_mempool(results: dict[str, float], txs: list[Tx]) -> None:
    pool = Mempool(
        chain_id=CHAIN_ID, params=Params(), registry=default_registry(), nonce_of=lambda a: 0, max_txs=len(txs) + 1
    )
    results["mempool_add_raw_per_s"] = len(txs) / timed(lambda: [pool.add_raw(tx.raw) for tx in txs])
    pool2 = Mempool(
        chain_id=CHAIN_ID, params=Params(), registry=default_registry(), nonce_of=lambda a: 0, max_txs=len(txs) + 1
    )
    results["mempool_add_checked_per_s"] = len(txs) / timed(lambda: [pool2.add(tx) for tx in txs])
    reaped: list[Tx] = []
    results["mempool_reap_ms"] = 1000 * timed(lambda: reaped.extend(pool.reap(max_bytes=1 << 30, max_count=2000)))
    results["mempool_update_per_s"] = len(reaped) / timed(lambda: pool.update(reaped))


def bench_journal(results: dict[str, float], txs: list[Tx]) -> None:
    """The mempool journal (what makes a POST /tx acknowledgement durable): one fsynced LMDB write per batch, so
    its cost per transaction falls with the batch size — why the node group-commits (node/ledger/group_commit.py).
    Wall time, as the cost is waiting for fsync; CPU per transaction as well."""
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, 100, 1000):
            journal = MempoolJournal(Path(tmp) / f"mempool-{batch}")  # empty: every write stores its batch
            rounds = max(1, min(20, len(txs) // batch))
            wall = cpu = 0.0
            for n in range(rounds):
                chunk = [(tx.hash, tx.raw) for tx in txs[n * batch : (n + 1) * batch]]
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                journal.write(chunk, ())
                wall += time.perf_counter() - start_wall
                cpu += time.process_time() - start_cpu
            results[f"journal_write_ms_per_batch_of_{batch}"] = 1000 * wall / rounds
            results[f"journal_write_tx_per_s_batch_of_{batch}"] = batch * rounds / wall
            results[f"journal_write_cpu_us_per_tx_batch_of_{batch}"] = 1e6 * cpu / (batch * rounds)
            journal.close()


def bench_blocks(results: dict[str, float], users: list[SigningKey], block_txs: int, blocks: int) -> None:
    validators = [SigningKey(bytes([i]) * 32) for i in range(1, 5)]
    genesis = Genesis(CHAIN_ID, tuple(v.public_key for v in validators), (validators[0].public_key,), 0)
    registry, params = default_registry(), genesis.params
    build_s = apply_s = apply_verify_s = persist_s = 0.0
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = ChainStore(Path(tmp), genesis)
        for n in range(blocks):
            with store.reader() as reader:
                txs = [
                    Tx.create(
                        users[(n * block_txs + i) % len(users)],
                        CHAIN_ID,
                        "record",
                        get_nonce(reader.get_value, users[(n * block_txs + i) % len(users)].address),
                        {"key": b"obs/%d/%d" % (n, i), "value": b"x" * 64},
                    )
                    for i in range(min(block_txs, len(users)))
                ]
                start = time.process_time()
                block, built = build_block(
                    reader,
                    store.head,
                    txs,
                    proposer=validators[1].public_key,
                    time_ms=store.head.time_ms + 1000,
                    params=params,
                    registry=registry,
                )
                build_s += time.process_time() - start
                start = time.process_time()
                applied = apply_block(
                    reader, block, store.head, params=params, registry=registry, preverified={tx.hash for tx in txs}
                )
                apply_s += time.process_time() - start
                start = time.process_time()
                apply_block(reader, block, store.head, params=params, registry=registry)
                apply_verify_s += time.process_time() - start
            votes = tuple(
                Vote(VoteKind.PRECOMMIT, CHAIN_ID, block.height, 0, block.hash, v.public_key).signed(v)
                for v in validators[:3]
            )
            start = time.perf_counter()
            store.commit_block(block, Commit(block.height, 0, block.hash, votes), applied)
            persist_s += time.perf_counter() - start
            total += len(block.txs)
            assert applied.changes.root == built.changes.root
        store.close()
    results["block_txs"] = total / blocks
    results["build_block_tx_per_s"] = total / build_s
    results["apply_block_preverified_tx_per_s"] = total / apply_s
    results["apply_block_with_sig_check_tx_per_s"] = total / apply_verify_s
    results["lmdb_commit_tx_per_s"] = total / persist_s
    results["lmdb_commit_ms_per_block"] = 1000 * persist_s / blocks


def bench_tree(results: dict[str, float], size: int, batch: int) -> None:
    rng = random.Random(1)
    store = MemoryState()
    state = WorkingState(store)
    for i in range(size):
        state.set(b"k%d" % i, rng.randbytes(32))
    results["tree_build_writes_per_s"] = size / timed(lambda: store.apply(state.commit()))
    state = WorkingState(store)
    for _ in range(batch):
        state.set(b"k%d" % rng.randrange(size * 2), rng.randbytes(32))
    results["tree_batch_update_writes_per_s"] = batch / timed(state.commit)
    keys = [b"k%d" % rng.randrange(size * 2) for _ in range(1000)]
    proofs: list[smt.Proof] = []
    results["proof_make_ms"] = 1000 * timed(lambda: proofs.extend(smt.prove(store, k) for k in keys)) / len(keys)
    root = store.root
    values = [store.get_value(k) for k in keys]
    checks = list(zip(keys, values, proofs, strict=True))
    ok: list[bool] = []
    elapsed = timed(lambda: ok.extend(smt.verify_proof(root, k, v, p) for k, v, p in checks))
    results["proof_verify_ms"] = 1000 * elapsed / len(keys)
    assert all(ok)
    results["proof_depth_avg"] = sum(len(p.siblings) for p in proofs) / len(proofs)


def bench_headers(results: dict[str, float], count: int) -> None:
    validators = [SigningKey(bytes([i]) * 32) for i in range(1, 5)]
    vset = ValidatorSet(tuple(v.public_key for v in validators))
    vhash = vset.hash()
    genesis = Header(CHAIN_ID, 0, bytes(32), 0, bytes(32), EMPTY_ROOT, EMPTY_ROOT, bytes(32), vhash, vhash)
    chain: list[tuple[Header, Commit, None]] = []
    parent = genesis
    for h in range(1, count + 1):
        header = Header(
            CHAIN_ID,
            h,
            parent.hash,
            h * 1000,
            validators[h % 4].public_key,
            EMPTY_ROOT,
            EMPTY_ROOT,
            h.to_bytes(32, "big"),
            vhash,
            vhash,
        )
        votes = tuple(Vote(VoteKind.PRECOMMIT, CHAIN_ID, h, 0, header.hash, v.public_key).signed(v) for v in validators)
        chain.append((header, Commit(h, 0, header.hash, votes), None))
        parent = header
    # Fresh header objects so cached block hashes from construction do not flatter the measurement.
    fresh = [(Header.from_value(h.to_value()), c, n) for h, c, n in chain]
    client = LightClient(genesis, vset)
    wall_start = time.perf_counter()
    elapsed = timed(lambda: client.verify_chain(fresh))
    results["headers_verify_wall_s"] = time.perf_counter() - wall_start
    assert client.height == count
    results["headers_verified"] = count
    results["headers_verify_cpu_s"] = elapsed
    results["header_verify_us"] = 1e6 * elapsed / count
    # Calibration: the raw Ed25519 check on this machine right now (a header needs 3 of them with 4 validators).
    vote = chain[0][1].votes[0]
    message = vote.sign_bytes()
    raw = timed(lambda: [verify(vote.validator, message, vote.signature) for _ in range(3000)])
    results["ed25519_verify_us"] = 1e6 * raw / 3000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--txs", type=int, default=5000)
    parser.add_argument("--block-txs", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--tree-size", type=int, default=100_000)
    parser.add_argument("--tree-batch", type=int, default=10_000)
    parser.add_argument("--headers", type=int, default=10_000)
    args = parser.parse_args()
    users = [SigningKey(i.to_bytes(32, "big")) for i in range(1000, 1000 + max(args.block_txs, 100))]
    results: dict[str, float] = {}
    txs = bench_txs(results, users, args.txs)
    bench_mempool(results, txs)
    bench_journal(results, txs)
    bench_blocks(results, users, args.block_txs, args.blocks)
    bench_tree(results, args.tree_size, args.tree_batch)
    bench_headers(results, args.headers)
    # One tx's pure cost on a validator: admission (decode + verify + pool), re-execution, persistence.
    per_tx_ms = 1000 * (
        1 / results["mempool_add_raw_per_s"]
        + 1 / results["apply_block_preverified_tx_per_s"]
        + 1 / results["lmdb_commit_tx_per_s"]
    )
    results["per_tx_pure_cost_ms"] = per_tx_ms
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in results.items()}, indent=2))
        return
    for name, value in results.items():
        print(f"{name:40s} {value:14,.3f}")


if __name__ == "__main__":
    main()
