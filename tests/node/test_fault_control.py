"""Fault control: off unless asked for (404), operator-only when on (401/403), and each route has its effect on
real node processes — gating partitions two nodes until healed, a disconnect is redialled, an armed fault point
crashes the node at the named place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from node.client import NodeRefused
from node.cluster.config import ConfigError, generate_network
from node.cluster.local import Cluster
from node.cluster.network_init import resolve_network
from node.faults.options import FaultOptions
from tests.harness import holds_for, http_json, node_processes, operator_token, running_cluster, wait_until

FAULT_EXIT_CODE = 86  # node/faults/points.py


def test_byzantine_mode_from_the_environment_needs_the_unsafe_confirmation() -> None:
    assert FaultOptions.resolve(environ={}) == FaultOptions(control=False, byzantine=None)
    assert FaultOptions.resolve(environ={"EHRNET_FAULT_CONTROL": "1"}).control
    assert not FaultOptions.resolve(environ={"EHRNET_FAULT_CONTROL": "yes"}).control
    with pytest.raises(ConfigError, match="set EHRNET_UNSAFE=1 as well"):
        FaultOptions.resolve(environ={"EHRNET_UNSAFE_BYZANTINE": "equivocate"})
    both = {"EHRNET_UNSAFE_BYZANTINE": "equivocate", "EHRNET_UNSAFE": "1"}
    assert FaultOptions.resolve(environ=both).byzantine == "equivocate"
    assert FaultOptions.resolve(byzantine="malformed", environ={}).byzantine == "malformed"  # the flag is explicit
    with pytest.raises(ConfigError, match="--unsafe-byzantine: unknown mode 'lie'"):
        FaultOptions.resolve(byzantine="lie", environ={})
    with pytest.raises(ConfigError, match="EHRNET_UNSAFE_BYZANTINE: unknown mode 'lie'"):
        FaultOptions.resolve(environ={"EHRNET_UNSAFE_BYZANTINE": "lie", "EHRNET_UNSAFE": "1"})
    with pytest.raises(ConfigError, match=r"EHRNET_UNSAFE_NETWORK_KEY: .* set EHRNET_UNSAFE=1 as well"):
        FaultOptions.resolve(environ={"EHRNET_UNSAFE_NETWORK_KEY": "/tmp/k"})
    own = FaultOptions.resolve(environ={"EHRNET_UNSAFE_NETWORK_KEY": "/tmp/k", "EHRNET_UNSAFE": "1"})
    assert own.network_key == Path("/tmp/k")


def call(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    try:
        return 200, http_json(method, url, body, token=token)
    except NodeRefused as exc:
        return exc.status, exc.message


@contextmanager
def controllable_cluster(data_dir: Path) -> Iterator[Cluster]:
    """Two validators, both with fault control on (quorum is 2 of 2: either one stopping stops the chain)."""
    resolved = resolve_network(generate_network(2), data_dir)
    cluster = Cluster(resolved, data_dir)
    try:
        for spec in resolved.nodes:
            cluster.spawn(spec.name, extra_env={"EHRNET_FAULT_CONTROL": "1"})
        cluster.wait_connected(timeout=60)
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()


@pytest.mark.cluster
def test_fault_routes_do_not_exist_unless_enabled(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=2) as cluster:
        url, token = cluster.records["node1"].http_url, operator_token(cluster, "node1")
        assert call("GET", f"{url}/admin/faults", token=token)[0] == 404
        assert call("POST", f"{url}/admin/faults/gate", {"blocked_peers": []}, token=token)[0] == 404
        assert call("POST", f"{url}/admin/faults/arm", {"point": "crash-after-precommit"}, token=token)[0] == 404


@pytest.mark.cluster
def test_fault_routes_gate_disconnect_and_arm_a_real_node(tmp_path: Path) -> None:
    with controllable_cluster(tmp_path) as cluster:
        url, token = cluster.records["node1"].http_url, operator_token(cluster, "node1")
        other = cluster.records["node2"].peer_id
        assert call("GET", f"{url}/admin/faults")[0] == 401
        assert call("GET", f"{url}/admin/faults", token="0" * 64)[0] == 403
        assert call("POST", f"{url}/admin/faults/gate", {"blocked_peers": [other]})[0] == 401
        status, body = call("GET", f"{url}/admin/faults", token=token)
        assert status == 200 and body == {"blocked_peers": [], "disconnects": 0, "armed": {}, "byzantine": None}
        code, error = call("POST", f"{url}/admin/faults/gate", {"blocked_peers": ["not a peer"]}, token=token)
        assert code == 400 and "blocked_peers[0]" in error

        def peers(name: str) -> set[str]:
            status = cluster.status_of(name)
            return set(status["peers"]) if status else set()

        def height(name: str) -> int:
            status = cluster.status_of(name)
            return int(status["height"]) if status else -1

        # Gate: node1 refuses node2, so the two are apart although node2 keeps redialling; the chain (2 of 2)
        # stops. An empty list heals.
        assert call("POST", f"{url}/admin/faults/gate", {"blocked_peers": [other]}, token=token)[1][
            "blocked_peers"
        ] == [other]
        wait_until(lambda: not peers("node1") and not peers("node2"), timeout=15, what="the gated peers apart")
        assert holds_for(lambda: not peers("node1"), 3.0)
        stopped = max(height("node1"), height("node2"))
        call("POST", f"{url}/admin/faults/gate", {"blocked_peers": []}, token=token)
        wait_until(lambda: other in peers("node1"), timeout=30, what="the healed peers reconnected")
        wait_until(lambda: min(height("node1"), height("node2")) > stopped, timeout=60, what="blocks after heal")

        # Disconnect: closed once, then redialled.
        status, body = call("POST", f"{url}/admin/faults/disconnect", {"peer": other}, token=token)
        assert status == 200 and body == {"peer": other, "was_connected": True}
        wait_until(lambda: other in peers("node1"), timeout=30, what="the disconnected peer redialled")
        assert call("GET", f"{url}/admin/faults", token=token)[1]["disconnects"] == 1

        # Arm: a bad point is refused; crash-after-precommit makes node1 exit with the fault code at its next
        # precommit at or above the height.
        code, error = call("POST", f"{url}/admin/faults/arm", {"point": "explode"}, token=token)
        assert code == 400 and "explode" in error
        code, error = call(
            "POST", f"{url}/admin/faults/arm", {"point": "crash-after-precommit", "min_height": -1}, token=token
        )
        assert code == 400 and "min_height" in error
        at = height("node1") + 2
        status, body = call(
            "POST", f"{url}/admin/faults/arm", {"point": "crash-after-precommit", "min_height": at}, token=token
        )
        assert status == 200 and body["armed"] == {"crash-after-precommit": at}
        # An idle chain makes a block every 2 s; a transaction is not needed to reach the armed height.
        assert cluster.wait_exit("node1", timeout=60) == FAULT_EXIT_CODE
        assert height("node2") < at  # node1 died holding its precommit for `at`: without it, 1 of 2 decides nothing
