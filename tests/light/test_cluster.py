"""A light client against real node processes: over libp2p and over HTTP, with a dead node in its list, and
through the `ehrnet light` commands. Needs the nodes to serve `/ehrnet/light/1.0.0` (LightServer wired into
node/app.py)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from consensus.state import record_key
from consensus.tx import Tx
from node.light import cli
from node.light.client import genesis_from_network, open_follower
from primitives.keys import SigningKey
from tests.harness import await_until, http_json, running_cluster


def _nodes_serve_light() -> bool:
    """Whether node/app.py wires the light server in (until then this test cannot pass; see the report)."""
    spec = importlib.util.find_spec("node.app")
    return spec is not None and spec.origin is not None and "LightServer" in Path(spec.origin).read_text()


pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not _nodes_serve_light(), reason="needs LightServer wired into node/app.py"),
]

DEAD_NODE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


async def test_light_client_follows_real_nodes_and_reads_verified_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_cluster(tmp_path / "cluster", n=4) as cluster:
        genesis = genesis_from_network(cluster.network)
        url = cluster.records["node1"].http_url
        user = SigningKey(bytes(31) + b"\x07")
        tx = Tx.create(user, genesis.chain_id, "record", 0, {"key": b"hr", "value": b"72 bpm"})
        http_json("POST", url + "/tx", {"tx": tx.raw.hex()})

        def final() -> bool:
            return bool(http_json("GET", f"{url}/tx/{tx.hash.hex()}").get("status") == "final")

        await await_until(final, 30, interval=0.1, what="the record transaction is final")
        state_key = record_key(user.address, b"hr")

        # libp2p, with an unreachable node first in the list: it is skipped, not trusted, not fatal.
        addrs = [DEAD_NODE, cluster.records["node2"].multiaddr, cluster.records["node3"].multiaddr]
        async with open_follower(genesis, addrs, tmp_path / "phone", timeout_s=3) as follower:
            height = await follower.sync()
            assert height >= 1 and follower.figures.headers_verified == height
            assert follower.figures.signatures_verified >= 3 * height  # a quorum of 3 of 4 per header
            got = await follower.get_state(state_key)
            assert got.value == b"72 bpm" and got.height >= height
            assert not follower.figures.dropped

        # HTTP, resuming from the head the libp2p session persisted.
        async with open_follower(genesis, [cluster.records["node4"].http_url], tmp_path / "phone") as follower:
            assert follower.height >= height
            await follower.sync()
            absent = await follower.get_state(record_key(user.address, b"nothing"))
            assert absent.value is None

        config = str(cluster.config_path)
        # The commands run their own event loop, so from this async test they run in a worker thread.
        argv = ["light", "sync", "--config", config, "--data-dir", str(tmp_path / "cli"), "--json"]
        code, out = await asyncio.to_thread(run_cli, argv, capsys)
        doc = json.loads(out)
        assert code == 0 and doc["height"] >= height and doc["headers_verified"] == doc["height"]
        argv = ["light", "get-state", "--config", config, "--http", "--data-dir", str(tmp_path / "cli")]
        code, out = await asyncio.to_thread(run_cli, [*argv, "--key", state_key.hex()], capsys)
        assert code == 0 and f"{state_key.hex()} = {b'72 bpm'.hex()}" in out
