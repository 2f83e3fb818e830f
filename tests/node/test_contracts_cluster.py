"""Contracts on a real 4-node cluster: deploy with the admin key through the CLI, call from another node, all
nodes agree on the state root at the same height, and a proof from one node verifies against a header (whose
hash we recompute) fetched from another. Also: the EHR contract is there from block 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consensus import smt
from consensus.block import Header
from consensus.contract_txs import contract_state_key
from node.cli.contract import main
from node.client import NodeRefused
from node.cluster.local import Cluster
from primitives import codec
from primitives.keys import SigningKey
from tests.harness import http_json, running_cluster, wait_until

pytestmark = pytest.mark.cluster

COUNTER = """
def init(start: int):
    ctx.set("count", start)


def bump(by: int) -> int:
    n = ctx.get("count", 0) + by
    ctx.set("count", n)
    ctx.emit("bumped", {"by": by, "count": n})
    return n


def count() -> int:
    return ctx.get("count", 0)
"""


def _header(doc: dict[str, Any], chain_id: str) -> Header:
    """A header rebuilt from `GET /blocks/<h>`; its hash must equal the one the node claims."""
    hexes = ("parent_hash", "proposer", "tx_root", "receipts_root", "state_root", "validators_hash")
    fields = {name: bytes.fromhex(doc[name]) for name in (*hexes, "next_validators_hash")}
    header = Header(chain_id=chain_id, height=doc["height"], time_ms=doc["time_ms"], **fields)
    assert header.hash.hex() == doc["hash"]
    return header


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _knows(url: str, contract: str) -> bool:
    try:
        http_json("GET", f"{url}/contracts/{contract}/abi")
    except NodeRefused:  # 404 until the node has the deploy's block
        return False
    return True


def _urls(cluster: Cluster) -> list[str]:
    return [cluster.records[name].http_url for name in cluster.records]


def test_deploy_call_agree_and_cross_node_proof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "counter.contract"
    source.write_text(COUNTER)
    user_key = tmp_path / "user.key"
    SigningKey.generate().save(user_key)
    with running_cluster(tmp_path / "cluster") as cluster:
        urls = _urls(cluster)
        admin_key = cluster.data_dir / "keys" / "admin.key"
        chain_id = http_json("GET", f"{urls[0]}/status")["chain_id"]

        # The EHR contract is deployed at genesis with the cluster's admin as its admin.
        admin_pk = SigningKey.load(admin_key).public_key.hex()
        code, out = _cli(capsys, "contract", "call", "ehr", "get_user", admin_pk, "--view", "--node", urls[3])
        assert code == 0 and json.loads(out)["return"]["role"] == "admin"

        code, out = _cli(
            capsys, "contract", "deploy", str(source), "--key", str(admin_key), "--node", urls[0],
            "--name", "counter", "--args", "[5]",
        )  # fmt: skip
        assert code == 0, out
        deployed = json.loads(out[out.index("{") :])
        assert deployed["status"] == "ok" and deployed["result"]["vm_status"] == "ok"

        # node2 may be a block behind node1, where the deploy was final: call once it knows the contract.
        wait_until(lambda: _knows(urls[1], "counter"), timeout=20, what="node2 has the deploy's block")
        code, out = _cli(capsys, "contract", "call", "counter", "bump", "3", "--key", str(user_key), "--node", urls[1])
        assert code == 0, out
        called = json.loads(out)
        assert called["result"]["return"] == 8 and called["gas_used"] > 0
        assert [e["name"] for e in called["events"]] == ["bumped"]
        height = called["height"]

        # Every node has the call's block with the same header, hence the same state root.
        def headers_at(h: int) -> list[dict[str, Any]]:
            try:
                return [http_json("GET", f"{url}/blocks/{h}") for url in urls]
            except NodeRefused:  # a node not at h yet answers 404
                return []

        blocks = wait_until(lambda: headers_at(height), timeout=20, what=f"height {height} on every node")
        assert len({b["hash"] for b in blocks}) == 1 and len({b["state_root"] for b in blocks}) == 1

        # A proof served by node 3 verifies against the header node 4 serves for the proof's height.
        proof_doc = http_json("GET", f"{urls[2]}/state/proof?contract=counter&key={b'count'.hex()}")
        remote = wait_until(lambda: headers_at(proof_doc["height"]), timeout=20, what="the proof's height")[3]
        header = _header(remote, chain_id)
        value = bytes.fromhex(proof_doc["value"])
        proof = smt.Proof.from_value(codec.decode(bytes.fromhex(proof_doc["proof"])))
        address = bytes.fromhex(deployed["result"]["address"])
        key = contract_state_key(address, b"count")
        assert codec.decode(value) == 8
        assert smt.verify_proof(header.state_root, key, value, proof)
        assert not smt.verify_proof(header.state_root, key, codec.encode(9), proof)
        # Absence of a key the contract never wrote, proved the same way.
        absent_doc = http_json("GET", f"{urls[0]}/state/proof?contract=counter&key={b'nope'.hex()}")
        absent_header = _header(http_json("GET", f"{urls[1]}/blocks/{absent_doc['height']}"), chain_id)
        absence = smt.Proof.from_value(codec.decode(bytes.fromhex(absent_doc["proof"])))
        assert absent_doc["value"] is None
        assert smt.verify_proof(absent_header.state_root, contract_state_key(address, b"nope"), None, absence)

        # The view and the event log agree with the call, on another node again.
        code, out = _cli(capsys, "contract", "call", "counter", "count", "--view", "--node", urls[3])
        assert code == 0 and json.loads(out)["return"] == 8
        events = http_json("GET", f"{urls[3]}/events?contract=counter&name=bumped")["events"]
        assert [e["data"] for e in events] == [{"by": 3, "count": 8}]


def test_deploy_reports_the_chains_verdict_not_the_mempools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A deploy the mempool accepts but the chain rejects (code the validator refuses; a sender who is not an
    admin) exits 1 with the chain's reason; it never claims a contract address."""
    forbidden = tmp_path / "forbidden.contract"
    forbidden.write_text("import os\n\n\ndef f():\n    pass\n")
    good = tmp_path / "counter.contract"
    good.write_text(COUNTER)
    user_key = tmp_path / "user.key"
    SigningKey.generate().save(user_key)
    with running_cluster(tmp_path / "cluster", n=1) as cluster:
        url = cluster.records["node1"].http_url
        admin_key = str(cluster.data_dir / "keys" / "admin.key")

        code = main(["contract", "deploy", str(forbidden), "--key", admin_key, "--node", url])
        out, err = capsys.readouterr()
        assert code == 1, (out, err)
        assert "contract address" not in out + err
        assert "deploy rejected by the chain at height" in err and "import" in err
        assert json.loads(out)["result"]["vm_status"] == "invalid"

        code = main(["contract", "deploy", str(good), "--key", str(user_key), "--node", url, "--args", "[1]"])
        out, err = capsys.readouterr()
        assert code == 1 and "contract address" not in out + err
        assert "rejected by the chain" in err and "needs an admin" in err

        code = main(["contract", "deploy", str(good), "--key", admin_key, "--node", url, "--args", "[1]"])
        out, err = capsys.readouterr()
        assert code == 0, (out, err)
        address = json.loads(out)["result"]["address"]
        assert f"deployed at height {json.loads(out)['height']}; contract address {address}" in err
