"""The ledger on real node processes: agreement, crash tolerance (f = 1 of 4), sync after a wipe or a SIGKILL,
typed rejection of bad transactions, and the `ehrnet tx record` CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from consensus.tx import Tx
from node.client import NodeRefused
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from primitives.keys import SigningKey
from tests.harness import holds_for, http_json, running_cluster, wait_until

pytestmark = pytest.mark.cluster


def url(cluster: Cluster, name: str) -> str:
    return cluster.records[name].http_url


def height(cluster: Cluster, name: str) -> int:
    status = cluster.status_of(name)
    return int(status["height"]) if status is not None else -1


def heights_reach(cluster: Cluster, names: list[str], target: int, timeout: float) -> None:
    wait_until(
        lambda: all(height(cluster, n) >= target for n in names),
        timeout=timeout,
        interval=0.1,
        what=f"height {target} final on {', '.join(names)}",
    )


def block_hash(cluster: Cluster, name: str, h: int) -> str:
    block: dict[str, Any] = http_json("GET", f"{url(cluster, name)}/blocks/{h}")
    assert block["height"] == h
    return str(block["hash"])


def post_tx(cluster: Cluster, name: str, body: object) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url(cluster, name)}/tx", data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def is_final(cluster: Cluster, name: str, tx_hash: str) -> bool:
    return bool(http_json("GET", f"{url(cluster, name)}/tx/{tx_hash}")["status"] == "final")


def record_tx(key: SigningKey, chain_id: str, nonce: int, value: bytes = b"v") -> Tx:
    return Tx.create(key, chain_id, "record", nonce, {"key": b"k%d" % nonce, "value": value})


def stays_at(cluster: Cluster, names: list[str], seconds: float) -> bool:
    """True if no node in `names` finalises a new block for `seconds` (polled, so a block at any time fails)."""
    start = {n: height(cluster, n) for n in names}
    return holds_for(lambda: all(height(cluster, n) == start[n] for n in names), seconds)


def test_validators_agree_reject_bad_transactions_and_the_cli_records(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "net") as cluster:
        names = list(cluster.records)
        chain_id = str(http_json("GET", f"{url(cluster, names[0])}/status")["chain_id"])
        heights_reach(cluster, names, 3, timeout=20)

        # Every node reports the same block hash at every height (no fork), with a linked parent hash.
        top = min(height(cluster, n) for n in names)
        for h in range(1, top + 1):
            assert len({block_hash(cluster, n, h) for n in names}) == 1, f"nodes disagree at height {h}"
        parent = http_json("GET", f"{url(cluster, names[1])}/blocks/{top}")["parent_hash"]
        assert parent == block_hash(cluster, names[1], top - 1)

        # Bad transactions: each gets a 4xx whose message names the problem.
        key = SigningKey.generate()
        good = record_tx(key, chain_id, 0)
        bad_sig = good.raw[:-1] + bytes([good.raw[-1] ^ 1])
        cases = {
            "signature": bad_sig.hex(),
            "nonce": record_tx(key, chain_id, 100_000).raw.hex(),
            "chain": record_tx(key, "another-chain", 0).raw.hex(),
            "limit": record_tx(key, chain_id, 0, value=b"x" * 5000).raw.hex(),
            "canonical": "a1ff00",
            "hex": "not hex at all",
        }
        for problem, item in cases.items():
            code, answer = post_tx(cluster, names[0], {"tx": item})
            assert 400 <= code < 500, (problem, code, answer)
            assert problem in answer["error"], (problem, answer)
        code, answer = post_tx(cluster, names[0], {"nothing": 1})
        assert code == 400 and "body" in answer["error"]

        # A batch answers the accepted hashes and names each rejected entry by index.
        code, answer = post_tx(cluster, names[0], {"txs": [good.raw.hex(), bad_sig.hex()]})
        assert code == 400 and answer["hashes"] == [good.hash.hex()]
        assert answer["rejected"][0]["index"] == 1 and "signature" in answer["rejected"][0]["error"]
        # A second transaction with a pending nonce is refused (409, docs/API.md); the first becomes final everywhere.
        code, answer = post_tx(cluster, names[0], {"tx": record_tx(key, chain_id, 0, b"other").raw.hex()})
        assert code == 409 and "nonce" in answer["error"]
        for name in names:
            wait_until(partial(is_final, cluster, name, good.hash.hex()), timeout=15, what=f"the tx final on {name}")
        code, answer = post_tx(cluster, names[2], {"tx": good.raw.hex()})
        assert code == 409 and "nonce" in answer["error"]
        account = http_json("GET", f"{url(cluster, names[3])}/accounts/{key.address.hex()}")
        assert account["nonce"] == 1 and account["next_nonce"] == 1

        # The CLI: a new key file, then `ehrnet tx record` waits until the value is final.
        key_file = tmp_path / "user.key"
        cli = [sys.executable, "-m", "node.cli"]
        subprocess.run([*cli, "keys", "new", "--out", str(key_file)], check=True, capture_output=True, timeout=30)
        done = subprocess.run(
            [*cli, "tx", "record", "--key", str(key_file), "--node", url(cluster, names[2]), "greeting", "hello"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "accepted" in done.stdout and "final at height" in done.stdout
        tx_hash = done.stdout.split()[1]
        final = http_json("GET", f"{url(cluster, names[0])}/tx/{tx_hash}")
        assert final["status"] == "final" and final["height"] >= 1


def test_one_crash_is_tolerated_two_stop_the_chain_and_nodes_catch_up(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "net") as cluster:
        names = list(cluster.records)
        heights_reach(cluster, names, 2, timeout=20)

        # f = 1: with one validator SIGKILLed the other three keep finalising.
        first, second = names[3], names[2]
        live = names[:3]
        before_kill = height(cluster, first)
        cluster.kill(first)
        target = max(height(cluster, n) for n in live) + 3
        heights_reach(cluster, live, target, timeout=30)

        # Two down: 2 of 4 is below the quorum of 3, so nothing becomes final.
        cluster.kill(second)
        live = names[:2]
        settle = max(height(cluster, n) for n in live) + 1
        wait_until(lambda: stays_at(cluster, live, 3.0), timeout=20, interval=0, what="the chain to halt")
        stopped_at = max(height(cluster, n) for n in live)
        assert stopped_at <= settle  # at most the block already being committed when the second node died

        # The SIGKILLed first node restarts at its last final height, and the chain resumes with it.
        cluster.spawn(first)
        wait_until(lambda: cluster.status_of(first), timeout=30, what=f"{first} answering /status")
        assert height(cluster, first) >= before_kill
        live = [*names[:2], first]
        heights_reach(cluster, live, stopped_at + 2, timeout=40)

        # The second node comes back with its chain wiped (key kept) and syncs to the head.
        chain_dir = Path(cluster.records[second].data_dir) / "chain"
        assert chain_dir.exists()
        shutil.rmtree(chain_dir)
        cluster.spawn(second)
        head = max(height(cluster, n) for n in live)
        heights_reach(cluster, [second], head, timeout=40)
        for h in (1, head):
            assert block_hash(cluster, second, h) == block_hash(cluster, names[0], h)
        # ... and it takes part again: the chain goes on with all four.
        heights_reach(cluster, names, head + 2, timeout=30)


def test_an_idle_chain_waits_for_work_and_a_transaction_wakes_it(tmp_path: Path) -> None:
    # With no transactions the validators make an empty block only every idle_block_interval_ms (here 20 s, so
    # within this test: none after the first); a transaction sent to any node starts the next height at once.
    network = dataclasses.replace(generate_network(4), idle_block_interval_ms=20_000)
    with running_cluster(tmp_path / "net", network) as cluster:
        names = list(cluster.records)
        chain_id = str(http_json("GET", f"{url(cluster, names[0])}/status")["chain_id"])
        idle_height = wait_until(
            lambda: holds_for(lambda: len({height(cluster, n) for n in names}) == 1, 1.0) and height(cluster, names[0]),
            timeout=30,
            what="every node at the same height, idle",
        )
        assert holds_for(lambda: all(height(cluster, n) == idle_height for n in names), 3.0)
        tx = record_tx(SigningKey.generate(), chain_id, 0)
        status, answer = post_tx(cluster, names[2], {"tx": tx.raw.hex()})  # not necessarily the proposer
        assert status == 200, answer

        # Final well before the 20 s idle timer could have started the height.
        def final_everywhere() -> bool:
            try:
                return all(is_final(cluster, n, tx.hash.hex()) for n in names)
            except NodeRefused:  # 404 while a node has not heard of it yet
                return False

        wait_until(final_everywhere, timeout=8, what="the woken chain finalises the transaction")
        heights_reach(cluster, names, idle_height + 1, timeout=8)
