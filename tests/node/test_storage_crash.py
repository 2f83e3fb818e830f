"""Crashes of real node processes and what the store keeps: an object whose add was acknowledged stays readable
from the other nodes when its holder is SIGKILLed right after the acknowledgement (the default replication
places a second copy before the add answers; EHR filing goes through the same add-then-`on_added` path); and a
node SIGKILLed in the middle of a streamed upload leaves pack bytes nobody references, which `ehrnet gc` after
the restart gives back to the disk without touching what was pinned before."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from node.cluster.config import generate_network
from node.cluster.local import Cluster
from storage.address import CID
from storage.car import CarDecoder
from storage.dag import iter_file
from tests.harness import operator_token, running_cluster, wait_until

pytestmark = pytest.mark.cluster

MiB = 1 << 20


def ehrnet(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, timeout=60, check=False)


def pack_bytes(cluster: Cluster, name: str) -> int:
    """What the node's pack files take (their lengths: the store's bulk data on disk)."""
    packs = Path(cluster.records[name].data_dir) / "blocks" / "packs"
    return sum(path.stat().st_size for path in packs.glob("*.pack"))


def start_upload(url: str) -> http.client.HTTPConnection:
    """A POST /objects whose body is sent by hand, chunk by chunk, as a slow client would."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    connection.putrequest("POST", "/objects")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.endheaders()
    return connection


def send_chunk(connection: http.client.HTTPConnection, data: bytes) -> None:
    connection.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def test_gc_reclaims_what_an_upload_killed_midway_left(tmp_path: Path) -> None:
    kept = os.urandom(6_000_000)  # 23 leaves, all of them in the pack file
    (tmp_path / "kept.bin").write_bytes(kept)
    with running_cluster(tmp_path / "cluster", generate_network(1), n=1) as cluster:
        record = cluster.records["node1"]
        added = ehrnet("add", str(tmp_path / "kept.bin"), "--node", record.http_url)
        assert added.returncode == 0, added.stderr.decode()
        kept_cid = added.stdout.decode().strip()
        assert pack_bytes(cluster, "node1") == len(kept)

        # A 20 MB upload: 12 MiB of it is sent, the node writes its first batches, then it is killed.
        upload = start_upload(record.http_url)
        for _ in range(12):
            send_chunk(upload, os.urandom(MiB))
        wait_until(lambda: pack_bytes(cluster, "node1") >= len(kept) + 8 * MiB, 30, 0.05, what="8 MiB appended")
        cluster.kill("node1")
        upload.close()
        orphaned = pack_bytes(cluster, "node1") - len(kept)
        assert orphaned >= 8 * MiB

        cluster.spawn("node1")
        cluster.wait_connected(["node1"], timeout=60)
        token_file = Path(record.data_dir) / "api.token"
        assert operator_token(cluster, "node1")
        gc = ehrnet("gc", "--node", record.http_url, "--token-file", str(token_file))
        assert gc.returncode == 0, gc.stderr.decode()
        assert pack_bytes(cluster, "node1") == len(kept)  # the orphaned bytes are gone, the pinned ones stay
        assert f"returned {orphaned} bytes of pack files" in gc.stdout.decode(), gc.stdout.decode()
        cat = ehrnet("cat", kept_cid, "--node", record.http_url)
        assert cat.returncode == 0 and cat.stdout == kept

        # The store keeps working after the cut: a new add lands right after the live data and reads back.
        fresh = os.urandom(3 * MiB)
        (tmp_path / "fresh.bin").write_bytes(fresh)
        again = ehrnet("add", str(tmp_path / "fresh.bin"), "--node", record.http_url)
        assert again.returncode == 0, again.stderr.decode()
        assert pack_bytes(cluster, "node1") == len(kept) + len(fresh)
        assert ehrnet("cat", again.stdout.decode().strip(), "--node", record.http_url).stdout == fresh


def test_an_acknowledged_add_survives_its_holder_crashing_right_after(tmp_path: Path) -> None:
    data = os.urandom(3 * 262_144 + 17)  # a dag-pb root over four leaves
    (tmp_path / "record.bin").write_bytes(data)
    with running_cluster(tmp_path / "cluster") as cluster:
        origin = cluster.records["node1"]
        added = ehrnet("add", str(tmp_path / "record.bin"), "--node", origin.http_url)  # the default replication
        assert added.returncode == 0, added.stderr.decode()
        assert added.stderr == b""  # no warning: every copy asked for was confirmed before the answer
        cid = added.stdout.decode().strip()
        cluster.kill("node1")  # at once: nothing may be left to do in the background for the copy to exist
        for reader in ("node2", "node3", "node4"):
            read = ehrnet("cat", cid, "--node", cluster.records[reader].http_url)
            assert read.returncode == 0, (reader, read.stderr.decode())
            assert read.stdout == data
        # The surviving copy also leaves as a CAR v1 that holds the whole DAG, every block verified on the way in.
        car = tmp_path / "record.car"
        exported = ehrnet("dag", "export", cid, "--node", cluster.records["node3"].http_url, "--out", str(car))
        assert exported.returncode == 0, exported.stderr.decode()
        decoder = CarDecoder()
        blocks = {block.cid: block.data for block in decoder.feed(car.read_bytes())}
        assert decoder.finish() == [CID.parse(cid)] and len(blocks) == 5  # the dag-pb root and its four leaves
        assert b"".join(iter_file(blocks.__getitem__, CID.parse(cid))) == data
