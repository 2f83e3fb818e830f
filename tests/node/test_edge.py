"""Encrypted offloading to a real edge node process, over libp2p and over HTTP (paper Sec. III-A)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import nacl.public
import numpy as np
import pytest

from node.edge.service import OFFLOAD_PROTOCOL
from node.p2p.bridge import HostConfig, P2PHost
from offload import sealed_messages
from offload.client import build_request, open_response, run_local
from offload.errors import RemoteError, TamperedError
from offload.workload import HRV, TREMOR, make_payload
from tests.harness import http_json, running_cluster

pytestmark = pytest.mark.cluster


def _edge_box_key(status: dict[str, object]) -> bytes:
    public_key = status["public_key"]
    assert isinstance(public_key, str)
    return sealed_messages.box_public_key_from_identity(bytes.fromhex(public_key))


async def test_device_offloads_over_libp2p_and_gets_the_local_result(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=2) as cluster:
        edge = "node2"  # generate_network makes the last node the edge node
        status = cluster.status_of(edge)
        assert status is not None and "edge" in status["roles"]
        edge_public = _edge_box_key(status)
        assert http_json("GET", cluster.records[edge].http_url + "/offload/info")["box_public_key"] == edge_public.hex()
        device_key = nacl.public.PrivateKey.generate()
        device = P2PHost(HostConfig(seed=os.urandom(32)))
        await device.start()
        try:
            peer = await device.dial(cluster.records[edge].multiaddr)
            rng = np.random.default_rng(7)
            for kind, seconds in ((HRV, 30.0), (TREMOR, 20.0)):
                payload = make_payload(kind, seconds, rng)
                pending = build_request(kind, payload, device_key, edge_public)
                answer = await device.request(
                    peer, OFFLOAD_PROTOCOL, pending.wire, timeout_s=60, max_response_bytes=1 << 20
                )
                assert open_response(answer, pending, device_key) == run_local(kind, payload)

            # A flipped ciphertext byte fails authentication at the edge: a typed error, and the node lives on.
            pending = build_request(HRV, make_payload(HRV, 15.0, rng), device_key, edge_public)
            tampered = bytearray(pending.wire)
            tampered[-20] ^= 0x01
            answer = await device.request(peer, OFFLOAD_PROTOCOL, bytes(tampered), timeout_s=30)
            with pytest.raises((RemoteError, TamperedError)) as err:
                open_response(answer, pending, device_key)
            assert "tamper" in str(err.value).lower() or "authentic" in str(err.value).lower()

            # An oversized request is refused before it is buffered, with a typed error the device can read.
            big = build_request(
                HRV, os.urandom(sealed_messages.DEFAULT_MAX_REQUEST_BYTES + 1024), device_key, edge_public
            )
            answer = await device.request(peer, OFFLOAD_PROTOCOL, big.wire, timeout_s=60)
            with pytest.raises(RemoteError) as too_big:
                open_response(answer, big, device_key)
            assert "exceeds" in str(too_big.value)
            assert cluster.status_of(edge) is not None
        finally:
            await device.stop()


def test_device_without_libp2p_offloads_over_http(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=2) as cluster:
        url = cluster.records["node2"].http_url
        status = cluster.status_of("node2")
        assert status is not None
        edge_public = _edge_box_key(status)
        device_key = nacl.public.PrivateKey.generate()
        payload = make_payload(TREMOR, 20.0, np.random.default_rng(3))
        pending = build_request(TREMOR, payload, device_key, edge_public)
        answer = http_json("POST", url + "/offload", {"request": pending.wire.hex()}, timeout=60)
        assert open_response(bytes.fromhex(answer["response"]), pending, device_key) == run_local(TREMOR, payload)

        # A tampered envelope over HTTP: the status mirrors the typed error, and the envelope comes along.
        tampered = bytearray(pending.wire)
        tampered[-20] ^= 0x01
        data = json.dumps({"request": bytes(tampered).hex()}).encode()
        request = urllib.request.Request(url + "/offload", data=data, method="POST")
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(request, timeout=30)
        assert bad.value.code == 400
        assert json.loads(bad.value.read())["code"] == "decrypt-failed"

        for body, code, words in (
            ({"request": "zz"}, 400, "not a hex string"),
            ({"nope": 1}, 400, "request:"),
        ):
            request = urllib.request.Request(
                url + "/offload",
                data=json.dumps(body).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(request, timeout=30)
            assert err.value.code == code
            assert words in json.loads(err.value.read())["error"]
