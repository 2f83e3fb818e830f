"""A consensus journal recorded on a real 4-node cluster replays to the same decisions.

Every node runs with `EHRNET_CONSENSUS_JOURNAL=1` (what `ehrnet node run --journal` sets) while the chain makes
blocks, some with transactions in them. After the cluster stops, `ehrnet ledger replay` re-runs each node's
machine from its journal: it must decide the very blocks the chain holds at those heights, and every journaled
step must come out the same (exit code 0).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consensus.input_journal import ENABLE_ENV, FILE_NAME, read_records
from consensus.tx import Tx
from node.cluster.config import generate_network
from primitives import codec
from primitives.keys import SigningKey
from tests.harness import http_json, running_cluster, wait_until

pytestmark = pytest.mark.cluster

TARGET_HEIGHT = 6


def test_a_journal_recorded_on_a_cluster_replays_to_the_same_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENABLE_ENV, "1")  # inherited by the node processes the cluster spawns
    network = dataclasses.replace(generate_network(4), idle_block_interval_ms=500)
    chain: dict[str, dict[int, str]] = {}
    with running_cluster(tmp_path, network) as cluster:
        names = [spec.name for spec in network.nodes]
        url = cluster.records[names[0]].http_url
        sender = SigningKey.generate()
        for nonce in range(3):
            tx = Tx.create(sender, network.genesis.chain_id, "record", nonce, {"key": b"k%d" % nonce, "value": b"v"})
            http_json("POST", f"{url}/tx", {"tx": tx.raw.hex()})

        def heights() -> dict[str, int]:
            found = {name: cluster.status_of(name) for name in names}
            return {name: int(s["height"]) if s is not None else -1 for name, s in found.items()}

        wait_until(lambda: min(heights().values()) >= TARGET_HEIGHT, timeout=90, what=f"height {TARGET_HEIGHT}")
        for name in names:
            chain[name] = {}
            for height in range(1, TARGET_HEIGHT + 1):
                block: dict[str, Any] = http_json("GET", f"{cluster.records[name].http_url}/blocks/{height}")
                chain[name][height] = str(block["hash"])
        journals = {name: Path(cluster.records[name].data_dir) / FILE_NAME for name in names}
    assert all(chain[name] == chain[names[0]] for name in names)  # one chain, for the comparison below

    replayed: set[int] = set()
    for name, journal in journals.items():
        done = subprocess.run(
            [sys.executable, "-m", "node.cli", "ledger", "replay", str(journal), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
        result = json.loads(done.stdout)
        assert result["mismatch"] is None
        assert result["compared"] >= result["steps"] - 1 > 0  # only a step cut short by the stop goes uncompared
        decided = {d["height"]: d["block"] for d in result["decisions"] if d["height"] <= TARGET_HEIGHT}
        assert decided and all(chain[name][height] == block for height, block in decided.items()), name
        replayed |= set(decided)
    # A node decides with its own machine except where block sync got there first (a node behind under load may
    # decide few), but every block was decided by some node's machine, so the replays cover every height.
    assert replayed == set(range(1, TARGET_HEIGHT + 1))

    # The comparison has teeth: the same journal with one validity verdict flipped no longer replays the same.
    first = journals[names[0]]
    records = [record for _, record in read_records(first)]
    flipped = next(i for i, r in enumerate(records) if r["t"] == "valid" and r["ok"] is True)
    records[flipped] = {**records[flipped], "ok": False}
    changed = first.with_name("changed.journal")  # beside node.key, which replay uses by default
    changed.write_bytes(b"".join(len(data).to_bytes(4, "big") + data for data in map(codec.encode, records)))
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "ledger", "replay", str(changed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "MISMATCH at segment 1 step" in done.stdout, done.stdout + done.stderr
    # Another validator's key cannot stand in for the node's own.
    other_key = Path(journals[names[1]]).with_name("node.key")
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "ledger", "replay", str(first), "--key", str(other_key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "needs its key" in done.stderr, done.stderr
