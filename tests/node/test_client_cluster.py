"""The node client against a real node process: a signed transaction submitted, followed to finality with
`wait_final` (by either client), read back; a transaction that never comes ends the wait cleanly at its timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from consensus.tx import Tx
from node.client import AsyncNodeClient, NodeClient, NodeRefused, NodeTimeout
from primitives.keys import SigningKey
from tests.harness import running_cluster

pytestmark = pytest.mark.cluster


async def test_submit_wait_final_and_read_back_through_both_clients(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=1) as cluster:
        url = cluster.records["node1"].http_url
        blocking = NodeClient.connect(url)
        key = SigningKey.generate()
        first = Tx.create(key, blocking.chain_id(), "record", 0, {"key": b"k", "value": b"v0"})
        assert blocking.submit(first.raw) == first.hash.hex()
        final = blocking.wait_final(first.hash.hex(), timeout_s=30)
        assert final["status"] == "final" and final["height"] >= 1
        assert blocking.block(final["height"])["txs"][final["index"]]["hash"] == first.hash.hex()

        async with AsyncNodeClient.connect(url) as client:
            nonce = await client.next_nonce(key.address.hex())
            second = Tx.create(key, await client.chain_id(), "record", nonce, {"key": b"k", "value": b"v1"})
            await client.submit(second.raw)
            done = await client.wait_final(second.hash.hex(), timeout_s=30)
            assert done["height"] >= final["height"]
            assert (await client.receipt(second.hash.hex()))["status"] == "ok"
            with pytest.raises(NodeRefused) as again:  # the same bytes once final: the nonce is used
                await client.submit(second.raw)
            assert "already used" in again.value.message

        never = "00" * 32
        started = time.monotonic()
        with pytest.raises(NodeTimeout, match="not final after 1 s"):
            blocking.wait_final(never, timeout_s=1.0)
        assert time.monotonic() - started < 5
