"""The content store on a real 4-node cluster: add on node 1 and cat on node 4 through the `ehrnet`
CLI, providers found through the DHT, replication factor 2 surviving dead holders (and being restored), GC
keeping pinned and reclaiming unpinned objects, and the operator endpoints refusing callers without the token."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from node.cluster.local import Cluster
from tests.harness import http_json, operator_token, running_cluster, wait_until

pytestmark = pytest.mark.cluster

CHUNK = 256 * 1024


def ehrnet(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, timeout=60, check=False)


def add(cluster: Cluster, name: str, path: Path, *extra: str) -> str:
    done = ehrnet("add", str(path), "--node", cluster.records[name].http_url, *extra)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


def cat(cluster: Cluster, name: str, cid: str) -> bytes:
    done = ehrnet("cat", cid, "--node", cluster.records[name].http_url)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def providers(cluster: Cluster, name: str, cid: str) -> set[str]:
    answer = http_json("GET", f"{cluster.records[name].http_url}/providers/{cid}")
    return {p["id"] for p in answer["providers"]}


def pinned(cluster: Cluster, name: str) -> dict[str, int]:
    answer = http_json("GET", f"{cluster.records[name].http_url}/pins", token=operator_token(cluster, name))
    return {p["cid"]: p["replication"] for p in answer["pins"]}


def status_code(method: str, url: str, token: str | None) -> int:
    request = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_store_across_four_nodes(tmp_path: Path) -> None:
    data = os.urandom(5 * CHUNK + 4321)  # a two-level DAG: six leaves under one dag-pb root
    (tmp_path / "record.bin").write_bytes(data)
    with running_cluster(tmp_path / "cluster") as cluster:
        names = list(cluster.records)
        ids = {n: cluster.records[n].peer_id for n in names}
        cid = add(cluster, "node1", tmp_path / "record.bin", "--replication", "2")
        assert cid.startswith("bafy")

        # Providers through the DHT: node4 asks its peers (it holds no record of its own for this CID).
        found = wait_until(lambda: providers(cluster, "node4", cid) >= {ids["node1"]}, 10, 0.2, what="provider")
        assert found
        # cat on node4, fetched over libp2p from the holders, byte-identical.
        fetched = cat(cluster, "node4", cid)
        assert hashlib.sha256(fetched).digest() == hashlib.sha256(data).digest() and fetched == data

        # Streaming with backpressure across nodes: node3 fetches a 96 MB file from node2 and streams it to us
        # without its memory growing by anything like the file's size (windows of 32 blocks, bounded requests).
        big = tmp_path / "big.bin"
        with big.open("wb") as handle:
            for _ in range(96):
                handle.write(os.urandom(1_000_000))
        big_cid = add(cluster, "node2", big)
        node3 = psutil.Process(cluster.records["node3"].pid)
        before, peak = node3.memory_info().rss, 0
        digest = hashlib.sha256()
        with urllib.request.urlopen(f"{cluster.records['node3'].http_url}/objects/{big_cid}", timeout=60) as stream:
            while piece := stream.read(1 << 20):
                digest.update(piece)
                peak = max(peak, node3.memory_info().rss)
        assert digest.digest() == hashlib.sha256(big.read_bytes()).digest()
        assert peak - before < 64_000_000, f"node3 grew by {(peak - before) / 1e6:.0f} MB fetching 96 MB"

        # Replication factor 2: beside the origin, the storage nodes closest to the CID pin a copy.
        def holders() -> set[str]:
            return {n for n in names if cluster.alive(n) and cid in pinned(cluster, n)}

        wait_until(lambda: len(holders() - {"node1"}) >= 1, 15, 0.2, what="a replica beside the origin")
        assert all(pinned(cluster, n)[cid] == 2 for n in holders())

        # Kill holders until one is left: the object stays retrievable and the survivor restores a second copy.
        first = sorted(holders())
        survivor, victims = first[-1], first[:-1]
        for victim in victims:
            cluster.kill(victim)
        wait_until(lambda: not any(cluster.alive(v) for v in victims), 10, 0.1, what="holders down")
        living = [n for n in names if n not in victims]
        wait_until(lambda: len(holders()) >= 2, 30, 0.3, what="a replacement replica")
        reader = next(n for n in living if n != survivor)
        assert cat(cluster, reader, cid) == data

        # GC keeps pinned objects and reclaims unpinned ones.
        node, url = survivor, cluster.records[survivor].http_url
        token = operator_token(cluster, node)
        (tmp_path / "scratch.bin").write_bytes(os.urandom(3 * CHUNK))
        scratch = add(cluster, node, tmp_path / "scratch.bin", "--no-pin")
        report = http_json("POST", f"{url}/gc", token=token)
        assert report["removed_blocks"] >= 4  # the scratch file's root and leaves
        assert cat(cluster, node, cid) == data
        assert status_code("GET", f"{url}/objects/{scratch}", None) in (404, 502)

        # Pin and GC endpoints: 401 without the operator token, 403 with a wrong one.
        for method, path in (("POST", f"/pins/{cid}"), ("DELETE", f"/pins/{cid}"), ("GET", "/pins"), ("POST", "/gc")):
            assert status_code(method, url + path, None) == 401, (method, path)
            assert status_code(method, url + path, "not-the-token") == 403, (method, path)
        assert cid in pinned(cluster, node)
