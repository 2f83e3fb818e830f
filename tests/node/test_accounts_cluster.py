"""Account permissioning on a real 4-node cluster whose genesis says `accounts = "allowlist"`: a key no admin
allowlisted is refused at submission (403), an allowlisted one is served, and a byzantine proposer that slips an
unallowlisted sender's transaction into its blocks never gets one final while the chain goes on."""

from __future__ import annotations

import dataclasses
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from consensus.tx import Tx
from node.client import NodeRefused
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from node.cluster.network_init import resolve_network
from primitives import codec
from primitives.keys import SigningKey, address_of
from tests.harness import http_json, node_processes, wait_until
from tests.node.test_byzantine_cluster import BYZANTINE, HONEST, assert_one_chain, faults_of, run_past_byzantine_turns

pytestmark = pytest.mark.cluster


@contextmanager
def allowlist_cluster(data_dir: Path) -> Iterator[Cluster]:
    template = generate_network(4)
    params = {**template.genesis.params, "accounts": "allowlist"}
    template = dataclasses.replace(template, genesis=dataclasses.replace(template.genesis, params=params))
    resolved = resolve_network(template, data_dir)
    cluster = Cluster(resolved, data_dir)
    hostile = {"EHRNET_UNSAFE": "1", "EHRNET_UNSAFE_BYZANTINE": "include-unallowlisted", "EHRNET_FAULT_CONTROL": "1"}
    try:
        for spec in resolved.nodes:
            cluster.spawn(spec.name, extra_env=hostile if spec.name == BYZANTINE else None)
        cluster.wait_connected(timeout=60)
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def post_tx(url: str, tx: Tx) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/tx", data=json.dumps({"tx": tx.raw.hex()}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def next_nonce(url: str, key: SigningKey | bytes) -> int:
    address = key.address if isinstance(key, SigningKey) else key
    return int(http_json("GET", f"{url}/accounts/{address.hex()}")["next_nonce"])


def is_final(url: str, tx: Tx) -> bool:
    try:
        return bool(http_json("GET", f"{url}/tx/{tx.hash.hex()}").get("status") == "final")
    except NodeRefused:
        return False


def test_unallowlisted_sender_is_refused_at_submission_and_in_a_byzantine_proposers_blocks(tmp_path: Path) -> None:
    with allowlist_cluster(tmp_path) as cluster:
        url = cluster.records["node1"].http_url
        status = http_json("GET", f"{url}/status")
        assert (status["accounts"], status["development_network"]) == ("allowlist", False)
        chain_id = str(status["chain_id"])
        alice = SigningKey.generate()

        def record(nonce: int) -> Tx:
            body: dict[str, codec.Value] = {"key": b"k%d" % nonce, "value": b"v"}
            return Tx.create(alice, chain_id, "record", nonce, body)

        code, answer = post_tx(url, record(0))
        assert code == 403 and "not an allowlisted account" in answer["error"], answer

        admin = SigningKey.load(tmp_path / "keys" / "admin.key")
        allow = Tx.create(admin, chain_id, "allowlist_add", next_nonce(url, admin), {"key": alice.public_key})
        assert post_tx(url, allow)[0] == 200
        wait_until(lambda: is_final(url, allow), timeout=60, what="allowlist_add final")
        first = record(0)
        assert post_tx(url, first)[0] == 200
        wait_until(lambda: is_final(url, first), timeout=60, what="the allowlisted account's transaction final")

        top = run_past_byzantine_turns(cluster)
        byzantine = faults_of(cluster, BYZANTINE)["byzantine"]
        assert byzantine["mode"] == "include-unallowlisted" and byzantine["forged_proposals"] >= 2
        outsider_address = address_of(bytes.fromhex(byzantine["outsider"]))
        for name in HONEST:
            assert next_nonce(cluster.records[name].http_url, outsider_address) == 0  # none of its blocks final
        chain = assert_one_chain(cluster, top)
        assert byzantine_key(cluster) not in [entry["proposer"] for entry in chain]  # none of its blocks final


def byzantine_key(cluster: Cluster) -> str:
    status = cluster.status_of(BYZANTINE)
    assert status is not None
    return str(status["public_key"])
