"""`ehrnet admin add-member` / `remove-member` against a real one-node network: the change is final on the
chain and the node's mesh follows it from the next block; bad input names the field (exit code 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.p2p.identity import peer_id_from_seed
from primitives.keys import SigningKey
from tests.harness import running_cluster, wait_until

pytestmark = pytest.mark.cluster


def ehrnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_bad_member_input_names_the_field() -> None:
    bad_key = ehrnet("admin", "add-member", "zz", "--node", "http://127.0.0.1:9", "--key", "/dev/null")
    assert bad_key.returncode == 2 and "member 'zz'" in bad_key.stderr
    bad_role = ehrnet(
        "admin", "add-member", "ab" * 32, "--roles", "edge,miner", "--node", "http://127.0.0.1:9", "--key", "/dev/null"
    )
    assert bad_role.returncode == 2 and "--roles: unknown role 'miner'" in bad_role.stderr


def test_admins_add_and_remove_a_member_and_the_mesh_follows(tmp_path: Path) -> None:
    newcomer = peer_id_from_seed(SigningKey.generate().seed)
    with running_cluster(tmp_path, n=1) as cluster:

        def members() -> list[str]:
            status = cluster.status_of("node1") or {}
            return list(status.get("gossip", {}).get("members", []))

        assert newcomer not in members()
        added = ehrnet("admin", "add-member", newcomer, "--roles", "storage", "--data-dir", str(tmp_path))
        assert added.returncode == 0, added.stderr
        assert "added member" in added.stdout and "(storage)" in added.stdout
        wait_until(lambda: newcomer in members(), 20, what="the node admitting the new member")
        removed = ehrnet("admin", "remove-member", newcomer, "--data-dir", str(tmp_path), "--json")
        assert removed.returncode == 0, removed.stderr
        assert '"done": true' in removed.stdout
        wait_until(lambda: newcomer not in members(), 20, what="the node dropping the member")
        again = ehrnet("admin", "remove-member", newcomer, "--data-dir", str(tmp_path))
        assert again.returncode == 1 and "no such member" in again.stderr
