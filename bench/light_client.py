"""Light-client figures (docs/LIGHT.md, "Figures"): header verification, state proofs, and a device's memory.

    .venv/bin/python -m bench.light_client [--headers 10000] [--repeat 3] [--workers N] [--json] [--no-process]

1. Verify a 4-validator chain of `--headers` headers: the pure check (link + a quorum of 3 Ed25519 precommit
   signatures per header, consensus/lightclient.py, in calls of 256 headers as the follower makes them) and the
   whole client path (decode the wire answers in batches of 256, verify, through node/light/follower.py). Each
   is timed single-threaded and with the signatures checked on `--workers` threads (default: one per core, at
   most 4), interleaved `--repeat` times; the medians and the speed-up are printed. Target ≤ 2 s for 10,000.
2. Verify one state proof against a state of 100,000 keys. Target ≤ 0.2 ms.
3. Peak RSS of a separate light-client process that follows the same chain from genesis, served by this process
   from a real chain store over HTTP and over libp2p, then reads one verified state key. Target ≤ 60 MB.

Header times are wall seconds (threads spend CPU in parallel, so CPU seconds no longer measure the wait), with
the CPU seconds of all threads alongside; on a shared machine compare the two thread counts of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from consensus import smt
from consensus.block import EMPTY_ROOT, Block, Commit, Header
from consensus.chainstore import ChainStore
from consensus.execute import BlockResult
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.lightclient import CommitVerifier, LightClient, default_workers
from consensus.state import MemoryState, StateChanges
from consensus.votes import ValidatorSet, Vote, VoteKind
from node.light import wire
from node.light.follower import Follower
from primitives.keys import SigningKey, verify

CHAIN_ID = "bench-light"
VALIDATORS = [SigningKey(bytes([i]) * 32) for i in range(1, 5)]
HEAVY = ("numpy", "scipy", "heartpy", "matplotlib", "pyswarms")


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) spent in `fn`."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def make_genesis() -> Genesis:
    return Genesis(CHAIN_ID, tuple(v.public_key for v in VALIDATORS), (VALIDATORS[0].public_key,), 1_000, Params())


def make_chain(genesis: Genesis, count: int) -> list[wire.SignedHeader]:
    """Empty blocks 1..count, each finalised by precommits of all 4 validators (as a node's commit usually is)."""
    block0, _ = build_genesis(genesis)
    parent = block0.header
    vhash = parent.next_validators_hash
    out: list[wire.SignedHeader] = []
    for h in range(1, count + 1):
        header = Header(
            CHAIN_ID, h, parent.hash, parent.time_ms + 1000, VALIDATORS[h % 4].public_key, EMPTY_ROOT, EMPTY_ROOT,
            parent.state_root, vhash, vhash,
        )  # fmt: skip
        votes = tuple(Vote(VoteKind.PRECOMMIT, CHAIN_ID, h, 0, header.hash, v.public_key).signed(v) for v in VALIDATORS)
        out.append(wire.SignedHeader(header, Commit(h, 0, header.hash, votes)))
        parent = header
    return out


class MemorySource:
    """Serves pre-encoded wire answers from memory, so the client path is measured without a network."""

    name = "memory"

    def __init__(self, chain: list[wire.SignedHeader]) -> None:
        self.chain = chain
        self.batches: dict[int, bytes] = {}
        for start in range(1, len(chain) + 1, wire.MAX_HEADERS):
            self.batches[start] = wire.encode_headers(chain[start - 1 : start - 1 + wire.MAX_HEADERS])
        self.head_answer = wire.encode_head(chain[-1])

    async def head(self) -> wire.SignedHeader:
        return wire.decode_head(self.head_answer)

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        return wire.decode_headers(self.batches[start])

    async def state(self, key: bytes) -> wire.StateAnswer:
        raise NotImplementedError

    async def validators(self, height: int) -> ValidatorSet:
        raise NotImplementedError


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def bench_headers(results: dict[str, object], count: int, repeat: int, workers: int) -> list[wire.SignedHeader]:
    """Each path timed `repeat` times, single-threaded and on `workers` threads interleaved (so both see the same
    neighbours), reporting medians and the speed-up of the medians."""
    genesis = make_genesis()
    chain = make_chain(genesis, count)
    block0, _ = build_genesis(genesis)
    vset = ValidatorSet(genesis.validators)
    source = MemorySource(chain)

    def pure(threads: int) -> tuple[float, float]:
        # Fresh header objects, so block hashes cached while building do not flatter the pure measurement.
        fresh: list[tuple[Header, Commit, ValidatorSet | None]] = []
        for entry in chain:
            assert entry.commit is not None
            fresh.append((Header.from_value(entry.header.to_value()), entry.commit, None))
        client = LightClient(block0.header, vset)
        with CommitVerifier(threads) as verifier:
            # One call per wire batch, as the follower verifies.
            batches = [fresh[i : i + wire.MAX_HEADERS] for i in range(0, count, wire.MAX_HEADERS)]
            took = timed(lambda: [client.verify_chain(b, verifier) for b in batches])
        assert client.height == count
        return took

    def client_path(threads: int) -> tuple[float, float]:
        follower = Follower(LightClient(block0.header, vset), [source], workers=threads)
        took = timed(lambda: asyncio.run(follower.sync()))
        assert follower.height == count
        results["signatures_verified"] = follower.figures.signatures_verified
        return took

    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeat):
        for name, fn in (("pure", pure), ("client_path", client_path)):
            for threads, label in ((1, "1thread"), (workers, f"{workers}threads")):
                runs.setdefault(f"{name}_{label}", []).append(fn(threads))
    results["headers"] = count
    results["workers"] = workers
    results["repeat"] = repeat
    for key, took in runs.items():
        results[f"headers_{key}_cpu_s"] = _median([cpu for cpu, _ in took])
        results[f"headers_{key}_wall_s"] = _median([wall for _, wall in took])
    for name in ("pure", "client_path"):
        one = results[f"headers_{name}_1thread_wall_s"]
        many = results[f"headers_{name}_{workers}threads_wall_s"]
        assert isinstance(one, float) and isinstance(many, float)
        results[f"headers_{name}_speedup"] = round(one / many, 2) if many else None
    # Calibration: the raw Ed25519 check (libsodium) on this machine right now; a header needs 3 of them.
    vote = chain[0].commit.votes[0] if chain[0].commit is not None else None
    assert vote is not None
    message = vote.sign_bytes()
    raw_cpu, _ = timed(lambda: [verify(vote.validator, message, vote.signature) for _ in range(3000)])
    results["ed25519_verify_us"] = round(1e6 * raw_cpu / 3000, 1)
    pure_cpu = results["headers_pure_1thread_cpu_s"]
    assert isinstance(pure_cpu, float)
    results["non_signature_us_per_header"] = round(1e6 * pure_cpu / count - 3 * 1e6 * raw_cpu / 3000, 1)
    results["wire_bytes_per_header"] = round(sum(len(b) for b in source.batches.values()) / count)
    return chain


def bench_proof(results: dict[str, object], keys: int = 100_000, samples: int = 5_000) -> None:
    state = MemoryState()
    values = {b"rec/%d" % i: b"value %d" % i for i in range(keys)}
    sha = hashlib.sha256
    root, nodes = smt.update(state, {sha(k).digest(): sha(v).digest() for k, v in values.items()})
    state.nodes.update({p: n for p, n in nodes.items() if n is not None})
    picks = [b"rec/%d" % (i * 7919 % keys) for i in range(samples)]
    answers = [wire.encode_state(wire.StateAnswer(1, k, values[k], smt.prove(state, k))) for k in picks]
    decoded = [wire.decode_state(a) for a in answers]
    cpu, _ = timed(lambda: [smt.verify_proof(root, a.key, a.value, a.proof) for a in decoded])
    assert all(smt.verify_proof(root, a.key, a.value, a.proof) for a in decoded[:10])
    results["proof_state_keys"] = keys
    results["proof_depth_mean"] = round(sum(len(a.proof.siblings) for a in decoded) / samples, 1)
    results["proof_verify_ms"] = round(1000 * cpu / samples, 4)
    decode_cpu, _ = timed(lambda: [wire.decode_state(a) for a in answers])
    results["proof_decode_and_verify_ms"] = round(1000 * (cpu + decode_cpu) / samples, 4)
    results["proof_answer_bytes_mean"] = round(sum(len(a) for a in answers) / samples)


def fill_store(store: ChainStore, chain: list[wire.SignedHeader]) -> None:
    vset = ValidatorSet(tuple(v.public_key for v in VALIDATORS))
    for entry in chain:
        assert entry.commit is not None
        changes = StateChanges(entry.header.state_root)
        result = BlockResult(changes, (), (), EMPTY_ROOT, vset, vset)
        store.commit_block(Block(entry.header, ()), entry.commit, result)


async def _serve_and_follow(store: ChainStore, genesis: Genesis, transport: str, work: Path) -> dict[str, object]:
    from aiohttp import web

    from node.ledger.light_server import LightServer

    runner: web.AppRunner | None = None
    host = None
    if transport == "http":
        app = web.Application()
        app.add_routes(LightServer(None, store).routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        node = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[attr-defined]
    else:
        from node.p2p.bridge import HostConfig, P2PHost

        host = P2PHost(HostConfig(seed=SigningKey.generate().seed))
        await host.start()
        await LightServer(host, store).start()
        node = f"{host.listen_addrs[0]}/p2p/{host.peer_id}"
    genesis_file = work / "genesis.json"
    genesis_file.write_text(json.dumps(genesis.to_json()))
    data_dir = work / f"device-{transport}"
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.light_client", "--child", node, str(genesis_file), str(data_dir),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"light-client process failed ({proc.returncode})")
        doc: dict[str, object] = json.loads(out)
        return doc
    finally:
        if runner is not None:
            await runner.cleanup()
        if host is not None:
            await host.stop()


def import_floor_mb(module: str) -> float:
    """Peak RSS of a fresh interpreter that only imports `module`: the floor under any process that uses it."""
    code = f"import {module}; from bench.light_client import peak_rss_mb; print(peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def bench_process(results: dict[str, object], chain: list[wire.SignedHeader]) -> None:
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None  # fsync-free: the bench is not about disks
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        work = Path(tmp)
        genesis = make_genesis()
        store = ChainStore(work / "chain", genesis)
        try:
            fill_store(store, chain)
            for transport in ("http", "libp2p"):
                doc = asyncio.run(_serve_and_follow(store, genesis, transport, work))
                for name, value in doc.items():
                    results[f"process_{transport}_{name}"] = value
            results["import_floor_light_http_mb"] = import_floor_mb("node.light.client")
            results["import_floor_libp2p_mb"] = import_floor_mb("node.p2p.bridge")
        finally:
            store.close()


def peak_rss_mb() -> float:
    """This process's peak resident set. Read from /proc (VmHWM) because getrusage's ru_maxrss survives execve on
    Linux: a child spawned by this big bench process would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _child(node: str, genesis: Genesis, data_dir: Path) -> dict[str, object]:
    from node.light.client import open_follower

    started = time.perf_counter()
    async with open_follower(genesis, [node], data_dir, timeout_s=30) as follower:
        height = await follower.sync()
        got = await follower.get_state(b"sys/validators")
        assert got.value is not None
    return {
        "height": height,
        "seconds": round(time.perf_counter() - started, 2),
        "verify_wall_s": round(follower.figures.verify_seconds, 3),
        "peak_rss_mb": peak_rss_mb(),
        "heavy_modules": [m for m in HEAVY if m in sys.modules],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--headers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each header timing (the median is shown)")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="signature threads (default: cores, ≤ 4)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-process", action="store_true", help="skip the separate-process RSS measurement")
    parser.add_argument("--child", nargs=3, metavar=("NODE", "GENESIS_JSON", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        node, genesis_file, data_dir = args.child
        genesis = Genesis.from_json(json.loads(Path(genesis_file).read_text()))
        print(json.dumps(asyncio.run(_child(node, genesis, Path(data_dir)))))
        return
    results: dict[str, object] = {"pid": os.getpid()}
    chain = bench_headers(results, args.headers, args.repeat, args.workers)
    bench_proof(results)
    if not args.no_process:
        bench_process(results, chain)
    del results["pid"]
    if args.json:
        print(json.dumps(results))
        return
    for name, value in results.items():
        print(f"{name:<40} {value}")


if __name__ == "__main__":
    main()
